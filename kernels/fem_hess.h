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

// dP/dF of stable Neo-Hookean in closed form (the derivative dtac_snh_stress_jvp takes):
// a I + 2 mu'/(Ic+1)^2 F (x) F + lambda' cof (x) cof + b d(cof)/dF, a = mu'(1 - 1/(Ic+1)),
// b = lambda'(J - alpha); d(cof)/dF has entries +-F: cof's column k is f_i x f_j (k, i, j cyclic)
DTAC_HD void dtac_snh_dPdF(const dtac_material* mat, const double F[9], double A[81]) {
  double Ic = dtac_ddot33(F, F);
  double J = dtac_det33(F);
  double cof[9];
  dtac_cof33(cof, F);
  double a = mat->mu_s * (1 - 1 / (Ic + 1));
  double c1 = 2 * mat->mu_s / ((Ic + 1) * (Ic + 1));
  double b = mat->lambda_s * (J - mat->alpha);
  for (int p = 0; p < 9; p++) {
    for (int q = 0; q < 9; q++) {
      A[9 * p + q] = c1 * F[p] * F[q] + mat->lambda_s * cof[p] * cof[q] + (p == q ? a : 0);
    }
  }
  // d(c_k)_r = (g_i x f_j + f_i x g_j)_r with g = dF's columns: (e_s x v)_r = eps_rst v_t
  for (int k = 0; k < 3; k++) {
    int i = (k + 1) % 3, j = (k + 2) % 3;
    for (int r = 0; r < 3; r++) {
      for (int s = 0; s < 3; s++) {
        if (r == s) continue;
        int t = 3 - r - s;
        double eps = ((s - r + 3) % 3 == 1) ? 1 : -1;  // eps_rst for distinct r, s, t
        A[9 * (3 * r + k) + 3 * s + i] += b * eps * F[3 * t + j];
        A[9 * (3 * r + k) + 3 * s + j] -= b * eps * F[3 * t + i];
      }
    }
  }
}

// dP/dF as a 9x9 matrix A (row 3r+c: P_rc, column 3s+d: F_sd), symmetric: the energy density's
// Hessian
DTAC_HD void dtac_elastic_dPdF(int kind, const dtac_material* mat, const double F[9],
                               double A[81]) {
  if (kind != DTAC_MAT_LINEAR) {
    dtac_snh_dPdF(mat, F, A);
    return;
  }
  for (int p = 0; p < 81; p++) A[p] = 0;
  for (int r = 0; r < 3; r++) {
    for (int c = 0; c < 3; c++) {
      A[9 * (3 * r + c) + 3 * r + c] += mat->mu;
      A[9 * (3 * r + c) + 3 * c + r] += mat->mu;
      if (r == c) {
        for (int d = 0; d < 3; d++) A[9 * (3 * r + r) + 3 * d + d] += mat->lambda;
      }
    }
  }
}

// ---- Kelvin-Voigt damping discretised over a step h
// -----------------------------------------------

// S(E) = 2 mu E + lambda tr(E) I of a symmetric E
DTAC_HD void dtac_iso_stress(const dtac_material* mat, const double E[9], double S[9]) {
  double tr = E[0] + E[4] + E[8];
  for (int i = 0; i < 3; i++) {
    for (int j = 0; j < 3; j++)
      S[3 * i + j] = 2 * mat->mu * E[3 * i + j] + (i == j ? mat->lambda * tr : 0);
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

// eigen-decomposition of a symmetric n x n matrix (12 here, up to 48 in src/implicit_body.c) by
// cyclic Jacobi rotations (Golub,
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
    if (off <= 1e-26 * tot || off == 0) return;
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

// 1 if the symmetric n x n matrix (n <= 12) is positive definite (a Cholesky attempt) after a
// shift of its diagonal by tol times its largest diagonal entry (tol = 0: strictly)
DTAC_HD int dtac_sym_is_pd_tol(const double* A, int n, double tol) {
  double L[144], dmax = 0;
  for (int j = 0; j < n; j++) dmax = fmax(dmax, fabs(A[n * j + j]));
  double shift = tol * dmax;
  for (int j = 0; j < n; j++) {
    double d = A[n * j + j] + shift;
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
DTAC_HD int dtac_sym_is_pd(const double* A, int n) {
  return dtac_sym_is_pd_tol(A, n, 0);
}

// eigenvalues below this fraction of the largest diagonal entry are left unprojected: a
// rotation-invariant energy's Hessian has exact zeros (rotations) that rounding makes +-tiny
#define DTAC_PROJECT_TOL 1e-9

// projects a symmetric n x n matrix (n <= 12) onto the positive semidefinite matrices: negative
// eigenvalues clamped to zero; a matrix positive definite up to DTAC_PROJECT_TOL is left
// untouched. Returns 1 if changed.
DTAC_HD int dtac_sym_project(double* A, int n) {
  if (dtac_sym_is_pd_tol(A, n, DTAC_PROJECT_TOL)) return 0;
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

// rotation-variant SVD of a 3x3 F = U diag(sig) V^T, det U = det V = 1, |sig0| >= |sig1| >= |sig2|
// (sig2 < 0 for an inverted F): V from the eigenvectors of F^T F. Returns 0 when F is too close to
// rank one for U to be formed (the caller then falls back to a general method).
DTAC_HD int dtac_svd3(const double F[9], double U[9], double sig[3], double V[9]) {
  double C[9], Q[9];
  dtac_mulT33(C, F, F);
  dtac_sym_eig(C, Q, 3);
  // columns by decreasing eigenvalue
  int o[3] = {0, 1, 2};
  for (int i = 0; i < 3; i++) {
    for (int j = i + 1; j < 3; j++) {
      if (C[4 * o[j]] > C[4 * o[i]]) {
        int t = o[i];
        o[i] = o[j];
        o[j] = t;
      }
    }
  }
  for (int r = 0; r < 3; r++) {
    for (int c = 0; c < 3; c++) V[3 * r + c] = Q[3 * r + o[c]];
  }
  if (dtac_det33(V) < 0) {
    for (int r = 0; r < 3; r++) V[3 * r + 2] = -V[3 * r + 2];
  }
  double u[3][3], vcol[3][3];
  for (int c = 0; c < 3; c++) {
    for (int r = 0; r < 3; r++) vcol[c][r] = V[3 * r + c];
  }
  double scale = sqrt(fmax(C[4 * o[0]], 0));
  for (int c = 0; c < 2; c++) {
    dtac_mulmv3(u[c], F, vcol[c]);
    if (c == 1) {
      // Gram-Schmidt against the first column, for rounding
      double d = dtac_dot3(u[1], u[0]);
      for (int k = 0; k < 3; k++) u[1][k] -= d * u[0][k];
    }
    double l = dtac_norm3(u[c]);
    if (!(scale > 0) || !(l > 1e-8 * scale)) return 0;
    for (int k = 0; k < 3; k++) u[c][k] /= l;
  }
  dtac_cross3(u[2], u[0], u[1]);
  for (int c = 0; c < 3; c++) {
    double w[3];
    dtac_mulmv3(w, F, vcol[c]);
    sig[c] = dtac_dot3(w, u[c]);
  }
  for (int r = 0; r < 3; r++) {
    for (int c = 0; c < 3; c++) U[3 * r + c] = u[c][r];
  }
  return 1;
}

// projection of the 9x9 dP/dF A of an isotropic energy at F onto the positive semidefinite
// matrices: in the SVD frame of F it is block diagonal, a 3x3 block on the stretches and three
// 2x2 blocks on the twist/flip pairs (Teran, Sifakis, Irving, Fedkiw, "Robust Quasistatic Finite
// Elements and Flesh Simulation", SCA 2005, sec. 5), whose eigenvalues are clamped at zero; only
// the negative part is subtracted. A matrix positive definite up to DTAC_PROJECT_TOL is left
// untouched; a degenerate F falls back to the full eigen-decomposition. Returns 1 if changed.
DTAC_HD int dtac_iso_project(double A[81], const double F[9]) {
  if (dtac_sym_is_pd_tol(A, 9, DTAC_PROJECT_TOL)) return 0;
  double U[9], V[9], sig[3];
  if (!dtac_svd3(F, U, sig, V)) return dtac_sym_project(A, 9);
  // basis k_(ab) = vec(u_a v_b^T) and A k for each
  double K[9][9], AK[9][9];
  for (int a = 0; a < 3; a++) {
    for (int b = 0; b < 3; b++) {
      double* k = K[3 * a + b];
      for (int r = 0; r < 3; r++) {
        for (int c = 0; c < 3; c++) k[3 * r + c] = U[3 * r + a] * V[3 * c + b];
      }
    }
  }
  for (int p = 0; p < 9; p++) {
    for (int i = 0; i < 9; i++) {
      double t = 0;
      for (int j = 0; j < 9; j++) t += A[9 * i + j] * K[p][j];
      AK[p][i] = t;
    }
  }
  // the blocks: stretches (00, 11, 22) and pairs (01, 10), (02, 20), (12, 21)
  static const int blk3[3] = {0, 4, 8};
  static const int pair[3][2] = {{1, 3}, {2, 6}, {5, 7}};
  double vec[9][9];  // negative-part directions scaled by sqrt(-eigenvalue)
  int nneg = 0;
  {
    double B[9], Q[9];
    for (int i = 0; i < 3; i++) {
      for (int j = 0; j < 3; j++) {
        double t = 0;
        for (int m = 0; m < 9; m++) t += K[blk3[i]][m] * AK[blk3[j]][m];
        B[3 * i + j] = t;
      }
    }
    for (int i = 0; i < 3; i++) {
      for (int j = 0; j < i; j++) B[3 * i + j] = B[3 * j + i] = 0.5 * (B[3 * i + j] + B[3 * j + i]);
    }
    dtac_sym_eig(B, Q, 3);
    for (int e = 0; e < 3; e++) {
      double l = B[4 * e];
      if (l >= 0) continue;
      double sl = sqrt(-l);
      for (int m = 0; m < 9; m++) {
        vec[nneg][m] =
            sl * (Q[e] * K[blk3[0]][m] + Q[3 + e] * K[blk3[1]][m] + Q[6 + e] * K[blk3[2]][m]);
      }
      nneg++;
    }
  }
  for (int pr = 0; pr < 3; pr++) {
    int p0 = pair[pr][0], p1 = pair[pr][1];
    double B[4], Q[4];
    double b00 = 0, b01 = 0, b10 = 0, b11 = 0;
    for (int m = 0; m < 9; m++) {
      b00 += K[p0][m] * AK[p0][m];
      b01 += K[p0][m] * AK[p1][m];
      b10 += K[p1][m] * AK[p0][m];
      b11 += K[p1][m] * AK[p1][m];
    }
    B[0] = b00;
    B[1] = B[2] = 0.5 * (b01 + b10);
    B[3] = b11;
    dtac_sym_eig(B, Q, 2);
    for (int e = 0; e < 2; e++) {
      double l = B[3 * e];
      if (l >= 0) continue;
      double sl = sqrt(-l);
      for (int m = 0; m < 9; m++) vec[nneg][m] = sl * (Q[e] * K[p0][m] + Q[2 + e] * K[p1][m]);
      nneg++;
    }
  }
  for (int v = 0; v < nneg; v++) {
    for (int i = 0; i < 9; i++) {
      for (int j = 0; j < 9; j++) A[9 * i + j] += vec[v][i] * vec[v][j];
    }
  }
  return nneg > 0;
}

// ---- element level
// ---------------------------------------------------------------------------------

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
