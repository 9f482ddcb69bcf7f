// The implicit step (src/implicit.c, kernels/fem_hess.h, kernels/contact_energy.h): its
// energies against the explicit forces, its equilibrium against the explicit integrator at rest
// and against Hertz, its VJP against central differences of a rollout, and its determinism.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "test_util.h"

extern "C" {
#include "contact_energy.h"
#include "fem_hess.h"
#include "gel.h"
#include "implicit.h"
}

namespace {

// a random tet near its rest shape and a deformed state of it
struct Tet {
  double X[12], x[12], Dm_inv[9], vol;
};

Tet RandomTet(std::mt19937& rng, double strain) {
  std::uniform_real_distribution<double> u(-1, 1);
  Tet t;
  const double base[12] = {0, 0, 0, 1e-3, 0, 0, 0, 1e-3, 0, 0, 0, 1e-3};
  for (int k = 0; k < 12; k++) t.X[k] = base[k] + 2e-4 * u(rng);
  t.vol = dtac_tet_rest(t.X, t.X + 3, t.X + 6, t.X + 9, t.Dm_inv);
  double R[9];
  RandomRotation(rng, R);
  for (int q = 0; q < 4; q++) {
    double y[3];
    for (int k = 0; k < 3; k++) y[k] = t.X[3 * q + k] + strain * 1e-3 * u(rng);
    dtac_mulmv3(t.x + 3 * q, R, y);
  }
  return t;
}

double TetEnergy(int kind, const dtac_material* m, const Tet& t, const double* x) {
  double F[9];
  dtac_tet_defgrad(x, x + 3, x + 6, x + 9, t.Dm_inv, F);
  return t.vol * dtac_elastic_energy(kind, m, F);
}

void TetGrad(int kind, const dtac_material* m, const Tet& t, const double* x, double g[12]) {
  double F[9], P[9];
  dtac_tet_defgrad(x, x + 3, x + 6, x + 9, t.Dm_inv, F);
  dtac_elastic_stress(kind, m, F, P);
  dtac_tet_grad_from_stress(P, t.Dm_inv, t.vol, g);
}

}  // namespace

// (a) the element energy's gradient is minus the explicit force; its Hessian the gradient's
// derivative; for inverted elements too
TEST(Implicit, ElementEnergyGradientIsTheForceAndHessianItsDerivative) {
  std::mt19937 rng(3);
  dtac_material m;
  dtac_material_set(&m, 3e5, 0.45, 0);
  for (int trial = 0; trial < 20; trial++) {
    Tet t = RandomTet(rng, trial < 15 ? 0.3 : 1.5);  // the last ones are often inverted
    // gradient = -dtac_tet_force (zero velocity: no damping), and = FD of the energy
    double f[12], g[12], v[12] = {0};
    dtac_tet_force(&m, t.x, t.x + 3, t.x + 6, t.x + 9, v, v + 3, v + 6, v + 9, t.Dm_inv, t.vol, f);
    TetGrad(DTAC_MAT_NEOHOOKEAN, &m, t, t.x, g);
    double fmax = 0;
    for (int k = 0; k < 12; k++) fmax = std::fmax(fmax, std::fabs(f[k]));
    for (int k = 0; k < 12; k++) EXPECT_NEAR(g[k], -f[k], 1e-12 * fmax);
    for (int kind : {DTAC_MAT_NEOHOOKEAN, DTAC_MAT_LINEAR}) {
      TetGrad(kind, &m, t, t.x, g);
      double A[81], H[144];
      double F[9];
      dtac_tet_defgrad(t.x, t.x + 3, t.x + 6, t.x + 9, t.Dm_inv, F);
      dtac_elastic_dPdF(kind, &m, F, A);
      dtac_tet_hess12(t.Dm_inv, t.vol, A, H);
      const double eps = 1e-9;
      double gmax = 1e-300, hmax = 1e-300;
      for (int k = 0; k < 12; k++) gmax = std::fmax(gmax, std::fabs(g[k]));
      for (int k = 0; k < 144; k++) hmax = std::fmax(hmax, std::fabs(H[k]));
      for (int j = 0; j < 12; j++) {
        double xp[12], xm[12], gp[12], gmn[12];
        std::memcpy(xp, t.x, sizeof(xp));
        std::memcpy(xm, t.x, sizeof(xm));
        xp[j] += eps;
        xm[j] -= eps;
        double fd = (TetEnergy(kind, &m, t, xp) - TetEnergy(kind, &m, t, xm)) / (2 * eps);
        EXPECT_NEAR(g[j], fd, 1e-6 * gmax) << "kind " << kind << " comp " << j;
        TetGrad(kind, &m, t, xp, gp);
        TetGrad(kind, &m, t, xm, gmn);
        for (int i = 0; i < 12; i++) {
          EXPECT_NEAR(H[12 * i + j], (gp[i] - gmn[i]) / (2 * eps), 1e-6 * hmax)
              << "kind " << kind << " H " << i << "," << j;
        }
        // symmetric
        for (int i = 0; i < 12; i++) EXPECT_NEAR(H[12 * i + j], H[12 * j + i], 1e-12 * hmax);
      }
    }
  }
}

// the damping potential's stress is the explicit Kelvin-Voigt stress with F lagged at F0 and
// Fdot = (F - F0)/h, and its gradient and Hessian are consistent
TEST(Implicit, DampingPotentialIsTheExplicitDampingLagged) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> u(-1, 1);
  dtac_material m;
  dtac_material_set(&m, 3e5, 0.45, 1e-4);
  const double h = 2e-3;
  for (int trial = 0; trial < 10; trial++) {
    double F0[9], F[9], P[9], Pk[9], Fd[9], A[81] = {0};
    for (int k = 0; k < 9; k++) {
      F0[k] = (k % 4 == 0 ? 1 : 0) + 0.3 * u(rng);
      F[k] = F0[k] + 0.05 * u(rng);
      Fd[k] = (F[k] - F0[k]) / h;
    }
    dtac_kv_step_energy(&m, F0, F0, F, h, P);
    dtac_kv_stress(&m, F0, Fd, Pk);
    double pmax = 0;
    for (int k = 0; k < 9; k++) pmax = std::fmax(pmax, std::fabs(Pk[k]));
    for (int k = 0; k < 9; k++) EXPECT_NEAR(P[k], Pk[k], 1e-12 * pmax);
    dtac_kv_step_dPdF_add(&m, F0, h, A);
    const double eps = 1e-7;
    for (int j = 0; j < 9; j++) {
      double Fp[9], Fm[9], Pp[9], Pm[9];
      std::memcpy(Fp, F, sizeof(Fp));
      std::memcpy(Fm, F, sizeof(Fm));
      Fp[j] += eps;
      Fm[j] -= eps;
      double fd = (dtac_kv_step_energy(&m, F0, F0, Fp, h, Pp) -
                   dtac_kv_step_energy(&m, F0, F0, Fm, h, Pm)) /
                  (2 * eps);
      EXPECT_NEAR(P[j], fd, 1e-6 * pmax);
      for (int i = 0; i < 9; i++)
        EXPECT_NEAR(A[9 * i + j], (Pp[i] - Pm[i]) / (2 * eps), 1e-6 * pmax / 0.05);
    }
  }
}

// projection: a positive definite block is untouched; an indefinite one becomes the nearest
// positive semidefinite (its eigenvalues clamped), keeping the positive part
TEST(Implicit, ProjectionClampsOnlyNegativeEigenvalues) {
  std::mt19937 rng(11);
  std::normal_distribution<double> n01(0, 1);
  for (int trial = 0; trial < 10; trial++) {
    double M[81], A[81], B[81], Q[81];
    for (int k = 0; k < 81; k++) M[k] = n01(rng);
    for (int i = 0; i < 9; i++) {
      for (int j = 0; j < 9; j++) {
        double s = 0;
        for (int k = 0; k < 9; k++) s += M[9 * i + k] * M[9 * j + k];
        A[9 * i + j] = s + (trial % 2 ? 0 : -3 * (i == j));
      }
    }
    std::memcpy(B, A, sizeof(A));
    int changed = dtac_sym_project(B, 9);
    double D[81];
    std::memcpy(D, A, sizeof(A));
    dtac_sym_eig(D, Q, 9);
    double lmin = 1e300;
    for (int i = 0; i < 9; i++) lmin = std::fmin(lmin, D[10 * i]);
    EXPECT_EQ(changed, lmin <= 0 ? 1 : 0);
    // B = Q max(D, 0) Q^T, and B - A is negative semidefinite of rank (#negative eigenvalues)
    for (int i = 0; i < 9; i++) {
      for (int j = 0; j < 9; j++) {
        double s = 0;
        for (int k = 0; k < 9; k++) s += Q[9 * i + k] * std::fmax(D[10 * k], 0) * Q[9 * j + k];
        EXPECT_NEAR(B[9 * i + j], s, 1e-10);
      }
    }
    EXPECT_EQ(1, dtac_sym_is_pd(B, 9) || lmin <= 0);
  }
}

// (b) the contact energy's gradient is minus the explicit contact force (normal penalty with
// its ramp, no damping at zero relative velocity; friction from the same anchor with the normal
// load and normal held), and its Hessian the gradient's derivative
TEST(Implicit, ContactEnergyGradientIsTheContactForce) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(-1, 1);
  int types[] = {DTAC_GEOM_SPHERE, DTAC_GEOM_BOX,      DTAC_GEOM_CAPSULE,
                 DTAC_GEOM_PLANE,  DTAC_GEOM_CYLINDER, DTAC_GEOM_ELLIPSOID};
  int ntest = 0;
  for (int type : types) {
    for (int trial = 0; trial < 40; trial++) {
      dtac_collider c = {};
      c.type = type;
      c.size[0] = 0.004;
      c.size[1] = 0.003;
      c.size[2] = 0.005;
      RandomRotation(rng, c.mat);
      for (int k = 0; k < 3; k++) c.pos[k] = 1e-3 * u(rng);
      // an ellipsoid's sdf gradient is not of unit length, which contact.h's friction takes as
      // the normal: compare its normal force only
      c.mu = type == DTAC_GEOM_ELLIPSOID ? 0 : 0.7;
      dtac_contact_node_param p = {2e3, 0.5, 1.5e3, 1e-5};
      // a point just inside the surface: below, inside, and beyond the ramp width
      double x[3], n[3];
      for (int k = 0; k < 3; k++) x[k] = c.pos[k] + 0.006 * u(rng);
      double d = dtac_collider_dist(&c, x, n);
      double target = -p.width * (0.2 + 3 * (trial % 3)) * 0.5;
      for (int k = 0; k < 3; k++) x[k] += (target - d) * n[k];
      d = dtac_collider_dist(&c, x, n);
      if (!(d < 0)) continue;
      ntest++;
      double anchor[3];
      for (int k = 0; k < 3; k++) anchor[k] = x[k] + 2e-6 * u(rng);
      double v[3] = {0, 0, 0}, f[3];
      double fn = dtac_contact_force(&p, &c, d, n, x, v, anchor, f, nullptr);
      double g[3], H[9], gf[3], Hf[9];
      dtac_contact_energy(p.kn, p.width, &c, x, g, H, 0);
      double L = c.mu * fn;
      auto fric = [&](const double* xq, double* gq, double* Hq) {
        if (L > 0) return dtac_friction_energy(L, p.kt, n, xq, anchor, gq, Hq);
        for (int k = 0; k < 3; k++) gq[k] = 0;
        for (int k = 0; Hq && k < 9; k++) Hq[k] = 0;
        return 0.0;
      };
      fric(x, gf, Hf);
      double fmag = std::sqrt(f[0] * f[0] + f[1] * f[1] + f[2] * f[2]);
      for (int k = 0; k < 3; k++) EXPECT_NEAR(-(g[k] + gf[k]), f[k], 1e-12 * fmag) << type;
      // FD: energy -> gradient, gradient -> Hessian (friction with L, n held)
      const double eps = 1e-10;
      double hmax = 0;
      for (int k = 0; k < 9; k++) hmax = std::fmax(hmax, std::fabs(H[k]) + std::fabs(Hf[k]));
      for (int j = 0; j < 3; j++) {
        double xp[3] = {x[0], x[1], x[2]}, xm[3] = {x[0], x[1], x[2]};
        xp[j] += eps;
        xm[j] -= eps;
        double gp[3], gm[3], gfp[3], gfm[3], Hd[9];
        double ep = dtac_contact_energy(p.kn, p.width, &c, xp, gp, Hd, 0) + fric(xp, gfp, nullptr);
        double em = dtac_contact_energy(p.kn, p.width, &c, xm, gm, Hd, 0) + fric(xm, gfm, nullptr);
        EXPECT_NEAR(g[j] + gf[j], (ep - em) / (2 * eps), 1e-6 * fmag) << type;
        for (int i = 0; i < 3; i++) {
          EXPECT_NEAR(H[3 * i + j] + Hf[3 * i + j], (gp[i] + gfp[i] - gm[i] - gfm[i]) / (2 * eps),
                      1e-5 * hmax)
              << type << " H " << i << j;
        }
      }
    }
  }
  EXPECT_GT(ntest, 150);
}

namespace {

// a small pad and a sphere above its top face
struct Pad {
  dtac_gel_model gm;
  dtac_gel_scratch s;
  dtac_implicit* im = nullptr;
  dtac_state_layout L;
  dtac_frame site = {{0, 0, 0}, {1, 0, 0, 0, 1, 0, 0, 0, 1}, {0, 0, 0}, {0, 0, 0}};
  dtac_collider ball = {};
  double H;
  explicit Pad(double sx, double sy, double sz, double res, double friction, double R = 0.005) {
    dtac_gel_def def;
    dtac_gel_def_default(&def);
    def.size[0] = sx;
    def.size[1] = sy;
    def.size[2] = sz;
    def.resolution = res;
    def.friction = friction;
    char err[512];
    EXPECT_EQ(0, dtac_gel_model_make(&gm, &def, 0, 0.002, err, sizeof(err))) << err;
    EXPECT_EQ(0, dtac_gel_scratch_make(&s, &gm, 2));
    im = dtac_implicit_make(&gm, 2, err, sizeof(err));
    EXPECT_NE(im, nullptr) << err;
    L = dtac_gel_state_layout(&gm);
    H = sz;
    ball.type = DTAC_GEOM_SPHERE;
    ball.geom = 3;
    ball.size[0] = R;
    ball.rbound = R;
    ball.mat[0] = ball.mat[4] = ball.mat[8] = 1;
    ball.mu = friction;
    ball.pos[2] = sz + R;
  }
  ~Pad() {
    dtac_implicit_free(im);
    dtac_gel_scratch_free(&s);
    dtac_gel_model_free(&gm);
  }
  std::vector<double> Rest() {
    std::vector<double> st(L.size);
    dtac_gel_state_rest(&gm, &site, st.data());
    return st;
  }
  // contact wrench on the ball (force, torque), N
  std::vector<double> Wrench(const std::vector<double>& st) {
    std::vector<double> ft(6, 0);
    std::vector<double> v0(3 * gm.nnode, 0);  // static: no damping
    dtac_gel_contact(&gm, st.data(), v0.data(), st.data() + L.anchor, nullptr, &ball, 1, nullptr,
                     ft.data());
    return ft;
  }
  // contact force on the ball (z), N
  double Force(const std::vector<double>& st) { return Wrench(st)[2]; }
};

}  // namespace

// (c) a collider pressed into the pad (and slid along it), then held: one implicit step per
// 2 ms reaches the same equilibrium (contact force, surface displacement) as the explicit
// integrator run to rest (issue 13, item 9: within 2 %)
struct PressCase {
  const char* name;
  int type;         // DTAC_GEOM_SPHERE, _CYLINDER (lying along x), _BOX (an edge along x down)
  double mu;        // friction
  double slide;     // slide along x after the press, m
  int nramp;        // steps of the press (twice as many slide)
};

void QuasiStaticPress(const PressCase& pc) {
  Pad pe(0.012, 0.012, 0.004, 0.001, pc.mu), pi(0.012, 0.012, 0.004, 0.001, pc.mu);
  // the collider's lowest point and its height above its frame
  double lowest = 0.005;
  for (Pad* p : {&pe, &pi}) {
    dtac_collider& c = p->ball;
    if (pc.type == DTAC_GEOM_CYLINDER) {
      c.type = DTAC_GEOM_CYLINDER;
      c.size[0] = 0.003, c.size[1] = 0.004;  // radius, half length; its axis (local z) along x
      const double R[9] = {0, 0, 1, 0, 1, 0, -1, 0, 0};
      std::copy(R, R + 9, c.mat);
      c.rbound = std::hypot(c.size[0], c.size[1]);
      lowest = c.size[0];
    } else if (pc.type == DTAC_GEOM_BOX) {
      c.type = DTAC_GEOM_BOX;
      c.size[0] = 0.004, c.size[1] = c.size[2] = 0.002;  // rotated 45 degrees about x
      double q = std::sqrt(0.5);
      const double R[9] = {1, 0, 0, 0, q, -q, 0, q, q};
      std::copy(R, R + 9, c.mat);
      c.rbound = std::sqrt(c.size[0] * c.size[0] + 2 * c.size[1] * c.size[1]);
      lowest = 2 * q * c.size[1];
      // the edge between node rows: a node on the edge's plane of symmetry is pushed to either
      // side (the box's inside distance has a kink there), and either is an equilibrium
      c.pos[1] = 0.25e-3;
    }
  }
  std::vector<double> se = pe.Rest(), si = pi.Rest();
  const double g0[3] = {0, 0, -9.81}, h = 0.002, depth = pc.type == DTAC_GEOM_BOX ? 0.5e-3 : 0.3e-3;
  int nsub = dtac_gel_substeps(&pe.gm, h);
  dtac_implicit_params prm;
  dtac_implicit_params_default(&prm);
  int nramp = pc.nramp, nslide = pc.slide > 0 ? 2 * pc.nramp : 0, nhold = 40;
  for (int i = 1; i <= nramp + nslide + nhold; i++) {
    double z = pe.H + lowest - depth * std::fmin(1.0, (double)i / nramp);
    double x = pc.slide * std::fmin(1.0, std::fmax(0.0, (double)(i - nramp) / std::fmax(nslide, 1)));
    // explicit: the collider moves at constant velocity over the step (from its start pose)
    pe.ball.vel[0] = (x - pe.ball.pos[0]) / h;
    pe.ball.vel[2] = (z - pe.ball.pos[2]) / h;
    dtac_gel_advance(&pe.gm, &pe.s, se.data(), &pe.site, &pe.ball, 1, g0, h, nsub, nullptr);
    pe.ball.pos[0] = x, pe.ball.pos[2] = z;
    pe.ball.vel[0] = pe.ball.vel[2] = 0;
    // implicit: the collider at the step end
    pi.ball.pos[0] = x, pi.ball.pos[2] = z;
    dtac_implicit_report rep;
    ASSERT_EQ(DTAC_IMPLICIT_OK, dtac_implicit_step(pi.im, &pi.gm, si.data(), &pi.site, &pi.site,
                                                   &pi.ball, 1, g0, h, &prm, &rep))
        << pc.name << " step " << i << " residual " << rep.residual;
  }
  std::vector<double> fe = pe.Wrench(se), fi = pi.Wrench(si);
  // surface displacement of the top face, against its peak
  double umax = 0, dmax = 0;
  for (int a = 0; a < pe.gm.nnode; a++) {
    if (pe.gm.X[3 * a + 2] != pe.H) continue;
    for (int k = 0; k < 3; k++) {
      double ue = se[3 * a + k] - pe.gm.X[3 * a + k];
      double ui = si[3 * a + k] - pi.gm.X[3 * a + k];
      umax = std::fmax(umax, std::fabs(ue));
      dmax = std::fmax(dmax, std::fabs(ue - ui));
    }
  }
  std::printf(
      "%-22s normal force explicit %.6g N, implicit %.6g N (%+.3f%%); tangential %.4g, %.4g N; "
      "surface displacement peak %.4g um, largest difference %.3g%% of it\n",
      pc.name, fe[2], fi[2], 100 * (fi[2] / fe[2] - 1), fe[0], fi[0], 1e6 * umax,
      100 * dmax / umax);
  EXPECT_GT(fe[2], 0.05) << pc.name;
  EXPECT_NEAR(fi[2], fe[2], 0.02 * fe[2]) << pc.name;
  // the tangential force a slide leaves (the stuck nodes' springs), against the normal force
  EXPECT_NEAR(fi[0], fe[0], 0.02 * std::fabs(fe[2])) << pc.name;
  if (pc.slide > 0 && pc.mu > 0) EXPECT_GT(std::fabs(fe[0]), 0.05 * fe[2]) << pc.name;
  EXPECT_LT(dmax, 0.02 * umax) << pc.name;
}

TEST(Implicit, QuasiStaticPressMatchesExplicitAtRest) {
  // pressed over 20 ms (slid over 40 ms); the box edge with friction over 80 ms: the friction
  // lagged per step makes the rest state depend on the path to first order in the step (pressed
  // over 20, 80, 320 ms: 7.6 %, 1.7 %, 0.33 % below the explicit force, which is the same for
  // all three), and a node under the 45-degree faces of an edge slips most
  const PressCase cases[] = {
      {"sphere, frictionless", DTAC_GEOM_SPHERE, 0.0, 0, 10},
      {"sphere", DTAC_GEOM_SPHERE, 1.0, 0, 10},
      {"cylinder", DTAC_GEOM_CYLINDER, 1.0, 0, 10},
      {"box edge, frictionless", DTAC_GEOM_BOX, 0.0, 0, 10},
      {"box edge", DTAC_GEOM_BOX, 1.0, 0, 40},
      {"sphere, slid 0.3 mm", DTAC_GEOM_SPHERE, 1.0, 0.3e-3, 10},
      {"box edge, slid 0.3 mm", DTAC_GEOM_BOX, 1.0, 0.3e-3, 40},
  };
  for (const PressCase& pc : cases) QuasiStaticPress(pc);
}

// a non-finite state is refused with a status and left as it was
TEST(Implicit, NonFiniteStateIsReportedAndLeftAlone) {
  Pad p(0.006, 0.006, 0.003, 0.001, 1.0);
  std::vector<double> st = p.Rest();
  st[3 * 5 + 1] = NAN;
  std::vector<double> before = st;
  dtac_implicit_params prm;
  dtac_implicit_params_default(&prm);
  dtac_implicit_report rep;
  const double g0[3] = {0, 0, -9.81};
  EXPECT_EQ(DTAC_IMPLICIT_NONFINITE, dtac_implicit_step(p.im, &p.gm, st.data(), &p.site, &p.site,
                                                        &p.ball, 1, g0, 0.002, &prm, &rep));
  EXPECT_EQ(0, std::memcmp(before.data(), st.data(), sizeof(double) * st.size()));
}

// (f) the same inputs give the same bits, for each solver
TEST(Implicit, DeterministicAcrossRuns) {
  for (int solver : {DTAC_SOLVE_FACTOR, DTAC_SOLVE_PCG, DTAC_SOLVE_MATFREE}) {
    std::vector<double> out[2];
    for (int run = 0; run < 2; run++) {
      Pad p(0.008, 0.008, 0.003, 0.001, 1.0);
      std::vector<double> st = p.Rest();
      dtac_implicit_params prm;
      dtac_implicit_params_default(&prm);
      prm.solver = solver;
      const double g0[3] = {0, 0, -9.81};
      for (int i = 1; i <= 6; i++) {
        p.ball.pos[2] = p.H + p.ball.size[0] - 0.1e-3 * i;
        p.ball.pos[0] = 0.05e-3 * i;
        dtac_implicit_step(p.im, &p.gm, st.data(), &p.site, &p.site, &p.ball, 1, g0, 0.002, &prm,
                           nullptr);
      }
      out[run] = st;
    }
    EXPECT_EQ(0, std::memcmp(out[0].data(), out[1].data(), sizeof(double) * out[0].size()))
        << "solver " << solver;
  }
}

// the three solvers reach the same state (to the Newton tolerance)
TEST(Implicit, SolversAgree) {
  std::vector<double> out[3];
  int n3 = 0;
  for (int solver : {DTAC_SOLVE_FACTOR, DTAC_SOLVE_PCG, DTAC_SOLVE_MATFREE}) {
    Pad p(0.008, 0.008, 0.003, 0.001, 1.0);
    std::vector<double> st = p.Rest();
    dtac_implicit_params prm;
    dtac_implicit_params_default(&prm);
    prm.solver = solver;
    prm.tolerance = 1e-9;
    const double g0[3] = {0, 0, -9.81};
    for (int i = 1; i <= 6; i++) {
      p.ball.pos[2] = p.H + p.ball.size[0] - 0.1e-3 * i;
      dtac_implicit_report rep;
      EXPECT_EQ(DTAC_IMPLICIT_OK, dtac_implicit_step(p.im, &p.gm, st.data(), &p.site, &p.site,
                                                     &p.ball, 1, g0, 0.002, &prm, &rep));
    }
    out[solver] = st;
    n3 = 3 * p.gm.nnode;
  }
  for (int s = 1; s < 3; s++) {
    double dmax = 0;
    for (int i = 0; i < n3; i++) dmax = std::fmax(dmax, std::fabs(out[s][i] - out[0][i]));
    EXPECT_LT(dmax, 1e-9) << "solver " << s;
  }
}

// the SVD-frame projection of stable Neo-Hookean's dP/dF equals the full eigen-clamp, for
// stretched, compressed and inverted F
TEST(Implicit, IsotropicProjectionEqualsFullEigenClamp) {
  std::mt19937 rng(13);
  std::uniform_real_distribution<double> u(-1, 1);
  dtac_material m;
  dtac_material_set(&m, 3e5, 0.45, 0);
  int nchanged = 0;
  for (int trial = 0; trial < 200; trial++) {
    double F[9], R[9], S[9];
    RandomRotation(rng, R);
    double amp = trial < 100 ? 0.05 : 0.6;
    for (int k = 0; k < 9; k++) S[k] = (k % 4 == 0 ? 1 : 0) + amp * u(rng);
    if (trial % 7 == 0) S[0] = -S[0];  // inverted
    dtac_mul33(F, R, S);
    double A[81], B[81];
    dtac_snh_dPdF(&m, F, A);
    std::memcpy(B, A, sizeof(A));
    int c1 = dtac_iso_project(A, F);
    int c2 = dtac_sym_project(B, 9);
    nchanged += c1;
    double amax = 0;
    for (int k = 0; k < 81; k++) amax = std::fmax(amax, std::fabs(B[k]));
    if (c1 && c2) {
      for (int k = 0; k < 81; k++) ASSERT_NEAR(A[k], B[k], 1e-8 * amax) << trial << " " << k;
    }
    EXPECT_TRUE(dtac_sym_is_pd_tol(A, 9, 1e-8)) << trial;
  }
  EXPECT_GT(nchanged, 50);
}

namespace {

// a 3-step implicit rollout of a small pad under a moving sphere (frictionless: the friction
// lag carries no cotangent), from a perturbed, moving start state
struct Rollout {
  Pad p;
  std::vector<double> s0;
  static constexpr int kSteps = 3;
  double h = 0.002;
  double g0[3] = {0, 0, -9.81};
  double ball_off[3] = {0, 0, 0};  // added to every step's sphere position
  double slide_;                   // lateral motion of the sphere per step, m
  dtac_implicit_params prm;
  explicit Rollout(double mu = 0, double slide = 0.3e-3)
      : p(0.006, 0.006, 0.003, 0.001, mu, 0.004) {
    slide_ = slide;
    dtac_implicit_params_default(&prm);
    prm.solver = DTAC_SOLVE_FACTOR;
    prm.tolerance = 1e-12;  // near the rounding floor
    prm.iterations = 60;
    prm.project = 0;
    std::mt19937 rng(21);
    std::uniform_real_distribution<double> u(-1, 1);
    s0 = p.Rest();
    for (int a = 0; a < p.gm.nnode; a++) {
      if (p.gm.fixed[a]) continue;
      for (int k = 0; k < 3; k++) {
        s0[p.L.x + 3 * a + k] += 2e-6 * u(rng);
        s0[p.L.v + 3 * a + k] = 2e-3 * u(rng);
      }
    }
  }
  void Ball(int i, dtac_collider* b) const {
    *b = p.ball;
    b->pos[0] = slide_ * i + ball_off[0];
    b->pos[1] = -0.67 * slide_ * i + ball_off[1];
    b->pos[2] = p.H + p.ball.size[0] - 0.15e-3 * (i + 1) + ball_off[2];
  }
  // states after each step (kSteps + 1 of them, the first s0)
  std::vector<std::vector<double>> Run(const std::vector<double>& start) {
    std::vector<std::vector<double>> out = {start};
    std::vector<double> st = start;
    for (int i = 0; i < kSteps; i++) {
      dtac_collider b;
      Ball(i, &b);
      dtac_implicit_report rep;
      int status =
          dtac_implicit_step(p.im, &p.gm, st.data(), &p.site, &p.site, &b, 1, g0, h, &prm, &rep);
      EXPECT_EQ(DTAC_IMPLICIT_OK, status) << "residual " << rep.residual;
      out.push_back(st);
    }
    return out;
  }
};

}  // namespace

// (e) the step VJP chained over a rollout matches central differences of the whole rollout, for
// each input separately (start positions, start velocities, site position, sphere position,
// young, poisson, damping, contact stiffness): dropping any one term fails its own check
void StepVjpRollout(int material) {
  Rollout ro;
  ro.prm.material = material;
  double projected_young = 0;
  dtac_gel_model& gm = ro.p.gm;
  int n3 = 3 * gm.nnode;
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<double> wx(n3), wv(n3);
  for (int i = 0; i < n3; i++) {
    wx[i] = u(rng);
    wv[i] = 1e-3 * u(rng);
  }
  auto loss = [&](const std::vector<double>& st) {
    double l = 0;
    for (int i = 0; i < n3; i++) l += wx[i] * st[ro.p.L.x + i] + wv[i] * st[ro.p.L.v + i];
    return l;
  };
  std::vector<std::vector<double>> traj = ro.Run(ro.s0);
  int ncontact = 0;
  for (int s = 0; s < gm.nsurf; s++) ncontact += traj.back()[ro.p.L.anchor + 4 * s] >= 0;
  EXPECT_GT(ncontact, 4);

  // the projected Hessian in the adjoint solve (what the IFT does not ask for) changes the
  // gradient: measured here against the true one, whose check follows
  if (material == DTAC_MAT_NEOHOOKEAN) {
    Rollout rp;
    rp.prm.adj_projected = 1;
    std::vector<std::vector<double>> tp = rp.Run(rp.s0);
    std::vector<double> pxb(wx), pvb(wv), px0b(n3), pv0b(n3);
    double pyoung = 0;
    for (int i = Rollout::kSteps - 1; i >= 0; i--) {
      std::fill(px0b.begin(), px0b.end(), 0);
      std::fill(pv0b.begin(), pv0b.end(), 0);
      dtac_implicit_bar bar = {};
      bar.x0 = px0b.data();
      bar.v0 = pv0b.data();
      dtac_collider b;
      rp.Ball(i, &b);
      ASSERT_EQ(
          0, dtac_implicit_step_adj(rp.p.im, &rp.p.gm, tp[i].data(), tp[i + 1].data(), &rp.p.site,
                                    &b, 1, rp.g0, rp.h, &rp.prm, pxb.data(), pvb.data(), &bar));
      pyoung += bar.young;
      pxb = px0b;
      pvb = pv0b;
    }
    projected_young = pyoung;
  }

  // reverse: steps last to first
  std::vector<double> xb(wx), vb(wv), x0b(n3), v0b(n3);
  double site_pos_b[3] = {0, 0, 0}, ball_b[3] = {0, 0, 0};
  double site_mat_b[9] = {0}, site_vel_b[3] = {0, 0, 0}, site_w_b[3] = {0, 0, 0};
  double young_b = 0, poisson_b = 0, damping_b = 0, kc_b = 0, rho_b = 0;
  for (int i = Rollout::kSteps - 1; i >= 0; i--) {
    std::fill(x0b.begin(), x0b.end(), 0);
    std::fill(v0b.begin(), v0b.end(), 0);
    double colb[3] = {0, 0, 0};
    dtac_implicit_bar bar = {};
    bar.x0 = x0b.data();
    bar.v0 = v0b.data();
    bar.col_pos = colb;
    dtac_collider b;
    ro.Ball(i, &b);
    ASSERT_EQ(
        0, dtac_implicit_step_adj(ro.p.im, &gm, traj[i].data(), traj[i + 1].data(), &ro.p.site, &b,
                                  1, ro.g0, ro.h, &ro.prm, xb.data(), vb.data(), &bar));
    for (int k = 0; k < 3; k++) {
      site_pos_b[k] += bar.site1.pos[k];
      site_vel_b[k] += bar.site1.vel[k];
      site_w_b[k] += bar.site1.angvel[k];
      ball_b[k] += colb[k];
    }
    for (int k = 0; k < 9; k++) site_mat_b[k] += bar.site1.mat[k];
    young_b += bar.young;
    poisson_b += bar.poisson;
    damping_b += bar.damping;
    kc_b += bar.contact_stiffness;
    rho_b += bar.density;
    xb = x0b;
    vb = v0b;
  }

  // central differences of the whole rollout, one input at a time
  auto check = [&](const char* what, double ad, auto perturb, double eps) {
    perturb(+eps);
    double lp = loss(ro.Run(ro.s0).back());
    perturb(-2 * eps);
    double lm = loss(ro.Run(ro.s0).back());
    perturb(+eps);
    double fd = (lp - lm) / (2 * eps);
    std::printf("%-18s adjoint %+.9e  central difference %+.9e  rel %.2e\n", what, ad, fd,
                std::fabs(ad - fd) / std::fmax(std::fabs(fd), 1e-300));
    EXPECT_NEAR(ad, fd, 1e-5 * std::fabs(fd)) << what;
    EXPECT_GT(std::fabs(fd), 0) << what;
  };
  std::vector<double> dir(n3), dirv(n3);
  for (int i = 0; i < n3; i++) {
    dir[i] = u(rng);
    dirv[i] = u(rng);
  }
  double adx = 0, adv = 0;
  for (int i = 0; i < n3; i++) {
    adx += xb[i] * dir[i];
    adv += vb[i] * dirv[i];
  }
  check(
      "start positions", adx,
      [&](double e) {
        for (int i = 0; i < n3; i++) ro.s0[ro.p.L.x + i] += e * dir[i];
      },
      1e-8);
  check(
      "start velocities", adv,
      [&](double e) {
        for (int i = 0; i < n3; i++) ro.s0[ro.p.L.v + i] += e * dirv[i];
      },
      1e-3);
  for (int k = 0; k < 3; k++) {
    char name[32];
    std::snprintf(name, sizeof(name), "site pos %d", k);
    check(
        name, site_pos_b[k], [&](double e) { ro.p.site.pos[k] += e; }, 1e-8);
    std::snprintf(name, sizeof(name), "sphere pos %d", k);
    check(
        name, ball_b[k], [&](double e) { ro.ball_off[k] += e; }, 1e-8);
    std::snprintf(name, sizeof(name), "site vel %d", k);
    check(
        name, site_vel_b[k], [&](double e) { ro.p.site.vel[k] += e; }, 1e-4);
    std::snprintf(name, sizeof(name), "site angvel %d", k);
    check(
        name, site_w_b[k], [&](double e) { ro.p.site.angvel[k] += e; }, 1e-3);
    // orientation: mat <- exp(e [u_k]x) mat, d mat / de = [u_k]x mat
    double K[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0}, KM[9];
    int i1 = (k + 1) % 3, i2 = (k + 2) % 3;
    K[3 * i2 + i1] = 1;
    K[3 * i1 + i2] = -1;
    dtac_mul33(KM, K, ro.p.site.mat);
    double adr = 0;
    for (int m = 0; m < 9; m++) adr += site_mat_b[m] * KM[m];
    std::snprintf(name, sizeof(name), "site rot %d", k);
    check(
        name, adr,
        [&](double e) {
          double phi[3] = {0, 0, 0}, R[9], M[9];
          phi[k] = e;
          dtac_rotvec_mat(phi, R);
          dtac_mul33(M, R, ro.p.site.mat);
          std::memcpy(ro.p.site.mat, M, sizeof(M));
        },
        1e-7);
  }
  char err[256];
  auto param = [&](int k, double rel) {
    return [&, k, rel](double e) {
      double v = dtac_gel_param_get(&gm, k);
      ASSERT_EQ(0, dtac_gel_param_set(&gm, k, v + e * rel, err, sizeof(err))) << err;
    };
  };
  double E = dtac_gel_param_get(&gm, DTAC_PARAM_YOUNG);
  double nu = dtac_gel_param_get(&gm, DTAC_PARAM_POISSON);
  double beta = dtac_gel_param_get(&gm, DTAC_PARAM_DAMPING);
  double kc = dtac_gel_param_get(&gm, DTAC_PARAM_CONTACT_STIFFNESS);
  EXPECT_GT(beta, 0);
  check("young", young_b * E, param(DTAC_PARAM_YOUNG, E), 1e-6);
  // the projected Hessian's gradient misses the tolerance the true one meets (the linear
  // material's Hessian is never projected)
  if (material == DTAC_MAT_NEOHOOKEAN) {
    std::printf("young with the projected Hessian in the adjoint: %+.9e (rel. to true %.2e)\n",
                projected_young * E, std::fabs(projected_young / young_b - 1));
    EXPECT_GT(std::fabs(projected_young / young_b - 1), 1e-3);
  }
  check("poisson", poisson_b * nu, param(DTAC_PARAM_POISSON, nu), 1e-6);
  check("damping", damping_b * beta, param(DTAC_PARAM_DAMPING, beta), 1e-3);
  check("contact stiffness", kc_b * kc, param(DTAC_PARAM_CONTACT_STIFFNESS, kc), 1e-6);
  // density: every lumped mass scales with it (no dtac_gel_param for it yet)
  double rho = gm.def.density;
  check(
      "density", rho_b * rho,
      [&](double e) {
        double f = (gm.def.density + e * rho) / gm.def.density;
        for (int a = 0; a < gm.nnode; a++) {
          gm.mass[a] *= f;
          if (gm.inv_mass[a] > 0) gm.inv_mass[a] /= f;
        }
        gm.def.density += e * rho;
      },
      1e-4);
}

TEST(Implicit, StepVjpMatchesFiniteDifferencesOfRollout) { StepVjpRollout(DTAC_MAT_NEOHOOKEAN); }

// the linear material, measured in the gel's frame: the site's rotation reaches its energy
TEST(Implicit, LinearMaterialStepVjpMatchesFiniteDifferencesOfRollout) {
  StepVjpRollout(DTAC_MAT_LINEAR);
}

namespace {

// node coordinates from 0: `nfine` cells of `h` up to `h*nfine`, then cells growing by `g` to L
// (the grading of test_hertz.cc)
std::vector<double> GradedImplicit(double h, int nfine, double g, double L) {
  std::vector<double> c = {0};
  double w = h;
  while (c.back() < L - 1e-12) {
    if ((int)c.size() > nfine) w *= g;
    c.push_back(std::fmin(L, c.back() + w));
    if (L - c.back() < 0.5 * w) c.back() = L;
  }
  return c;
}

struct HertzImplicit {
  double err_raw, err, a, a_ref, depth;
};

// test_hertz.cc's press (quarter block, symmetry planes locked, graded grid, penalty 10 E/h),
// with the real masses and a few implicit steps of 10 ms instead of mass-scaled damped dynamics
HertzImplicit PressImplicit(double ds, double cells_per_a) {
  const double E = 3e5, nu = 0.3, R = 0.005, depth_a = 15;
  const double Estar = E / (1 - nu * nu);
  const double a_est = std::sqrt(R * ds), hfine = a_est / cells_per_a;
  const double L = depth_a * a_est, H = depth_a * a_est;
  std::vector<double> cx = GradedImplicit(hfine, (int)std::ceil(1.6 * a_est / hfine), 1.3, L);
  std::vector<double> depth = GradedImplicit(hfine, (int)std::ceil(1.0 * a_est / hfine), 1.3, H);
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
  def.friction = 0;
  def.contact_stiffness = 10 * E / hfine;
  dtac_gel_model gm;
  char err[512];
  EXPECT_EQ(0, dtac_gel_model_make_grid(&gm, &def, ncell, coords, 0, 0, err, sizeof(err))) << err;
  for (int a = 0; a < gm.nnode; a++) {
    if (gm.X[3 * a] == 0) gm.lock[a] |= 1;
    if (gm.X[3 * a + 1] == 0) gm.lock[a] |= 2;
  }
  dtac_implicit* im = dtac_implicit_make(&gm, 1, err, sizeof(err));
  EXPECT_NE(im, nullptr) << err;
  if (getenv("DTAC_VERBOSE")) std::printf("%d nodes, %d dofs\n", gm.nnode, dtac_implicit_ndof(im));
  dtac_state_layout Ly = dtac_gel_state_layout(&gm);
  std::vector<double> state(Ly.size);
  dtac_frame site = {{0, 0, 0}, {1, 0, 0, 0, 1, 0, 0, 0, 1}, {0, 0, 0}, {0, 0, 0}};
  dtac_gel_state_rest(&gm, &site, state.data());
  dtac_collider ball = {};
  ball.type = DTAC_GEOM_SPHERE;
  ball.size[0] = R;
  ball.mat[0] = ball.mat[4] = ball.mat[8] = 1;
  const double g0[3] = {0, 0, 0};
  dtac_implicit_params prm;
  dtac_implicit_params_default(&prm);
  prm.tolerance = 1e-8;
  prm.iterations = 40;
  prm.project = 0;  // the true Hessian converges in fewer iterations; projected where indefinite
  int nramp = 5, nhold = 2;
  for (int i = 1; i <= nramp + nhold; i++) {
    ball.pos[2] = H + R - std::fmin(1.0, (double)i / nramp) * ds;
    dtac_implicit_report rep;
    EXPECT_EQ(DTAC_IMPLICIT_OK, dtac_implicit_step(im, &gm, state.data(), &site, &site, &ball, 1,
                                                   g0, 0.01, &prm, &rep))
        << "step " << i << " residual " << rep.residual;
    if (getenv("DTAC_VERBOSE"))
      std::printf(
          "step %d: newton %d cg %d factor %d  [grad %.2f asm %.2f fact %.2f solve %.2f] s\n", i,
          rep.iterations, rep.ncg, rep.nfactor, rep.t_grad, rep.t_assemble, rep.t_factor,
          rep.t_solve);
  }
  std::vector<double> ft(6, 0), v0(3 * gm.nnode, 0);
  dtac_gel_contact(&gm, state.data(), v0.data(), state.data() + Ly.anchor, nullptr, &ball, 1,
                   nullptr, ft.data());
  double force = 4 * ft[2], dep = 0, radius = 0;
  for (int si = 0; si < gm.nsurf; si++) {
    int a = gm.surf[si];
    const double* x = state.data() + 3 * a;
    if (gm.X[3 * a + 2] != H) continue;
    if (gm.X[3 * a] == 0 && gm.X[3 * a + 1] == 0) dep = H - x[2];
    double n[3];
    if (dtac_collider_dist(&ball, x, n) < 0)
      radius = std::fmax(radius, std::hypot(gm.X[3 * a], gm.X[3 * a + 1]));
  }
  dtac_implicit_free(im);
  dtac_gel_model_free(&gm);
  double tail = force * (1 + nu) * (3 - 2 * nu) / (2 * 3.14159265358979 * E * H);
  double d = dep + tail;
  HertzImplicit c;
  c.err_raw = force / (4.0 / 3.0 * Estar * std::sqrt(R) * std::pow(dep, 1.5)) - 1;
  c.err = force / (4.0 / 3.0 * Estar * std::sqrt(R) * std::pow(d, 1.5)) - 1;
  c.a = radius;
  c.a_ref = std::sqrt(R * d);
  c.depth = dep;
  std::printf(
      "implicit Hertz: d=%.4g mm  F=%.5g N  err vs Hertz %+.2f%% (raw %+.2f%%)  a=%.4g mm "
      "(Hertz %.4g, cell %.3g)\n",
      1e3 * dep, force, 100 * c.err, 100 * c.err_raw, 1e3 * radius, 1e3 * c.a_ref, 1e3 * hfine);
  EXPECT_NEAR(dep, ds, 0.05 * ds);
  EXPECT_NEAR(c.a, c.a_ref, hfine + 0.05 * c.a_ref);
  return c;
}

}  // namespace

// (d) tests/kernels/test_hertz.cc's bounds, with the implicit step reaching the static answer
TEST(Implicit, HertzForceMatchesTheoryOnThickBlock) {
  for (double ds : {0.1e-3, 0.2e-3}) {
    if (getenv("DTAC_HERTZ_ONE") && ds > 0.15e-3) break;
    HertzImplicit c = PressImplicit(ds, 6);
    EXPECT_LT(std::fabs(c.err), 0.05);
    EXPECT_LT(std::fabs(c.err_raw), 0.10);
    // the explicit integrator's settled answer is +0.36 % and +0.13 % here (test_hertz.cc)
    EXPECT_LT(std::fabs(c.err), 0.004);
  }
}

// a violent step (the sphere jammed 1.5 mm into a 3 mm pad at once, and a stiff contact) never
// leaves a non-finite state: it converges or says why, and the state stays finite
TEST(Implicit, ViolentStepStaysFinite) {
  Pad p(0.008, 0.008, 0.003, 0.001, 1.0);
  std::vector<double> st = p.Rest();
  dtac_implicit_params prm;
  dtac_implicit_params_default(&prm);
  prm.iterations = 8;
  const double g0[3] = {0, 0, -9.81};
  for (int i = 0; i < 3; i++) {
    p.ball.pos[2] = p.H + p.ball.size[0] - 1.5e-3;
    p.ball.pos[0] = 1e-3 * i;
    dtac_implicit_report rep;
    int status = dtac_implicit_step(p.im, &p.gm, st.data(), &p.site, &p.site, &p.ball, 1, g0, 0.002,
                                    &prm, &rep);
    EXPECT_TRUE(status == DTAC_IMPLICIT_OK || status == DTAC_IMPLICIT_MAXITER ||
                status == DTAC_IMPLICIT_LINESEARCH)
        << status;
    for (double v : st) ASSERT_TRUE(std::isfinite(v));
    std::printf("violent step %d: status %d, %d iterations, residual %.2g, min det F %.3f\n", i,
                status, rep.iterations, rep.residual, rep.min_J);
  }
}

// the reactions of a held press: on the sphere they equal the explicit contact's (frictionless,
// at rest), and the gel is in balance: force on the sphere + force on the site's body = weight
TEST(Implicit, ReactionsBalanceAtRest) {
  Pad p(0.010, 0.010, 0.004, 0.001, 0.0);
  std::vector<double> st = p.Rest(), prev;
  dtac_implicit_params prm;
  dtac_implicit_params_default(&prm);
  prm.tolerance = 1e-9;
  const double g0[3] = {0, 0, -9.81}, h = 0.002;
  for (int i = 1; i <= 30; i++) {
    p.ball.pos[2] = p.H + p.ball.size[0] - 0.3e-3 * std::fmin(1.0, i / 5.0);
    prev = st;
    ASSERT_EQ(DTAC_IMPLICIT_OK, dtac_implicit_step(p.im, &p.gm, st.data(), &p.site, &p.site,
                                                   &p.ball, 1, g0, h, &prm, nullptr));
  }
  double col_ft[6], site_ft[6];
  dtac_implicit_reactions(p.im, &p.gm, prev.data(), st.data(), &p.site, &p.ball, 1, g0, h,
                          prm.material, col_ft, site_ft);
  double fe = p.Force(st);
  // the weight of the free nodes (the back face's is held by the site, not modelled)
  double weight = 0;
  for (int a = 0; a < p.gm.nnode; a++) weight += p.gm.fixed[a] ? 0 : p.gm.mass[a] * g0[2];
  std::printf("on the sphere %.6g N (explicit contact %.6g N), on the site %.6g N, weight %.3g N\n",
              col_ft[2], fe, site_ft[2], weight);
  EXPECT_GT(col_ft[2], 0.05);
  EXPECT_NEAR(col_ft[2], fe, 1e-9 * fe);
  for (int k = 0; k < 3; k++) {
    double w = k == 2 ? weight : 0;
    EXPECT_NEAR(col_ft[k] + site_ft[k], w, 1e-4 * col_ft[2]) << k;
  }
}

// (e, friction) one step with stuck contact nodes (anchors from three frictional steps before):
// the VJP, through the friction lag (normal load and normal from the start positions), matches
// central differences of the step, input by input (the anchors are state and held here)
TEST(Implicit, StepVjpWithFrictionMatchesFiniteDifferences) {
  Pad p(0.006, 0.006, 0.003, 0.001, 0.8, 0.004);
  dtac_gel_model& gm = p.gm;
  int n3 = 3 * gm.nnode;
  dtac_implicit_params prm;
  dtac_implicit_params_default(&prm);
  prm.solver = DTAC_SOLVE_FACTOR;
  prm.tolerance = 1e-12;
  prm.iterations = 60;
  const double g0[3] = {0, 0, -9.81}, h = 0.002;
  std::vector<double> s0 = p.Rest();
  auto ball_at = [&](int i, double* off) {
    dtac_collider b = p.ball;
    b.pos[0] = 0.02e-3 * i + off[0];
    b.pos[1] = off[1];
    b.pos[2] = p.H + p.ball.size[0] - 0.15e-3 * (i + 1) + off[2];
    return b;
  };
  double off[3] = {0, 0, 0};
  for (int i = 0; i < 3; i++) {
    dtac_collider b = ball_at(i, off);
    ASSERT_EQ(DTAC_IMPLICIT_OK, dtac_implicit_step(p.im, &gm, s0.data(), &p.site, &p.site, &b, 1,
                                                   g0, h, &prm, nullptr));
  }
  int nstuck = 0;
  for (int s = 0; s < gm.nsurf; s++) nstuck += (int)s0[p.L.anchor + 4 * s] == p.ball.geom;
  EXPECT_GT(nstuck, 4);
  std::printf("%d contact nodes stuck at the step start\n", nstuck);
  std::mt19937 rng(9);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<double> wx(n3), wv(n3), dir(n3);
  for (int i = 0; i < n3; i++) {
    wx[i] = u(rng);
    wv[i] = 1e-3 * u(rng);
    dir[i] = u(rng);
  }
  auto run = [&]() {
    std::vector<double> st = s0;
    dtac_collider b = ball_at(3, off);
    EXPECT_EQ(DTAC_IMPLICIT_OK, dtac_implicit_step(p.im, &gm, st.data(), &p.site, &p.site, &b, 1,
                                                   g0, h, &prm, nullptr));
    double l = 0;
    for (int i = 0; i < n3; i++) l += wx[i] * st[p.L.x + i] + wv[i] * st[p.L.v + i];
    return std::make_pair(l, st);
  };
  std::vector<double> s1 = run().second;
  std::vector<double> x0b(n3, 0), v0b(n3, 0);
  double colb[3] = {0, 0, 0}, mub = 0;
  dtac_implicit_bar bar = {};
  bar.x0 = x0b.data();
  bar.v0 = v0b.data();
  bar.col_pos = colb;
  bar.col_mu = &mub;
  dtac_collider b = ball_at(3, off);
  ASSERT_EQ(0, dtac_implicit_step_adj(p.im, &gm, s0.data(), s1.data(), &p.site, &b, 1, g0, h, &prm,
                                      wx.data(), wv.data(), &bar));
  auto check = [&](const char* what, double ad, auto perturb, double eps) {
    perturb(+eps);
    double lp = run().first;
    perturb(-2 * eps);
    double lm = run().first;
    perturb(+eps);
    double fd = (lp - lm) / (2 * eps);
    std::printf("%-18s adjoint %+.9e  central difference %+.9e  rel %.2e\n", what, ad, fd,
                std::fabs(ad - fd) / std::fmax(std::fabs(fd), 1e-300));
    EXPECT_NEAR(ad, fd, 1e-5 * std::fabs(fd)) << what;
  };
  double adx = 0;
  for (int i = 0; i < n3; i++) adx += x0b[i] * dir[i];
  check(
      "start positions", adx,
      [&](double e) {
        for (int i = 0; i < n3; i++) s0[p.L.x + i] += e * dir[i];
      },
      1e-8);
  for (int k = 0; k < 3; k++) {
    char name[32];
    std::snprintf(name, sizeof(name), "sphere pos %d", k);
    check(
        name, colb[k], [&](double e) { off[k] += e; }, 1e-8);
  }
  check(
      "friction", mub * p.ball.mu, [&](double e) { p.ball.mu += e * 0.8; }, 1e-4);
  char err[256];
  double kc = dtac_gel_param_get(&gm, DTAC_PARAM_CONTACT_STIFFNESS);
  check(
      "contact stiffness", bar.contact_stiffness * kc,
      [&](double e) {
        double v = dtac_gel_param_get(&gm, DTAC_PARAM_CONTACT_STIFFNESS);
        ASSERT_EQ(
            0, dtac_gel_param_set(&gm, DTAC_PARAM_CONTACT_STIFFNESS, v + e * kc, err, sizeof(err)));
      },
      1e-6);
}

// (e, friction) a 3-step rollout with friction, the sphere sliding slowly enough that the nodes
// stick: the VJP chained through the anchors (state) matches central differences of the rollout
TEST(Implicit, StepVjpWithFrictionMatchesFiniteDifferencesOfRollout) {
  Rollout ro(0.8, 0.01e-3);
  dtac_gel_model& gm = ro.p.gm;
  int n3 = 3 * gm.nnode, na = 4 * gm.nsurf;
  std::mt19937 rng(15);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<double> wx(n3), wv(n3), dir(n3);
  for (int i = 0; i < n3; i++) {
    wx[i] = u(rng);
    wv[i] = 1e-3 * u(rng);
    dir[i] = u(rng);
  }
  auto loss = [&](const std::vector<double>& st) {
    double l = 0;
    for (int i = 0; i < n3; i++) l += wx[i] * st[ro.p.L.x + i] + wv[i] * st[ro.p.L.v + i];
    return l;
  };
  std::vector<std::vector<double>> traj = ro.Run(ro.s0);
  int nstuck = 0;
  for (int s = 0; s < gm.nsurf; s++) nstuck += (int)traj[2][ro.p.L.anchor + 4 * s] >= 0;
  std::printf("%d contact nodes anchored after step 2\n", nstuck);
  EXPECT_GT(nstuck, 4);
  std::vector<double> xb(wx), vb(wv), x0b(n3), v0b(n3), ab1(na, 0), ab0(na);
  double ball_b[3] = {0, 0, 0}, kc_b = 0, mu_b = 0;
  for (int i = Rollout::kSteps - 1; i >= 0; i--) {
    std::fill(x0b.begin(), x0b.end(), 0);
    std::fill(v0b.begin(), v0b.end(), 0);
    std::fill(ab0.begin(), ab0.end(), 0);
    double colb[3] = {0, 0, 0}, mub = 0;
    dtac_implicit_bar bar = {};
    bar.x0 = x0b.data();
    bar.v0 = v0b.data();
    bar.col_pos = colb;
    bar.col_mu = &mub;
    bar.anchor1 = ab1.data();
    bar.anchor0 = ab0.data();
    dtac_collider b;
    ro.Ball(i, &b);
    ASSERT_EQ(
        0, dtac_implicit_step_adj(ro.p.im, &gm, traj[i].data(), traj[i + 1].data(), &ro.p.site, &b,
                                  1, ro.g0, ro.h, &ro.prm, xb.data(), vb.data(), &bar));
    for (int k = 0; k < 3; k++) ball_b[k] += colb[k];
    kc_b += bar.contact_stiffness;
    mu_b += mub;
    xb = x0b;
    vb = v0b;
    ab1 = ab0;
  }
  auto check = [&](const char* what, double ad, auto perturb, double eps) {
    perturb(+eps);
    double lp = loss(ro.Run(ro.s0).back());
    perturb(-2 * eps);
    double lm = loss(ro.Run(ro.s0).back());
    perturb(+eps);
    double fd = (lp - lm) / (2 * eps);
    std::printf("%-18s adjoint %+.9e  central difference %+.9e  rel %.2e\n", what, ad, fd,
                std::fabs(ad - fd) / std::fmax(std::fabs(fd), 1e-300));
    EXPECT_NEAR(ad, fd, 1e-5 * std::fabs(fd)) << what;
  };
  double adx = 0;
  for (int i = 0; i < n3; i++) adx += xb[i] * dir[i];
  check(
      "start positions", adx,
      [&](double e) {
        for (int i = 0; i < n3; i++) ro.s0[ro.p.L.x + i] += e * dir[i];
      },
      1e-8);
  for (int k = 0; k < 3; k++) {
    char name[32];
    std::snprintf(name, sizeof(name), "sphere pos %d", k);
    check(
        name, ball_b[k], [&](double e) { ro.ball_off[k] += e; }, 1e-8);
  }
  check(
      "friction", mu_b * 0.8, [&](double e) { ro.p.ball.mu += e * 0.8; }, 1e-3);
  char err[256];
  double kc = dtac_gel_param_get(&gm, DTAC_PARAM_CONTACT_STIFFNESS);
  check(
      "contact stiffness", kc_b * kc,
      [&](double e) {
        double v = dtac_gel_param_get(&gm, DTAC_PARAM_CONTACT_STIFFNESS);
        ASSERT_EQ(
            0, dtac_gel_param_set(&gm, DTAC_PARAM_CONTACT_STIFFNESS, v + e * kc, err, sizeof(err)));
      },
      1e-6);
}

// the linear material: close to Neo-Hookean at a small press, and its kept constant matrix
// follows a parameter change (a step after dtac_gel_param_set of young equals a fresh solver's)
TEST(Implicit, LinearMaterialStepFollowsParameters) {
  Pad p(0.008, 0.008, 0.003, 0.001, 0.0);
  dtac_implicit_params prm;
  dtac_implicit_params_default(&prm);
  prm.tolerance = 1e-10;
  const double g0[3] = {0, 0, -9.81}, h = 0.002;
  std::vector<double> sl = p.Rest(), sn = p.Rest();
  for (int i = 1; i <= 8; i++) {
    p.ball.pos[2] = p.H + p.ball.size[0] - 0.05e-3 * std::fmin(i, 4);
    prm.material = DTAC_MAT_LINEAR;
    ASSERT_EQ(DTAC_IMPLICIT_OK, dtac_implicit_step(p.im, &p.gm, sl.data(), &p.site, &p.site,
                                                   &p.ball, 1, g0, h, &prm, nullptr));
    prm.material = DTAC_MAT_NEOHOOKEAN;
    ASSERT_EQ(DTAC_IMPLICIT_OK, dtac_implicit_step(p.im, &p.gm, sn.data(), &p.site, &p.site,
                                                   &p.ball, 1, g0, h, &prm, nullptr));
  }
  double fl = p.Force(sl), fn = p.Force(sn);
  std::printf("0.2 mm press: linear %.6g N, Neo-Hookean %.6g N (%+.2f%%)\n", fl, fn,
              100 * (fl / fn - 1));
  EXPECT_NEAR(fl, fn, 0.03 * fn);
  // young doubled: the kept solver and a fresh one take the same step
  char err[256];
  ASSERT_EQ(0, dtac_gel_param_set(&p.gm, DTAC_PARAM_YOUNG, 2 * p.gm.def.young, err, sizeof(err)));
  prm.material = DTAC_MAT_LINEAR;
  std::vector<double> a = sl, b = sl;
  ASSERT_EQ(DTAC_IMPLICIT_OK, dtac_implicit_step(p.im, &p.gm, a.data(), &p.site, &p.site, &p.ball,
                                                 1, g0, h, &prm, nullptr));
  dtac_implicit* fresh = dtac_implicit_make(&p.gm, 2, err, sizeof(err));
  ASSERT_NE(fresh, nullptr) << err;
  ASSERT_EQ(DTAC_IMPLICIT_OK, dtac_implicit_step(fresh, &p.gm, b.data(), &p.site, &p.site, &p.ball,
                                                 1, g0, h, &prm, nullptr));
  // the step's result does not show a stale Hessian (the gradient decides it), its VJP does
  int n3 = 3 * p.gm.nnode;
  std::vector<double> xb(n3, 1.0), vb(n3, 0.0), ga(n3, 0), gb(n3, 0), va(n3, 0), vbb(n3, 0);
  dtac_implicit_bar bara = {}, barb = {};
  bara.x0 = ga.data();
  bara.v0 = va.data();
  barb.x0 = gb.data();
  barb.v0 = vbb.data();
  ASSERT_EQ(0, dtac_implicit_step_adj(p.im, &p.gm, sl.data(), a.data(), &p.site, &p.ball, 1, g0, h,
                                      &prm, xb.data(), vb.data(), &bara));
  ASSERT_EQ(0, dtac_implicit_step_adj(fresh, &p.gm, sl.data(), b.data(), &p.site, &p.ball, 1, g0, h,
                                      &prm, xb.data(), vb.data(), &barb));
  dtac_implicit_free(fresh);
  EXPECT_NEAR(bara.young, barb.young, 1e-6 * std::fabs(barb.young));
  EXPECT_GT(std::fabs(barb.young), 0);
  double dmax = 0, umax = 0;
  for (int i = 0; i < 3 * p.gm.nnode; i++) {
    dmax = std::fmax(dmax, std::fabs(a[i] - b[i]));
    umax = std::fmax(umax, std::fabs(a[i] - sl[i]));
  }
  EXPECT_GT(umax, 1e-7);  // the stiffer gel moved
  EXPECT_LT(dmax, 1e-6 * umax);
}
