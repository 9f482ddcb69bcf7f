// Tactile sensor VJP (dtac_tactile_vjp): for every output kind, in a pressed and sliding contact
// seen through a tilted site, <y_bar, dy> = <x_bar, dx> + <f_bar, df> along random directions dx of
// the gel's node positions, with dy and df (dtac_gel_contact_forces) from fourth-order central
// differences through mj_forward (which recomputes the contact forces and the outputs); the rgb
// optics parameters' cotangent against differences over models compiled with shifted parameters;
// and the VJP leaves sensordata and the sensor's cache alone.
//
// The VJP holds visibility (each pixel's covering triangle) fixed; the differences see a pixel
// whose centre crosses a projected top-face edge within the stencil as a kink, an O(1) error in
// that pixel's derivative which no step size removes when a centre sits on an edge (an earlier
// version of this scene, with a half-turned site, had three such pixels: errors up to 2e-4 in 8 of
// 40 random directions). So the image checks leave out (y_bar = 0) the pixels whose centre lies
// within twice the stencil's largest in-plane node displacement (about 6e-4 pixels) of a
// projected top-face edge: 4 of the 10^4 here, counted in the output. No other pixel can change
// its covering triangle: a point's distance to a segment changes by at most the larger of its
// endpoints' displacements.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common.h"

// src/tactile.h (internal header, exported for the gradient tape and these tests)
extern "C" int dtac_tactile_vjp(const mjModel* m, mjData* d, int instance, const mjtNum* y_bar,
                                double* x_bar, double* f_bar, double* param_bar, double* site_bar);

namespace {

const int kNParam = 3 + 3 * DTAC_TACTILE_NBASIS;
const char* const kOutputs[] = {"rgb", "depth", "pressure", "shear", "markers", "force"};

std::string Numbers(const double* v, int n) {
  std::string s;
  char buf[40];
  for (int k = 0; k < n; k++) {
    std::snprintf(buf, sizeof(buf), "%s%.17g", k ? " " : "", v[k]);
    s += buf;
  }
  return s;
}

// one sensor per output kind, 100 x 100 pixels at 90 um (9 mm inside the 10 mm gel); the rgb
// sensor gets the lighting parameters `param` (background 3, lighting 3 x NBASIS)
std::string Sensors(const double* param) {
  std::string s;
  for (const char* out : kOutputs) {
    std::string extra;
    if (!std::strcmp(out, "rgb")) {
      extra = R"(<config key="background" value=")" + Numbers(param, 3) +
              R"("/><config key="lighting" value=")" + Numbers(param + 3, kNParam - 3) + R"("/>)";
    }
    if (!std::strcmp(out, "markers")) extra = R"(<config key="markers" value="5 4"/>)";
    s += std::string(R"(<plugin name=")") + out +
         R"(" plugin="difftac.tactile" objtype="site" objname="gel_site">
      <config key="elastomer" value="gel"/><config key="output" value=")" +
         out + R"("/>
      <config key="size" value="100 100"/><config key="pitch" value="9e-5"/>)" +
         extra + "</plugin>\n";
  }
  return s;
}

// a 10 x 10 x 4 mm gel (1 mm cells) on a finger above a ball of radius 10 mm; the site is turned
// and tilted off any half-turn (whose matrix is symmetric), so that a transposed rotation in the
// VJP would show
std::string Xml(const double* param) {
  return R"(
<mujoco model="tactile vjp">
  <option timestep="0.002"/>
  <extension>
    <plugin plugin="difftac.elastomer">
      <instance name="gel">
        <config key="site" value="gel_site"/>
        <config key="size" value="0.01 0.01 0.004"/>
        <config key="resolution" value="0.001"/>
        <config key="friction" value="1.0"/>
        <config key="contype" value="0"/>
        <config key="conaffinity" value="2"/>
      </instance>
    </plugin>
    <plugin plugin="difftac.tactile"/>
  </extension>
  <worldbody>
    <body name="ball" pos="0.0004 -0.0003 0">
      <geom name="ball" type="sphere" size="0.010" mass="0.01" contype="2" conaffinity="0"/>
    </body>
    <body name="finger" pos="0 0 0.0145" gravcomp="1">
      <joint name="fz" type="slide" axis="0 0 1" damping="2"/>
      <joint name="fx" type="slide" axis="1 0 0" damping="2"/>
      <geom name="holder" type="box" size="0.006 0.006 0.001" pos="0 0 0.001" mass="0.05"/>
      <site name="gel_site" euler="172 5 30"/>
    </body>
  </worldbody>
  <actuator>
    <position name="fz" joint="fz" kp="500"/>
    <position name="fx" joint="fx" kp="500"/>
  </actuator>
  <sensor>
)" + Sensors(param) +
         R"(  </sensor>
</mujoco>)";
}

void DefaultParams(double* param) {
  dtac_optics_default_params(param, param + 3);
}

// the scene pressed 1.5 mm into the ball, then slid 0.3 mm along x (shear, friction anchors)
struct Pressed {
  Scene s;
  int gel = -1, nnode = 0;
  Pressed() : s(Scene::FromString(Xml(Params()))) {
    if (!s.m) return;
    const int nstep = 120;
    for (int i = 0; i < nstep; i++) {
      s.d->ctrl[0] = -0.0015 * std::fmin(1.0, i / (0.4 * nstep));
      s.d->ctrl[1] = 0.0003 * std::fmax(0.0, (i - 0.5 * nstep) / (0.5 * nstep));
      mj_step(s.m, s.d);
    }
    mj_forward(s.m, s.d);
    gel = dtac_gel_find(s.m, "gel");
    dtac_gel_info info;
    if (dtac_gel_get_info(s.m, s.d, gel, &info) == 0) nnode = info.nnode;
  }
  static const double* Params() {
    static double p[kNParam];
    DefaultParams(p);
    return p;
  }
  mjtNum* X() { return s.d->plugin_state + s.m->plugin_stateadr[gel]; }  // positions first
};
Pressed& Press() {
  static Pressed p;
  return p;
}

// directional derivatives along dx of all sensordata (dy) and of the contact forces (df), by
// fourth-order central differences with step e through mj_forward; the state is restored
struct Directional {
  std::vector<double> dx, dy, df;
};
Directional Differences(Pressed& p, unsigned seed, double e) {
  const mjModel* m = p.s.m;
  mjData* d = p.s.d;
  const int n = 3 * p.nnode;
  Directional r;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  r.dx.resize(n);
  for (double& v : r.dx) v = u(rng);
  r.dy.assign(m->nsensordata, 0);
  r.df.assign(n, 0);
  std::vector<double> x0(p.X(), p.X() + n), f(n);
  const double c[4] = {-2, -1, 1, 2}, w[4] = {1.0 / 12, -8.0 / 12, 8.0 / 12, -1.0 / 12};
  for (int s = 0; s < 4; s++) {
    for (int k = 0; k < n; k++) p.X()[k] = x0[k] + c[s] * e * r.dx[k];
    mj_forward(m, d);
    EXPECT_EQ(p.nnode, dtac_gel_contact_forces(m, d, p.gel, f.data()));
    for (int k = 0; k < m->nsensordata; k++) r.dy[k] += w[s] * d->sensordata[k] / e;
    for (int k = 0; k < n; k++) r.df[k] += w[s] * f[k] / e;
  }
  std::memcpy(p.X(), x0.data(), sizeof(double) * n);
  mj_forward(m, d);
  return r;
}

const double kStep = 1e-8;  // m per unit of dx (dx components in [-1, 1])

// three random directions
const std::vector<Directional>& Dirs() {
  static std::vector<Directional> dirs = {Differences(Press(), 1, kStep),
                                          Differences(Press(), 2, kStep),
                                          Differences(Press(), 3, kStep)};
  return dirs;
}

// pixels (of the image sensors' common camera) whose centre lies within `margin` pixels of a
// projected top-face edge at the current state: the top face is the last nvx x nvy nodes, vertex
// (i, j) = top0 + i + nvx j, each quad split along its (i, j) -> (i+1, j+1) diagonal (raster.h)
std::vector<char> NearEdge(Pressed& p, const dtac_tactile_info& cam, double margin) {
  const mjModel* m = p.s.m;
  const mjData* d = p.s.d;
  dtac_gel_info info;
  dtac_gel_get_info(m, d, p.gel, &info);
  const int nvx = info.ncell[0] + 1, nvy = info.ncell[1] + 1, top0 = p.nnode - nvx * nvy;
  const mjtNum* X = dtac_gel_rest_positions(m, d, p.gel);
  const mjtNum* x = dtac_gel_positions(m, d, p.gel);
  // the layout above, checked on the rest mesh
  for (int a = 0; a < nvx * nvy; a++) {
    EXPECT_DOUBLE_EQ(X[3 * (top0 + a) + 2], X[3 * (p.nnode - 1) + 2]);
    if (a % nvx) EXPECT_GT(X[3 * (top0 + a)], X[3 * (top0 + a - 1)]);
    if (a >= nvx) EXPECT_GT(X[3 * (top0 + a) + 1], X[3 * (top0 + a - nvx) + 1]);
  }
  // top-face nodes in pixel coordinates
  const mjtNum* R = d->site_xmat + 9 * info.site;
  std::vector<double> uv(2 * nvx * nvy);
  for (int a = 0; a < nvx * nvy; a++) {
    double r[3], q[3];
    for (int k = 0; k < 3; k++) r[k] = x[3 * (top0 + a) + k] - d->site_xpos[3 * info.site + k];
    mju_mulMatTVec3(q, R, r);
    uv[2 * a] = (q[0] - cam.x0) / cam.pitch;
    uv[2 * a + 1] = (q[1] - cam.y0) / cam.pitch;
  }
  std::vector<char> near(cam.width * cam.height, 0);
  auto edge = [&](int a, int b) {
    const double *A = &uv[2 * a], *B = &uv[2 * b];
    double ab[2] = {B[0] - A[0], B[1] - A[1]}, len2 = ab[0] * ab[0] + ab[1] * ab[1];
    int c0 = std::max(0, (int)std::floor(std::fmin(A[0], B[0]) - margin - 1));
    int c1 = std::min(cam.width - 1, (int)std::ceil(std::fmax(A[0], B[0]) + margin));
    int r0 = std::max(0, (int)std::floor(std::fmin(A[1], B[1]) - margin - 1));
    int r1 = std::min(cam.height - 1, (int)std::ceil(std::fmax(A[1], B[1]) + margin));
    for (int r = r0; r <= r1; r++) {
      for (int c = c0; c <= c1; c++) {
        double pc[2] = {c + 0.5 - A[0], r + 0.5 - A[1]};
        double s = std::fmin(1.0, std::fmax(0.0, (pc[0] * ab[0] + pc[1] * ab[1]) / len2));
        double dd[2] = {pc[0] - s * ab[0], pc[1] - s * ab[1]};
        if (dd[0] * dd[0] + dd[1] * dd[1] < margin * margin) near[r * cam.width + c] = 1;
      }
    }
  };
  for (int j = 0; j < nvy; j++) {
    for (int i = 0; i < nvx; i++) {
      int a = i + nvx * j;
      if (i + 1 < nvx) edge(a, a + 1);
      if (j + 1 < nvy) edge(a, a + nvx);
      if (i + 1 < nvx && j + 1 < nvy) edge(a, a + nvx + 1);
    }
  }
  return near;
}

// the largest in-plane (site xy) node displacement of the stencil along dx, in pixels
double StencilShift(Pressed& p, const Directional& r, double pitch) {
  dtac_gel_info info;
  dtac_gel_get_info(p.s.m, p.s.d, p.gel, &info);
  const mjtNum* R = p.s.d->site_xmat + 9 * info.site;
  double dmax = 0;
  for (int a = 0; a < p.nnode; a++) {
    double q[3];
    mju_mulMatTVec3(q, R, &r.dx[3 * a]);
    dmax = std::fmax(dmax, std::hypot(q[0], q[1]));
  }
  return 2 * kStep * dmax / pitch;
}

double Dot(const double* a, const double* b, int n) {
  double s = 0;
  for (int k = 0; k < n; k++) s += a[k] * b[k];
  return s;
}

// the VJP of sensor `name` with a random y_bar against the differences along each direction;
// the error relative to sum_k |y_bar_k dy_k| (the size of the terms whose rounding it sees: a
// random y_bar can make <y_bar, dy> itself small)
void CheckOutput(const char* name, double tol) {
  Pressed& p = Press();
  ASSERT_TRUE(p.s.m) << p.s.err;
  ASSERT_GT(p.nnode, 0);
  const mjModel* m = p.s.m;
  int sensor = dtac_tactile_find(m, name);
  ASSERT_GE(sensor, 0) << name;
  const int nout = m->sensor_dim[sensor], adr = m->sensor_adr[sensor], n = 3 * p.nnode;
  // the state is in contact and the output is not trivial
  dtac_gel_info info;
  ASSERT_EQ(0, dtac_gel_get_info(m, p.s.d, p.gel, &info));
  ASSERT_GT(info.ncontact, 10);
  double ymax = 0;
  for (int k = 0; k < nout; k++) ymax = std::fmax(ymax, std::fabs(p.s.d->sensordata[adr + k]));
  ASSERT_GT(ymax, 0) << name;

  dtac_tactile_info cam;
  ASSERT_EQ(0, dtac_tactile_get_info(m, p.s.d, sensor, &cam));
  const bool image = cam.output <= DTAC_TACTILE_SHEAR;
  const int C = nout / (cam.width * cam.height);

  std::mt19937 rng(7 + sensor);
  std::normal_distribution<double> g;
  std::vector<double> ybar0(nout);
  for (double& v : ybar0) v = g(rng);
  for (const Directional& r : Dirs()) {
    // leave out the pixels that may change their covering triangle within the stencil
    std::vector<double> ybar = ybar0, xbar(n, 0), fbar(n, 0);
    int nleft = 0;
    if (image) {
      std::vector<char> near = NearEdge(p, cam, 2 * StencilShift(p, r, cam.pitch));
      for (int k = 0; k < cam.width * cam.height; k++) {
        if (!near[k]) continue;
        nleft++;
        for (int c = 0; c < C; c++) ybar[C * k + c] = 0;
      }
      EXPECT_LT(nleft, 50) << name;
    }
    ASSERT_EQ(0, dtac_tactile_vjp(m, p.s.d, m->sensor_plugin[sensor], ybar.data(), xbar.data(),
                                  fbar.data(), nullptr, nullptr));
    double lhs = Dot(ybar.data(), r.dy.data() + adr, nout), scale = 0;
    for (int k = 0; k < nout; k++) scale += std::fabs(ybar[k] * r.dy[adr + k]);
    double tx = Dot(xbar.data(), r.dx.data(), n), tf = Dot(fbar.data(), r.df.data(), n);
    ASSERT_GT(scale, 0) << name;
    double err = std::fabs(lhs - tx - tf) / scale;
    EXPECT_LT(err, tol) << name << ": <y_bar, dy> " << lhs << ", <x_bar, dx> " << tx
                        << ", <f_bar, df> " << tf;
    std::printf(
        "[%s] <y_bar,dy> = %.10e, <x_bar,dx> + <f_bar,df> = %.10e + %.10e, rel err "
        "%.2e, %d pixels left out\n",
        name, lhs, tx, tf, err, nleft);
  }
}

}  // namespace

// tolerance 1e-8: over 60 random directions the error stayed below 4e-11 (rounding), while
// each of ten wrong adjoints tried (a transposed rotation, the torque's node-position term or the
// area, normal or barycentric-weight derivatives dropped) erred by 1.4e-5 or more
TEST(TactileAdj, RgbVjpMatchesFiniteDifferences) {
  CheckOutput("rgb", 1e-8);
}
TEST(TactileAdj, DepthVjpMatchesFiniteDifferences) {
  CheckOutput("depth", 1e-8);
}
TEST(TactileAdj, PressureVjpMatchesFiniteDifferences) {
  CheckOutput("pressure", 1e-8);
}
TEST(TactileAdj, ShearVjpMatchesFiniteDifferences) {
  CheckOutput("shear", 1e-8);
}
TEST(TactileAdj, MarkersVjpMatchesFiniteDifferences) {
  CheckOutput("markers", 1e-8);
}
TEST(TactileAdj, ForceVjpMatchesFiniteDifferences) {
  CheckOutput("force", 1e-8);
}

// the rgb image is linear in the optics parameters below saturation: param_bar against central
// differences over models compiled with the parameters shifted along a random direction, the
// pressed state copied in
TEST(TactileAdj, RgbParameterVjpMatchesFiniteDifferences) {
  Pressed& p = Press();
  ASSERT_TRUE(p.s.m) << p.s.err;
  const mjModel* m = p.s.m;
  int sensor = dtac_tactile_find(m, "rgb");
  ASSERT_GE(sensor, 0);
  const int nout = m->sensor_dim[sensor], adr = m->sensor_adr[sensor], n = 3 * p.nnode;
  std::mt19937 rng(11);
  std::normal_distribution<double> g;
  std::vector<double> ybar(nout), xbar(n, 0), fbar(n, 0), pbar(kNParam, 0), dp(kNParam);
  for (double& v : ybar) v = g(rng);
  for (double& v : dp) v = g(rng);
  ASSERT_EQ(0, dtac_tactile_vjp(m, p.s.d, m->sensor_plugin[sensor], ybar.data(), xbar.data(),
                                fbar.data(), pbar.data(), nullptr));
  const int sig = mjSTATE_INTEGRATION;
  std::vector<mjtNum> state(mj_stateSize(m, sig));
  mj_getState(m, p.s.d, state.data(), sig);
  const double e = 1e-5;
  double lhs = 0;
  for (int s = -1; s <= 1; s += 2) {
    double param[kNParam];
    DefaultParams(param);
    for (int k = 0; k < kNParam; k++) param[k] += s * e * dp[k];
    Scene q = Scene::FromString(Xml(param));
    ASSERT_TRUE(q.m) << q.err;
    ASSERT_EQ(nout, q.m->sensor_dim[sensor]);
    mj_setState(q.m, q.d, state.data(), sig);
    mj_forward(q.m, q.d);
    lhs += s * Dot(ybar.data(), q.d->sensordata + adr, nout) / (2 * e);
  }
  double rhs = Dot(pbar.data(), dp.data(), kNParam);
  double scale = 0;
  for (int k = 0; k < kNParam; k++) scale += std::fabs(pbar[k] * dp[k]);
  ASSERT_GT(scale, 0);
  double err = std::fabs(lhs - rhs) / scale;
  EXPECT_LT(err, 1e-8) << "<y_bar, dy> " << lhs << ", <param_bar, dp> " << rhs;
  std::printf("[rgb params] <y_bar,dy> = %.10e, <param_bar,dp> = %.10e, rel err %.2e\n", lhs, rhs,
              err);
}

// the VJP accumulates (a second call doubles the cotangents) and writes neither sensordata nor
// the cache: the next mj_forward at the same state is a cache hit with the same data; a
// non-tactile instance is refused, and so is a non-elastomer one by dtac_gel_contact_forces
TEST(TactileAdj, VjpAccumulatesAndLeavesOutputsAndCacheAlone) {
  Pressed& p = Press();
  ASSERT_TRUE(p.s.m) << p.s.err;
  const mjModel* m = p.s.m;
  mjData* d = p.s.d;
  mj_forward(m, d);
  std::vector<mjtNum> before(d->sensordata, d->sensordata + m->nsensordata);
  std::vector<long> neval;
  const int n = 3 * p.nnode;
  std::vector<double> xbar(n), fbar(n), pbar(kNParam);
  for (const char* name : kOutputs) {
    int sensor = dtac_tactile_find(m, name);
    dtac_tactile_info info;
    ASSERT_EQ(0, dtac_tactile_get_info(m, d, sensor, &info));
    neval.push_back(info.nevaluation);
    std::vector<double> ybar(m->sensor_dim[sensor], 1.0);
    std::fill(xbar.begin(), xbar.end(), 0.0);
    std::fill(fbar.begin(), fbar.end(), 0.0);
    std::fill(pbar.begin(), pbar.end(), 0.0);
    ASSERT_EQ(0, dtac_tactile_vjp(m, d, m->sensor_plugin[sensor], ybar.data(), xbar.data(),
                                  fbar.data(), pbar.data(), nullptr));
    std::vector<double> x1 = xbar, f1 = fbar, p1 = pbar;
    ASSERT_EQ(0, dtac_tactile_vjp(m, d, m->sensor_plugin[sensor], ybar.data(), xbar.data(),
                                  fbar.data(), pbar.data(), nullptr));
    double nx = 0, nf = 0;
    for (int k = 0; k < n; k++) {
      ASSERT_EQ(xbar[k], 2 * x1[k]) << name;
      ASSERT_EQ(fbar[k], 2 * f1[k]) << name;
      nx += std::fabs(x1[k]);
      nf += std::fabs(f1[k]);
    }
    // the parameters' cotangents are summed into param_bar pixel by pixel: equal up to rounding
    for (int k = 0; k < kNParam; k++)
      ASSERT_NEAR(pbar[k], 2 * p1[k], 1e-10 * std::fabs(p1[k])) << name;
    EXPECT_GT(nx + nf, 0) << name;
  }
  EXPECT_EQ(0, std::memcmp(before.data(), d->sensordata, sizeof(mjtNum) * m->nsensordata));
  mj_forward(m, d);
  EXPECT_EQ(0, std::memcmp(before.data(), d->sensordata, sizeof(mjtNum) * m->nsensordata));
  for (int i = 0; i < 6; i++) {
    dtac_tactile_info info;
    dtac_tactile_get_info(m, d, dtac_tactile_find(m, kOutputs[i]), &info);
    EXPECT_EQ(info.nevaluation, neval[i]) << kOutputs[i];
  }
  std::vector<double> ybar(6, 1.0);
  EXPECT_EQ(-1,
            dtac_tactile_vjp(m, d, p.gel, ybar.data(), xbar.data(), fbar.data(), nullptr, nullptr));
  EXPECT_EQ(-1, dtac_gel_contact_forces(m, d, m->sensor_plugin[dtac_tactile_find(m, "force")],
                                        fbar.data()));
}
