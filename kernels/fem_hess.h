// fem_hess.h: what an implicit step needs of one tetrahedron beyond its force (fem.h): the
// energies whose gradients are the forces, their Hessians as 9x9 stress derivatives dP/dF and as
// 12x12 node blocks, and the projection of a symmetric block onto the positive semidefinite cone.
// Host and device.
#ifndef DTAC_KERNELS_FEM_HESS_H_
#define DTAC_KERNELS_FEM_HESS_H_

#include "dtac_hd.h"
#include "fem.h"

// materials of the implicit step: the stable Neo-Hookean of fem.h, and small-strain linear
// elasticity with the same Lame constants (constant Hessian)
#define DTAC_MAT_NEOHOOKEAN 0
#define DTAC_MAT_LINEAR 1

// ---- elastic energy density, stress, stress derivative ------------------------------------------

// small-strain linear elasticity: eps = sym(F) - I, psi = mu eps:eps + lambda/2 tr(eps)^2, J/m^3
DTAC_HD double dtac_lin_energy(const dtac_material* mat, const double F[9]) {
  double e = 0, tr = F[0] + F[4] + F[8] - 3;
  for (int i = 0; i < 3; i++) {
    for (int j = 0; j < 3; j++) {
      double eij = 0.5 * (F[3 * i + j] + F[3 * j + i]) - (i == j ? 1 : 0);
      e += eij * eij;
    }
  }
  return mat->mu * e + 0.5 * mat->lambda * tr * tr;
}

// its stress P = 2 mu eps + lambda tr(eps) I
DTAC_HD void dtac_lin_stress(const dtac_material* mat, const double F[9], double P[9]) {
  double tr = F[0] + F[4] + F[8] - 3;
  for (int i = 0; i < 3; i++) {
    for (int j = 0; j < 3; j++) {
      double eij = 0.5 * (F[3 * i + j] + F[3 * j + i]) - (i == j ? 1 : 0);
      P[3 * i + j] = 2 * mat->mu * eij + (i == j ? mat->lambda * tr : 0);
    }
  }
}

// energy density and stress of either material
DTAC_HD double dtac_elastic_energy(int kind, const dtac_material* mat, const double F[9]) {
  return kind == DTAC_MAT_LINEAR ? dtac_lin_energy(mat, F) : dtac_snh_energy(mat, F);
}
DTAC_HD void dtac_elastic_stress(int kind, const dtac_material* mat, const double F[9],
                                 double P[9]) {
  if (kind == DTAC_MAT_LINEAR) {
    dtac_lin_stress(mat, F, P);
  } else {
    dtac_snh_stress(mat, F, P);
  }
}

// dP/dF as a 9x9 matrix A (row 3r+c: P_rc, column 3s+d: F_sd), symmetric: the energy density's
// Hessian. Built column by column from the directional derivative.
DTAC_HD void dtac_elastic_dPdF(int kind, const dtac_material* mat, const double F[9],
                               double A[81]) {
  for (int j = 0; j < 9; j++) {
    double dF[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0}, dP[9];
    dF[j] = 1;
    if (kind == DTAC_MAT_LINEAR) {
      double tr = dF[0] + dF[4] + dF[8];
      for (int r = 0; r < 3; r++) {
        for (int c = 0; c < 3; c++) {
          dP[3 * r + c] = mat->mu * (dF[3 * r + c] + dF[3 * c + r]) + (r == c ? mat->lambda * tr : 0);
        }
      }
    } else {
      dtac_snh_stress_jvp(mat, F, dF, dP);
    }
    for (int i = 0; i < 9; i++) A[9 * i + j] = dP[i];
  }
}

// ---- Kelvin-Voigt damping discretised over a step h -----------------------------------------------

// S(E) = 2 mu E + lambda tr(E) I of a symmetric E
DTAC_HD void dtac_iso_stress(const dtac_material* mat, const double E[9], double S[9]) {
  double tr = E[0] + E[4] + E[8];
  for (int i = 0; i < 3; i++) {
    for (int j = 0; j < 3; j++) S[3 * i + j] = 2 * mat->mu * E[3 * i + j] + (i == j ? mat->lambda * tr : 0);
  }
}

// E = sym(F0^T dF)
DTAC_HD void dtac_sym_ft(const double F0[9], const double dF[9], double E[9]) {
  double t[9];
  dtac_mulT33(t, F0, dF);
  for (int i = 0; i < 3; i++) {
    for (int j = 0; j < 3; j++) E[3 * i + j] = 0.5 * (t[3 * i + j] + t[3 * j + i]);
  }
}

// damping potential density over a step of h, the strain rate lagged: E = sym(Fl^T (F - F0)),
// D = beta/(2h) [2 mu E:E + lambda tr(E)^2] with Fl = F0 (Neo-Hookean) or I (linear material, so
// that its Hessian stays constant). Its stress dD/dF = Fl S(E) beta/h is, for Fl = F0,
// dtac_kv_stress(F0, (F - F0)/h): the explicit damping at small h. P may be null.
DTAC_HD double dtac_kv_step_energy(const dtac_material* mat, const double Fl[9], const double F0[9],
                                   const double F[9], double h, double P[9]) {
  double dF[9], E[9], S[9];
  for (int k = 0; k < 9; k++) dF[k] = F[k] - F0[k];
  dtac_sym_ft(Fl, dF, E);
  dtac_iso_stress(mat, E, S);
  double c = mat->beta / h;
  if (P) {
    dtac_mul33(P, Fl, S);
    for (int k = 0; k < 9; k++) P[k] *= c;
  }
  return 0.5 * c * dtac_ddot33(S, E);
}

// its 9x9 Hessian (constant over the step, positive semidefinite), added to A
DTAC_HD void dtac_kv_step_dPdF_add(const dtac_material* mat, const double Fl[9], double h,
                                   double A[81]) {
  double c = mat->beta / h;
  for (int j = 0; j < 9; j++) {
    double dF[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0}, E[9], S[9], dP[9];
    dF[j] = 1;
    dtac_sym_ft(Fl, dF, E);
    dtac_iso_stress(mat, E, S);
    dtac_mul33(dP, Fl, S);
    for (int i = 0; i < 9; i++) A[9 * i + j] += c * dP[i];
  }
}

// ---- symmetric projection -----------------------------------------------------------------------

// eigen-decomposition of a symmetric n x n matrix (n <= 12) by cyclic Jacobi rotations (Golub,
// Van Loan, Matrix Computations, 4th ed., sec. 8.5): A is overwritten by its eigenvalues on the
// diagonal, Q (n x n, columns eigenvectors) written
DTAC_HD void dtac_sym_eig(double* A, double* Q, int n) {
  for (int i = 0; i < n * n; i++) Q[i] = 0;
  for (int i = 0; i < n; i++) Q[n * i + i] = 1;
  for (int sweep = 0; sweep < 60; sweep++) {
    double off = 0, tot = 0;
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < n; j++) {
        tot += A[n * i + j] * A[n * i + j];
        if (i != j) off += A[n * i + j] * A[n * i + j];
      }
    }
    if (off <= 1e-30 * tot || off == 0) return;
    for (int p = 0; p < n; p++) {
      for (int q = p + 1; q < n; q++) {
        double apq = A[n * p + q];
        if (apq == 0) continue;
        double theta = (A[n * q + q] - A[n * p + p]) / (2 * apq);
        double t = (theta >= 0 ? 1 : -1) / (fabs(theta) + sqrt(theta * theta + 1));
        double c = 1 / sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < n; k++) {
          double akp = A[n * k + p], akq = A[n * k + q];
          A[n * k + p] = c * akp - s * akq;
          A[n * k + q] = s * akp + c * akq;
        }
        for (int k = 0; k < n; k++) {
          double apk = A[n * p + k], aqk = A[n * q + k];
          A[n * p + k] = c * apk - s * aqk;
          A[n * q + k] = s * apk + c * aqk;
        }
        for (int k = 0; k < n; k++) {
          double qkp = Q[n * k + p], qkq = Q[n * k + q];
          Q[n * k + p] = c * qkp - s * qkq;
          Q[n * k + q] = s * qkp + c * qkq;
        }
      }
    }
  }
}

// 1 if the symmetric n x n matrix (n <= 12) is positive definite (a Cholesky attempt)
DTAC_HD int dtac_sym_is_pd(const double* A, int n) {
  double L[144];
  for (int j = 0; j < n; j++) {
    double d = A[n * j + j];
    for (int k = 0; k < j; k++) d -= L[n * j + k] * L[n * j + k];
    if (!(d > 0)) return 0;
    d = sqrt(d);
    L[n * j + j] = d;
    for (int i = j + 1; i < n; i++) {
      double s = A[n * i + j];
      for (int k = 0; k < j; k++) s -= L[n * i + k] * L[n * j + k];
      L[n * i + j] = s / d;
    }
  }
  return 1;
}

// projects a symmetric n x n matrix (n <= 12) onto the positive semidefinite matrices: negative
// eigenvalues clamped to zero; a positive definite matrix is left untouched. Returns 1 if changed.
DTAC_HD int dtac_sym_project(double* A, int n) {
  if (dtac_sym_is_pd(A, n)) return 0;
  double D[144], Q[144];
  for (int i = 0; i < n * n; i++) D[i] = A[i];
  dtac_sym_eig(D, Q, n);
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < n; j++) {
      double s = 0;
      for (int k = 0; k < n; k++) {
        double l = D[n * k + k];
        if (l > 0) s += Q[n * i + k] * l * Q[n * j + k];
      }
      A[n * i + j] = s;
    }
  }
  return 1;
}

// ---- element level ---------------------------------------------------------------------------------

// the node gradient matrix of F: dF_rc = sum_q G[q][c] dx_{q,r} (q = 0..3, F = Ds Dm^{-1})
DTAC_HD void dtac_tet_G(const double Dm_inv[9], double G[12]) {
  for (int c = 0; c < 3; c++) {
    G[3 + c] = Dm_inv[c];
    G[6 + c] = Dm_inv[3 + c];
    G[9 + c] = Dm_inv[6 + c];
    G[c] = -(Dm_inv[c] + Dm_inv[3 + c] + Dm_inv[6 + c]);
  }
}

// 12x12 Hessian of vol * psi(F(x)) from the 9x9 dP/dF A: H = vol G^T A G, node-major (3q + s)
DTAC_HD void dtac_tet_hess12(const double Dm_inv[9], double vol, const double A[81],
                             double H[144]) {
  double G[12];
  dtac_tet_G(Dm_inv, G);
  for (int s = 0; s < 3; s++) {
    for (int u = 0; u < 3; u++) {
      // M[c][c'] = A[(3s + c)][(3u + c')]; T[q][c'] = sum_c G[q][c] M[c][c']
      double T[12];
      for (int q = 0; q < 4; q++) {
        for (int d = 0; d < 3; d++) {
          double t = 0;
          for (int c = 0; c < 3; c++) t += G[3 * q + c] * A[9 * (3 * s + c) + 3 * u + d];
          T[3 * q + d] = t;
        }
      }
      for (int q = 0; q < 4; q++) {
        for (int p = 0; p < 4; p++) {
          double t = 0;
          for (int d = 0; d < 3; d++) t += T[3 * q + d] * G[3 * p + d];
          H[12 * (3 * q + s) + 3 * p + u] = vol * t;
        }
      }
    }
  }
}

// gradient of vol * psi on the 4 nodes from a stress P: g = -(the node forces) (fem.h scatter)
DTAC_HD void dtac_tet_grad_from_stress(const double P[9], const double Dm_inv[9], double vol,
                                       double g[12]) {
  dtac_tet_scatter_stress(P, Dm_inv, vol, g);
  for (int k = 0; k < 12; k++) g[k] = -g[k];
}

// product of the element Hessian with node displacements dx (12): y = vol G^T A (G dx)
DTAC_HD void dtac_tet_hvp(const double Dm_inv[9], double vol, const double A[81],
                          const double dx[12], double y[12]) {
  double dF[9], dP[9];
  dtac_tet_defgrad(dx, dx + 3, dx + 6, dx + 9, Dm_inv, dF);
  for (int i = 0; i < 9; i++) {
    double s = 0;
    for (int j = 0; j < 9; j++) s += A[9 * i + j] * dF[j];
    dP[i] = s;
  }
  dtac_tet_grad_from_stress(dP, Dm_inv, vol, y);
}

#endif  // DTAC_KERNELS_FEM_HESS_H_
