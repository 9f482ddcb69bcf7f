// test_sdf.cc: kernels/sdf.h against finite differences, brute-force distances and degenerate points.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "test_util.h"
#include "sdf.h"

namespace {

// one geom: type, size and (mesh) planes
struct Geom {
  int type;
  double size[3];
  std::vector<double> planes;
  std::string name;
};

double Sdf(const Geom& g, const double p[3], double grad[3]) {
  return dtac_sdf(g.type, g.size, g.planes.empty() ? nullptr : g.planes.data(),
                  (int)g.planes.size() / 4, p, grad);
}

double Sdf(const Geom& g, const double p[3]) {
  double grad[3];
  return Sdf(g, p, grad);
}

void Hess(const Geom& g, const double p[3], double H[9]) {
  dtac_sdf_hess(g.type, g.size, g.planes.empty() ? nullptr : g.planes.data(),
                (int)g.planes.size() / 4, p, H);
}


// planes of a box with half-sizes b, rotated by R: normals are the columns of R (and negatives)
std::vector<double> BoxPlanes(const double b[3], const double R[9]) {
  std::vector<double> pl;
  for (int i = 0; i < 3; i++) {
    for (int sgn = -1; sgn <= 1; sgn += 2) {
      pl.push_back(sgn * R[i]);
      pl.push_back(sgn * R[3 + i]);
      pl.push_back(sgn * R[6 + i]);
      pl.push_back(b[i]);
    }
  }
  return pl;
}

const double kIdentity[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};

// all geoms of the finite-difference test
std::vector<Geom> AllGeoms() {
  std::vector<Geom> g;
  g.push_back({DTAC_GEOM_PLANE, {0, 0, 0}, {}, "plane"});
  g.push_back({DTAC_GEOM_SPHERE, {0.7, 0, 0}, {}, "sphere"});
  g.push_back({DTAC_GEOM_CAPSULE, {0.3, 0.5, 0}, {}, "capsule"});
  g.push_back({DTAC_GEOM_ELLIPSOID, {1.0, 0.6, 0.35}, {}, "ellipsoid"});
  g.push_back({DTAC_GEOM_CYLINDER, {0.4, 0.6, 0}, {}, "cylinder"});
  g.push_back({DTAC_GEOM_BOX, {0.5, 0.3, 0.2}, {}, "box"});
  std::mt19937 rng(7);
  double R[9];
  RandomRotation(rng, R);
  double b[3] = {0.5, 0.3, 0.2};
  g.push_back({DTAC_GEOM_MESH, {0, 0, 0}, BoxPlanes(b, R), "mesh"});
  return g;
}

// half-width of the sampling box around a geom
double Extent(const Geom& g) {
  double m = 0.5;
  for (double s : g.size) m = std::max(m, s);
  return 1.5 * m + 0.3;
}

// ---- 1. gradient and Hessian against central finite differences ----------------------------------

TEST(Sdf, GradientAndHessianMatchFiniteDifferences) {
  const double eps = 1e-6;
  for (const Geom& geom : AllGeoms()) {
    std::mt19937 rng(1234);
    double ext = Extent(geom);
    std::uniform_real_distribution<double> U(-ext, ext);
    int ngrad = 0, nhess = 0;
    const int npoint = 2000;
    for (int n = 0; n < npoint; n++) {
      double p[3] = {U(rng), U(rng), U(rng)};
      double g[3], H[9];
      double f0 = Sdf(geom, p, g);
      Hess(geom, p, H);

      // gradient: skip kinks, where one-sided differences disagree
      bool smooth = true;
      double fd[3];
      for (int i = 0; i < 3; i++) {
        double pp[3] = {p[0], p[1], p[2]}, pm[3] = {p[0], p[1], p[2]};
        pp[i] += eps;
        pm[i] -= eps;
        double fp = Sdf(geom, pp), fm = Sdf(geom, pm);
        if (std::fabs((fp - f0) / eps - (f0 - fm) / eps) > 1e-3) smooth = false;
        fd[i] = (fp - fm) / (2 * eps);
      }
      if (smooth) {
        ngrad++;
        for (int i = 0; i < 3; i++) {
          EXPECT_NEAR(fd[i], g[i], 1e-6) << geom.name << " grad " << i << " at " << p[0] << " "
                                         << p[1] << " " << p[2];
        }
      }

      // Hessian: skip jumps of the Hessian, where one-sided differences of grad disagree
      bool hsmooth = true;
      double hd[9];
      for (int j = 0; j < 3; j++) {
        double pp[3] = {p[0], p[1], p[2]}, pm[3] = {p[0], p[1], p[2]};
        pp[j] += eps;
        pm[j] -= eps;
        double gp[3], gm[3];
        Sdf(geom, pp, gp);
        Sdf(geom, pm, gm);
        for (int i = 0; i < 3; i++) {
          if (std::fabs((gp[i] - g[i]) / eps - (g[i] - gm[i]) / eps) > 1e-3) hsmooth = false;
          hd[3 * i + j] = (gp[i] - gm[i]) / (2 * eps);
        }
      }
      if (hsmooth) {
        nhess++;
        double hmax = 1;
        for (double h : H) hmax = std::max(hmax, std::fabs(h));
        for (int k = 0; k < 9; k++) {
          EXPECT_NEAR(hd[k], H[k], 1e-5 * hmax) << geom.name << " hess " << k << " at " << p[0]
                                                << " " << p[1] << " " << p[2];
        }
      }

      // Hessian is symmetric
      for (int i = 0; i < 3; i++) {
        for (int j = 0; j < i; j++) EXPECT_NEAR(H[3 * i + j], H[3 * j + i], 1e-12);
      }
    }

    // most points must have been checked
    EXPECT_GT(ngrad, npoint * 8 / 10) << geom.name;
    EXPECT_GT(nhess, npoint * 7 / 10) << geom.name;
  }
}

// ---- 2. exactness against brute force ---------------------------------------------------------------

// surface samples of a parametric grid and its covering radius rho (max distance of any surface
// point to the nearest sample is at most rho)
struct Samples {
  std::vector<double> x;
  double rho = 0;
};

// add a grid x(u, v), u and v in [0, 1], nu x nv points including the ends
template <class F>
void AddGrid(Samples* s, int nu, int nv, F f) {
  std::vector<double> pts;
  for (int i = 0; i < nu; i++) {
    for (int j = 0; j < nv; j++) {
      double p[3];
      f((double)i / (nu - 1), (double)j / (nv - 1), p);
      pts.insert(pts.end(), p, p + 3);
    }
  }
  // cell half-diagonal from the largest neighbour steps
  double du = 0, dv = 0;
  for (int i = 0; i < nu; i++) {
    for (int j = 0; j < nv; j++) {
      const double* a = &pts[3 * (i * nv + j)];
      if (i + 1 < nu) {
        const double* b = &pts[3 * ((i + 1) * nv + j)];
        du = std::max(du, std::sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) +
                                    (a[2] - b[2]) * (a[2] - b[2])));
      }
      if (j + 1 < nv) {
        const double* b = &pts[3 * (i * nv + j + 1)];
        dv = std::max(dv, std::sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) +
                                    (a[2] - b[2]) * (a[2] - b[2])));
      }
    }
  }
  s->rho = std::max(s->rho, 0.5 * std::sqrt(du * du + dv * dv) * 1.01);
  s->x.insert(s->x.end(), pts.begin(), pts.end());
}

double MinDist(const Samples& s, const double p[3]) {
  double m = std::numeric_limits<double>::infinity();
  for (size_t k = 0; k < s.x.size(); k += 3) {
    double dx = p[0] - s.x[k], dy = p[1] - s.x[k + 1], dz = p[2] - s.x[k + 2];
    m = std::min(m, dx * dx + dy * dy + dz * dz);
  }
  return std::sqrt(m);
}

const double kPi = 3.14159265358979323846;

Samples SphereSamples(double R, double cz, bool upper, bool lower, int n) {
  // hemispheres (or full sphere) of radius R centred at (0, 0, cz)
  Samples s;
  double lo = upper ? 0 : 0.5, hi = lower ? 1 : 0.5;
  AddGrid(&s, 2 * n, n, [&](double u, double v, double* p) {
    double th = 2 * kPi * u, ph = kPi * (lo + (hi - lo) * v);
    p[0] = R * std::sin(ph) * std::cos(th);
    p[1] = R * std::sin(ph) * std::sin(th);
    p[2] = cz + R * std::cos(ph);
  });
  return s;
}

// compare sdf with sampled distance and independent membership
template <class Inside>
void CheckAgainstSamples(const Geom& geom, const Samples& s, Inside inside, int npoint) {
  std::mt19937 rng(99);
  double ext = Extent(geom);
  std::uniform_real_distribution<double> U(-ext, ext);
  for (int n = 0; n < npoint; n++) {
    double p[3] = {U(rng), U(rng), U(rng)};
    double f = Sdf(geom, p);
    double d = MinDist(s, p);
    // samples are on the surface: d >= true distance >= d - rho
    EXPECT_LE(std::fabs(f), d + 1e-12) << geom.name;
    EXPECT_GE(std::fabs(f), d - s.rho) << geom.name;
    if (d > s.rho) {
      EXPECT_EQ(f < 0, inside(p)) << geom.name << " sign at " << p[0] << " " << p[1] << " " << p[2];
    }
  }
}

TEST(Sdf, PlaneExact) {
  Geom g = {DTAC_GEOM_PLANE, {0, 0, 0}, {}, "plane"};
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> U(-3, 3);
  for (int n = 0; n < 1000; n++) {
    double p[3] = {U(rng), U(rng), U(rng)};
    double f = Sdf(g, p);
    EXPECT_DOUBLE_EQ(std::fabs(f), std::fabs(p[2]));
    EXPECT_EQ(f <= 0, p[2] <= 0);
  }
}

TEST(Sdf, SphereExact) {
  Geom g = {DTAC_GEOM_SPHERE, {0.7, 0, 0}, {}, "sphere"};
  Samples s = SphereSamples(0.7, 0, true, true, 300);
  ASSERT_LT(s.rho, 0.01);
  CheckAgainstSamples(g, s, [](const double* p) {
    return p[0] * p[0] + p[1] * p[1] + p[2] * p[2] < 0.49;
  }, 300);
}

TEST(Sdf, CapsuleExact) {
  const double R = 0.3, h = 0.5;
  Geom g = {DTAC_GEOM_CAPSULE, {R, h, 0}, {}, "capsule"};
  Samples s = SphereSamples(R, h, true, false, 200);
  Samples lo = SphereSamples(R, -h, false, true, 200);
  s.x.insert(s.x.end(), lo.x.begin(), lo.x.end());
  s.rho = std::max(s.rho, lo.rho);
  AddGrid(&s, 400, 200, [&](double u, double v, double* p) {
    p[0] = R * std::cos(2 * kPi * u);
    p[1] = R * std::sin(2 * kPi * u);
    p[2] = -h + 2 * h * v;
  });
  ASSERT_LT(s.rho, 0.01);
  CheckAgainstSamples(g, s, [&](const double* p) {
    double zc = std::fabs(p[2]) > h ? std::fabs(p[2]) - h : 0;
    return p[0] * p[0] + p[1] * p[1] + zc * zc < R * R;
  }, 300);
}

TEST(Sdf, CylinderExact) {
  const double R = 0.4, h = 0.6;
  Geom g = {DTAC_GEOM_CYLINDER, {R, h, 0}, {}, "cylinder"};
  Samples s;
  // side, then both caps as polar grids reaching the rim
  AddGrid(&s, 400, 200, [&](double u, double v, double* p) {
    p[0] = R * std::cos(2 * kPi * u);
    p[1] = R * std::sin(2 * kPi * u);
    p[2] = -h + 2 * h * v;
  });
  for (int sgn = -1; sgn <= 1; sgn += 2) {
    AddGrid(&s, 400, 100, [&](double u, double v, double* p) {
      p[0] = R * v * std::cos(2 * kPi * u);
      p[1] = R * v * std::sin(2 * kPi * u);
      p[2] = sgn * h;
    });
  }
  ASSERT_LT(s.rho, 0.01);
  CheckAgainstSamples(g, s, [&](const double* p) {
    return p[0] * p[0] + p[1] * p[1] < R * R && std::fabs(p[2]) < h;
  }, 300);
}

TEST(Sdf, BoxExact) {
  const double b[3] = {0.5, 0.3, 0.2};
  Geom g = {DTAC_GEOM_BOX, {b[0], b[1], b[2]}, {}, "box"};
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> U(-1.2, 1.2);
  for (int n = 0; n < 2000; n++) {
    double p[3] = {U(rng), U(rng), U(rng)};
    double f = Sdf(g, p);
    bool inside = std::fabs(p[0]) < b[0] && std::fabs(p[1]) < b[1] && std::fabs(p[2]) < b[2];
    double d;
    if (inside) {
      // distance to the nearest face plane, each face reachable from inside
      d = std::min(std::min(b[0] - std::fabs(p[0]), b[1] - std::fabs(p[1])),
                   b[2] - std::fabs(p[2]));
    } else {
      // distance to the clamped (closest) point
      double c[3], s = 0;
      for (int i = 0; i < 3; i++) {
        c[i] = std::min(std::max(p[i], -b[i]), b[i]);
        s += (p[i] - c[i]) * (p[i] - c[i]);
      }
      d = std::sqrt(s);
    }
    EXPECT_NEAR(std::fabs(f), d, 1e-12);
    EXPECT_EQ(f < 0, inside);
  }

  // box surface sampling as a second, independent check of a few points
  Samples s;
  for (int ax = 0; ax < 3; ax++) {
    int i1 = (ax + 1) % 3, i2 = (ax + 2) % 3;
    for (int sgn = -1; sgn <= 1; sgn += 2) {
      AddGrid(&s, 150, 150, [&](double u, double v, double* p) {
        p[ax] = sgn * b[ax];
        p[i1] = b[i1] * (2 * u - 1);
        p[i2] = b[i2] * (2 * v - 1);
      });
    }
  }
  CheckAgainstSamples(g, s, [&](const double* p) {
    return std::fabs(p[0]) < b[0] && std::fabs(p[1]) < b[1] && std::fabs(p[2]) < b[2];
  }, 200);
}

// ---- 3. ellipsoid ------------------------------------------------------------------------------------

// true distance to the ellipsoid surface: dense (theta, phi) grid, then zoomed local grids
double EllipsoidDist(const double r[3], const double p[3]) {
  auto dist = [&](double th, double ph) {
    double x = r[0] * std::sin(ph) * std::cos(th) - p[0];
    double y = r[1] * std::sin(ph) * std::sin(th) - p[1];
    double z = r[2] * std::cos(ph) - p[2];
    return std::sqrt(x * x + y * y + z * z);
  };
  double best = 1e300, bt = 0, bp = 0;
  const int n = 200;
  for (int i = 0; i < 2 * n; i++) {
    for (int j = 0; j <= n; j++) {
      double th = 2 * kPi * i / (2 * n), ph = kPi * j / n;
      double d = dist(th, ph);
      if (d < best) {
        best = d;
        bt = th;
        bp = ph;
      }
    }
  }
  double w = kPi / n;
  for (int it = 0; it < 6; it++) {
    double ct = bt, cp = bp;
    for (int i = -10; i <= 10; i++) {
      for (int j = -10; j <= 10; j++) {
        double th = ct + w * i / 10, ph = cp + w * j / 10;
        double d = dist(th, ph);
        if (d < best) {
          best = d;
          bt = th;
          bp = ph;
        }
      }
    }
    w /= 5;
  }
  return best;
}

TEST(Sdf, EllipsoidSignAndAccuracy) {
  const double r[3] = {1.0, 0.6, 0.35};
  const double rmin = 0.35;
  Geom g = {DTAC_GEOM_ELLIPSOID, {r[0], r[1], r[2]}, {}, "ellipsoid"};
  std::mt19937 rng(3);

  // sign everywhere on a random sample
  std::uniform_real_distribution<double> U(-1.8, 1.8);
  for (int n = 0; n < 2000; n++) {
    double p[3] = {U(rng), U(rng), U(rng)};
    double m = 0;
    for (int i = 0; i < 3; i++) m += (p[i] / r[i]) * (p[i] / r[i]);
    if (std::fabs(m - 1) < 1e-9) continue;
    EXPECT_EQ(Sdf(g, p) < 0, m < 1);
  }

  // accuracy near the surface: offsets along the normal within 10% of the smallest radius
  std::uniform_real_distribution<double> U01(0, 1), Ut(-0.1 * rmin, 0.1 * rmin);
  double maxerr = 0;
  for (int n = 0; n < 300; n++) {
    double th = 2 * kPi * U01(rng), ph = std::acos(1 - 2 * U01(rng));
    double x[3] = {r[0] * std::sin(ph) * std::cos(th), r[1] * std::sin(ph) * std::sin(th),
                   r[2] * std::cos(ph)};
    double nn[3] = {x[0] / (r[0] * r[0]), x[1] / (r[1] * r[1]), x[2] / (r[2] * r[2])};
    double ln = std::sqrt(nn[0] * nn[0] + nn[1] * nn[1] + nn[2] * nn[2]);
    double t = Ut(rng);
    double p[3] = {x[0] + t * nn[0] / ln, x[1] + t * nn[1] / ln, x[2] + t * nn[2] / ln};
    double d = EllipsoidDist(r, p);
    double f = Sdf(g, p);
    double err = std::fabs(std::fabs(f) - d);
    maxerr = std::max(maxerr, err);
    EXPECT_LT(err, 0.02 * rmin) << "at " << p[0] << " " << p[1] << " " << p[2];
    if (d > 1e-6) {
      EXPECT_EQ(f < 0, t < 0);
    }
  }
  RecordProperty("ellipsoid_max_err_near_surface", std::to_string(maxerr));

  // on the surface: zero
  for (int n = 0; n < 200; n++) {
    double th = 2 * kPi * U01(rng), ph = kPi * U01(rng);
    double x[3] = {r[0] * std::sin(ph) * std::cos(th), r[1] * std::sin(ph) * std::sin(th),
                   r[2] * std::cos(ph)};
    EXPECT_NEAR(Sdf(g, x), 0, 1e-12);
  }
}

TEST(Sdf, EllipsoidEqualRadiiIsSphere) {
  Geom e = {DTAC_GEOM_ELLIPSOID, {0.8, 0.8, 0.8}, {}, "ellipsoid"};
  Geom s = {DTAC_GEOM_SPHERE, {0.8, 0, 0}, {}, "sphere"};
  std::mt19937 rng(4);
  std::uniform_real_distribution<double> U(-2, 2);
  for (int n = 0; n < 2000; n++) {
    double p[3] = {U(rng), U(rng), U(rng)};
    if (n % 10 == 0) {
      // some points close to the centre
      for (double& v : p) v *= 1e-6;
    }
    double ge[3], gs[3], He[9], Hs[9];
    EXPECT_NEAR(Sdf(e, p, ge), Sdf(s, p, gs), 1e-12);
    for (int i = 0; i < 3; i++) EXPECT_NEAR(ge[i], gs[i], 1e-9);
    Hess(e, p, He);
    Hess(s, p, Hs);
    double len = std::sqrt(p[0] * p[0] + p[1] * p[1] + p[2] * p[2]);
    for (int k = 0; k < 9; k++) EXPECT_NEAR(He[k], Hs[k], 1e-9 / len);
  }
  double c[3] = {0, 0, 0};
  EXPECT_NEAR(Sdf(e, c), Sdf(s, c), 1e-12);
}

// ---- 4. mesh (convex polytope) -----------------------------------------------------------------------

TEST(Sdf, MeshBoxMatchesBox) {
  const double b[3] = {0.5, 0.3, 0.2};
  Geom box = {DTAC_GEOM_BOX, {b[0], b[1], b[2]}, {}, "box"};
  std::mt19937 rng(21);
  for (int rot = 0; rot < 5; rot++) {
    // axis-aligned cube first, then random rotations
    double R[9];
    if (rot == 0) {
      std::copy(kIdentity, kIdentity + 9, R);
    } else {
      RandomRotation(rng, R);
    }
    Geom mesh = {DTAC_GEOM_MESH, {0, 0, 0}, BoxPlanes(b, R), "mesh"};
    std::uniform_real_distribution<double> U(-1, 1);
    int ninside = 0;
    for (int n = 0; n < 2000; n++) {
      double p[3] = {U(rng), U(rng), U(rng)};
      // box-local point x = R^T p
      double x[3];
      dtac_mulmTv3(x, R, p);
      double gm[3], gb[3];
      double fm = Sdf(mesh, p, gm);
      double fb = Sdf(box, x, gb);
      bool inside = std::fabs(x[0]) < b[0] && std::fabs(x[1]) < b[1] && std::fabs(x[2]) < b[2];
      EXPECT_EQ(fm < 0, inside);
      if (inside) {
        ninside++;
        // exact inside; gradient = R * box gradient
        EXPECT_NEAR(fm, fb, 1e-12);
        double gw[3];
        dtac_mulmv3(gw, R, gb);
        for (int i = 0; i < 3; i++) EXPECT_NEAR(gm[i], gw[i], 1e-12);
      } else {
        // outside: lower bound of the distance, exact in face regions
        EXPECT_LE(fm, fb + 1e-12);
        int nout = 0;
        for (int i = 0; i < 3; i++) nout += std::fabs(x[i]) > b[i];
        if (nout == 1) {
          EXPECT_NEAR(fm, fb, 1e-12);
        }
      }
      double H[9];
      Hess(mesh, p, H);
      for (double h : H) EXPECT_EQ(h, 0);
    }
    EXPECT_GT(ninside, 0);
  }
}

TEST(Sdf, MeshRandomPolytopeSign) {
  std::mt19937 rng(31);
  std::normal_distribution<double> n01(0, 1);
  std::uniform_real_distribution<double> Ud(0.4, 1.0), U(-1.5, 1.5);
  std::vector<double> pl;
  const int nplane = 24;
  for (int k = 0; k < nplane; k++) {
    double v[3] = {n01(rng), n01(rng), n01(rng)};
    double l = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
    pl.insert(pl.end(), {v[0] / l, v[1] / l, v[2] / l, Ud(rng)});
  }
  Geom mesh = {DTAC_GEOM_MESH, {0, 0, 0}, pl, "polytope"};
  for (int n = 0; n < 2000; n++) {
    double p[3] = {U(rng), U(rng), U(rng)};
    double g[3];
    double f = Sdf(mesh, p, g);
    // independent membership and the nearest plane (inside: exact distance)
    bool inside = true;
    double dmin = 1e300;
    for (int k = 0; k < nplane; k++) {
      double v = pl[4 * k] * p[0] + pl[4 * k + 1] * p[1] + pl[4 * k + 2] * p[2] - pl[4 * k + 3];
      if (v >= 0) inside = false;
      dmin = std::min(dmin, std::fabs(v));
    }
    EXPECT_EQ(f < 0, inside);
    if (inside) {
      EXPECT_NEAR(f, -dmin, 1e-12);
    }
    EXPECT_NEAR(std::sqrt(g[0] * g[0] + g[1] * g[1] + g[2] * g[2]), 1, 1e-12);
  }
}

TEST(Sdf, EmptyMeshAndUnsupported) {
  double s[3] = {1, 1, 1}, p[3] = {0, 0, 0}, g[3], H[9];
  EXPECT_GT(dtac_sdf(DTAC_GEOM_MESH, s, nullptr, 0, p, g), 1e20);
  EXPECT_GT(dtac_sdf(DTAC_GEOM_HFIELD, s, nullptr, 0, p, g), 1e20);
  dtac_sdf_hess(DTAC_GEOM_HFIELD, s, nullptr, 0, p, H);
  for (double h : H) EXPECT_EQ(h, 0);
  EXPECT_FALSE(dtac_sdf_supported(DTAC_GEOM_HFIELD));
  EXPECT_FALSE(dtac_sdf_supported(8));
  EXPECT_FALSE(dtac_sdf_supported(-1));
  for (int t : {0, 2, 3, 4, 5, 6, 7}) EXPECT_TRUE(dtac_sdf_supported(t));
}

// ---- 5. degenerate points: no NaN/inf -------------------------------------------------------------------

TEST(Sdf, NoNaNAtDegeneratePoints) {
  std::vector<std::vector<double>> pts = {
      {0, 0, 0},          {0, 0, 0.3},        {0, 0, -0.3},       {0, 0, 0.5},
      {0, 0, -0.5},       {0, 0, 0.6},        {0, 0, 0.8},        {0, 0, -0.8},
      {0, 0, 2},          {1e-300, 0, 0},     {0, 0, 1e-300},     {4.9e-324, 0, 0},
      {0, 4.9e-324, 0},   {1e-200, 1e-200, 1e-200}, {0.5, 0.3, 0.2}, {-0.5, 0.3, -0.2},
      {0.5, 0.3, 0},      {0.5, 0, 0},        {0.4, 0, 0.6},      {0, 0.4, -0.6},
      {0.3, 0, 0.5},      {0.7, 0, 0},        {1.0, 0, 0},        {0, 0.6, 0},
      {0, 0, 0.35},       {1e150, -1e150, 1e150}, {1e300, 0, 0},  {0, -1e300, 1e300},
      {-1e300, 1e300, -1e300}};
  for (const Geom& geom : AllGeoms()) {
    for (const auto& q : pts) {
      const double p[3] = {q[0], q[1], q[2]};
      double g[3], H[9];
      double f = Sdf(geom, p, g);
      Hess(geom, p, H);
      std::string at = geom.name + " at " + std::to_string(p[0]) + " " + std::to_string(p[1]) +
                       " " + std::to_string(p[2]);
      EXPECT_TRUE(std::isfinite(f)) << at;
      for (double v : g) EXPECT_TRUE(std::isfinite(v)) << at;
      for (double v : H) EXPECT_TRUE(std::isfinite(v)) << at;
      // unit gradient for the exact distances
      if (geom.type != DTAC_GEOM_ELLIPSOID) {
        EXPECT_NEAR(std::sqrt(g[0] * g[0] + g[1] * g[1] + g[2] * g[2]), 1, 1e-12) << at;
      }
    }
  }
}

}  // namespace
