// fem.h: linear tetrahedron with the stable Neo-Hookean material and Kelvin-Voigt
// (stiffness-proportional Rayleigh) damping. Per-element functions, host and device, each
// adjoint (vector-Jacobian product; cotangents accumulated) right after its forward.
#ifndef DTAC_KERNELS_FEM_H_
#define DTAC_KERNELS_FEM_H_

#include "dtac_hd.h"

// material constants of one gel, derived once from (young, poisson, damping)
typedef struct dtac_material_ {
  double mu;        // Lame shear modulus of the linearised material, Pa
  double lambda;    // Lame first parameter of the linearised material, Pa
  double mu_s;      // stable Neo-Hookean mu' = 4/3 mu, Pa
  double lambda_s;  // stable Neo-Hookean lambda' = lambda + 5/6 mu, Pa
  double alpha;     // rest-stability shift 1 + 3/4 mu'/lambda' (zero stress at F = I)
  double beta;      // stiffness-proportional damping time, s
} dtac_material;

// cotangents of the material constants (accumulated): d/d(mu, lambda, mu_s, lambda_s, alpha, beta)
typedef struct dtac_material_adj_ {
  double mu, lambda, mu_s, lambda_s, alpha, beta;
} dtac_material_adj;

// Lame parameters from Young's modulus and Poisson ratio, and the stable Neo-Hookean
// reparametrisation whose small-strain limit is linear elasticity with exactly (mu, lambda):
// Smith, de Goes, Kim, "Stable Neo-Hookean Flesh Simulation", ACM TOG 37(2), 2018, sec. 3.4.
DTAC_HD void dtac_material_set(dtac_material* mat, double young, double poisson, double beta) {
  mat->mu = young / (2 * (1 + poisson));
  mat->lambda = young * poisson / ((1 + poisson) * (1 - 2 * poisson));
  mat->mu_s = 4.0 / 3.0 * mat->mu;
  mat->lambda_s = mat->lambda + 5.0 / 6.0 * mat->mu;
  mat->alpha = 1 + 0.75 * mat->mu_s / mat->lambda_s;
  mat->beta = beta;
}

// chain rule through dtac_material_set: cotangents of (young, poisson, beta) from those of the
// material constants
DTAC_HD void dtac_material_set_adj(double young, double poisson, const dtac_material_adj* ma,
                                   double* young_bar, double* poisson_bar, double* beta_bar) {
  double nu = poisson;
  double mu = young / (2 * (1 + nu));
  double lam = young * nu / ((1 + nu) * (1 - 2 * nu));
  double mu_s = 4.0 / 3.0 * mu, lam_s = lam + 5.0 / 6.0 * mu;
  // alpha = 1 + 3/4 mu_s / lambda_s
  double mu_s_bar = ma->mu_s + ma->alpha * 0.75 / lam_s;
  double lam_s_bar = ma->lambda_s - ma->alpha * 0.75 * mu_s / (lam_s * lam_s);
  double mu_bar = ma->mu + 4.0 / 3.0 * mu_s_bar + 5.0 / 6.0 * lam_s_bar;
  double lam_bar = ma->lambda + lam_s_bar;
  double dmu_dE = 1 / (2 * (1 + nu)), dmu_dnu = -young / (2 * (1 + nu) * (1 + nu));
  double den = (1 + nu) * (1 - 2 * nu);
  double dlam_dE = nu / den;
  // d/dnu of (1 + nu)(1 - 2 nu) = -1 - 4 nu
  double dlam_dnu = young * (den - nu * (-1 - 4 * nu)) / (den * den);
  *young_bar += mu_bar * dmu_dE + lam_bar * dlam_dE;
  *poisson_bar += mu_bar * dmu_dnu + lam_bar * dlam_dnu;
  *beta_bar += ma->beta;
}

// rest shape of a tet: Dm^{-1} (row-major) from its four rest vertices; returns signed volume
DTAC_HD double dtac_tet_rest(const double X0[3], const double X1[3], const double X2[3],
                             const double X3[3], double Dm_inv[9]) {
  double Dm[9];
  for (int r = 0; r < 3; r++) {
    Dm[3 * r + 0] = X1[r] - X0[r];
    Dm[3 * r + 1] = X2[r] - X0[r];
    Dm[3 * r + 2] = X3[r] - X0[r];
  }
  double det = dtac_inv33(Dm_inv, Dm);
  return det / 6.0;
}

// deformation gradient F = Ds Dm^{-1}, Ds = [x1-x0, x2-x0, x3-x0] (columns)
DTAC_HD void dtac_tet_defgrad(const double* x0, const double* x1, const double* x2,
                              const double* x3, const double Dm_inv[9], double F[9]) {
  double Ds[9];
  for (int r = 0; r < 3; r++) {
    Ds[3 * r + 0] = x1[r] - x0[r];
    Ds[3 * r + 1] = x2[r] - x0[r];
    Ds[3 * r + 2] = x3[r] - x0[r];
  }
  dtac_mul33(F, Ds, Dm_inv);
}

// VJP of F = Ds Dm^{-1}: cotangents of the four vertices (accumulated, 3 each)
DTAC_HD void dtac_tet_defgrad_adj(const double Dm_inv[9], const double F_bar[9], double* x0_bar,
                                  double* x1_bar, double* x2_bar, double* x3_bar) {
  double Db[9];
  dtac_mul33T(Db, F_bar, Dm_inv);
  for (int r = 0; r < 3; r++) {
    x1_bar[r] += Db[3 * r + 0];
    x2_bar[r] += Db[3 * r + 1];
    x3_bar[r] += Db[3 * r + 2];
    x0_bar[r] -= Db[3 * r + 0] + Db[3 * r + 1] + Db[3 * r + 2];
  }
}

// strain energy density of stable Neo-Hookean, J/m^3, shifted to zero at rest:
// mu'/2 (I_C - 3) + lambda'/2 (J - alpha)^2 - mu'/2 log(I_C + 1) - [same at F = I]
DTAC_HD double dtac_snh_energy(const dtac_material* mat, const double F[9]) {
  double Ic = dtac_ddot33(F, F);
  double J = dtac_det33(F);
  double dJ = J - mat->alpha;
  double d1 = 1 - mat->alpha;
  return 0.5 * mat->mu_s * (Ic - 3) + 0.5 * mat->lambda_s * (dJ * dJ - d1 * d1) -
         0.5 * mat->mu_s * log((Ic + 1) / 4);
}

// first Piola-Kirchhoff stress P = dPsi/dF; defined and finite for inverted F (J <= 0)
DTAC_HD void dtac_snh_stress(const dtac_material* mat, const double F[9], double P[9]) {
  double Ic = dtac_ddot33(F, F);
  double J = dtac_det33(F);
  double cof[9];
  dtac_cof33(cof, F);
  double a = mat->mu_s * (1 - 1 / (Ic + 1));
  double b = mat->lambda_s * (J - mat->alpha);
  for (int k = 0; k < 9; k++) P[k] = a * F[k] + b * cof[k];
}

// directional derivative of the stable Neo-Hookean stress, dP = dP/dF [dF]; dP/dF is the energy's
// Hessian, symmetric, so this is also the stress's vector-Jacobian product
DTAC_HD void dtac_snh_stress_jvp(const dtac_material* mat, const double F[9], const double dF[9],
                                 double dP[9]) {
  double Ic = dtac_ddot33(F, F);
  double J = dtac_det33(F);
  double cof[9];
  dtac_cof33(cof, F);
  double a = mat->mu_s * (1 - 1 / (Ic + 1));
  double da = mat->mu_s * 2 * dtac_ddot33(F, dF) / ((Ic + 1) * (Ic + 1));
  double b = mat->lambda_s * (J - mat->alpha);
  double db = mat->lambda_s * dtac_ddot33(cof, dF);
  // d cof: columns c0 = f1 x f2, c1 = f2 x f0, c2 = f0 x f1 of F's columns f
  double f[3][3], g[3][3], dc[3][3];
  for (int k = 0; k < 3; k++) {
    for (int r = 0; r < 3; r++) {
      f[k][r] = F[3 * r + k];
      g[k][r] = dF[3 * r + k];
    }
  }
  for (int k = 0; k < 3; k++) {
    int i = (k + 1) % 3, j = (k + 2) % 3;
    double t1[3], t2[3];
    dtac_cross3(t1, g[i], f[j]);
    dtac_cross3(t2, f[i], g[j]);
    for (int r = 0; r < 3; r++) dc[k][r] = t1[r] + t2[r];
  }
  for (int r = 0; r < 3; r++) {
    for (int k = 0; k < 3; k++) {
      dP[3 * r + k] = a * dF[3 * r + k] + da * F[3 * r + k] + db * cof[3 * r + k] + b * dc[k][r];
    }
  }
}

// VJP of dtac_snh_stress: F_bar += dP/dF^T P_bar; material cotangents accumulated into ma
DTAC_HD void dtac_snh_stress_adj(const dtac_material* mat, const double F[9], const double P_bar[9],
                                 double F_bar[9], dtac_material_adj* ma) {
  double dP[9];
  dtac_snh_stress_jvp(mat, F, P_bar, dP);
  for (int k = 0; k < 9; k++) F_bar[k] += dP[k];
  if (ma) {
    double Ic = dtac_ddot33(F, F);
    double J = dtac_det33(F);
    double cof[9];
    dtac_cof33(cof, F);
    double pf = dtac_ddot33(P_bar, F), pc = dtac_ddot33(P_bar, cof);
    ma->mu_s += (1 - 1 / (Ic + 1)) * pf;
    ma->lambda_s += (J - mat->alpha) * pc;
    ma->alpha -= mat->lambda_s * pc;
  }
}

// Kelvin-Voigt damping stress P_d = F S_d, S_d = beta (lambda tr(Ed) I + 2 mu Ed),
// Ed = sym(F^T dF/dt): rotation invariant, dissipative, and beta K0 v at rest
DTAC_HD void dtac_kv_stress(const dtac_material* mat, const double F[9], const double Fdot[9],
                            double P[9]) {
  double FtFd[9], S[9];
  dtac_mulT33(FtFd, F, Fdot);
  double tr = FtFd[0] + FtFd[4] + FtFd[8];
  for (int i = 0; i < 3; i++) {
    for (int j = 0; j < 3; j++) {
      double e = 0.5 * (FtFd[3 * i + j] + FtFd[3 * j + i]);
      S[3 * i + j] = mat->beta * (2 * mat->mu * e + (i == j ? mat->lambda * tr : 0));
    }
  }
  dtac_mul33(P, F, S);
}

// VJP of dtac_kv_stress: cotangents of F and Fdot (accumulated) and of mu, lambda, beta
DTAC_HD void dtac_kv_stress_adj(const dtac_material* mat, const double F[9], const double Fdot[9],
                                const double P_bar[9], double F_bar[9], double Fdot_bar[9],
                                dtac_material_adj* ma) {
  double FtFd[9], E[9], S0[9], S[9];
  dtac_mulT33(FtFd, F, Fdot);
  double tr = FtFd[0] + FtFd[4] + FtFd[8];
  for (int i = 0; i < 3; i++) {
    for (int j = 0; j < 3; j++) {
      E[3 * i + j] = 0.5 * (FtFd[3 * i + j] + FtFd[3 * j + i]);
    }
  }
  for (int i = 0; i < 3; i++) {
    for (int j = 0; j < 3; j++) {
      S0[3 * i + j] = 2 * mat->mu * E[3 * i + j] + (i == j ? mat->lambda * tr : 0);
      S[3 * i + j] = mat->beta * S0[3 * i + j];
    }
  }
  // P = F S: F_bar += P_bar S^T (S symmetric), S_bar = F^T P_bar
  double t[9], Sb[9], Eb[9];
  dtac_mul33T(t, P_bar, S);
  for (int k = 0; k < 9; k++) F_bar[k] += t[k];
  dtac_mulT33(Sb, F, P_bar);
  double trSb = Sb[0] + Sb[4] + Sb[8];
  if (ma) {
    ma->beta += dtac_ddot33(Sb, S0);
    double sE = 0;
    for (int k = 0; k < 9; k++) sE += Sb[k] * E[k];
    ma->mu += mat->beta * 2 * sE;
    ma->lambda += mat->beta * tr * trSb;
  }
  // S = beta (lambda tr(E) I + 2 mu E): E_bar = beta (lambda tr(S_bar) I + 2 mu sym(S_bar))
  for (int i = 0; i < 3; i++) {
    for (int j = 0; j < 3; j++) {
      Eb[3 * i + j] = mat->beta * (2 * mat->mu * 0.5 * (Sb[3 * i + j] + Sb[3 * j + i]) +
                                   (i == j ? mat->lambda * trSb : 0));
    }
  }
  // E = sym(F^T Fdot), E_bar symmetric: F_bar += Fdot E_bar, Fdot_bar += F E_bar
  dtac_mul33(t, Fdot, Eb);
  for (int k = 0; k < 9; k++) F_bar[k] += t[k];
  dtac_mul33(t, F, Eb);
  for (int k = 0; k < 9; k++) Fdot_bar[k] += t[k];
}

// nodal forces of one tet from a stress P: f_{1..3} = -V0 P Dm^{-T} columns, f_0 = -sum
DTAC_HD void dtac_tet_scatter_stress(const double P[9], const double Dm_inv[9], double vol,
                                     double f[12]) {
  double H[9];
  dtac_mul33T(H, P, Dm_inv);
  for (int r = 0; r < 3; r++) {
    f[3 + r] = -vol * H[3 * r + 0];
    f[6 + r] = -vol * H[3 * r + 1];
    f[9 + r] = -vol * H[3 * r + 2];
    f[r] = -(f[3 + r] + f[6 + r] + f[9 + r]);
  }
}

// VJP of the scatter f = -V0 P Dm^{-T} (columns 1..3), f_0 = -sum: P_bar from f_bar (12)
DTAC_HD void dtac_tet_scatter_stress_adj(const double f_bar[12], const double Dm_inv[9], double vol,
                                         double P_bar[9]) {
  double Hb[9];
  for (int r = 0; r < 3; r++) {
    for (int c = 0; c < 3; c++) Hb[3 * r + c] = -vol * (f_bar[3 * (c + 1) + r] - f_bar[r]);
  }
  dtac_mul33(P_bar, Hb, Dm_inv);
}

// elastic + damping forces on the 4 nodes of a tet (f: 4 x 3); returns J = det F
DTAC_HD double dtac_tet_force(const dtac_material* mat, const double* x0, const double* x1,
                              const double* x2, const double* x3, const double* v0,
                              const double* v1, const double* v2, const double* v3,
                              const double Dm_inv[9], double vol, double f[12]) {
  double F[9], Fd[9], P[9], Pd[9];
  dtac_tet_defgrad(x0, x1, x2, x3, Dm_inv, F);
  dtac_snh_stress(mat, F, P);
  if (mat->beta > 0) {
    dtac_tet_defgrad(v0, v1, v2, v3, Dm_inv, Fd);
    dtac_kv_stress(mat, F, Fd, Pd);
    for (int k = 0; k < 9; k++) P[k] += Pd[k];
  }
  dtac_tet_scatter_stress(P, Dm_inv, vol, f);
  return dtac_det33(F);
}

// VJP of dtac_tet_force: given f_bar (4 x 3), accumulates the cotangents of the positions
// x_bar and velocities v_bar (4 x 3 each) and of the material constants (ma, may be null)
DTAC_HD void dtac_tet_force_adj(const dtac_material* mat, const double* x0, const double* x1,
                                const double* x2, const double* x3, const double* v0,
                                const double* v1, const double* v2, const double* v3,
                                const double Dm_inv[9], double vol, const double f_bar[12],
                                double x_bar[12], double v_bar[12], dtac_material_adj* ma) {
  double F[9], Fd[9], P_bar[9], F_bar[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
  double Fd_bar[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
  dtac_tet_defgrad(x0, x1, x2, x3, Dm_inv, F);
  dtac_tet_scatter_stress_adj(f_bar, Dm_inv, vol, P_bar);
  dtac_snh_stress_adj(mat, F, P_bar, F_bar, ma);
  if (mat->beta > 0 || ma) {
    dtac_tet_defgrad(v0, v1, v2, v3, Dm_inv, Fd);
    dtac_kv_stress_adj(mat, F, Fd, P_bar, F_bar, Fd_bar, ma);
  }
  dtac_tet_defgrad_adj(Dm_inv, F_bar, x_bar, x_bar + 3, x_bar + 6, x_bar + 9);
  dtac_tet_defgrad_adj(Dm_inv, Fd_bar, v_bar, v_bar + 3, v_bar + 6, v_bar + 9);
}

// force on node a: the sum of its incident tets' node forces in a fixed order (a gather, so
// results do not depend on thread count and need no atomics)
DTAC_HD void dtac_node_gather(int a, const int* node_tetadr, const int* node_tet,
                              const double* tet_force, double* force) {
  double f0 = 0, f1 = 0, f2 = 0;
  for (int i = node_tetadr[a]; i < node_tetadr[a + 1]; i++) {
    const double* tf = tet_force + 3 * node_tet[i];
    f0 += tf[0];
    f1 += tf[1];
    f2 += tf[2];
  }
  force[3 * a] = f0;
  force[3 * a + 1] = f1;
  force[3 * a + 2] = f2;
}

#endif  // DTAC_KERNELS_FEM_H_
