// Adjoints of the tactile image formation (src/raster_depth.c, raster_traction.c, raster_rgb.c) against central finite differences
// of the forward in double precision: a 5 x 4 node top face with a random smooth deformation in
// a 24 x 20 pixel image, random image cotangents. The adjoints hold visibility fixed; the image
// cotangent is zeroed at pixels whose centre lies within MARGIN pixels of any projected triangle
// edge (there the covering triangle may change and the image is not differentiable), so that
// every finite difference below sees a fixed covering triangle. The forwards of src/raster_*.c are
// checked bit for bit against a transcription of plugin/tactile.c's evaluate().
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <vector>

#include "raster_image.h"

namespace {

constexpr int NVX = 5, NVY = 4, NV = NVX * NVY, W = 24, H = 20, NPIX = W * H;
constexpr double PITCH = 1e-4;  // m per pixel
constexpr double MARGIN = 0.02;  // pixels
constexpr double TOL = 1e-6;    // relative to the largest gradient entry
constexpr int NCOEF = 3 * DTAC_OPTICS_NBASIS;

using Vec = std::vector<double>;

struct Vis {
  Vec zbuf = Vec(NPIX), bary = Vec(2 * NPIX);
  std::vector<int> tri = std::vector<int>(NPIX);
  dtac_vis v() { return dtac_vis{zbuf.data(), tri.data(), bary.data()}; }
};

struct Scene {
  dtac_camera cam{};
  Vec X = Vec(3 * NV), p = Vec(3 * NV), f = Vec(3 * NV);
  double bg[3], coef[NCOEF];
  std::mt19937 rng;

  explicit Scene(unsigned seed, double xy_amp = 0.4, double z_amp = 1.2e-4) : rng(seed) {
    std::normal_distribution<double> n01(0, 1);
    std::uniform_real_distribution<double> u01(0, 1);
    cam.width = W;
    cam.height = H;
    cam.pitch = PITCH;
    cam.x0 = -1.2e-3;  // image centre at (0, 0)
    cam.y0 = -1.0e-3;
    // rest grid 20 x 15 px inside the image (2 px border), top face at z = 4 mm
    for (int j = 0; j < NVY; j++) {
      for (int i = 0; i < NVX; i++) {
        int a = i + NVX * j;
        X[3 * a] = cam.x0 + (2.0 + 5.0 * i) * PITCH;
        X[3 * a + 1] = cam.y0 + (2.5 + 5.0 * j) * PITCH;
        X[3 * a + 2] = 4e-3;
      }
    }
    // smooth random deformation: a few low-frequency modes per coordinate
    double ph[3][3], kx[3][3], ky[3][3];
    for (int c = 0; c < 3; c++) {
      for (int m = 0; m < 3; m++) {
        ph[c][m] = 2 * DTAC_PI * u01(rng);
        kx[c][m] = 2 * DTAC_PI * (0.5 + u01(rng)) / (20 * PITCH);
        ky[c][m] = 2 * DTAC_PI * (0.5 + u01(rng)) / (15 * PITCH);
      }
    }
    const double amp[3] = {xy_amp * PITCH, xy_amp * PITCH, z_amp};
    for (int a = 0; a < NV; a++) {
      for (int c = 0; c < 3; c++) {
        double d = 0;
        for (int m = 0; m < 3; m++) {
          d += std::sin(kx[c][m] * X[3 * a] + ky[c][m] * X[3 * a + 1] + ph[c][m]) / 3;
        }
        // indentation (z decreases) mostly positive, as under a press
        p[3 * a + c] = X[3 * a + c] + (c == 2 ? -amp[c] * (0.5 + 0.5 * d) : amp[c] * d);
      }
    }
    for (double& v : f) v = n01(rng);
    dtac_optics_default(bg, coef);
    for (double& c : coef) c += 0.05 * n01(rng);
  }

  Vec random(int n) {
    std::normal_distribution<double> n01(0, 1);
    Vec v(n);
    for (double& x : v) x = n01(rng);
    return v;
  }

  // 1 where the pixel centre is at least MARGIN px from every projected triangle edge
  std::vector<int> Smooth() const {
    std::vector<int> ok(NPIX, 1);
    for (int t = 0; t < dtac_top_ntri(NVX, NVY); t++) {
      int v[3];
      dtac_top_tri(NVX, t, v);
      double uv[3][2];
      for (int q = 0; q < 3; q++) dtac_camera_project(&cam, p.data() + 3 * v[q], uv[q]);
      for (int e = 0; e < 3; e++) {
        const double* a = uv[e];
        const double* b = uv[(e + 1) % 3];
        for (int k = 0; k < NPIX; k++) {
          double px = k % W + 0.5, py = k / W + 0.5;
          double dx = b[0] - a[0], dy = b[1] - a[1];
          double s = std::clamp(((px - a[0]) * dx + (py - a[1]) * dy) / (dx * dx + dy * dy), 0.0, 1.0);
          double ex = a[0] + s * dx - px, ey = a[1] + s * dy - py;
          if (std::sqrt(ex * ex + ey * ey) < MARGIN) ok[k] = 0;
        }
      }
    }
    return ok;
  }

  // random image cotangent (H x W x C), zero at pixels near an edge; counts the live pixels the
  // pad covers
  Vec Cotangent(int C, int* live) {
    Vec bar = random(NPIX * C);
    std::vector<int> ok = Smooth();
    *live = 0;
    for (int k = 0; k < NPIX; k++) {
      double w[3];
      if (!ok[k]) {
        for (int c = 0; c < C; c++) bar[k * C + c] = 0;
      } else if (dtac_top_locate(NVX, NVY, p.data(), cam.x0 + (k % W + 0.5) * PITCH,
                                 cam.y0 + (k / W + 0.5) * PITCH, w) >= 0) {
        ++*live;
      }
    }
    return bar;
  }
};

double Dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); i++) s += a[i] * b[i];
  return s;
}

double MaxAbs(const Vec& a) {
  double m = 0;
  for (double v : a) m = std::max(m, std::fabs(v));
  return m;
}

// compares grad with central differences of L along each coordinate of x (x restored after);
// returns the largest |grad - fd| / max|grad|
double CheckGradient(const char* what, Vec& x, double h, const Vec& grad,
                     const std::function<double()>& L) {
  double scale = MaxAbs(grad), worst = 0;
  EXPECT_GT(scale, 0) << what;
  for (size_t i = 0; i < x.size(); i++) {
    double x0 = x[i];
    x[i] = x0 + h;
    double lp = L();
    x[i] = x0 - h;
    double lm = L();
    x[i] = x0;
    double fd = (lp - lm) / (2 * h);
    double err = std::fabs(grad[i] - fd) / scale;
    worst = std::max(worst, err);
    EXPECT_LE(err, TOL) << what << " entry " << i << ": adjoint " << grad[i] << ", fd " << fd;
  }
  if (std::getenv("DTAC_TEST_VERBOSE")) {
    std::printf("  %-12s %3zu entries, max|grad| %.3e, worst |adj - fd| / max|grad| %.2e\n", what,
                x.size(), scale, worst);
  }
  return worst;
}

// ---- forward transcribed from plugin/tactile.c evaluate() (site-frame p; forces rotated) ----

void PluginForward(int output, const Scene& s, const double* R, const double* fworld,
                   Vec& out) {
  const dtac_camera* cam = &s.cam;
  const int nv = NV, nvx = NVX, nvy = NVY;
  const double* X = s.X.data();
  Vis vb;
  dtac_vis vis = vb.v();
  Vec pv = s.p, attrv(4 * nv), areav(nv), pixv(4 * NPIX);
  double *p = pv.data(), *attr = attrv.data(), *area = areav.data(), *pix = pixv.data();
  double* o_ = out.data();
  dtac_raster_visibility(cam, nvx, nvy, p, &vis);
  switch (output) {
    case 0:  // depth
      for (int a = 0; a < nv; a++) attr[a] = X[3 * a + 2] - p[3 * a + 2];
      dtac_raster_resolve(cam, nvx, &vis, attr, 1, 0, o_);
      break;
    case 1:
    case 2: {  // pressure, shear
      dtac_top_areas(nvx, nvy, p, area);
      int C = output == 1 ? 1 : 2;
      for (int a = 0; a < nv; a++) {
        double fs[3];
        dtac_mulmTv3(fs, R, fworld + 3 * a);
        double inv = area[a] > 0 ? 1.0 / area[a] : 0;
        if (C == 1) {
          attr[a] = -fs[2] * inv;
        } else {
          attr[2 * a] = fs[0] * inv;
          attr[2 * a + 1] = fs[1] * inv;
        }
      }
      dtac_raster_resolve(cam, nvx, &vis, attr, C, 0, o_);
      break;
    }
    default: {  // rgb
      dtac_top_normals(nvx, nvy, p, attr);
      for (int a = nv - 1; a >= 0; a--) {
        double n0 = attr[3 * a], n1 = attr[3 * a + 1], n2 = attr[3 * a + 2];
        attr[4 * a] = n0;
        attr[4 * a + 1] = n1;
        attr[4 * a + 2] = n2;
        attr[4 * a + 3] = X[3 * a + 2] - p[3 * a + 2];
      }
      dtac_raster_resolve(cam, nvx, &vis, attr, 4, 0, pix);
      for (int k = 0; k < NPIX; k++) {
        double* o = o_ + 3 * k;
        if (vis.tri[k] < 0) {
          o[0] = o[1] = o[2] = 0;
          continue;
        }
        double* q = pix + 4 * k;
        double len = dtac_norm3(q);
        double n[3] = {0, 0, 1};
        if (len > 0) {
          for (int c = 0; c < 3; c++) n[c] = q[c] / len;
        }
        dtac_optics_shade(s.bg, s.coef, n, q[3], o);
      }
      break;
    }
  }
}

// the library forwards (src/raster_*.c) with fresh visibility
Vec Depth(const Scene& s, const Vec& p) {
  Vis vb;
  dtac_vis vis = vb.v();
  Vec work(DTAC_RASTER_WORK(NV)), img(NPIX);
  dtac_raster_depth(&s.cam, NVX, NVY, p.data(), s.X.data(), &vis, work.data(), img.data());
  return img;
}

Vec Traction(const Scene& s, const Vec& p, const Vec& f, int C) {
  Vis vb;
  dtac_vis vis = vb.v();
  Vec work(DTAC_RASTER_WORK(NV)), img(NPIX * C);
  dtac_raster_traction(&s.cam, NVX, NVY, p.data(), f.data(), C, &vis, work.data(), img.data());
  return img;
}

Vec Rgb(const Scene& s, const Vec& p, const double* bg, const double* coef, Vec* pixout = nullptr) {
  Vis vb;
  dtac_vis vis = vb.v();
  Vec work(DTAC_RASTER_WORK(NV)), pix(4 * NPIX), img(3 * NPIX);
  dtac_raster_rgb(&s.cam, NVX, NVY, p.data(), s.X.data(), bg, coef, &vis, work.data(), pix.data(),
                  img.data());
  if (pixout) *pixout = pix;
  return img;
}

// the visibility buffer at s.p
void Visibility(const Scene& s, Vis* vb) {
  dtac_vis vis = vb->v();
  dtac_raster_visibility(&s.cam, NVX, NVY, s.p.data(), &vis);
}

}  // namespace

// ---- forwards ---------------------------------------------------------------------------------

TEST(RasterAdjoint, ForwardsEqualThePluginsComposition) {
  for (unsigned seed = 1; seed <= 3; seed++) {
    Scene s(seed);
    // a random site rotation: the plugin rotates world forces into the site frame
    Vec q = s.random(4);
    double nq = std::sqrt(Dot(q, q));
    double w = q[0] / nq, x = q[1] / nq, y = q[2] / nq, z = q[3] / nq;
    double R[9] = {1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                   2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                   2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)};
    Vec fw = s.random(3 * NV), fs(3 * NV);
    for (int a = 0; a < NV; a++) dtac_mulmTv3(fs.data() + 3 * a, R, fw.data() + 3 * a);
    const int C[4] = {1, 1, 2, 3};
    for (int out = 0; out < 4; out++) {
      Vec ref(NPIX * C[out]), mine;
      PluginForward(out, s, R, fw.data(), ref);
      if (out == 0) mine = Depth(s, s.p);
      if (out == 1 || out == 2) mine = Traction(s, s.p, fs, C[out]);
      if (out == 3) mine = Rgb(s, s.p, s.bg, s.coef);
      ASSERT_EQ(mine.size(), ref.size());
      EXPECT_EQ(0, std::memcmp(mine.data(), ref.data(), sizeof(double) * ref.size()))
          << "output " << out << " seed " << seed;
      EXPECT_GT(MaxAbs(ref), 0);
    }
  }
}

// ---- building blocks ------------------------------------------------------------------------

TEST(RasterAdjoint, BarycentricWeightsMatchFiniteDifferences) {
  std::mt19937 rng(5);
  std::normal_distribution<double> n01(0, 1);
  for (int trial = 0; trial < 100; trial++) {
    Vec v(6);
    for (double& x : v) x = 10 * n01(rng);
    if (std::fabs(dtac_edge2(&v[0], &v[2], &v[4])) < 10) continue;  // not nearly degenerate
    double pt[2] = {n01(rng), n01(rng)};
    Vec wbar = {n01(rng), n01(rng), n01(rng)}, grad(6, 0.0);
    dtac_barycentric_adj(&v[0], &v[2], &v[4], pt, wbar.data(), &grad[0], &grad[2], &grad[4]);
    auto L = [&] {
      double w[3];
      dtac_barycentric(&v[0], &v[2], &v[4], pt, w);  // weights are set inside or outside
      return w[0] * wbar[0] + w[1] * wbar[1] + w[2] * wbar[2];
    };
    CheckGradient("barycentric", v, 1e-5, grad, L);
  }
}

TEST(RasterAdjoint, ResolveAdjointIsTheTranspose) {
  Scene s(11);
  Vis vb;
  Visibility(s, &vb);
  dtac_vis vis = vb.v();
  for (int C : {1, 2, 4}) {
    Vec attr = s.random(NV * C), obar = s.random(NPIX * C), out(NPIX * C), abar(NV * C, 0.0);
    dtac_raster_resolve(&s.cam, NVX, &vis, attr.data(), C, 0, out.data());
    dtac_raster_resolve_adj(&s.cam, NVX, &vis, obar.data(), C, abar.data());
    double lhs = Dot(obar, out), rhs = Dot(abar, attr);
    EXPECT_NEAR(lhs, rhs, 1e-12 * (std::fabs(lhs) + 1)) << "C " << C;
  }
}

TEST(RasterAdjoint, InterpolationMatchesFiniteDifferences) {
  for (unsigned seed = 21; seed <= 23; seed++) {
    Scene s(seed);
    const int C = 3;
    int live;
    Vec attr = s.random(NV * C), obar = s.Cotangent(C, &live);
    EXPECT_GT(live, 250);
    Vis vb;
    Visibility(s, &vb);
    dtac_vis vis = vb.v();
    Vec pbar(3 * NV, 0.0), abar(NV * C, 0.0);
    dtac_raster_interp_adj(&s.cam, NVX, s.p.data(), &vis, attr.data(), C, obar.data(),
                           pbar.data(), abar.data());
    auto L = [&] {  // visibility recomputed at the perturbed nodes
      Vis vv;
      dtac_vis v2 = vv.v();
      dtac_raster_visibility(&s.cam, NVX, NVY, s.p.data(), &v2);
      Vec out(NPIX * C);
      dtac_raster_resolve(&s.cam, NVX, &v2, attr.data(), C, 0, out.data());
      return Dot(obar, out);
    };
    CheckGradient("interp p", s.p, 1e-5 * PITCH, pbar, L);
    CheckGradient("interp attr", attr, 1e-3, abar, L);
    for (int a = 0; a < NV; a++) EXPECT_EQ(pbar[3 * a + 2], 0.0);  // orthographic
  }
}

TEST(RasterAdjoint, NormalsAndAreasMatchFiniteDifferences) {
  Scene s(31);
  Vec nbar = s.random(3 * NV), abar = s.random(NV), pn(3 * NV, 0.0), pa(3 * NV, 0.0);
  Vec work(DTAC_RASTER_WORK(NV));
  dtac_top_normals_adj(NVX, NVY, s.p.data(), nbar.data(), pn.data(), work.data());
  dtac_top_areas_adj(NVX, NVY, s.p.data(), abar.data(), pa.data());
  auto Ln = [&] {
    Vec n(3 * NV);
    dtac_top_normals(NVX, NVY, s.p.data(), n.data());
    return Dot(nbar, n);
  };
  auto La = [&] {
    Vec a(NV);
    dtac_top_areas(NVX, NVY, s.p.data(), a.data());
    return Dot(abar, a);
  };
  CheckGradient("normals", s.p, 1e-5 * PITCH, pn, Ln);
  CheckGradient("areas", s.p, 1e-5 * PITCH, pa, La);
}

// ---- images --------------------------------------------------------------------------------------

TEST(RasterAdjoint, DepthMatchesFiniteDifferences) {
  for (unsigned seed = 41; seed <= 43; seed++) {
    Scene s(seed);
    int live;
    Vec bar = s.Cotangent(1, &live);
    EXPECT_GT(live, 250);
    Vis vb;
    Visibility(s, &vb);
    dtac_vis vis = vb.v();
    Vec pbar(3 * NV, 0.0), work(DTAC_RASTER_WORK(NV));
    dtac_raster_depth_adj(&s.cam, NVX, NVY, s.p.data(), s.X.data(), &vis, bar.data(), pbar.data(),
                          work.data());
    CheckGradient("depth p", s.p, 1e-5 * PITCH, pbar, [&] { return Dot(bar, Depth(s, s.p)); });
  }
}

TEST(RasterAdjoint, PressureAndShearMatchFiniteDifferences) {
  for (unsigned seed = 51; seed <= 53; seed++) {
    for (int C : {1, 2}) {
      Scene s(seed);
      int live;
      Vec bar = s.Cotangent(C, &live);
      EXPECT_GT(live, 250);
      Vis vb;
      Visibility(s, &vb);
      dtac_vis vis = vb.v();
      Vec pbar(3 * NV, 0.0), fbar(3 * NV, 0.0), work(DTAC_RASTER_WORK(NV));
      dtac_raster_traction_adj(&s.cam, NVX, NVY, s.p.data(), s.f.data(), C, &vis, bar.data(),
                               pbar.data(), fbar.data(), work.data());
      auto L = [&] { return Dot(bar, Traction(s, s.p, s.f, C)); };
      CheckGradient(C == 1 ? "pressure p" : "shear p", s.p, 1e-5 * PITCH, pbar, L);
      CheckGradient(C == 1 ? "pressure f" : "shear f", s.f, 1e-3, fbar, L);
      // f_bar alone (p_bar null) is the same
      Vec fbar2(3 * NV, 0.0);
      dtac_raster_traction_adj(&s.cam, NVX, NVY, s.p.data(), s.f.data(), C, &vis, bar.data(),
                               nullptr, fbar2.data(), work.data());
      EXPECT_EQ(fbar, fbar2);
    }
  }
}

namespace {

// rgb adjoint vs finite differences in p, bg and coef; bg_shift moves the background so that
// some channels saturate. Returns the number of saturated live channels
int CheckRgb(unsigned seed, const double bg_shift[3]) {
  Scene s(seed);
  for (int c = 0; c < 3; c++) s.bg[c] += bg_shift[c];
  int live;
  Vec bar = s.Cotangent(3, &live);
  EXPECT_GT(live, 250);
  // channels within 1e-3 of a clamp bound get no cotangent (the clamp's kink)
  Vec pix;
  Rgb(s, s.p, s.bg, s.coef, &pix);
  Vis vb;
  Visibility(s, &vb);
  int saturated = 0;
  for (int k = 0; k < NPIX; k++) {
    if (vb.tri[k] < 0) continue;
    const double* q = &pix[4 * k];
    double n[3], len = dtac_norm3(q), raw[3];
    for (int c = 0; c < 3; c++) n[c] = q[c] / len;
    dtac_optics_shade_raw(s.bg, s.coef, n, q[3], raw);
    for (int c = 0; c < 3; c++) {
      if (std::fabs(raw[c]) < 1e-3 || std::fabs(raw[c] - 1) < 1e-3) bar[3 * k + c] = 0;
      if ((raw[c] < 0 || raw[c] > 1) && bar[3 * k + c] != 0) saturated++;
    }
  }
  dtac_vis vis = vb.v();
  Vec pbar(3 * NV, 0.0), bgbar(3, 0.0), cbar(NCOEF, 0.0), work(DTAC_RASTER_WORK(NV));
  dtac_raster_rgb_adj(&s.cam, NVX, NVY, s.p.data(), s.X.data(), s.bg, s.coef, &vis, bar.data(),
                      pbar.data(), bgbar.data(), cbar.data(), work.data());
  Vec bg(s.bg, s.bg + 3), coef(s.coef, s.coef + NCOEF);
  auto L = [&] { return Dot(bar, Rgb(s, s.p, bg.data(), coef.data())); };
  CheckGradient("rgb p", s.p, 1e-5 * PITCH, pbar, L);
  CheckGradient("rgb bg", bg, 1e-6, bgbar, L);
  CheckGradient("rgb coef", coef, 1e-6, cbar, L);
  // the parameters' cotangents alone (p_bar null) are the same
  Vec bgbar2(3, 0.0), cbar2(NCOEF, 0.0);
  dtac_raster_rgb_adj(&s.cam, NVX, NVY, s.p.data(), s.X.data(), s.bg, s.coef, &vis, bar.data(),
                      nullptr, bgbar2.data(), cbar2.data(), work.data());
  EXPECT_EQ(bgbar, bgbar2);
  EXPECT_EQ(cbar, cbar2);
  if (std::getenv("DTAC_TEST_VERBOSE")) {
    std::printf("  rgb seed %u: %d live pixels, %d live saturated channels\n", seed, live, saturated);
  }
  return saturated;
}

}  // namespace

TEST(RasterAdjoint, RgbMatchesFiniteDifferences) {
  const double none[3] = {0, 0, 0};
  for (unsigned seed = 61; seed <= 63; seed++) EXPECT_EQ(CheckRgb(seed, none), 0);
}

TEST(RasterAdjoint, RgbWithSaturatedChannelsMatchesFiniteDifferences) {
  // red and blue pushed to the bounds: the strongly tilted pixels clip, the others do not
  const double shift[3] = {0.5, 0, -0.48};
  int saturated = 0;
  for (unsigned seed = 71; seed <= 73; seed++) saturated += CheckRgb(seed, shift);
  EXPECT_GT(saturated, 20);
}

TEST(RasterAdjoint, AdjointsAreDeterministic) {
  Scene s(81);
  int live;
  Vec bar = s.Cotangent(3, &live);
  Vis vb;
  Visibility(s, &vb);
  dtac_vis vis = vb.v();
  Vec work(DTAC_RASTER_WORK(NV)), p1(3 * NV, 0.0), p2(3 * NV, 0.0);
  dtac_raster_rgb_adj(&s.cam, NVX, NVY, s.p.data(), s.X.data(), s.bg, s.coef, &vis, bar.data(),
                      p1.data(), nullptr, nullptr, work.data());
  std::fill(work.begin(), work.end(), 1e300);  // stale scratch must not matter
  dtac_raster_rgb_adj(&s.cam, NVX, NVY, s.p.data(), s.X.data(), s.bg, s.coef, &vis, bar.data(),
                      p2.data(), nullptr, nullptr, work.data());
  EXPECT_EQ(0, std::memcmp(p1.data(), p2.data(), sizeof(double) * p1.size()));
}

// ---- the rim: a face whose outline moved inwards ---------------------------------------------

namespace {

// seed's scene with the rest face as the camera's face and the deformed face shrunk by `shrink`
// about its centre: about 1 px of rim inside the rest face is no longer covered
Scene RimScene(unsigned seed, double shrink = 0.9) {
  Scene s(seed);
  double lo[2] = {1e9, 1e9}, hi[2] = {-1e9, -1e9};
  for (int a = 0; a < NV; a++) {
    for (int c = 0; c < 2; c++) {
      lo[c] = std::min(lo[c], s.X[3 * a + c]);
      hi[c] = std::max(hi[c], s.X[3 * a + c]);
    }
  }
  s.cam.face[0] = lo[0];
  s.cam.face[1] = hi[0];
  s.cam.face[2] = lo[1];
  s.cam.face[3] = hi[1];
  for (int a = 0; a < NV; a++) {
    for (int c = 0; c < 2; c++) {
      double mid = 0.5 * (lo[c] + hi[c]);
      s.p[3 * a + c] = mid + shrink * (s.p[3 * a + c] - mid);
    }
  }
  return s;
}

// pixels whose centre lies inside the rest face but outside the deformed one
int RimPixels(const Scene& s, std::vector<int>* rim = nullptr) {
  int n = 0;
  for (int k = 0; k < NPIX; k++) {
    double x = s.cam.x0 + (k % W + 0.5) * PITCH, y = s.cam.y0 + (k / W + 0.5) * PITCH, w[3];
    int in = x >= s.cam.face[0] && x <= s.cam.face[1] && y >= s.cam.face[2] && y <= s.cam.face[3];
    int r = in && dtac_top_locate(NVX, NVY, s.p.data(), x, y, w) < 0;
    if (rim) rim->push_back(r);
    n += r;
  }
  return n;
}

}  // namespace

TEST(RasterAdjoint, RimPixelsShowTheNearestRimPointNotZero) {
  for (unsigned seed = 91; seed <= 93; seed++) {
    Scene s = RimScene(seed);
    std::vector<int> rim;
    ASSERT_GT(RimPixels(s, &rim), 40) << seed;
    Vec dep = Depth(s, s.p), rgb = Rgb(s, s.p, s.bg, s.coef);
    double dmin = 1e9, dmax = -1e9;
    for (int a = 0; a < NV; a++) {
      dmin = std::min(dmin, s.X[3 * a + 2] - s.p[3 * a + 2]);
      dmax = std::max(dmax, s.X[3 * a + 2] - s.p[3 * a + 2]);
    }
    Scene none = s;  // the same deformed face without a rest face: rim pixels stay uncovered
    for (double& f : none.cam.face) f = 0;
    Vec dep0 = Depth(none, none.p);
    for (int k = 0; k < NPIX; k++) {
      if (!rim[k]) {
        EXPECT_EQ(dep[k], dep0[k]) << k;  // covered and outside pixels are unchanged
        continue;
      }
      EXPECT_EQ(dep0[k], 0) << k;
      // a convex combination of the rim's values: finite, inside the vertices' range, and the
      // rgb of a real surface (not the black of an uncovered pixel)
      EXPECT_TRUE(std::isfinite(dep[k]));
      EXPECT_GE(dep[k], dmin - 1e-15) << k;
      EXPECT_LE(dep[k], dmax + 1e-15) << k;
      EXPECT_GT(rgb[3 * k] + rgb[3 * k + 1] + rgb[3 * k + 2], 0.5) << k;
    }
  }
  // a face of NaN nodes leaves the pixels uncovered (0), never non-finite
  Scene s = RimScene(94);
  for (double& v : s.p) v = NAN;
  for (double v : Depth(s, s.p)) ASSERT_EQ(v, 0);
}

TEST(RasterAdjoint, RimPixelsMatchFiniteDifferences) {
  for (unsigned seed = 95; seed <= 97; seed++) {
    Scene s = RimScene(seed);
    std::vector<int> rim;
    RimPixels(s, &rim);
    int live;
    Vec bar1 = s.Cotangent(1, &live), bar3 = s.Cotangent(3, &live);
    // only the rim pixels: their gradient is the new part
    for (int k = 0; k < NPIX; k++) {
      if (rim[k]) continue;
      bar1[k] = 0;
      for (int c = 0; c < 3; c++) bar3[3 * k + c] = 0;
    }
    Vis vb;
    Visibility(s, &vb);
    dtac_vis vis = vb.v();
    Vec work(DTAC_RASTER_WORK(NV)), pd(3 * NV, 0.0), pr(3 * NV, 0.0);
    dtac_raster_depth_adj(&s.cam, NVX, NVY, s.p.data(), s.X.data(), &vis, bar1.data(), pd.data(),
                          work.data());
    dtac_raster_rgb_adj(&s.cam, NVX, NVY, s.p.data(), s.X.data(), s.bg, s.coef, &vis, bar3.data(),
                        pr.data(), nullptr, nullptr, work.data());
    CheckGradient("rim depth p", s.p, 1e-5 * PITCH, pd, [&] { return Dot(bar1, Depth(s, s.p)); });
    CheckGradient("rim rgb p", s.p, 1e-5 * PITCH, pr,
                  [&] { return Dot(bar3, Rgb(s, s.p, s.bg, s.coef)); });
    // the tangents are the adjoints' transposes: <bar, J dp> = <J^T bar, dp>
    Vec dp = s.random(3 * NV), dd(NPIX), dr(3 * NPIX);
    dtac_raster_depth_jvp(&s.cam, NVX, NVY, s.p.data(), s.X.data(), &vis, dp.data(), dd.data(),
                          work.data());
    dtac_raster_rgb_jvp(&s.cam, NVX, NVY, s.p.data(), s.X.data(), s.bg, s.coef, &vis, dp.data(),
                        dr.data(), work.data());
    EXPECT_NEAR(Dot(bar1, dd), Dot(pd, dp), 1e-9 * MaxAbs(pd) * MaxAbs(dp) * NV);
    EXPECT_NEAR(Dot(bar3, dr), Dot(pr, dp), 1e-9 * MaxAbs(pr) * MaxAbs(dp) * NV);
  }
}
