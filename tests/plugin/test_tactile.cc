// Tactile sensor: the images, markers and force of difftac.tactile against geometry and the
// gel's own contact forces: spherical-cap depth, pressure integral = contact force, shear along a
// slide, background at rest, mirror symmetry, caching, calibration, and load errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common.h"

namespace {

const double kPitch = 6.5e-5;  // GelSight Mini pixel pitch
const int kW = 150, kH = 150;  // 9.75 mm square image inside the 10 mm gel

std::string Sensor(const std::string& name, const std::string& output,
                   const std::string& extra = "") {
  return R"(<plugin name=")" + name + R"(" plugin="difftac.tactile" objtype="site" objname="gel_site">
      <config key="elastomer" value="gel"/><config key="output" value=")" + output + R"("/>
      <config key="size" value="150 150"/>)" + extra + "</plugin>\n";
}

std::string AllSensors() {
  return Sensor("rgb", "rgb") + Sensor("depth", "depth") + Sensor("pressure", "pressure") +
         Sensor("shear", "shear") +
         Sensor("markers", "markers", R"(<config key="markers" value="5 5"/>)") +
         Sensor("force", "force");
}

// a 10 x 10 x 4 mm gel on a finger above a ball (radius R, top at z = 10 mm) that may slide in x
std::string TactileScene(double res, const std::string& sensors = AllSensors(),
                         double R = 0.005) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%g", res);
  std::string rs = buf;
  std::snprintf(buf, sizeof(buf), "%g", R);
  std::string Rs = buf;
  std::snprintf(buf, sizeof(buf), "%g", 0.010 - R);
  std::string bz = buf;
  return R"(
<mujoco model="tactile">
  <option timestep="0.002"/>
  <extension>
    <plugin plugin="difftac.elastomer">
      <instance name="gel">
        <config key="site" value="gel_site"/>
        <config key="size" value="0.01 0.01 0.004"/>
        <config key="resolution" value=")" + rs + R"("/>
        <config key="contype" value="0"/>
        <config key="conaffinity" value="2"/>
      </instance>
    </plugin>
    <plugin plugin="difftac.tactile"/>
  </extension>
  <worldbody>
    <body name="ball" pos="0 0 )" + bz + R"(">
      <joint name="bx" type="slide" axis="1 0 0" stiffness="20" damping="0.5"/>
      <geom name="ball" type="sphere" size=")" + Rs + R"(" mass="0.01" contype="2" conaffinity="0"/>
    </body>
    <body name="finger" pos="0 0 0.0145" gravcomp="1">
      <joint name="fz" type="slide" axis="0 0 1" damping="2"/>
      <joint name="fx" type="slide" axis="1 0 0" damping="2"/>
      <geom name="holder" type="box" size="0.006 0.006 0.001" pos="0 0 0.001" mass="0.05"/>
      <site name="gel_site" euler="180 0 0"/>
    </body>
  </worldbody>
  <actuator>
    <position name="fz" joint="fz" kp="500"/>
    <position name="fx" joint="fx" kp="500"/>
  </actuator>
  <sensor>
)" + sensors + R"(  </sensor>
</mujoco>)";
}

const mjtNum* Data(const Scene& s, const char* name) {
  int id = mj_name2id(s.m, mjOBJ_SENSOR, name);
  EXPECT_GE(id, 0) << name;
  return s.d->sensordata + s.m->sensor_adr[id];
}

// presses the gel down by `down` onto the ball (ramped), moving sideways by dx
void Press(const mjModel* m, mjData* d, int nstep, double down, double dx = 0) {
  for (int i = 0; i < nstep; i++) {
    double s = std::fmin(1.0, i / (0.4 * nstep));
    d->ctrl[0] = -down * s;
    d->ctrl[1] = dx * std::fmax(0.0, (i - 0.5 * nstep) / (0.5 * nstep));
    mj_step(m, d);
  }
  mj_forward(m, d);
}

// the ball's centre in the gel site frame
void BallInSite(const Scene& s, double c[3]) {
  int site = mj_name2id(s.m, mjOBJ_SITE, "gel_site");
  int ball = mj_name2id(s.m, mjOBJ_GEOM, "ball");
  double r[3];
  for (int k = 0; k < 3; k++) r[k] = s.d->geom_xpos[3 * ball + k] - s.d->site_xpos[3 * site + k];
  mju_mulMatTVec3(c, s.d->site_xmat + 9 * site, r);
}

// indentation a sphere (centre c in the site frame, radius R) would give a conforming gel of
// thickness T at site-frame (x, y); <= 0 outside the contact
double CapDepth(const double c[3], double R, double T, double x, double y) {
  double r2 = (x - c[0]) * (x - c[0]) + (y - c[1]) * (y - c[1]);
  if (r2 >= R * R) return -1;
  return T - (c[2] - std::sqrt(R * R - r2));
}

double PixX(int col) { return (col + 0.5 - 0.5 * kW) * kPitch; }
double PixY(int row) { return (row + 0.5 - 0.5 * kH) * kPitch; }

// one centred press of the 1 mm gel shared by several tests (the slowest part of this file)
struct CentredPress {
  Scene s;
  CentredPress() : s(Scene::FromString(TactileScene(0.001, AllSensors(), 0.010))) {
    if (s.m) Press(s.m, s.d, 150, 0.0015);
  }
};
CentredPress& Centred() {
  static CentredPress p;
  return p;
}

}  // namespace

TEST(Tactile, SensorSizesMatchDocumentedLayouts) {
  Scene s = Scene::FromString(TactileScene(0.002));
  ASSERT_TRUE(s.m) << s.err;
  auto dim = [&](const char* n) { return s.m->sensor_dim[mj_name2id(s.m, mjOBJ_SENSOR, n)]; };
  EXPECT_EQ(dim("rgb"), kW * kH * 3);
  EXPECT_EQ(dim("depth"), kW * kH);
  EXPECT_EQ(dim("pressure"), kW * kH);
  EXPECT_EQ(dim("shear"), kW * kH * 2);
  EXPECT_EQ(dim("markers"), 25 * 2);
  EXPECT_EQ(dim("force"), 6);
  dtac_tactile_info info;
  ASSERT_EQ(0, dtac_tactile_get_info(s.m, s.d, dtac_tactile_find(s.m, "rgb"), &info));
  EXPECT_EQ(info.output, DTAC_TACTILE_RGB);
  EXPECT_DOUBLE_EQ(info.pitch, kPitch);
  EXPECT_EQ(dtac_tactile_find(s.m, "nosuch"), -1);
}

namespace {

// a gel of the given x y extents (m; empty: the default pad) with a depth sensor with the extra
// keys and (default pad only) a markers sensor, both without size
Scene DefaultScene(const std::string& gel_size, const std::string& extra = "") {
  std::string mk = gel_size.empty() ? R"(<plugin name="mk" plugin="difftac.tactile"><config key="elastomer" value="gel"/><config key="output" value="markers"/></plugin>)" : "";
  std::string gs = gel_size.empty() ? "" : R"(<config key="size" value=")" + gel_size + R"( 0.004"/>)";
  return Scene::FromString(R"(
<mujoco>
  <extension>
    <plugin plugin="difftac.elastomer"><instance name="gel">
      <config key="site" value="gel_site"/><config key="resolution" value="0.004"/>)" + gs + R"(
    </instance></plugin>
    <plugin plugin="difftac.tactile"/>
  </extension>
  <worldbody><site name="gel_site"/></worldbody>
  <sensor>
    <plugin name="img" plugin="difftac.tactile"><config key="elastomer" value="gel"/><config key="output" value="depth"/>)" + extra + R"(</plugin>
    )" + mk + R"(
  </sensor>
</mujoco>)");
}

}  // namespace

// without size and pitch an image covers the pad's face at GelSight Mini's 0.065 mm per pixel
// (coarser only for a face longer than 640 such pixels); with a size alone the pitch stays 0.065 mm
TEST(Tactile, DefaultImageCoversThePadAtGelSightMiniPitch) {
  struct Case {
    std::string gel, extra;
    int w, h;
    double pitch;
  } cases[] = {
      {"", "", 319, 388, 6.5e-5},                 // default pad 20.75 x 25.25 mm
      {"0.016 0.016", "", 246, 246, 6.5e-5},      // robosuite Panda pad
      {"0.1 0.06", "", 640, 384, 0.1 / 640},      // a palm: 640 px along the longer side
      {"0.1 0.06", R"(<config key="pitch" value="0.0005"/>)", 200, 120, 5e-4},  // pitch alone
      {"0.016 0.016", R"(<config key="size" value="320 240"/>)", 320, 240, 6.5e-5},  // size alone
  };
  for (const Case& c : cases) {
    Scene s = DefaultScene(c.gel, c.extra);
    ASSERT_TRUE(s.m) << s.err;
    dtac_tactile_info info;
    ASSERT_EQ(0, dtac_tactile_get_info(s.m, s.d, dtac_tactile_find(s.m, "img"), &info));
    EXPECT_EQ(info.width, c.w) << c.gel << c.extra;
    EXPECT_EQ(info.height, c.h) << c.gel << c.extra;
    EXPECT_DOUBLE_EQ(info.pitch, c.pitch) << c.gel << c.extra;
    EXPECT_EQ(s.m->sensor_dim[mj_name2id(s.m, mjOBJ_SENSOR, "img")], c.w * c.h);
    if (c.extra.empty()) {  // the image's edges lie within half a pixel of the face's
      double sx = c.gel.empty() ? 0.02075 : std::stod(c.gel);
      EXPECT_NEAR(-2 * info.x0, sx, 0.5 * c.pitch + 1e-12) << c.gel;
    }
  }
  Scene s = DefaultScene("");
  ASSERT_TRUE(s.m) << s.err;
  dtac_tactile_info info;
  ASSERT_EQ(0, dtac_tactile_get_info(s.m, s.d, dtac_tactile_find(s.m, "mk"), &info));
  EXPECT_EQ(info.marker_rows, 7);
  EXPECT_EQ(info.marker_cols, 9);
  EXPECT_NEAR(info.marker_pitch / info.pitch, 30.8, 0.1);  // 31-32 px at 320 x 240 in gsrobotics
}

// the default optics show a 0.1 mm press: a 5 mm sphere pressed into the default-resolution
// (1 mm) gel until the depth image's peak reaches 0.1 mm changes some channel by at least 0.03
// (8 of 255 levels) and more than 2 levels over the dent (docs/tactile.md, "Contrast")
TEST(Tactile, DefaultOpticsShowATenthOfAMillimetre) {
  const std::string keys = R"(<config key="elastomer" value="gel"/>)";
  std::string sensors = R"(<plugin name="rgb" plugin="difftac.tactile" objtype="site" objname="gel_site">)" +
                        keys + R"(<config key="output" value="rgb"/></plugin>
    <plugin name="depth" plugin="difftac.tactile" objtype="site" objname="gel_site">)" +
                        keys + R"(<config key="output" value="depth"/></plugin>
)";
  Scene s = Scene::FromString(TactileScene(0.001, sensors, 0.005));
  ASSERT_TRUE(s.m) << s.err;
  dtac_tactile_info info;
  ASSERT_EQ(0, dtac_tactile_get_info(s.m, s.d, dtac_tactile_find(s.m, "rgb"), &info));
  const int npix = info.width * info.height;
  ASSERT_EQ(npix, 154 * 154);  // the 10 mm pad at 0.065 mm
  // lower the finger slowly (the gel starts 0.5 mm above the sphere) until the dent is 0.1 mm
  double peak = 0;
  for (int i = 0; i < 1000 && peak < 1e-4; i++) {
    s.d->ctrl[0] = -std::fmin(1e-5 * i, 0.00045 + 2e-6 * (i - 45));
    mj_step(s.m, s.d);  // sensordata: the state before this step
    const mjtNum* dep = Data(s, "depth");
    peak = *std::max_element(dep, dep + npix);
  }
  mj_forward(s.m, s.d);
  peak = *std::max_element(Data(s, "depth"), Data(s, "depth") + npix);
  ASSERT_GE(peak, 1e-4);
  ASSERT_LT(peak, 1.1e-4);
  const mjtNum* rgb = Data(s, "rgb");
  double contrast = 0;
  int seen = 0;
  for (int k = 0; k < npix; k++) {
    double dk = 0;
    for (int c = 0; c < 3; c++) dk = std::fmax(dk, std::fabs(rgb[3 * k + c] - info.background[c]));
    contrast = std::fmax(contrast, dk);
    seen += dk > 2.0 / 255;
  }
  if (std::getenv("DTAC_TEST_VERBOSE")) {
    std::printf("  0.1 mm press: peak depth %.4f mm, max channel change %.4f (%.1f / 255), %d px > 2 / 255\n",
                1e3 * peak, contrast, 255 * contrast, seen);
  }
  EXPECT_GE(contrast, 0.03);
  EXPECT_GT(seen, 500);  // more than the 1 mm contact radius's area (740 px at 0.065 mm)
}

TEST(Tactile, UndeformedGelGivesBackgroundAndZeroMarkers) {
  Scene s = Scene::FromString(TactileScene(0.002));
  ASSERT_TRUE(s.m) << s.err;
  mj_forward(s.m, s.d);
  double bg[3], coef[3 * DTAC_TACTILE_NBASIS];
  dtac_optics_default_params(bg, coef);
  const mjtNum* rgb = Data(s, "rgb");
  for (int k = 0; k < kW * kH; k++) {
    for (int c = 0; c < 3; c++) ASSERT_NEAR(rgb[3 * k + c], bg[c], 1e-12) << k;
  }
  const mjtNum* mk = Data(s, "markers");
  for (int k = 0; k < 50; k++) ASSERT_NEAR(mk[k], 0, 1e-9);
  const mjtNum* dep = Data(s, "depth");
  const mjtNum* pr = Data(s, "pressure");
  for (int k = 0; k < kW * kH; k++) {
    ASSERT_NEAR(dep[k], 0, 1e-15);
    ASSERT_EQ(pr[k], 0);
  }
}

// the rasteriser alone: top-face nodes placed exactly on a spherical cap; between nodes the
// surface is the chord, within h^2/(8R) of the sphere
TEST(Tactile, DepthOfPrescribedCapMatchesSphereWithinChordError) {
  const double h = 0.0005, R = 0.005, T = 0.004, d0 = 0.0005;
  Scene s = Scene::FromString(TactileScene(h, Sensor("depth", "depth")));
  ASSERT_TRUE(s.m) << s.err;
  mj_forward(s.m, s.d);
  int gel = dtac_gel_find(s.m, "gel");
  dtac_gel_info info;
  ASSERT_EQ(0, dtac_gel_get_info(s.m, s.d, gel, &info));
  const mjtNum* X = dtac_gel_rest_positions(s.m, s.d, gel);
  mjtNum* x = const_cast<mjtNum*>(dtac_gel_positions(s.m, s.d, gel));
  const mjtNum* sp = s.d->site_xpos + 3 * info.site;
  const mjtNum* sm = s.d->site_xmat + 9 * info.site;
  const double c[3] = {0.0003, -0.0002, T - d0 + R};  // off the grid's symmetry on purpose
  for (int a = 0; a < info.nnode; a++) {
    if (X[3 * a + 2] < T - 1e-12) continue;
    double ind = std::fmax(0.0, CapDepth(c, R, T, X[3 * a], X[3 * a + 1]));
    double ps[3] = {X[3 * a], X[3 * a + 1], X[3 * a + 2] - ind}, w[3];
    mju_mulMatVec3(w, sm, ps);
    for (int k = 0; k < 3; k++) x[3 * a + k] = sp[k] + w[k];
  }
  mj_forward(s.m, s.d);
  const mjtNum* dep = Data(s, "depth");
  // P1 interpolation error on a triangle of circumradius h / sqrt(2): kappa h^2 / 4, with the
  // cap's largest curvature kappa in the tested region (cap >= 0.6 d0)
  const double rmax2 = R * R - (R - 0.4 * d0) * (R - 0.4 * d0);
  const double kappa = R * R / std::pow(R * R - rmax2, 1.5);
  const double chord = kappa * h * h / 4;
  double maxerr = 0;
  int n = 0;
  for (int r = 0; r < kH; r++) {
    for (int col = 0; col < kW; col++) {
      double cap = CapDepth(c, R, T, PixX(col), PixY(r));
      if (cap < 0.6 * d0) continue;  // triangles wholly on the cap: the rim is a cell away
      maxerr = std::fmax(maxerr, std::fabs(dep[r * kW + col] - cap));
      n++;
    }
  }
  ASSERT_GT(n, 500);
  EXPECT_LT(maxerr, chord) << "max |depth - cap| " << maxerr << " m over " << n << " pixels";
  std::printf("[prescribed cap] max |depth - cap| = %.3g um (chord bound %.3g um), %d px\n",
              1e6 * maxerr, 1e6 * chord, n);
}

TEST(Tactile, PressedSphereDepthMatchesSphericalCap) {
  Scene& s = Centred().s;
  ASSERT_TRUE(s.m) << s.err;
  double c[3];
  BallInSite(s, c);
  const double R = 0.010, T = 0.004;
  const mjtNum* dep = Data(s, "depth");
  double peak = CapDepth(c, R, T, c[0], c[1]);
  ASSERT_GT(peak, 1e-4) << "the ball did not press in";
  double a = std::sqrt(R * R - (R - peak) * (R - peak));  // contact radius of the cap
  double maxerr = 0, sum2 = 0, maxdep = 0;
  int n = 0;
  for (int r = 0; r < kH; r++) {
    for (int col = 0; col < kW; col++) {
      double x = PixX(col), y = PixY(r);
      maxdep = std::fmax(maxdep, dep[r * kW + col]);
      if ((x - c[0]) * (x - c[0]) + (y - c[1]) * (y - c[1]) > 0.49 * a * a) continue;
      double e = dep[r * kW + col] - CapDepth(c, R, T, x, y);
      maxerr = std::fmax(maxerr, std::fabs(e));
      sum2 += e * e;
      n++;
    }
  }
  ASSERT_GT(n, 100);
  double rms = std::sqrt(sum2 / n);
  std::printf("[pressed sphere] cap depth %.1f um, gel depth %.1f um, within 0.7 a: max err "
              "%.1f um, rms %.1f um (%d px)\n",
              1e6 * peak, 1e6 * maxdep, 1e6 * maxerr, 1e6 * rms, n);
  // penalty contact lets the sphere sink in a little; the gel surface follows the cap
  EXPECT_LT(maxerr, 0.25 * peak);
  EXPECT_LT(rms, 0.2 * peak);
  // outside the contact the gel surface is below the sphere: depth < cap there is impossible
  // to check simply, but far away the indentation decays
  EXPECT_LT(std::fabs(dep[0]), 0.1 * peak);
}

TEST(Tactile, PressureIntegralEqualsForceOutputAndGelContactForce) {
  Scene& s = Centred().s;
  ASSERT_TRUE(s.m) << s.err;
  const mjtNum* pr = Data(s, "pressure");
  const mjtNum* f = Data(s, "force");
  double sum = 0;
  for (int k = 0; k < kW * kH; k++) sum += pr[k] * kPitch * kPitch;
  ASSERT_GT(-f[2], 0.02);
  EXPECT_NEAR(sum, -f[2], 0.02 * -f[2]);
  // the force output is the gel's contact wrench in the site frame
  mjtNum w[6], ws[3];
  ASSERT_EQ(0, dtac_gel_contact_wrench(s.m, s.d, dtac_gel_find(s.m, "gel"), w));
  int site = mj_name2id(s.m, mjOBJ_SITE, "gel_site");
  mju_mulMatTVec3(ws, s.d->site_xmat + 9 * site, w);
  for (int k = 0; k < 3; k++) EXPECT_NEAR(f[k], ws[k], 1e-12);
  mju_mulMatTVec3(ws, s.d->site_xmat + 9 * site, w + 3);
  for (int k = 0; k < 3; k++) EXPECT_NEAR(f[3 + k], ws[k], 1e-12);
  std::printf("[pressure] sum p dA = %.6f N, force output normal = %.6f N (rel err %.2e)\n", sum,
              -f[2], std::fabs(sum + f[2]) / -f[2]);
}

TEST(Tactile, CentredPressIsMirrorSymmetric) {
  Scene& s = Centred().s;
  ASSERT_TRUE(s.m) << s.err;
  const mjtNum* dep = Data(s, "depth");
  const mjtNum* pr = Data(s, "pressure");
  double dmax = 0, pmax = 0, dd = 0, pd = 0, da = 0, pa = 0;
  for (int r = 0; r < kH; r++) {
    for (int c = 0; c < kW; c++) {
      int k = r * kW + c;
      dmax = std::fmax(dmax, dep[k]);
      pmax = std::fmax(pmax, pr[k]);
      // the mirror across the diagonal x = y maps the square gel's mesh onto itself (the Kuhn
      // tetrahedra and the top-face split are invariant under swapping x and y)
      int kd = c * kW + r;
      dd = std::fmax(dd, std::fabs(dep[k] - dep[kd]));
      pd = std::fmax(pd, std::fabs(pr[k] - pr[kd]));
      // mirrors across x = 0 and y = 0 map the mesh to its other diagonal split
      int ks[2] = {r * kW + (kW - 1 - c), (kH - 1 - r) * kW + c};
      for (int m : ks) {
        da = std::fmax(da, std::fabs(dep[k] - dep[m]));
        pa = std::fmax(pa, std::fabs(pr[k] - pr[m]));
      }
    }
  }
  ASSERT_GT(dmax, 0);
  ASSERT_GT(pmax, 0);
  std::printf("[symmetry] diagonal mirror: depth %.2f%%, pressure %.2f%% of peak; axis mirrors "
              "(mesh not symmetric): depth %.2f%%, pressure %.2f%%\n",
              100 * dd / dmax, 100 * pd / pmax, 100 * da / dmax, 100 * pa / pmax);
  EXPECT_LT(dd, 0.03 * dmax);
  EXPECT_LT(pd, 0.03 * pmax);
  EXPECT_LT(da, 0.25 * dmax);
}

TEST(Tactile, PressShowsInRgbAndMovesMarkersSlightly) {
  Scene& s = Centred().s;
  ASSERT_TRUE(s.m) << s.err;
  double bg[3], coef[3 * DTAC_TACTILE_NBASIS];
  dtac_optics_default_params(bg, coef);
  const mjtNum* rgb = Data(s, "rgb");
  double change = 0;
  for (int k = 0; k < kW * kH; k++) {
    for (int c = 0; c < 3; c++) change = std::fmax(change, std::fabs(rgb[3 * k + c] - bg[c]));
    for (int c = 0; c < 3; c++) ASSERT_TRUE(rgb[3 * k + c] >= 0 && rgb[3 * k + c] <= 1);
  }
  EXPECT_GT(change, 0.05);
  // far corner pixel: the gel is flat there, background colour
  for (int c = 0; c < 3; c++) EXPECT_NEAR(rgb[c], bg[c], 0.02);
  // markers: a normal press moves them sideways only a little (Poisson effect, friction)
  const mjtNum* mk = Data(s, "markers");
  double moved = 0;
  for (int k = 0; k < 25; k++) moved = std::fmax(moved, std::hypot(mk[2 * k], mk[2 * k + 1]));
  EXPECT_GT(moved, 0.01);
  EXPECT_LT(moved, 3.0);
}

TEST(Tactile, SlidingIndenterGivesShearAlongTheSlide) {
  Scene s = Scene::FromString(TactileScene(0.002));
  ASSERT_TRUE(s.m) << s.err;
  Press(s.m, s.d, 200, 0.001, 0.002);  // the finger (and gel) moves +x over the ball
  const mjtNum* sh = Data(s, "shear");
  const mjtNum* f = Data(s, "force");
  double su = 0, sv = 0;
  for (int k = 0; k < kW * kH; k++) {
    su += sh[2 * k] * kPitch * kPitch;
    sv += sh[2 * k + 1] * kPitch * kPitch;
  }
  std::printf("[shear] sum shear dA = (%.4f, %.4f) N, force output (%.4f, %.4f) N\n", su, sv,
              f[0], f[1]);
  // the ball resists the gel's motion: traction on the gel along -x (site x = world x)
  EXPECT_LT(su, -0.005);
  EXPECT_GT(std::fabs(su), 5 * std::fabs(sv));
  EXPECT_NEAR(su, f[0], 0.02 * std::fabs(f[0]));
  // markers move with the gel's contact face: the sheared face lags, du < 0 at the centre
  const mjtNum* mk = Data(s, "markers");
  EXPECT_LT(mk[2 * 12], 0);
}

TEST(Tactile, RecomputesOnlyWhenTheGelChanged) {
  Scene s = Scene::FromString(TactileScene(0.002));
  ASSERT_TRUE(s.m) << s.err;
  int id = dtac_tactile_find(s.m, "depth");
  dtac_tactile_info info;
  mj_forward(s.m, s.d);
  dtac_tactile_get_info(s.m, s.d, id, &info);
  long n0 = info.nevaluation;
  EXPECT_EQ(n0, 1);
  mj_forward(s.m, s.d);
  mj_forward(s.m, s.d);
  dtac_tactile_get_info(s.m, s.d, id, &info);
  EXPECT_EQ(info.nevaluation, n0);
  Press(s.m, s.d, 10, 0.001);
  dtac_tactile_get_info(s.m, s.d, id, &info);
  EXPECT_GT(info.nevaluation, n0);
  // a copy starts its own cache and gives the same data
  mjData* c = mj_copyData(nullptr, s.m, s.d);
  mj_forward(s.m, c);
  EXPECT_EQ(0, std::memcmp(c->sensordata, s.d->sensordata, sizeof(mjtNum) * s.m->nsensordata));
  mj_deleteData(c);
}

TEST(Tactile, CalibrationRecoversKnownLightingFromSyntheticData) {
  const int W = 96, H = 72, nimg = 4;
  const double pitch = 1e-4;
  double bg[3], coef[3 * DTAC_TACTILE_NBASIS];
  dtac_optics_default_params(bg, coef);
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> U(-0.1, 0.1);
  for (double& c : coef) c += U(rng);
  // spheres of different radii and places pressed in: depth maps, rendered with the truth
  std::vector<double> depth(nimg * W * H), rgb(nimg * W * H * 3);
  for (int i = 0; i < nimg; i++) {
    double R = 0.003 + 0.001 * i, cx = (10 + 20 * i) * pitch, cy = (30 + 5 * i) * pitch;
    double d0 = 0.0004 + 0.0001 * i;
    for (int r = 0; r < H; r++) {
      for (int c = 0; c < W; c++) {
        double x = (c + 0.5) * pitch - cx, y = (r + 0.5) * pitch - cy, r2 = x * x + y * y;
        // a smooth dent: the cap blended into the flat face
        depth[i * W * H + r * W + c] = d0 * std::exp(-r2 / (R * R * 0.1));
      }
    }
    dtac_optics_render(W, H, pitch, depth.data() + i * W * H, bg, coef, rgb.data() + i * W * H * 3);
  }
  double fbg[3], fcoef[3 * DTAC_TACTILE_NBASIS];
  char err[256];
  double rms = dtac_optics_fit(nimg, W, H, pitch, depth.data(), rgb.data(), fbg, fcoef, err,
                               sizeof(err));
  ASSERT_GE(rms, 0) << err;
  EXPECT_LT(rms, 1e-9);
  for (int c = 0; c < 3; c++) EXPECT_NEAR(fbg[c], bg[c], 1e-7);
  for (int k = 0; k < 3 * DTAC_TACTILE_NBASIS; k++) EXPECT_NEAR(fcoef[k], coef[k], 1e-5) << k;
  // flat images alone cannot determine the lighting: a clear failure, not garbage
  std::vector<double> flat(W * H, 0.0), img(W * H * 3, 0.5);
  EXPECT_LT(dtac_optics_fit(1, W, H, pitch, flat.data(), img.data(), fbg, fcoef, err,
                            sizeof(err)), 0);
  EXPECT_GT(std::strlen(err), 10u);
}

// ---- load errors ------------------------------------------------------------------------------------

namespace {

void ExpectLoadError(const std::string& sensor, const std::vector<std::string>& words) {
  Scene s = Scene::FromString(TactileScene(0.002, sensor));
  ASSERT_EQ(s.m, nullptr) << "loaded despite " << sensor;
  for (const std::string& w : words) EXPECT_NE(s.err.find(w), std::string::npos) << s.err;
}

}  // namespace

TEST(TactileErrors, FittedImageTooLargeIsLoadError) {
  // no size: the image would cover the 10 mm face at 1 um per pixel, 10^8 pixels
  ExpectLoadError(R"(<plugin name="fine" plugin="difftac.tactile" objtype="site" objname="gel_site">
      <config key="elastomer" value="gel"/><config key="output" value="depth"/>
      <config key="pitch" value="1e-6"/></plugin>)",
                  {"fine", "pitch", "1e-6", "10 x 10 mm", "4096"});
}

TEST(TactileErrors, UnknownOutputIsLoadError) {
  ExpectLoadError(Sensor("gel_rgb", "foo"),
                  {"difftac.tactile", "gel_rgb", "output", "foo", "rgb depth pressure"});
}

TEST(TactileErrors, UnknownElastomerIsLoadError) {
  std::string s = R"(<plugin name="bad_el" plugin="difftac.tactile">
      <config key="elastomer" value="nogel"/><config key="output" value="depth"/></plugin>)";
  ExpectLoadError(s, {"bad_el", "elastomer", "nogel"});
}

TEST(TactileErrors, BadSizeIsLoadError) {
  std::string base = R"(<plugin name="bad_size" plugin="difftac.tactile">
      <config key="elastomer" value="gel"/><config key="output" value="depth"/>)";
  ExpectLoadError(base + R"(<config key="size" value="0 240"/></plugin>)",
                  {"bad_size", "size", "0 240"});
  ExpectLoadError(base + R"(<config key="size" value="320"/></plugin>)", {"size", "320"});
  ExpectLoadError(base + R"(<config key="size" value="32.5 24"/></plugin>)", {"size", "32.5"});
}

TEST(TactileErrors, BadCameraAndMarkersAreLoadErrors) {
  std::string base = R"(<plugin name="bad" plugin="difftac.tactile">
      <config key="elastomer" value="gel"/>)";
  ExpectLoadError(base + R"(<config key="output" value="depth"/><config key="pitch" value="-1"/></plugin>)",
                  {"bad", "pitch", "-1"});
  // the default 9 x 7 grid at 2 mm does not fit on a 10 mm gel
  ExpectLoadError(base + R"(<config key="output" value="markers"/></plugin>)",
                  {"bad", "markers", "9 7"});
  ExpectLoadError(base + R"(<config key="output" value="rgb"/><config key="lighting" value="1 2"/></plugin>)",
                  {"lighting", "1 2"});
  ExpectLoadError(base + R"(<config key="output" value="rgb"/><config key="optics_file" value="/no/such/file"/></plugin>)",
                  {"optics_file", "/no/such/file"});
  ExpectLoadError(R"(<plugin name="noout" plugin="difftac.tactile"><config key="elastomer" value="gel"/></plugin>)",
                  {"noout", "output"});
}

// an optics parameter set at run time lives with the mjData: mj_copyData carries it
TEST(Tactile, CopyDataCarriesOpticsParameters) {
  Scene s = Scene::FromString(TactileScene(0.002));
  ASSERT_TRUE(s.m) << s.err;
  int ib = dtac_param_find(s.m, "rgb/background_r");
  ASSERT_GE(ib, 0);
  ASSERT_EQ(dtac_param_set(s.m, s.d, ib, 0.25), 0);
  mj_forward(s.m, s.d);
  mjData* c = mj_makeData(s.m);
  mj_copyData(c, s.m, s.d);
  EXPECT_EQ(dtac_param_get(s.m, c, ib), 0.25);
  mj_forward(s.m, c);
  int sn = mj_name2id(s.m, mjOBJ_SENSOR, "rgb");
  const mjtNum* a = s.d->sensordata + s.m->sensor_adr[sn];
  const mjtNum* b = c->sensordata + s.m->sensor_adr[sn];
  EXPECT_NEAR(a[0], 0.25, 1e-12);  // the undeformed gel shows the background
  EXPECT_EQ(0, std::memcmp(a, b, sizeof(mjtNum) * s.m->sensor_dim[sn]));
  mj_deleteData(c);
}
