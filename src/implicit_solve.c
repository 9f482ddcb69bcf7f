// implicit_solve.c: the implicit step's linear solves (a kept CHOLMOD factor as the
// preconditioner of CG, updated along the contact patch by rank-one updates, refactored when CG
// stalls) and the solver's creation (sparsity pattern, analysis, first factor).

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "implicit_internal.h"

// ---- linear solves ------------------------------------------------------------------------------

// the normal penalty stiffness of contact node s at xa against its deepest collider (0 out of
// contact), with the unit normal
double dtac_imp_contact_k(const dtac_implicit* im, const dtac_gel_model* gm, int s, const double* xa,
                        double n[3]) {
  double dmin;
  int c = dtac_deepest_collider(im->col, im->ncol, xa, &dmin, n);
  if (c < 0) return 0;
  dtac_contact_node_param pe = dtac_contact_scaled(gm->surf_param + s, im->col + c);
  double dramp;
  dtac_contact_ramp(-dmin, pe.width, &dramp);
  double l = dtac_norm3(n);
  for (int k = 0; k < 3; k++) n[k] = l > 0 ? n[k] / l : 0;
  // the kept factor's frame
  if (im->L_gel && im->rot_ok) {
    const double* R = im->frame_R;
    double nl[3];
    for (int i = 0; i < 3; i++) nl[i] = R[i] * n[0] + R[3 + i] * n[1] + R[6 + i] * n[2];
    for (int i = 0; i < 3; i++) n[i] = nl[i];
  }
  return pe.kn * dramp;
}

// numeric factorization of A (supernodal), then its simplicial LDL' copy for the solves and the
// contact updates (CHOLMOD allocates that copy: a refactorization is the step's one allocation);
// the contact stiffness at x is what the new factor holds
// The supernodal factorization calls BLAS and LAPACK, and Debian's serial OpenBLAS (what setup.sh
// installs) is not safe for concurrent calls: two mjData factoring in two threads at once got
// different bits (tests/python/test_implicit.py, threads; with the reference BLAS they did not).
// This process-wide lock around the factorization is the library's one piece of shared state: it
// protects a library, holds no data, and is rarely contended (a factorization is made at load and
// when CG stalls). The solves and updates (simplicial) call no BLAS.
static pthread_mutex_t blas_lock = PTHREAD_MUTEX_INITIALIZER;

int dtac_imp_factorize_at(dtac_implicit* im, const dtac_gel_model* gm, const double* x,
                        double* t_factor, int* nfactor) {
  double t0 = dtac_imp_now_s();
  pthread_mutex_lock(&blas_lock);
  cholmod_factorize(im->A, im->Ls, &im->cc);
  pthread_mutex_unlock(&blas_lock);
  (*nfactor)++;
  im->L_dirty = 1;
  im->L_gel = 0;
  im->factor_ok = 0;
  if (im->cc.status == CHOLMOD_OK) {
    if (im->L) cholmod_free_factor(&im->L, &im->cc);
    im->L = cholmod_copy_factor(im->Ls, &im->cc);
    if (im->L && cholmod_change_factor(CHOLMOD_REAL, 0, 0, 1, 1, im->L, &im->cc)) {
      im->factor_ok = 1;
      const int* perm = (const int*)im->L->Perm;
      for (int k = 0; k < im->ndof; k++) im->iperm[perm[k]] = k;
    }
  }
  for (int s = 0; s < gm->nsurf; s++) {
    im->app_k[s] = x ? dtac_imp_contact_k(im, gm, s, x + 3 * gm->surf[s], im->app_n + 3 * s) : 0;
  }
  *t_factor += dtac_imp_now_s() - t0;
  return im->factor_ok ? 0 : -1;
}

// brings the kept factor's contact stiffness to that at x by rank-one downdates and updates
// (CHOLMOD's cholmod_updown; Davis, Hager, "Multiple-rank modifications of a sparse Cholesky
// factorization", SIAM J. Matrix Anal. Appl. 22, 2001) of the nodes whose stiffness changed by
// more than DTAC_UPDATE_REL or whose normal turned: the factor follows the contact patch without a
// refactorization. Returns the number of rank-one changes, -1 if CHOLMOD failed.
int dtac_imp_contact_update(dtac_implicit* im, const dtac_gel_model* gm, const double* x) {
  int* up_p = (int*)im->Cup->p;
  int* up_i = (int*)im->Cup->i;
  double* up_x = (double*)im->Cup->x;
  int* dn_p = (int*)im->Cdown->p;
  int* dn_i = (int*)im->Cdown->i;
  double* dn_x = (double*)im->Cdown->x;
  int nup = 0, ndn = 0, zup = 0, zdn = 0;
  up_p[0] = dn_p[0] = 0;
  for (int s = 0; s < gm->nsurf; s++) {
    int a = gm->surf[s];
    double n[3];
    double k = dtac_imp_contact_k(im, gm, s, x + 3 * a, n);
    double k0 = im->app_k[s];
    const double* n0 = im->app_n + 3 * s;
    int same = fabs(k - k0) <= DTAC_UPDATE_REL * fmax(k, k0) && (k == 0 || dtac_dot3(n, n0) > 0.98);
    if (same) continue;
    // one column: rows of the node's free dofs in L's order, sorted
    for (int pass = 0; pass < 2; pass++) {
      double kk = pass ? k : k0;
      const double* nn = pass ? n : n0;
      if (!(kk > 0)) continue;
      int* ci = pass ? up_i : dn_i;
      double* cx = pass ? up_x : dn_x;
      int* z = pass ? &zup : &zdn;
      int start = *z;
      for (int c = 0; c < 3; c++) {
        int d = im->dof[3 * a + c];
        if (d < 0) continue;
        int r = im->iperm[d];
        // insertion into the sorted column
        int j = *z;
        while (j > start && ci[j - 1] > r) {
          ci[j] = ci[j - 1];
          cx[j] = cx[j - 1];
          j--;
        }
        ci[j] = r;
        cx[j] = sqrt(kk) * nn[c];
        (*z)++;
      }
      if (pass) {
        up_p[++nup] = zup;
      } else {
        dn_p[++ndn] = zdn;
      }
    }
    im->app_k[s] = k;
    for (int c = 0; c < 3; c++) im->app_n[3 * s + c] = n[c];
  }
  int ok = 1;
  if (ndn + nup > 0) im->L_dirty = 1;
  if (ndn > 0) {
    im->Cdown->ncol = ndn;
    ok = ok && cholmod_updown(0, im->Cdown, im->L, &im->cc) && im->cc.status == CHOLMOD_OK;
  }
  if (nup > 0 && ok) {
    im->Cup->ncol = nup;
    ok = ok && cholmod_updown(1, im->Cup, im->L, &im->cc) && im->cc.status == CHOLMOD_OK;
  }
  if (!ok) {
    im->factor_ok = 0;
    return -1;
  }
  return nup + ndn;
}

// the kept factor back to the first one (a copy: CHOLMOD allocates it), contact stiffness 0;
// nothing to do if it was not changed since. 0, or -1 out of memory
int dtac_imp_restore_factor(dtac_implicit* im) {
  if (!im->L0 || !im->L_dirty) return 0;
  if (im->L) cholmod_free_factor(&im->L, &im->cc);
  im->L = cholmod_copy_factor(im->L0, &im->cc);
  im->factor_ok = im->L != NULL;
  if (!im->L) return -1;
  const int* perm = (const int*)im->L->Perm;
  for (int k = 0; k < im->ndof; k++) im->iperm[perm[k]] = k;
  memset(im->app_k, 0, sizeof(double) * im->nsurf);
  memset(im->app_n, 0, sizeof(double) * 3 * im->nsurf);
  im->L_dirty = 0;
  im->L_gel = 1;
  return 0;
}

// v (3 per node, in dof order: nodes with all three components free) rotated by R^T (into the
// gel frame, tr = 1) or by R (back)
static void rotate_dofs(const dtac_implicit* im, const double* v, double* out, int tr) {
  const double* R = im->frame_R;
  for (int d = 0; d + 2 < im->ndof; d += 3) {
    const double* a = v + d;
    double* o = out + d;
    for (int i = 0; i < 3; i++) {
      o[i] = tr ? R[i] * a[0] + R[3 + i] * a[1] + R[6 + i] * a[2]
                : R[3 * i] * a[0] + R[3 * i + 1] * a[1] + R[3 * i + 2] * a[2];
    }
  }
}

// z = L^{-1} r with the kept factor (workspaces kept: no allocation after the first call); in
// the gel frame while L descends from the first factor
int dtac_imp_prec(dtac_implicit* im, const double* r, double* z) {
  int rot = im->L_gel && im->rot_ok;
  if (rot) {
    rotate_dofs(im, r, (double*)im->B->x, 1);
  } else {
    memcpy(im->B->x, r, im->ndof * sizeof(double));
  }
  if (!cholmod_solve2(CHOLMOD_A, im->L, im->B, NULL, &im->X, NULL, &im->Y, &im->E, &im->cc))
    return -1;
  if (rot) {
    rotate_dofs(im, (const double*)im->X->x, z, 0);
  } else {
    memcpy(z, im->X->x, im->ndof * sizeof(double));
  }
  return 0;
}

// H dx = b by CG preconditioned with the kept factor; H from the values Hx (spmv) or the element
// blocks (Hx NULL). Returns iterations, -1 if not converged within maxit to |r| <= tol |b|, -2 on
// negative curvature.
int dtac_imp_pcg(dtac_implicit* im, const dtac_gel_model* gm, const double* Hx, const double* b,
               double* x, double tol, int maxit) {
  int n = im->ndof;
  double bb = 0;
  for (int i = 0; i < n; i++) bb += b[i] * b[i];
  memset(x, 0, n * sizeof(double));
  if (bb == 0) return 0;
  memcpy(im->r, b, n * sizeof(double));
  if (dtac_imp_prec(im, im->r, im->z)) return -1;
  memcpy(im->p, im->z, n * sizeof(double));
  double rz = 0;
  for (int i = 0; i < n; i++) rz += im->r[i] * im->z[i];
  for (int it = 1; it <= maxit; it++) {
    if (Hx) {
      dtac_imp_spmv(im, Hx, im->p, im->q);
    } else {
      dtac_imp_hvp_matfree(im, gm, im->p, im->q);
    }
    double pq = 0;
    for (int i = 0; i < n; i++) pq += im->p[i] * im->q[i];
    if (!(pq > 0)) return -2;  // negative curvature: H is not positive definite
    double alpha = rz / pq, rr = 0;
    for (int i = 0; i < n; i++) {
      x[i] += alpha * im->p[i];
      im->r[i] -= alpha * im->q[i];
      rr += im->r[i] * im->r[i];
    }
    if (rr <= tol * tol * bb) return it;
    if (dtac_imp_prec(im, im->r, im->z)) return -1;
    double rz1 = 0;
    for (int i = 0; i < n; i++) rz1 += im->r[i] * im->z[i];
    double beta = rz1 / rz;
    rz = rz1;
    for (int i = 0; i < n; i++) im->p[i] = im->z[i] + beta * im->p[i];
  }
  return -1;
}

// a factorization of the Hessian at x (assembled in full for the matrix-free solver) and the
// direction by it: 0 or the solve's status, 1 if the factorization failed (indefinite: the
// caller retries projected), -1 if it failed on the projected Hessian
static int refactor_solve(dtac_implicit* im, const dtac_gel_model* gm, const double* x,
                          int project, int matfree, double* Hx, dtac_implicit_report* rep) {
  double t0;
  if (matfree) {
    t0 = dtac_imp_now_s();
    dtac_imp_assemble(im, gm, x, project, Hx, 0);
    rep->t_assemble += dtac_imp_now_s() - t0;
  }
  if (dtac_imp_factorize_at(im, gm, x, &rep->t_factor, &rep->nfactor)) return project ? -1 : 1;
  t0 = dtac_imp_now_s();
  int e = dtac_imp_prec(im, im->b, im->dx);
  rep->t_solve += dtac_imp_now_s() - t0;
  return e;
}

// the Newton direction dx = -H^{-1} g at x by the chosen solver; 0 on success. With
// p->project = 0 the true Hessian is tried first and the projected one taken when it is found
// indefinite (negative curvature in CG, or CHOLMOD's factorization failing).
int dtac_imp_newton_dir(dtac_implicit* im, const dtac_gel_model* gm, const double* x,
                      const dtac_implicit_params* p, double rel, dtac_implicit_report* rep) {
  for (int d = 0; d < im->ndof; d++) im->b[d] = -im->g[im->dof_node[d]];
  double* Hx = (double*)im->A->x;
  int matfree = p->solver == DTAC_SOLVE_MATFREE;
  for (int project = p->project ? 1 : 0; project <= 1; project++) {
    double t0 = dtac_imp_now_s();
    dtac_imp_assemble(im, gm, x, project, Hx, matfree);
    rep->nproject = im->nproject;
    rep->t_assemble += dtac_imp_now_s() - t0;
    if (p->solver == DTAC_SOLVE_FACTOR || !im->factor_ok) {
      int e = refactor_solve(im, gm, x, project, matfree, Hx, rep);
      if (e == 1) continue;
      return e;
    }
    // the kept factor follows the contact patch
    if (p->contact_update) {
      t0 = dtac_imp_now_s();
      int nu = dtac_imp_contact_update(im, gm, x);
      rep->t_factor += dtac_imp_now_s() - t0;
      if (nu > 0) rep->nupdate += nu;
      if (nu < 0) {
        project--;  // refactor at this projection
        continue;
      }
    }
    // inexact Newton: the inner tolerance follows the outer residual
    double tol = fmax(1e-10, fmin(p->cg_tolerance, rel));
    t0 = dtac_imp_now_s();
    int it = dtac_imp_pcg(im, gm, matfree ? NULL : Hx, im->b, im->dx, tol, p->cg_iterations);
    rep->t_solve += dtac_imp_now_s() - t0;
    if (it >= 0) {
      rep->ncg += it;
      return 0;
    }
    if (it == -2 && !project) continue;
    // the kept factor no longer preconditions well: renew it with this Hessian
    rep->ncg += p->cg_iterations;
    int e = refactor_solve(im, gm, x, project, matfree, Hx, rep);
    if (e == 1) continue;
    return e;
  }
  return -1;
}

// ---- creation
// -------------------------------------------------------------------------------------

int dtac_imp_cmp_int(const void* a, const void* b) {
  int x = *(const int*)a, y = *(const int*)b;
  return (x > y) - (x < y);
}

// position of row i in column j of A, -1 if absent
int dtac_imp_find_entry(const int* Ap, const int* Ai, int i, int j) {
  int lo = Ap[j], hi = Ap[j + 1] - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    if (Ai[mid] == i) return mid;
    if (Ai[mid] < i) {
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return -1;
}

dtac_implicit* dtac_imp_fail(dtac_implicit* im, char* err, size_t errlen, const char* msg) {
  if (err) snprintf(err, errlen, "implicit step: %s", msg);
  dtac_implicit_free(im);
  return NULL;
}

dtac_implicit* dtac_implicit_make(const dtac_gel_model* gm, int maxcol, char* err, size_t errlen) {
  dtac_implicit* im = (dtac_implicit*)calloc(1, sizeof(dtac_implicit));
  if (!im) return dtac_imp_fail(im, err, errlen, "out of memory");
  int nn = gm->nnode, n3 = 3 * nn;
  im->nnode = nn;
  im->ntet = gm->ntet;
  im->nsurf = gm->nsurf;
  im->maxcol = maxcol;
  cholmod_start(&im->cc);
  im->cc.print = 0;


  // dofs: free node components in node order
  im->dof = (int*)malloc(n3 * sizeof(int));
  im->dof_node = (int*)malloc(n3 * sizeof(int));
  if (!im->dof || !im->dof_node) return dtac_imp_fail(im, err, errlen, "out of memory");
  int nd = 0;
  for (int i = 0; i < n3; i++) {
    int a = i / 3, k = i % 3;
    int placed = gm->fixed[a] || (gm->lock && (gm->lock[a] >> k & 1));
    im->dof[i] = placed ? -1 : nd;
    if (!placed) im->dof_node[nd++] = i;
  }
  im->ndof = nd;
  if (nd == 0) return dtac_imp_fail(im, err, errlen, "no free degrees of freedom");

  // node adjacency through tets (each node with itself), sorted: the block pattern
  int* cnt = (int*)calloc(nn + 1, sizeof(int));
  if (!cnt) return dtac_imp_fail(im, err, errlen, "out of memory");
  for (int t = 0; t < gm->ntet; t++) {
    for (int q = 0; q < 4; q++) cnt[gm->tet[4 * t + q] + 1] += 4;
  }
  for (int a = 0; a < nn; a++) cnt[a + 1] += cnt[a] + 1;  // + itself
  int* fillp = (int*)malloc(nn * sizeof(int));
  int* nbr = (int*)malloc((cnt[nn] + 1) * sizeof(int));
  int* nnbr = (int*)calloc(nn, sizeof(int));
  if (!fillp || !nbr || !nnbr) {
    free(cnt);
    free(fillp);
    free(nbr);
    free(nnbr);
    return dtac_imp_fail(im, err, errlen, "out of memory");
  }
  for (int a = 0; a < nn; a++) {
    nbr[cnt[a]] = a;
    fillp[a] = cnt[a] + 1;
  }
  for (int t = 0; t < gm->ntet; t++) {
    for (int q = 0; q < 4; q++) {
      int a = gm->tet[4 * t + q];
      for (int r = 0; r < 4; r++) nbr[fillp[a]++] = gm->tet[4 * t + r];
    }
  }
  for (int a = 0; a < nn; a++) {
    int* list = nbr + cnt[a];
    int m = fillp[a] - cnt[a];
    qsort(list, m, sizeof(int), dtac_imp_cmp_int);
    int u = 0;
    for (int i = 0; i < m; i++) {
      if (i == 0 || list[i] != list[u - 1]) list[u++] = list[i];
    }
    nnbr[a] = u;
  }
  // columns: dof j (node a, comp k) has rows dof i <= j of nodes adjacent to a
  size_t nnz = 0;
  for (int j = 0; j < nd; j++) {
    int a = im->dof_node[j] / 3;
    for (int i = 0; i < nnbr[a]; i++) {
      int b = nbr[cnt[a] + i];
      for (int k = 0; k < 3; k++) {
        int di = im->dof[3 * b + k];
        if (di >= 0 && di <= j) nnz++;
      }
    }
  }
  im->A = cholmod_allocate_sparse(nd, nd, nnz, 1, 1, 1, CHOLMOD_REAL, &im->cc);
  if (!im->A) {
    free(cnt);
    free(fillp);
    free(nbr);
    free(nnbr);
    return dtac_imp_fail(im, err, errlen, "CHOLMOD could not allocate the Hessian");
  }
  int* Ap = (int*)im->A->p;
  int* Ai = (int*)im->A->i;
  int pos = 0;
  for (int j = 0; j < nd; j++) {
    Ap[j] = pos;
    int a = im->dof_node[j] / 3;
    // rows in increasing dof order: dofs follow node order, and neighbours are sorted
    for (int i = 0; i < nnbr[a]; i++) {
      int b = nbr[cnt[a] + i];
      for (int k = 0; k < 3; k++) {
        int di = im->dof[3 * b + k];
        if (di >= 0 && di <= j) Ai[pos++] = di;
      }
    }
  }
  Ap[nd] = pos;
  free(cnt);
  free(fillp);
  free(nbr);
  free(nnbr);

  // scatter maps
  im->tet_map = (int*)malloc(144 * (size_t)gm->ntet * sizeof(int));
  im->node_map = (int*)malloc(9 * (size_t)nn * sizeof(int));
  im->diag = (int*)malloc(nd * sizeof(int));
  if (!im->tet_map || !im->node_map || !im->diag) return dtac_imp_fail(im, err, errlen, "out of memory");
  for (int t = 0; t < gm->ntet; t++) {
    const int* tv = gm->tet + 4 * t;
    for (int r = 0; r < 12; r++) {
      for (int c = 0; c < 12; c++) {
        int di = im->dof[3 * tv[r / 3] + r % 3], dj = im->dof[3 * tv[c / 3] + c % 3];
        im->tet_map[144 * t + 12 * r + c] =
            (di >= 0 && dj >= 0 && di <= dj) ? dtac_imp_find_entry(Ap, Ai, di, dj) : -1;
      }
    }
  }
  for (int a = 0; a < nn; a++) {
    for (int r = 0; r < 3; r++) {
      for (int c = 0; c < 3; c++) {
        int di = im->dof[3 * a + r], dj = im->dof[3 * a + c];
        im->node_map[9 * a + 3 * r + c] =
            (di >= 0 && dj >= 0 && di <= dj) ? dtac_imp_find_entry(Ap, Ai, di, dj) : -1;
      }
    }
  }
  for (int d = 0; d < nd; d++) im->diag[d] = dtac_imp_find_entry(Ap, Ai, d, d);

  // work arrays
  double** w3[] = {&im->x, &im->xt, &im->g, &im->gt, &im->gel, &im->gc, &im->gi, &im->nv, &im->ny};
  for (size_t i = 0; i < sizeof(w3) / sizeof(w3[0]); i++) {
    *w3[i] = (double*)calloc(n3, sizeof(double));
    if (!*w3[i]) return dtac_imp_fail(im, err, errlen, "out of memory");
  }
  double** wd[] = {&im->b, &im->dx, &im->r, &im->z, &im->p, &im->q};
  for (size_t i = 0; i < sizeof(wd) / sizeof(wd[0]); i++) {
    *wd[i] = (double*)calloc(nd, sizeof(double));
    if (!*wd[i]) return dtac_imp_fail(im, err, errlen, "out of memory");
  }
  im->Hx_true = (double*)calloc(pos, sizeof(double));
  im->Hx_lin = (double*)calloc(pos, sizeof(double));
  if (!im->Hx_lin) return dtac_imp_fail(im, err, errlen, "out of memory");
  im->tetA = (double*)calloc(81 * (size_t)gm->ntet, sizeof(double));
  im->surfH = (double*)calloc(9 * (size_t)(gm->nsurf + 1), sizeof(double));
  im->F0 = (double*)calloc(9 * (size_t)gm->ntet, sizeof(double));
  im->ptet = (int*)calloc(gm->ntet + 1, sizeof(int));
  if (!im->ptet) return dtac_imp_fail(im, err, errlen, "out of memory");
  for (int t = 0; t < gm->ntet; t++) {
    int placed = 0;
    for (int q = 0; q < 4; q++) {
      for (int k = 0; k < 3; k++) placed |= im->dof[3 * gm->tet[4 * t + q] + k] < 0;
    }
    if (placed) im->ptet[im->nptet++] = t;
  }
  im->site_k = -1;
  im->ptet_of = (int*)malloc(sizeof(int) * (gm->ntet + 1));
  im->ptetH = (double*)calloc(144 * (size_t)(im->nptet + 1), sizeof(double));
  im->xback = (double*)calloc(3 * (size_t)gm->nnode + 1, sizeof(double));
  if (!im->ptet_of || !im->ptetH || !im->xback) return dtac_imp_fail(im, err, errlen, "out of memory");
  for (int t = 0; t < gm->ntet; t++) im->ptet_of[t] = -1;
  for (int q = 0; q < im->nptet; q++) im->ptet_of[im->ptet[q]] = q;
  // the free dofs an element shares with the back face: the rows of H_(x, back) B
  im->back_row = (int*)malloc(sizeof(int) * (nd + 1));
  im->back_of = (int*)malloc(sizeof(int) * (nd + 1));
  if (!im->back_row || !im->back_of) return dtac_imp_fail(im, err, errlen, "out of memory");
  for (int d = 0; d < nd; d++) im->back_of[d] = -1;
  for (int q = 0; q < im->nptet; q++) {
    const int* tv = gm->tet + 4 * im->ptet[q];
    int back = 0;
    for (int a = 0; a < 4; a++) back |= gm->fixed[tv[a]];
    for (int a = 0; a < 4 && back; a++) {
      for (int k = 0; k < 3 && !gm->fixed[tv[a]]; k++) {
        int d = im->dof[3 * tv[a] + k];
        if (d >= 0 && im->back_of[d] < 0) {
          im->back_of[d] = im->nback_row;
          im->back_row[im->nback_row++] = d;
        }
      }
    }
  }
  im->backC = (double*)calloc(6 * (size_t)im->nback_row + 1, sizeof(double));
  if (!im->backC) return dtac_imp_fail(im, err, errlen, "out of memory");
  im->lag = (lag*)calloc(gm->nsurf + 1, sizeof(lag));
  if (!im->Hx_true || !im->tetA || !im->surfH || !im->F0 || !im->lag)
    return dtac_imp_fail(im, err, errlen, "out of memory");
  im->B = cholmod_zeros(nd, 1, CHOLMOD_REAL, &im->cc);
  if (!im->B) return dtac_imp_fail(im, err, errlen, "CHOLMOD could not allocate a vector");

  // symbolic analysis (fill-reducing ordering) once, then a first numeric factor of the rest
  // Hessian at h = 2 ms and one solve, so that the factor's and the solves' memory exists
  im->Ls = cholmod_analyze(im->A, &im->cc);
  if (!im->Ls) return dtac_imp_fail(im, err, errlen, "CHOLMOD analysis failed");
  im->app_k = (double*)calloc(gm->nsurf + 1, sizeof(double));
  im->app_n = (double*)calloc(3 * (size_t)(gm->nsurf + 1), sizeof(double));
  im->iperm = (int*)calloc(nd, sizeof(int));
  im->Cup = cholmod_allocate_sparse(nd, gm->nsurf + 1, 3 * (gm->nsurf + 1), 1, 1, 0, CHOLMOD_REAL,
                                    &im->cc);
  im->Cdown = cholmod_allocate_sparse(nd, gm->nsurf + 1, 3 * (gm->nsurf + 1), 1, 1, 0, CHOLMOD_REAL,
                                      &im->cc);
  if (!im->app_k || !im->app_n || !im->iperm || !im->Cup || !im->Cdown)
    return dtac_imp_fail(im, err, errlen, "out of memory");
  for (int i = 0; i < n3; i++) im->x[i] = gm->X[i];
  im->x0 = im->x;
  im->v0 = im->gt;  // zeros
  im->h = DTAC_IMPLICIT_H0;
  im->ncol = 0;
  for (int t = 0; t < gm->ntet; t++) dtac_imp_tet_F(gm, t, im->x, im->F0 + 9 * t);
  for (int s = 0; s < gm->nsurf; s++) im->lag[s].c = -1;
  dtac_imp_assemble(im, gm, im->x, 1, (double*)im->A->x, 0);
  double tf = 0;
  int nf = 0;
  if (dtac_imp_factorize_at(im, gm, NULL, &tf, &nf))
    return dtac_imp_fail(im, err, errlen, "CHOLMOD factorization failed");
  if (dtac_imp_prec(im, im->b, im->z)) return dtac_imp_fail(im, err, errlen, "CHOLMOD solve failed");
  // a zero update of rank 8 (CHOLMOD's largest pass), so that its update workspace exists
  // before the first step
  int nw = nd < 8 ? nd : 8;
  if (nw > gm->nsurf + 1) nw = gm->nsurf + 1;
  for (int j = 0; j <= nw; j++) ((int*)im->Cup->p)[j] = j;
  for (int j = 0; j < nw; j++) {
    ((int*)im->Cup->i)[j] = j;
    ((double*)im->Cup->x)[j] = 0;
  }
  im->Cup->ncol = nw;
  if (!cholmod_updown(1, im->Cup, im->L, &im->cc))
    return dtac_imp_fail(im, err, errlen, "CHOLMOD update failed");
  im->L0 = cholmod_copy_factor(im->L, &im->cc);
  if (!im->L0) return dtac_imp_fail(im, err, errlen, "out of memory");
  im->L_dirty = 0;
  im->L_gel = 1;
  for (int i = 0; i < 9; i++) im->frame_R[i] = i % 4 == 0;
  im->rot_ok = 1;
  for (int a = 0; a < nn; a++) {
    int nf = (im->dof[3 * a] >= 0) + (im->dof[3 * a + 1] >= 0) + (im->dof[3 * a + 2] >= 0);
    if (nf != 0 && nf != 3) im->rot_ok = 0;
  }
  // coupled bodies: a node's contact blocks with up to two slots
  im->maxpair = 2 * gm->nsurf + 1;
  im->cslot = (int*)malloc(sizeof(int) * (maxcol > 0 ? maxcol : 1));
  im->pair_a = (int*)malloc(sizeof(int) * im->maxpair);
  im->pair_k = (int*)malloc(sizeof(int) * im->maxpair);
  im->pair_H = (double*)malloc(sizeof(double) * 9 * im->maxpair);
  im->pair_r = (double*)malloc(sizeof(double) * 3 * im->maxpair);
  if (!im->cslot || !im->pair_a || !im->pair_k || !im->pair_H || !im->pair_r)
    return dtac_imp_fail(im, err, errlen, "out of memory");
  for (int c = 0; c < maxcol; c++) im->cslot[c] = -1;
  return im;
}

void dtac_implicit_free(dtac_implicit* im) {
  if (!im) return;
  if (im->L) cholmod_free_factor(&im->L, &im->cc);
  if (im->L0) cholmod_free_factor(&im->L0, &im->cc);
  free(im->cslot);
  free(im->pair_a);
  free(im->pair_k);
  free(im->pair_H);
  free(im->pair_r);
  free(im->ptet_of);
  free(im->ptetH);
  free(im->back_row);
  free(im->back_of);
  free(im->backC);
  free(im->xback);
  if (im->Ls) cholmod_free_factor(&im->Ls, &im->cc);
  if (im->Cup) cholmod_free_sparse(&im->Cup, &im->cc);
  if (im->Cdown) cholmod_free_sparse(&im->Cdown, &im->cc);
  free(im->app_k);
  free(im->app_n);
  free(im->iperm);
  if (im->A) cholmod_free_sparse(&im->A, &im->cc);
  if (im->B) cholmod_free_dense(&im->B, &im->cc);
  if (im->X) cholmod_free_dense(&im->X, &im->cc);
  if (im->Y) cholmod_free_dense(&im->Y, &im->cc);
  if (im->E) cholmod_free_dense(&im->E, &im->cc);
  cholmod_finish(&im->cc);
  free(im->dof);
  free(im->dof_node);
  free(im->tet_map);
  free(im->node_map);
  free(im->diag);
  free(im->Hx_true);
  free(im->Hx_lin);
  free(im->tetA);
  free(im->surfH);
  free(im->F0);
  free(im->ptet);
  free(im->lag);
  double* w[] = {im->x,  im->xt, im->g,  im->gt, im->gel, im->gc, im->gi, im->nv,
                 im->ny, im->b,  im->dx, im->r,  im->z,   im->p,  im->q};
  for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) free(w[i]);
  free(im);
}
