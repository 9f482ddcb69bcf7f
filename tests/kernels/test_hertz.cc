// Hertz contact: a rigid sphere pressed into a thick gel block. Force-indentation and contact
// radius against F = 4/3 E* sqrt(R) d^1.5, a = sqrt(R d), E* = E / (1 - nu^2) (Johnson, Contact
// Mechanics, 1985, ch. 4). Quarter model with symmetry planes x = 0 and y = 0, on a grid graded
// from a fine core under the contact to coarse far field, settled by damped dynamics.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <vector>

extern "C" {
#include "gel.h"
}

namespace {

// node coordinates from 0: `nfine` cells of `h` up to `h*nfine`, then cells growing by `g` to L
std::vector<double> Graded(double h, int nfine, double g, double L) {
  std::vector<double> c = {0};
  double w = h;
  while (c.back() < L - 1e-12) {
    if ((int)c.size() > nfine) w *= g;
    c.push_back(std::fmin(L, c.back() + w));
    if (L - c.back() < 0.5 * w) c.back() = L;
  }
  return c;
}

struct HertzResult {
  double force;   // total normal force (4 quarters), N
  double depth;   // surface indentation under the sphere's centre, m
  double radius;  // contact radius from nodes in contact, m
};

// presses a sphere of radius R to sphere displacement ds (beyond first touch)
HertzResult Press(double E, double nu, double R, double ds, double hfine, int* nsub_out) {
  const double a_est = std::sqrt(R * ds);
  const double L = 15 * a_est, H = 15 * a_est;
  std::vector<double> cx = Graded(hfine, (int)std::ceil(1.6 * a_est / hfine), 1.3, L);
  std::vector<double> depth = Graded(hfine, (int)std::ceil(1.0 * a_est / hfine), 1.3, H);
  std::vector<double> cz(depth.size());
  for (size_t i = 0; i < depth.size(); i++) cz[i] = H - depth[depth.size() - 1 - i];
  int ncell[3] = {(int)cx.size() - 1, (int)cx.size() - 1, (int)cz.size() - 1};
  const double* coords[3] = {cx.data(), cx.data(), cz.data()};

  dtac_gel_def def;
  dtac_gel_def_default(&def);
  def.size[0] = L;
  def.size[1] = L;
  def.size[2] = H;
  def.young = E;
  def.poisson = nu;
  def.friction = 0;  // Hertz is frictionless
  // settle fast: critical damping of the block's first shear mode, relative to the fixed back
  double cs = std::sqrt(E / (2 * (1 + nu)) / def.density);
  def.mass_damping = 2 * 1.5708 * cs / H;
  dtac_gel_model gm;
  char err[512];
  EXPECT_EQ(0, dtac_gel_model_make_grid(&gm, &def, ncell, coords, 0, 0, err, sizeof(err))) << err;

  // symmetry planes: no normal motion on x = 0 and y = 0
  for (int a = 0; a < gm.nnode; a++) {
    if (gm.X[3 * a] == 0) gm.lock[a] |= 1;
    if (gm.X[3 * a + 1] == 0) gm.lock[a] |= 2;
  }
  dtac_gel_scratch s;
  EXPECT_EQ(0, dtac_gel_scratch_make(&s, &gm, 1));
  dtac_state_layout Ly = dtac_gel_state_layout(&gm);
  std::vector<double> state(Ly.size);
  dtac_frame site = {{0, 0, 0}, {1, 0, 0, 0, 1, 0, 0, 0, 1}, {0, 0, 0}, {0, 0, 0}};
  dtac_gel_state_rest(&gm, &site, state.data());

  dtac_collider ball = {};
  ball.type = DTAC_GEOM_SPHERE;
  ball.size[0] = R;
  ball.mat[0] = ball.mat[4] = ball.mat[8] = 1;
  ball.mu = 0;
  const double g0[3] = {0, 0, 0};

  // ramp the sphere down over ramp steps, then hold until the force settles
  const double dt = gm.dt_stable;
  const double settle = 8 / (def.mass_damping * 0.5);  // several slowest-mode time constants
  int nramp = 200, nhold = (int)(settle / dt);
  int chunk = 50;
  for (int i = 0; i <= nramp + nhold / chunk; i++) {
    double f = std::fmin(1.0, (double)i / nramp);
    ball.pos[2] = H + R - f * ds;
    dtac_gel_advance(&gm, &s, state.data(), &site, &ball, 1, g0, chunk * dt, chunk, nullptr);
  }
  *nsub_out = (nramp + nhold / chunk + 1) * chunk;

  // force on the sphere, contact radius, and surface indentation at the centre
  std::vector<double> ft(6, 0);
  dtac_gel_contact(&gm, state.data(), state.data() + Ly.v, state.data() + Ly.anchor, nullptr,
                   &ball, 1, nullptr, ft.data());
  HertzResult r = {4 * ft[2], 0, 0};
  for (int si = 0; si < gm.nsurf; si++) {
    int a = gm.surf[si];
    const double* x = state.data() + 3 * a;
    if (gm.X[3 * a + 2] != H) continue;
    if (gm.X[3 * a] == 0 && gm.X[3 * a + 1] == 0) r.depth = H - x[2];
    double n[3];
    if (dtac_collider_dist(&ball, x, n) < 0) {
      r.radius = std::fmax(r.radius, std::hypot(gm.X[3 * a], gm.X[3 * a + 1]));
    }
  }
  dtac_gel_scratch_free(&s);
  dtac_gel_model_free(&gm);
  return r;
}

}  // namespace

TEST(Hertz, ForceAndContactRadiusMatchTheoryOnThickBlock) {
  const double E = 3e5, nu = 0.3, R = 0.005;
  const double Estar = E / (1 - nu * nu);
  for (double ds : {0.1e-3, 0.2e-3}) {
    int nsub = 0;
    HertzResult r = Press(E, nu, R, ds, std::sqrt(R * ds) / 6, &nsub);
    double F = 4.0 / 3.0 * Estar * std::sqrt(R) * std::pow(r.depth, 1.5);
    double a = std::sqrt(R * r.depth);
    std::printf("d=%.4g mm  F=%.5g N (Hertz %.5g, err %+.1f%%)  a=%.4g mm (Hertz %.4g)  substeps %d\n",
                1e3 * r.depth, r.force, F, 100 * (r.force / F - 1), 1e3 * r.radius, 1e3 * a, nsub);
    EXPECT_NEAR(r.force / F, 1.0, 0.10);
    // contact radius: nodes in contact lie within a, the last one within one fine cell of it
    EXPECT_NEAR(r.radius, a, std::sqrt(R * ds) / 6 + 0.1 * a);
    // the indentation is the sphere's, less a small penalty penetration
    EXPECT_NEAR(r.depth, ds, 0.1 * ds);
  }
}
