// fem.h: linear tetrahedron with the stable Neo-Hookean material and Kelvin-Voigt
// (stiffness-proportional Rayleigh) damping. Per-element functions, host and device.
#ifndef DTAC_KERNELS_FEM_H_
#define DTAC_KERNELS_FEM_H_

#include "dtac_hd.h"

// material constants of one gel, derived once from (young, poisson, damping)
typedef struct dtac_material_ {
  double mu;       // Lame shear modulus of the linearised material, Pa
  double lambda;   // Lame first parameter of the linearised material, Pa
  double mu_s;     // stable Neo-Hookean mu' = 4/3 mu, Pa
  double lambda_s; // stable Neo-Hookean lambda' = lambda + 5/6 mu, Pa
  double alpha;    // rest-stability shift 1 + 3/4 mu'/lambda' (zero stress at F = I)
  double beta;     // stiffness-proportional damping time, s
} dtac_material;

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
