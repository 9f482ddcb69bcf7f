// gel_eig.c: the highest frequency of a gel at rest (gel.h, dtac_gel_max_eig), which sizes the
// explicit substep: Lanczos iteration on the linear elasticity operator in the mass inner product.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fem.h"
#include "gel.h"

// the largest eigenvalue of the symmetric tridiagonal matrix (diagonal a, off-diagonal b: n - 1
// of them) by bisection on its Sturm sequence
static double tridiag_max_eig(const double* a, const double* b, int n) {
  double lo = 0, hi = 0;
  for (int i = 0; i < n; i++) {
    double r = (i > 0 ? fabs(b[i - 1]) : 0) + (i < n - 1 ? fabs(b[i]) : 0);
    hi = fmax(hi, a[i] + r);  // Gershgorin
    lo = fmin(lo, a[i] - r);
  }
  for (int it = 0; it < 200 && hi - lo > 1e-15 * fabs(hi); it++) {
    double x = 0.5 * (lo + hi), q = 1;
    int below = 0;  // the negative pivots of T - x I = L D L': its eigenvalues below x
    for (int i = 0; i < n; i++) {
      q = a[i] - x - (i > 0 ? b[i - 1] * b[i - 1] / q : 0);
      if (q == 0) q = -1e-300;
      below += q < 0;
    }
    if (below == n) {
      hi = x;
    } else {
      lo = x;
    }
  }
  return hi;
}

// highest eigenvalue of M^{-1} K0 (K0: linear elasticity at rest, fixed nodes held) by Lanczos
// iteration in the mass inner product (M^{-1} K0 is self-adjoint in it): the largest Ritz value,
// which approaches it from below, much faster than a power iteration (Golub, Van Loan, Matrix
// Computations, 4th ed., sec. 10.1); stopped when it changes by less than 1e-9 relative, at most
// 200 products. Returns omega_max^2
double dtac_gel_max_eig(const dtac_gel_model* gm) {
  int nn = gm->nnode;
  enum { KMAX = 200 };
  double* q = (double*)calloc(3 * nn, sizeof(double));
  double* qp = (double*)calloc(3 * nn, sizeof(double));
  double* Ku = (double*)calloc(3 * nn, sizeof(double));
  double* tf = (double*)malloc(sizeof(double) * 12 * gm->ntet);
  double* al = (double*)malloc(sizeof(double) * 2 * KMAX);
  double lam = 0;
  if (!q || !qp || !Ku || !tf || !al) {
    free(q), free(qp), free(Ku), free(tf), free(al);
    return 0;
  }
  double* be = al + KMAX;
  dtac_material lin = gm->mat;
  lin.beta = 1;
  const double I[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  unsigned long long seed = 12345;
  double nrm = 0;
  for (int a = 0; a < 3 * nn; a++) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    q[a] = gm->inv_mass[a / 3] > 0 ? (double)(seed >> 11) / 9007199254740992.0 - 0.5 : 0;
    nrm += gm->mass[a / 3] * q[a] * q[a];
  }
  nrm = sqrt(nrm);
  for (int a = 0; a < 3 * nn && nrm > 0; a++) q[a] /= nrm;
  for (int k = 0; k < KMAX && nrm > 0; k++) {
    // Ku = K0 q
    for (int t = 0; t < gm->ntet; t++) {
      const int* tv = gm->tet + 4 * t;
      double Fd[9], P[9];
      dtac_tet_defgrad(q + 3 * tv[0], q + 3 * tv[1], q + 3 * tv[2], q + 3 * tv[3],
                       gm->Dm_inv + 9 * t, Fd);
      dtac_kv_stress(&lin, I, Fd, P);
      dtac_tet_scatter_stress(P, gm->Dm_inv + 9 * t, gm->vol[t], tf + 12 * t);
    }
    memset(Ku, 0, sizeof(double) * 3 * nn);
    for (int t = 0; t < gm->ntet; t++) {
      for (int r = 0; r < 4; r++) {
        int a = gm->tet[4 * t + r];
        for (int c = 0; c < 3; c++) Ku[3 * a + c] -= tf[12 * t + 3 * r + c];
      }
    }
    // w = M^{-1} K q - alpha q - beta q_prev (kept in qp), alpha = q' K q
    double alpha = 0;
    for (int a = 0; a < 3 * nn; a++) alpha += gm->inv_mass[a / 3] > 0 ? q[a] * Ku[a] : 0;
    al[k] = alpha;
    double bprev = k > 0 ? be[k - 1] : 0;
    nrm = 0;
    for (int a = 0; a < 3 * nn; a++) {
      double w = Ku[a] * gm->inv_mass[a / 3] - alpha * q[a] - bprev * qp[a];
      qp[a] = q[a];
      q[a] = w;
      nrm += gm->mass[a / 3] * w * w;
    }
    nrm = sqrt(nrm);
    be[k] = nrm;
    double l = tridiag_max_eig(al, be, k + 1);
    int done = k >= 4 && fabs(l - lam) <= 1e-9 * l;
    lam = l;
    if (done || !(nrm > 1e-12 * fabs(alpha))) break;  // converged, or an invariant subspace
    for (int a = 0; a < 3 * nn; a++) q[a] /= nrm;
  }
  free(q), free(qp), free(Ku), free(tf), free(al);
  return lam;
}
