// Adjoints of the FEM element: every vector-Jacobian product against central finite differences
// of its forward, in double precision, on random inputs (inverted elements included).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "fem.h"

namespace {

struct Tet {
  double X[4][3], x[12], v[12], Dm_inv[9], vol;
};

Tet RandomTet(std::mt19937& rng, bool invert) {
  std::normal_distribution<double> n01(0, 1);
  Tet t;
  // a well-shaped rest tet of ~1 mm, then a random deformation and velocity
  const double base[4][3] = {{0, 0, 0}, {1e-3, 0, 0}, {0, 1e-3, 0}, {0, 0, 1e-3}};
  for (int i = 0; i < 4; i++) {
    for (int k = 0; k < 3; k++) t.X[i][k] = base[i][k] + 1e-4 * n01(rng);
  }
  t.vol = dtac_tet_rest(t.X[0], t.X[1], t.X[2], t.X[3], t.Dm_inv);
  for (int i = 0; i < 4; i++) {
    for (int k = 0; k < 3; k++) {
      t.x[3 * i + k] = t.X[i][k] + 2e-4 * n01(rng);
      t.v[3 * i + k] = 0.1 * n01(rng);
    }
  }
  if (invert) {
    for (int k = 0; k < 3; k++) t.x[9 + k] = t.x[k] - (t.x[9 + k] - t.x[k]);  // flip vertex 3
  }
  return t;
}

double Dot(const double* a, const double* b, int n) {
  double s = 0;
  for (int i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

// <f_bar, f(x, v)> for a material
double Objective(const dtac_material& mat, const Tet& t, const double* x, const double* v,
                 const double* fbar) {
  double f[12];
  dtac_tet_force(&mat, x, x + 3, x + 6, x + 9, v, v + 3, v + 6, v + 9, t.Dm_inv, t.vol, f);
  return Dot(f, fbar, 12);
}

}  // namespace

TEST(FemAdjoint, TetForceMatchesFiniteDifferencesInPositionsAndVelocities) {
  std::mt19937 rng(7);
  std::normal_distribution<double> n01(0, 1);
  int checked = 0;
  for (int trial = 0; trial < 40; trial++) {
    Tet t = RandomTet(rng, trial % 4 == 3);
    dtac_material mat;
    dtac_material_set(&mat, 3e5 * (1 + 0.5 * std::fabs(n01(rng))), 0.2 + 0.25 * (trial % 3) / 2.0,
                      1e-4 * std::fabs(n01(rng)));
    double fbar[12], xbar[12] = {0}, vbar[12] = {0};
    for (double& g : fbar) g = n01(rng);
    dtac_tet_force_adj(&mat, t.x, t.x + 3, t.x + 6, t.x + 9, t.v, t.v + 3, t.v + 6, t.v + 9,
                       t.Dm_inv, t.vol, fbar, xbar, vbar, nullptr);
    for (int i = 0; i < 12; i++) {
      double xp[12], xm[12], vp[12], vm[12];
      std::copy(t.x, t.x + 12, xp);
      std::copy(t.x, t.x + 12, xm);
      std::copy(t.v, t.v + 12, vp);
      std::copy(t.v, t.v + 12, vm);
      const double hx = 1e-9, hv = 1e-4;
      xp[i] += hx;
      xm[i] -= hx;
      vp[i] += hv;
      vm[i] -= hv;
      double fdx = (Objective(mat, t, xp, t.v, fbar) - Objective(mat, t, xm, t.v, fbar)) / (2 * hx);
      double fdv = (Objective(mat, t, t.x, vp, fbar) - Objective(mat, t, t.x, vm, fbar)) / (2 * hv);
      double sx = std::fabs(fdx) + 1e-3 * mat.mu * 1e-3, sv = std::fabs(fdv) + 1e-6;
      EXPECT_NEAR(xbar[i], fdx, 1e-6 * sx + 1e-6 * mat.mu * 1e-3) << "trial " << trial << " x" << i;
      EXPECT_NEAR(vbar[i], fdv, 1e-6 * sv) << "trial " << trial << " v" << i;
      checked++;
    }
  }
  EXPECT_EQ(checked, 480);
}

TEST(FemAdjoint, MaterialParametersMatchFiniteDifferences) {
  std::mt19937 rng(11);
  std::normal_distribution<double> n01(0, 1);
  for (int trial = 0; trial < 20; trial++) {
    Tet t = RandomTet(rng, trial % 5 == 4);
    double E = 3e5 * (1 + 0.3 * std::fabs(n01(rng))), nu = 0.1 + std::fmod(0.035 * trial, 0.39);
    double beta = 1e-4 * (0.5 + std::fabs(n01(rng)));
    double fbar[12], xbar[12] = {0}, vbar[12] = {0};
    for (double& g : fbar) g = n01(rng);
    dtac_material mat;
    dtac_material_set(&mat, E, nu, beta);
    dtac_material_adj ma = {0, 0, 0, 0, 0, 0};
    dtac_tet_force_adj(&mat, t.x, t.x + 3, t.x + 6, t.x + 9, t.v, t.v + 3, t.v + 6, t.v + 9,
                       t.Dm_inv, t.vol, fbar, xbar, vbar, &ma);
    double Eb = 0, nub = 0, bb = 0;
    dtac_material_set_adj(E, nu, &ma, &Eb, &nub, &bb);
    auto obj = [&](double e, double n, double b) {
      dtac_material m2;
      dtac_material_set(&m2, e, n, b);
      return Objective(m2, t, t.x, t.v, fbar);
    };
    double fdE = (obj(E * (1 + 1e-6), nu, beta) - obj(E * (1 - 1e-6), nu, beta)) / (2e-6 * E);
    double fdnu = (obj(E, nu + 1e-7, beta) - obj(E, nu - 1e-7, beta)) / 2e-7;
    double fdb = (obj(E, nu, beta * (1 + 1e-6)) - obj(E, nu, beta * (1 - 1e-6))) / (2e-6 * beta);
    EXPECT_NEAR(Eb, fdE, 1e-6 * std::fabs(fdE) + 1e-14) << "trial " << trial;
    EXPECT_NEAR(nub, fdnu, 1e-6 * std::fabs(fdnu) + 1e-9) << "trial " << trial;
    EXPECT_NEAR(bb, fdb, 1e-6 * std::fabs(fdb) + 1e-9) << "trial " << trial;
  }
}

TEST(FemAdjoint, StressJvpIsTheSymmetricHessian) {
  // <A, dP/dF [B]> = <B, dP/dF [A]>: the stress derivative is an energy Hessian
  std::mt19937 rng(3);
  std::normal_distribution<double> n01(0, 1);
  dtac_material mat;
  dtac_material_set(&mat, 3e5, 0.45, 0);
  for (int trial = 0; trial < 50; trial++) {
    double F[9], A[9], B[9], dA[9], dB[9];
    for (int k = 0; k < 9; k++) {
      F[k] = (k % 4 == 0 ? 1 : 0) + 0.4 * n01(rng);
      A[k] = n01(rng);
      B[k] = n01(rng);
    }
    dtac_snh_stress_jvp(&mat, F, A, dB);
    dtac_snh_stress_jvp(&mat, F, B, dA);
    double ab = dtac_ddot33(B, dB), ba = dtac_ddot33(A, dA);
    EXPECT_NEAR(ab, ba, 1e-10 * (std::fabs(ab) + mat.mu));
  }
}
