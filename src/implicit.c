// implicit.c: backward Euler over one step h on the incremental potential
//   E(x) = sum_a m_a/(2h^2) |x_a - x0_a - h v0_a|^2 - m_a g.x_a + sum_t V_t [psi(F_t) + D_t]
//          + sum_(node, collider) kn R(-d) + sum_(stuck node) Phi_friction
// (backward Euler as the minimisation of an incremental potential: Gast, Schroeder, Stomakhin,
// Jiang, Teran, "Optimization integrator for large time steps", IEEE TVCG 21(10), 2015),
// minimised by Newton with per-element SPD projection and an Armijo line search; the back face is
// placed with the site at the step end and eliminated. Sparse algebra by CHOLMOD. The VJP by the
// implicit function theorem: at the minimum grad E(x*, theta) = 0, so dx*/dtheta = -H^{-1} d(grad
// E)/dtheta.
#include "implicit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cholmod.h"

#include "contact_energy.h"
#include "fem_hess.h"

// a contact node's stiffness in the kept factor is renewed when it is off by more than this
// fraction (rank-one updates cost little against a CG iteration)
#ifndef DTAC_UPDATE_REL
#define DTAC_UPDATE_REL 0.1
#endif

// the step h the first factor (made at creation) is of
#define DTAC_IMPLICIT_H0 0.002

// per contact node: the friction terms lagged from the step start
typedef struct lag_ {
  int c;        // collider index of the stuck contact, -1: no friction this step
  double L;     // normal load, N
  double n[3];  // normal
  double a[3];  // anchor, world (on the collider at the step end)
} lag;

struct dtac_implicit_ {
  int nnode, ntet, nsurf, ndof, maxcol;
  int* dof;       // dof index of each node component (3 nnode), -1: placed (back face, locked)
  int* dof_node;  // node component of each dof (ndof)
  // Hessian of the free dofs, upper triangle in compressed columns (CHOLMOD stype 1)
  cholmod_common cc;
  cholmod_sparse* A;
  cholmod_factor* Ls;  // supernodal LL' of A: what a (re)factorization computes
  cholmod_factor* L;   // simplicial LDL' copy of Ls, then modified by contact updates: the solves
  // contact updates of L: the normal stiffness k n n^T of each contact node that L holds, and
  // the update and downdate matrices (free dofs in L's permutation)
  double* app_k;  // (nsurf)
  double* app_n;  // (3 nsurf)
  int* iperm;     // dof -> its row in L's permutation (ndof)
  cholmod_sparse *Cup, *Cdown;
  cholmod_dense *B, *X, *Y, *E;
  int factor_ok;      // L holds a numeric factor (of some earlier Hessian)
  double* Hx_true;    // values of the unprojected Hessian (VJP), same pattern
  double* Hx_lin;     // the linear material's constant part (inertia, elastic, damping)
  double lin_key[4];  // what Hx_lin was made for: h, mu, lambda, beta
  int lin_ok;
  int* tet_map;   // each tet's 12x12 entries in A->x (-1: lower or placed) (144 ntet)
  int* node_map;  // each node's 3x3 diagonal block in A->x (9 nnode)
  int* diag;      // position of each dof's diagonal in A->x (ndof)
  double* tetA;   // matrix-free: each tet's projected 9x9 dP/dF with damping (81 ntet)
  double* surfH;  // matrix-free: each contact node's contact and friction 3x3 (9 nsurf)
  double* F0;     // each tet's F at the step start (9 ntet)
  int nptet;      // tets with a placed node component ...
  int* ptet;      // ... (nptet): all the placed components' coupling to the free ones
  lag* lag;       // (nsurf)
  // step context
  const double* x0;
  const double* v0;
  const dtac_collider* col;
  int ncol;
  double h, grav[3];
  int material;
  // work, 3 nnode each
  double *x, *xt, *g, *gt, *gel, *gc, *gi, *nv, *ny;
  // work, ndof each
  double *b, *dx, *r, *z, *p, *q;
  double scale;  // |forces in balance| of the last gradient pass
  int nproject;
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

void dtac_implicit_params_default(dtac_implicit_params* p) {
  p->tolerance = 1e-6;
  p->iterations = 20;
  p->solver = DTAC_SOLVE_PCG;
  p->material = DTAC_MAT_NEOHOOKEAN;
  p->cg_tolerance = 1e-3;
  p->cg_iterations = 25;
  p->project = 0;
  p->contact_update = 1;
  p->adj_projected = 0;
  p->adj_tolerance = 1e-8;
}

int dtac_implicit_ndof(const dtac_implicit* im) {
  return im->ndof;
}

// ---- energy and gradient ---------------------------------------------------------------------

// F and lag matrix of tet t at positions x
static void tet_F(const dtac_gel_model* gm, int t, const double* x, double F[9]) {
  const int* tv = gm->tet + 4 * t;
  dtac_tet_defgrad(x + 3 * tv[0], x + 3 * tv[1], x + 3 * tv[2], x + 3 * tv[3], gm->Dm_inv + 9 * t,
                   F);
}
static const double dtac_I33[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
static const double* lag_F(const dtac_implicit* im, int t) {
  return im->material == DTAC_MAT_LINEAR ? dtac_I33 : im->F0 + 9 * t;
}

// the friction terms of this step from the start state: a contact node whose anchor is on the
// deepest collider at its start position (colliders at the step end) keeps that normal load
static void make_lag(dtac_implicit* im, const dtac_gel_model* gm, const double* state0) {
  dtac_state_layout Ly = dtac_gel_state_layout(gm);
  for (int s = 0; s < gm->nsurf; s++) {
    lag* lg = im->lag + s;
    lg->c = -1;
    int a = gm->surf[s];
    const double* an = state0 + Ly.anchor + 4 * s;
    double dmin, n[3];
    int c = dtac_deepest_collider(im->col, im->ncol, im->x0 + 3 * a, &dmin, n);
    if (c < 0 || (int)an[0] != im->col[c].geom || !(im->col[c].mu > 0)) continue;
    dtac_contact_node_param pe = dtac_contact_scaled(gm->surf_param + s, im->col + c);
    double dramp;
    double L = im->col[c].mu * pe.kn * dtac_contact_ramp(-dmin, pe.width, &dramp);
    if (!(L > 0) || !(pe.kt > 0)) continue;
    lg->c = c;
    lg->L = L;
    for (int k = 0; k < 3; k++) lg->n[k] = n[k];
    dtac_collider_to_world(im->col + c, an + 1, lg->a);
  }
}

// contact and friction energy of contact node s at xa, gradient g3, Hessian H3 (may be null;
// projected if project)
static double node_contact(const dtac_implicit* im, const dtac_gel_model* gm, int s,
                           const double* xa, double g3[3], double* H3, int project) {
  double e = 0, gk[3], Hk[9];
  g3[0] = g3[1] = g3[2] = 0;
  if (H3) memset(H3, 0, 9 * sizeof(double));
  for (int c = 0; c < im->ncol; c++) {
    dtac_contact_node_param pe = dtac_contact_scaled(gm->surf_param + s, im->col + c);
    e += dtac_contact_energy(pe.kn, pe.width, im->col + c, xa, gk, H3 ? Hk : NULL, project);
    for (int k = 0; k < 3; k++) g3[k] += gk[k];
    if (H3) {
      for (int k = 0; k < 9; k++) H3[k] += Hk[k];
    }
  }
  const lag* lg = im->lag + s;
  if (lg->c >= 0) {
    e += dtac_friction_energy(lg->L, gm->surf_param[s].kt, lg->n, xa, lg->a, gk, H3 ? Hk : NULL);
    for (int k = 0; k < 3; k++) g3[k] += gk[k];
    if (H3) {
      for (int k = 0; k < 9; k++) H3[k] += Hk[k];
    }
  }
  return e;
}

// the incremental potential at x (all nodes); gradient of every node component into g (may be
// null); im->scale gets |elastic| + |contact| + |inertia and gravity| over the free dofs
static double energy_grad(dtac_implicit* im, const dtac_gel_model* gm, const double* x, double* g) {
  int n3 = 3 * gm->nnode;
  double h2 = im->h * im->h;
  double e_in = 0, e_el = 0, e_c = 0;
  if (g) {
    memset(im->gel, 0, n3 * sizeof(double));
    memset(im->gc, 0, n3 * sizeof(double));
  }
  // inertia and gravity on the free components
  for (int i = 0; i < n3; i++) {
    if (im->dof[i] < 0) continue;
    double m = gm->mass[i / 3];
    double d = x[i] - im->x0[i] - im->h * im->v0[i];
    e_in += 0.5 * m / h2 * d * d - m * im->grav[i % 3] * x[i];
    if (g) im->gi[i] = m / h2 * d - m * im->grav[i % 3];
  }
  // elements: elastic energy and damping, gradients scattered in tet order (deterministic)
  for (int t = 0; t < gm->ntet; t++) {
    double F[9], P[9], Pd[9];
    tet_F(gm, t, x, F);
    double vol = gm->vol[t];
    e_el += vol * dtac_elastic_energy(im->material, &gm->mat, F);
    if (gm->mat.beta > 0) {
      e_el += vol *
              dtac_kv_step_energy(&gm->mat, lag_F(im, t), im->F0 + 9 * t, F, im->h, g ? Pd : NULL);
    }
    if (!g) continue;
    dtac_elastic_stress(im->material, &gm->mat, F, P);
    if (gm->mat.beta > 0) {
      for (int k = 0; k < 9; k++) P[k] += Pd[k];
    }
    double ge[12];
    dtac_tet_grad_from_stress(P, gm->Dm_inv + 9 * t, vol, ge);
    const int* tv = gm->tet + 4 * t;
    for (int q = 0; q < 4; q++) {
      for (int k = 0; k < 3; k++) im->gel[3 * tv[q] + k] += ge[3 * q + k];
    }
  }
  // contact and friction
  for (int s = 0; s < gm->nsurf; s++) {
    int a = gm->surf[s];
    double g3[3];
    e_c += node_contact(im, gm, s, x + 3 * a, g3, NULL, 0);
    if (g) {
      for (int k = 0; k < 3; k++) im->gc[3 * a + k] += g3[k];
    }
  }
  if (g) {
    double s_el = 0, s_c = 0, s_i = 0;
    for (int i = 0; i < n3; i++) {
      if (im->dof[i] < 0) {
        g[i] = im->gel[i] + im->gc[i];
        continue;
      }
      g[i] = im->gel[i] + im->gc[i] + im->gi[i];
      s_el += im->gel[i] * im->gel[i];
      s_c += im->gc[i] * im->gc[i];
      s_i += im->gi[i] * im->gi[i];
    }
    im->scale = sqrt(s_el) + sqrt(s_c) + sqrt(s_i);
  }
  return e_in + e_el + e_c;
}

// ---- Hessian ------------------------------------------------------------------------------------

// the 9x9 element block A of tet t at x: elastic dP/dF (projected if project) plus damping
static int tet_block(const dtac_implicit* im, const dtac_gel_model* gm, int t, const double* x,
                     int project, double A[81]) {
  double F[9];
  tet_F(gm, t, x, F);
  dtac_elastic_dPdF(im->material, &gm->mat, F, A);
  int changed = 0;
  if (project && im->material != DTAC_MAT_LINEAR) changed = dtac_iso_project(A, F);
  if (gm->mat.beta > 0) dtac_kv_step_dPdF_add(&gm->mat, lag_F(im, t), im->h, A);
  return changed;
}

// assembles the Hessian of the free dofs at x into values Hx (A's pattern); with matfree, the
// element and contact blocks are kept (tetA, surfH) instead of assembled
static void assemble(dtac_implicit* im, const dtac_gel_model* gm, const double* x, int project,
                     double* Hx, int matfree) {
  int nnz = (int)((int*)im->A->p)[im->ndof];
  double h2 = im->h * im->h;
  im->nproject = 0;
  // the linear material's inertia, elastic and damping part is constant: kept, keyed on what it
  // depends on (h, the Lame constants, the damping time; the masses are fixed at creation)
  int linear = im->material == DTAC_MAT_LINEAR && !matfree;
  if (linear) {
    double key[4] = {im->h, gm->mat.mu, gm->mat.lambda, gm->mat.beta};
    if (!im->lin_ok || memcmp(key, im->lin_key, sizeof(key))) {
      memset(im->Hx_lin, 0, nnz * sizeof(double));
      for (int d = 0; d < im->ndof; d++) {
        im->Hx_lin[im->diag[d]] += gm->mass[im->dof_node[d] / 3] / h2;
      }
      for (int t = 0; t < gm->ntet; t++) {
        double A[81], H[144];
        tet_block(im, gm, t, x, 0, A);
        dtac_tet_hess12(gm->Dm_inv + 9 * t, gm->vol[t], A, H);
        const int* map = im->tet_map + 144 * t;
        for (int k = 0; k < 144; k++) {
          if (map[k] >= 0) im->Hx_lin[map[k]] += H[k];
        }
      }
      memcpy(im->lin_key, key, sizeof(key));
      im->lin_ok = 1;
    }
    memcpy(Hx, im->Hx_lin, nnz * sizeof(double));
  }
  if (!matfree && !linear) {
    memset(Hx, 0, nnz * sizeof(double));
    for (int d = 0; d < im->ndof; d++) Hx[im->diag[d]] += gm->mass[im->dof_node[d] / 3] / h2;
  }
  for (int t = 0; t < gm->ntet && !linear; t++) {
    double A9[81], H[144];
    double* A = matfree ? im->tetA + 81 * t : A9;
    im->nproject += tet_block(im, gm, t, x, project, A);
    if (matfree) continue;
    dtac_tet_hess12(gm->Dm_inv + 9 * t, gm->vol[t], A, H);
    const int* map = im->tet_map + 144 * t;
    for (int k = 0; k < 144; k++) {
      if (map[k] >= 0) Hx[map[k]] += H[k];
    }
  }
  for (int s = 0; s < gm->nsurf; s++) {
    int a = gm->surf[s];
    double g3[3], H3[9];
    node_contact(im, gm, s, x + 3 * a, g3, H3, project);
    if (matfree) {
      memcpy(im->surfH + 9 * s, H3, sizeof(H3));
      continue;
    }
    const int* map = im->node_map + 9 * a;
    for (int k = 0; k < 9; k++) {
      if (map[k] >= 0) Hx[map[k]] += H3[k];
    }
  }
}

// y = H p of the assembled upper-triangle matrix with values Hx
static void spmv(const dtac_implicit* im, const double* Hx, const double* p, double* y) {
  const int* Ap = (const int*)im->A->p;
  const int* Ai = (const int*)im->A->i;
  memset(y, 0, im->ndof * sizeof(double));
  for (int j = 0; j < im->ndof; j++) {
    double pj = p[j], yj = 0;
    for (int k = Ap[j]; k < Ap[j + 1]; k++) {
      int i = Ai[k];
      y[i] += Hx[k] * pj;
      if (i != j) yj += Hx[k] * p[i];
    }
    y[j] += yj;
  }
}

// y = H p from the kept element blocks (matrix-free)
static void hvp_matfree(dtac_implicit* im, const dtac_gel_model* gm, const double* p, double* y) {
  int n3 = 3 * gm->nnode;
  double h2 = im->h * im->h;
  for (int i = 0; i < n3; i++) im->nv[i] = im->dof[i] >= 0 ? p[im->dof[i]] : 0;
  memset(im->ny, 0, n3 * sizeof(double));
  for (int t = 0; t < gm->ntet; t++) {
    const int* tv = gm->tet + 4 * t;
    double dx[12], ye[12];
    for (int q = 0; q < 4; q++) {
      for (int k = 0; k < 3; k++) dx[3 * q + k] = im->nv[3 * tv[q] + k];
    }
    dtac_tet_hvp(gm->Dm_inv + 9 * t, gm->vol[t], im->tetA + 81 * t, dx, ye);
    for (int q = 0; q < 4; q++) {
      for (int k = 0; k < 3; k++) im->ny[3 * tv[q] + k] += ye[3 * q + k];
    }
  }
  for (int s = 0; s < gm->nsurf; s++) {
    int a = gm->surf[s];
    const double* H3 = im->surfH + 9 * s;
    for (int i = 0; i < 3; i++) {
      for (int j = 0; j < 3; j++) im->ny[3 * a + i] += H3[3 * i + j] * im->nv[3 * a + j];
    }
  }
  for (int d = 0; d < im->ndof; d++) {
    int i = im->dof_node[d];
    y[d] = im->ny[i] + gm->mass[i / 3] / h2 * p[d];
  }
}

// the product of the unprojected Hessian with node vector lam (zero at placed components) into y,
// correct at the placed components (the elements holding them and their contact blocks): what
// the VJP needs of them
static void hvp_full_true(dtac_implicit* im, const dtac_gel_model* gm, const double* x,
                          const double* lam, double* y) {
  int n3 = 3 * gm->nnode;
  double h2 = im->h * im->h;
  for (int i = 0; i < n3; i++) y[i] = im->dof[i] >= 0 ? gm->mass[i / 3] / h2 * lam[i] : 0;
  for (int pt = 0; pt < im->nptet; pt++) {
    int t = im->ptet[pt];
    const int* tv = gm->tet + 4 * t;
    double A[81], dx[12], ye[12];
    tet_block(im, gm, t, x, 0, A);
    for (int q = 0; q < 4; q++) {
      for (int k = 0; k < 3; k++) dx[3 * q + k] = lam[3 * tv[q] + k];
    }
    dtac_tet_hvp(gm->Dm_inv + 9 * t, gm->vol[t], A, dx, ye);
    for (int q = 0; q < 4; q++) {
      for (int k = 0; k < 3; k++) y[3 * tv[q] + k] += ye[3 * q + k];
    }
  }
  for (int s = 0; s < gm->nsurf; s++) {
    int a = gm->surf[s];
    double g3[3], H3[9];
    node_contact(im, gm, s, x + 3 * a, g3, H3, 0);
    for (int i = 0; i < 3; i++) {
      for (int j = 0; j < 3; j++) y[3 * a + i] += H3[3 * i + j] * lam[3 * a + j];
    }
  }
}

// ---- linear solves ------------------------------------------------------------------------------

// the normal penalty stiffness of contact node s at xa against its deepest collider (0 out of
// contact), with the unit normal
static double contact_k(const dtac_implicit* im, const dtac_gel_model* gm, int s, const double* xa,
                        double n[3]) {
  double dmin;
  int c = dtac_deepest_collider(im->col, im->ncol, xa, &dmin, n);
  if (c < 0) return 0;
  dtac_contact_node_param pe = dtac_contact_scaled(gm->surf_param + s, im->col + c);
  double dramp;
  dtac_contact_ramp(-dmin, pe.width, &dramp);
  double l = dtac_norm3(n);
  for (int k = 0; k < 3; k++) n[k] = l > 0 ? n[k] / l : 0;
  return pe.kn * dramp;
}

// numeric factorization of A (supernodal), then its simplicial LDL' copy for the solves and the
// contact updates (CHOLMOD allocates that copy: a refactorization is the step's one allocation);
// the contact stiffness at x is what the new factor holds
static int factorize_at(dtac_implicit* im, const dtac_gel_model* gm, const double* x,
                        double* t_factor, int* nfactor) {
  double t0 = now_s();
  cholmod_factorize(im->A, im->Ls, &im->cc);
  (*nfactor)++;
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
    im->app_k[s] = x ? contact_k(im, gm, s, x + 3 * gm->surf[s], im->app_n + 3 * s) : 0;
  }
  *t_factor += now_s() - t0;
  return im->factor_ok ? 0 : -1;
}

// brings the kept factor's contact stiffness to that at x by rank-one downdates and updates
// (CHOLMOD's cholmod_updown; Davis, Hager, "Multiple-rank modifications of a sparse Cholesky
// factorization", SIAM J. Matrix Anal. Appl. 22, 2001) of the nodes whose stiffness changed by
// more than DTAC_UPDATE_REL or whose normal turned: the factor follows the contact patch without a
// refactorization. Returns the number of rank-one changes, -1 if CHOLMOD failed.
static int contact_update(dtac_implicit* im, const dtac_gel_model* gm, const double* x) {
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
    double k = contact_k(im, gm, s, x + 3 * a, n);
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

// z = L^{-1} r with the kept factor (workspaces kept: no allocation after the first call)
static int prec(dtac_implicit* im, const double* r, double* z) {
  memcpy(im->B->x, r, im->ndof * sizeof(double));
  if (!cholmod_solve2(CHOLMOD_A, im->L, im->B, NULL, &im->X, NULL, &im->Y, &im->E, &im->cc))
    return -1;
  memcpy(z, im->X->x, im->ndof * sizeof(double));
  return 0;
}

// H dx = b by CG preconditioned with the kept factor; H from the values Hx (spmv) or the element
// blocks (Hx NULL). Returns iterations, -1 if not converged within maxit to |r| <= tol |b|, -2 on
// negative curvature.
static int pcg(dtac_implicit* im, const dtac_gel_model* gm, const double* Hx, const double* b,
               double* x, double tol, int maxit) {
  int n = im->ndof;
  double bb = 0;
  for (int i = 0; i < n; i++) bb += b[i] * b[i];
  memset(x, 0, n * sizeof(double));
  if (bb == 0) return 0;
  memcpy(im->r, b, n * sizeof(double));
  if (prec(im, im->r, im->z)) return -1;
  memcpy(im->p, im->z, n * sizeof(double));
  double rz = 0;
  for (int i = 0; i < n; i++) rz += im->r[i] * im->z[i];
  for (int it = 1; it <= maxit; it++) {
    if (Hx) {
      spmv(im, Hx, im->p, im->q);
    } else {
      hvp_matfree(im, gm, im->p, im->q);
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
    if (prec(im, im->r, im->z)) return -1;
    double rz1 = 0;
    for (int i = 0; i < n; i++) rz1 += im->r[i] * im->z[i];
    double beta = rz1 / rz;
    rz = rz1;
    for (int i = 0; i < n; i++) im->p[i] = im->z[i] + beta * im->p[i];
  }
  return -1;
}

// the Newton direction dx = -H^{-1} g at x by the chosen solver; 0 on success. With
// p->project = 0 the true Hessian is tried first and the projected one taken when it is found
// indefinite (negative curvature in CG, or CHOLMOD's factorization failing).
static int newton_dir(dtac_implicit* im, const dtac_gel_model* gm, const double* x,
                      const dtac_implicit_params* p, double rel, dtac_implicit_report* rep) {
  for (int d = 0; d < im->ndof; d++) im->b[d] = -im->g[im->dof_node[d]];
  double* Hx = (double*)im->A->x;
  int matfree = p->solver == DTAC_SOLVE_MATFREE;
  for (int project = p->project ? 1 : 0; project <= 1; project++) {
    double t0 = now_s();
    assemble(im, gm, x, project, Hx, matfree);
    rep->nproject = im->nproject;
    rep->t_assemble += now_s() - t0;
    if (p->solver == DTAC_SOLVE_FACTOR || !im->factor_ok) {
      if (matfree) {
        t0 = now_s();
        assemble(im, gm, x, project, Hx, 0);
        rep->t_assemble += now_s() - t0;
      }
      if (factorize_at(im, gm, x, &rep->t_factor, &rep->nfactor)) {
        if (!project) continue;
        return -1;
      }
      t0 = now_s();
      int e = prec(im, im->b, im->dx);
      rep->t_solve += now_s() - t0;
      return e;
    }
    // the kept factor follows the contact patch
    if (p->contact_update) {
      t0 = now_s();
      int nu = contact_update(im, gm, x);
      rep->t_factor += now_s() - t0;
      if (nu > 0) rep->nupdate += nu;
      if (nu < 0) {
        project--;  // refactor at this projection
        continue;
      }
    }
    // inexact Newton: the inner tolerance follows the outer residual
    double tol = fmax(1e-10, fmin(p->cg_tolerance, rel));
    t0 = now_s();
    int it = pcg(im, gm, matfree ? NULL : Hx, im->b, im->dx, tol, p->cg_iterations);
    rep->t_solve += now_s() - t0;
    if (it >= 0) {
      rep->ncg += it;
      return 0;
    }
    if (it == -2 && !project) continue;
    // the kept factor no longer preconditions well: renew it with this Hessian
    rep->ncg += p->cg_iterations;
    if (matfree) {
      t0 = now_s();
      assemble(im, gm, x, project, Hx, 0);
      rep->t_assemble += now_s() - t0;
    }
    if (factorize_at(im, gm, x, &rep->t_factor, &rep->nfactor)) {
      if (!project) continue;
      return -1;
    }
    t0 = now_s();
    int e = prec(im, im->b, im->dx);
    rep->t_solve += now_s() - t0;
    return e;
  }
  return -1;
}

// ---- creation
// -------------------------------------------------------------------------------------

static int cmp_int(const void* a, const void* b) {
  int x = *(const int*)a, y = *(const int*)b;
  return (x > y) - (x < y);
}

// position of row i in column j of A, -1 if absent
static int find_entry(const int* Ap, const int* Ai, int i, int j) {
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

static dtac_implicit* fail(dtac_implicit* im, char* err, size_t errlen, const char* msg) {
  if (err) snprintf(err, errlen, "implicit step: %s", msg);
  dtac_implicit_free(im);
  return NULL;
}

dtac_implicit* dtac_implicit_make(const dtac_gel_model* gm, int maxcol, char* err, size_t errlen) {
  dtac_implicit* im = (dtac_implicit*)calloc(1, sizeof(dtac_implicit));
  if (!im) return fail(im, err, errlen, "out of memory");
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
  if (!im->dof || !im->dof_node) return fail(im, err, errlen, "out of memory");
  int nd = 0;
  for (int i = 0; i < n3; i++) {
    int a = i / 3, k = i % 3;
    int placed = gm->fixed[a] || (gm->lock && (gm->lock[a] >> k & 1));
    im->dof[i] = placed ? -1 : nd;
    if (!placed) im->dof_node[nd++] = i;
  }
  im->ndof = nd;
  if (nd == 0) return fail(im, err, errlen, "no free degrees of freedom");

  // node adjacency through tets (each node with itself), sorted: the block pattern
  int* cnt = (int*)calloc(nn + 1, sizeof(int));
  if (!cnt) return fail(im, err, errlen, "out of memory");
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
    return fail(im, err, errlen, "out of memory");
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
    qsort(list, m, sizeof(int), cmp_int);
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
    return fail(im, err, errlen, "CHOLMOD could not allocate the Hessian");
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
  if (!im->tet_map || !im->node_map || !im->diag) return fail(im, err, errlen, "out of memory");
  for (int t = 0; t < gm->ntet; t++) {
    const int* tv = gm->tet + 4 * t;
    for (int r = 0; r < 12; r++) {
      for (int c = 0; c < 12; c++) {
        int di = im->dof[3 * tv[r / 3] + r % 3], dj = im->dof[3 * tv[c / 3] + c % 3];
        im->tet_map[144 * t + 12 * r + c] =
            (di >= 0 && dj >= 0 && di <= dj) ? find_entry(Ap, Ai, di, dj) : -1;
      }
    }
  }
  for (int a = 0; a < nn; a++) {
    for (int r = 0; r < 3; r++) {
      for (int c = 0; c < 3; c++) {
        int di = im->dof[3 * a + r], dj = im->dof[3 * a + c];
        im->node_map[9 * a + 3 * r + c] =
            (di >= 0 && dj >= 0 && di <= dj) ? find_entry(Ap, Ai, di, dj) : -1;
      }
    }
  }
  for (int d = 0; d < nd; d++) im->diag[d] = find_entry(Ap, Ai, d, d);

  // work arrays
  double** w3[] = {&im->x, &im->xt, &im->g, &im->gt, &im->gel, &im->gc, &im->gi, &im->nv, &im->ny};
  for (size_t i = 0; i < sizeof(w3) / sizeof(w3[0]); i++) {
    *w3[i] = (double*)calloc(n3, sizeof(double));
    if (!*w3[i]) return fail(im, err, errlen, "out of memory");
  }
  double** wd[] = {&im->b, &im->dx, &im->r, &im->z, &im->p, &im->q};
  for (size_t i = 0; i < sizeof(wd) / sizeof(wd[0]); i++) {
    *wd[i] = (double*)calloc(nd, sizeof(double));
    if (!*wd[i]) return fail(im, err, errlen, "out of memory");
  }
  im->Hx_true = (double*)calloc(pos, sizeof(double));
  im->Hx_lin = (double*)calloc(pos, sizeof(double));
  if (!im->Hx_lin) return fail(im, err, errlen, "out of memory");
  im->tetA = (double*)calloc(81 * (size_t)gm->ntet, sizeof(double));
  im->surfH = (double*)calloc(9 * (size_t)(gm->nsurf + 1), sizeof(double));
  im->F0 = (double*)calloc(9 * (size_t)gm->ntet, sizeof(double));
  im->ptet = (int*)calloc(gm->ntet + 1, sizeof(int));
  if (!im->ptet) return fail(im, err, errlen, "out of memory");
  for (int t = 0; t < gm->ntet; t++) {
    int placed = 0;
    for (int q = 0; q < 4; q++) {
      for (int k = 0; k < 3; k++) placed |= im->dof[3 * gm->tet[4 * t + q] + k] < 0;
    }
    if (placed) im->ptet[im->nptet++] = t;
  }
  im->lag = (lag*)calloc(gm->nsurf + 1, sizeof(lag));
  if (!im->Hx_true || !im->tetA || !im->surfH || !im->F0 || !im->lag)
    return fail(im, err, errlen, "out of memory");
  im->B = cholmod_zeros(nd, 1, CHOLMOD_REAL, &im->cc);
  if (!im->B) return fail(im, err, errlen, "CHOLMOD could not allocate a vector");

  // symbolic analysis (fill-reducing ordering) once, then a first numeric factor of the rest
  // Hessian at h = 2 ms and one solve, so that the factor's and the solves' memory exists
  im->Ls = cholmod_analyze(im->A, &im->cc);
  if (!im->Ls) return fail(im, err, errlen, "CHOLMOD analysis failed");
  im->app_k = (double*)calloc(gm->nsurf + 1, sizeof(double));
  im->app_n = (double*)calloc(3 * (size_t)(gm->nsurf + 1), sizeof(double));
  im->iperm = (int*)calloc(nd, sizeof(int));
  im->Cup = cholmod_allocate_sparse(nd, gm->nsurf + 1, 3 * (gm->nsurf + 1), 1, 1, 0, CHOLMOD_REAL,
                                    &im->cc);
  im->Cdown = cholmod_allocate_sparse(nd, gm->nsurf + 1, 3 * (gm->nsurf + 1), 1, 1, 0, CHOLMOD_REAL,
                                      &im->cc);
  if (!im->app_k || !im->app_n || !im->iperm || !im->Cup || !im->Cdown)
    return fail(im, err, errlen, "out of memory");
  for (int i = 0; i < n3; i++) im->x[i] = gm->X[i];
  im->x0 = im->x;
  im->v0 = im->gt;  // zeros
  im->h = DTAC_IMPLICIT_H0;
  im->ncol = 0;
  for (int t = 0; t < gm->ntet; t++) tet_F(gm, t, im->x, im->F0 + 9 * t);
  for (int s = 0; s < gm->nsurf; s++) im->lag[s].c = -1;
  assemble(im, gm, im->x, 1, (double*)im->A->x, 0);
  double tf = 0;
  int nf = 0;
  if (factorize_at(im, gm, NULL, &tf, &nf))
    return fail(im, err, errlen, "CHOLMOD factorization failed");
  if (prec(im, im->b, im->z)) return fail(im, err, errlen, "CHOLMOD solve failed");
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
    return fail(im, err, errlen, "CHOLMOD update failed");
  return im;
}

void dtac_implicit_free(dtac_implicit* im) {
  if (!im) return;
  if (im->L) cholmod_free_factor(&im->L, &im->cc);
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

// ---- the step ----------------------------------------------------------------------------------

// the step's context from the start state: x0, v0, F0, the lag, colliders
static void set_context(dtac_implicit* im, const dtac_gel_model* gm, const double* state0,
                        const dtac_collider* col, int ncol, const double gravity[3], double h,
                        int material) {
  dtac_state_layout Ly = dtac_gel_state_layout(gm);
  im->x0 = state0 + Ly.x;
  im->v0 = state0 + Ly.v;
  im->col = col;
  im->ncol = ncol < im->maxcol ? ncol : im->maxcol;
  im->h = h;
  im->material = material;
  for (int k = 0; k < 3; k++) im->grav[k] = gravity ? gravity[k] : 0;
  for (int t = 0; t < gm->ntet; t++) tet_F(gm, t, im->x0, im->F0 + 9 * t);
  make_lag(im, gm, state0);
}

// positions with the placed components set: back face with the site frame, locked as at start
static void place(dtac_implicit* im, const dtac_gel_model* gm, const dtac_frame* site1, double* x,
                  double* v) {
  for (int a = 0; a < gm->nnode; a++) {
    if (gm->fixed[a]) {
      double va[3];
      dtac_place_node(site1, gm->X + 3 * a, x + 3 * a, v ? v + 3 * a : va);
      continue;
    }
    for (int k = 0; k < 3; k++) {
      if (im->dof[3 * a + k] < 0) x[3 * a + k] = im->x0[3 * a + k];
    }
  }
}

double dtac_implicit_energy(dtac_implicit* im, const dtac_gel_model* gm, const double* state0,
                            const dtac_collider* col, int ncol, const double gravity[3], double h,
                            int material, const double* x, double* g) {
  set_context(im, gm, state0, col, ncol, gravity, h, material);
  return energy_grad(im, gm, x, g);
}

void dtac_implicit_reactions(dtac_implicit* im, const dtac_gel_model* gm, const double* state0,
                             const double* state1, const dtac_frame* site1,
                             const dtac_collider* col, int ncol, const double gravity[3], double h,
                             int material, double* col_ft, double site_ft[6]) {
  dtac_state_layout Ly = dtac_gel_state_layout(gm);
  const double* x = state1 + Ly.x;
  set_context(im, gm, state0, col, ncol, gravity, h, material);
  energy_grad(im, gm, x, im->g);  // im->gel: elastic and damping gradient of every node
  if (col_ft) memset(col_ft, 0, 6 * (size_t)ncol * sizeof(double));
  if (site_ft) memset(site_ft, 0, 6 * sizeof(double));
  // on the colliders: minus the force each puts on the nodes (minus its energy's gradient)
  for (int s = 0; s < gm->nsurf && col_ft; s++) {
    int a = gm->surf[s];
    const double* xa = x + 3 * a;
    for (int c = 0; c < im->ncol; c++) {
      dtac_contact_node_param pe = dtac_contact_scaled(gm->surf_param + s, im->col + c);
      double g3[3], f[3];
      dtac_contact_energy(pe.kn, pe.width, im->col + c, xa, g3, NULL, 0);
      for (int k = 0; k < 3; k++) f[k] = g3[k];  // on the collider: -(-g)
      dtac_wrench_add(col_ft + 6 * c, f, (const double[3]){0, 0, 0}, xa, im->col[c].pos);
    }
    const lag* lg = im->lag + s;
    if (lg->c >= 0) {
      double g3[3];
      dtac_friction_energy(lg->L, gm->surf_param[s].kt, lg->n, xa, lg->a, g3, NULL);
      dtac_wrench_add(col_ft + 6 * lg->c, g3, (const double[3]){0, 0, 0}, xa, im->col[lg->c].pos);
    }
  }
  // on the site's body: the internal forces -grad of the back-face nodes
  for (int i = 0; i < gm->nfixed && site_ft; i++) {
    int a = gm->fixed_id[i];
    double f[3] = {-im->gel[3 * a], -im->gel[3 * a + 1], -im->gel[3 * a + 2]};
    dtac_wrench_add(site_ft, f, (const double[3]){0, 0, 0}, x + 3 * a, site1->pos);
  }
}

static int all_finite(const double* a, int n) {
  for (int i = 0; i < n; i++) {
    if (!isfinite(a[i])) return 0;
  }
  return 1;
}

int dtac_implicit_step(dtac_implicit* im, const dtac_gel_model* gm, double* state,
                       const dtac_frame* site0, const dtac_frame* site1, const dtac_collider* col,
                       int ncol, const double gravity[3], double h, const dtac_implicit_params* p,
                       dtac_implicit_report* rep) {
  dtac_implicit_report rloc;
  if (!rep) rep = &rloc;
  memset(rep, 0, sizeof(*rep));
  dtac_state_layout Ly = dtac_gel_state_layout(gm);
  int n3 = 3 * gm->nnode;
  if (!state[Ly.placed]) dtac_gel_state_rest(gm, site0 ? site0 : site1, state);
  if (!all_finite(state, Ly.size) || !(h > 0)) {
    rep->status = DTAC_IMPLICIT_NONFINITE;
    return rep->status;
  }
  set_context(im, gm, state, col, ncol, gravity, h, p->material);

  // warm start: the start state moved on by its velocity (or the start itself if that is worse)
  double t0 = now_s();
  for (int i = 0; i < n3; i++) im->x[i] = im->x0[i] + h * im->v0[i];
  place(im, gm, site1, im->x, NULL);
  double e = energy_grad(im, gm, im->x, im->g);
  for (int i = 0; i < n3; i++) im->xt[i] = im->x0[i];
  place(im, gm, site1, im->xt, NULL);
  double e0 = energy_grad(im, gm, im->xt, NULL);
  if (!(e <= e0) && isfinite(e0)) {
    memcpy(im->x, im->xt, n3 * sizeof(double));
    e = energy_grad(im, gm, im->x, im->g);
  }
  rep->t_grad += now_s() - t0;
  if (!isfinite(e) || !all_finite(im->g, n3)) {
    rep->status = DTAC_IMPLICIT_NONFINITE;
    return rep->status;
  }

  int status = DTAC_IMPLICIT_MAXITER;
  double rel = INFINITY;
  for (int it = 0;; it++) {
    double gg = 0;
    for (int d = 0; d < im->ndof; d++) gg += im->g[im->dof_node[d]] * im->g[im->dof_node[d]];
    rel = sqrt(gg) / fmax(im->scale, 1e-300);
    if (rel <= p->tolerance) {
      status = DTAC_IMPLICIT_OK;
      break;
    }
    if (it >= p->iterations) break;
    rep->iterations = it + 1;
    if (newton_dir(im, gm, im->x, p, rel, rep)) {
      rep->status = DTAC_IMPLICIT_SOLVE;
      return rep->status;
    }
    // Armijo backtracking on E along dx
    double slope = 0, dxmax = 0;
    for (int d = 0; d < im->ndof; d++) slope += im->g[im->dof_node[d]] * im->dx[d];
    if (!(slope < 0) && !p->project) {
      // the true Hessian gave no descent direction (indefinite without CG noticing): project
      dtac_implicit_params pp = *p;
      pp.project = 1;
      if (newton_dir(im, gm, im->x, &pp, rel, rep)) {
        rep->status = DTAC_IMPLICIT_SOLVE;
        return rep->status;
      }
      slope = 0;
      for (int d = 0; d < im->ndof; d++) slope += im->g[im->dof_node[d]] * im->dx[d];
    }
    for (int d = 0; d < im->ndof; d++) dxmax = fmax(dxmax, fabs(im->dx[d]));
    double alpha = 1, et = INFINITY;
    int ok = 0;
    t0 = now_s();
    for (int ls = 0; ls < 30; ls++) {
      memcpy(im->xt, im->x, n3 * sizeof(double));
      for (int d = 0; d < im->ndof; d++) im->xt[im->dof_node[d]] += alpha * im->dx[d];
      et = energy_grad(im, gm, im->xt, im->gt);
      if (isfinite(et) && et <= e + 1e-4 * alpha * slope) {
        ok = 1;
        break;
      }
      // near the minimum E no longer resolves the decrease (its rounding is ~1e-16 |E| while
      // the decrease is ~|g|^2/H): accept a full step that reduces the gradient instead
      if (ls == 0 && isfinite(et) && fabs(et - e) <= 1e-12 * (fabs(e) + fabs(et))) {
        double gt2 = 0;
        for (int d = 0; d < im->ndof; d++) gt2 += im->gt[im->dof_node[d]] * im->gt[im->dof_node[d]];
        if (all_finite(im->gt, n3) && gt2 < gg) {
          ok = 1;
          break;
        }
      }
      // rounding: below a femtometre the energy no longer resolves the step
      if (alpha * dxmax < 1e-15) break;
      alpha *= 0.5;
    }
    rep->t_grad += now_s() - t0;
    if (!ok) {
      // at the rounding floor the iterate is as converged as double allows
      status = alpha * dxmax < 1e-15 ? DTAC_IMPLICIT_OK : DTAC_IMPLICIT_LINESEARCH;
      break;
    }
    memcpy(im->x, im->xt, n3 * sizeof(double));
    double* tmp = im->g;
    im->g = im->gt;
    im->gt = tmp;
    e = et;
  }
  if (!all_finite(im->x, n3)) {
    rep->status = DTAC_IMPLICIT_NONFINITE;
    return rep->status;
  }

  // the new state: positions, velocities (x - x0)/h, back face with the site's velocity,
  // locked components at rest; anchors as the explicit contact moves them
  t0 = now_s();
  double* xs = state + Ly.x;
  double* vs = state + Ly.v;
  for (int s = 0; s < gm->nsurf; s++) {
    int a = gm->surf[s];
    double* an = state + Ly.anchor + 4 * s;
    const double* xa = im->x + 3 * a;
    double dmin, n[3];
    int c = dtac_deepest_collider(im->col, im->ncol, xa, &dmin, n);
    if (c < 0) {
      an[0] = -1;
      continue;
    }
    const lag* lg = im->lag + s;
    double aw[3] = {xa[0], xa[1], xa[2]};
    if (lg->c == c) {
      double da[3], dt[3];
      dtac_sub3(da, xa, lg->a);
      double dn = dtac_dot3(da, lg->n);
      for (int k = 0; k < 3; k++) dt[k] = da[k] - dn * lg->n[k];
      double u = gm->surf_param[s].kt * dtac_norm3(dt) / lg->L;
      for (int k = 0; k < 3; k++) aw[k] = lg->a[k];
      // slipping: drag the anchor so the stick spring stays at DTAC_SLIP_RATIO * L
      if (u > DTAC_SLIP_RATIO) {
        double keep = DTAC_SLIP_RATIO / u;
        for (int k = 0; k < 3; k++) aw[k] = xa[k] - dn * lg->n[k] - keep * dt[k];
      }
    }
    an[0] = im->col[c].geom;
    dtac_collider_to_local(im->col + c, aw, an + 1);
    rep->ncontact++;
  }
  for (int i = 0; i < n3; i++) {
    vs[i] = im->dof[i] >= 0 ? (im->x[i] - im->x0[i]) / h : 0;
  }
  memcpy(xs, im->x, n3 * sizeof(double));
  place(im, gm, site1, xs, vs);
  rep->t_contact += now_s() - t0;
  double minJ = INFINITY;
  for (int t = 0; t < gm->ntet; t++) {
    double F[9];
    tet_F(gm, t, xs, F);
    minJ = fmin(minJ, dtac_det33(F));
  }
  rep->min_J = minJ;
  rep->residual = rel;
  rep->energy = e;
  rep->status = status;
  return status;
}

// ---- VJP by the implicit function theorem ------------------------------------------------------

int dtac_implicit_step_adj(dtac_implicit* im, const dtac_gel_model* gm, const double* state0,
                           const double* state1, const dtac_frame* site1, const dtac_collider* col,
                           int ncol, const double gravity[3], double h,
                           const dtac_implicit_params* p, const double* xb, const double* vb,
                           dtac_implicit_bar* out) {
  dtac_state_layout Ly = dtac_gel_state_layout(gm);
  int n3 = 3 * gm->nnode;
  set_context(im, gm, state0, col, ncol, gravity, h, p->material);
  const double* x = state1 + Ly.x;

  // the new anchors (dtac_implicit_step's rule): kept ones pass their cotangent to the old,
  // ones made where the node ended (a = R^T (x1 - p)) to x1 and the collider's position
  double* xbe = im->gt;  // xb with that added
  memcpy(xbe, xb, n3 * sizeof(double));
  for (int s = 0; s < gm->nsurf && out->anchor1; s++) {
    int a = gm->surf[s];
    const double* ab = out->anchor1 + 4 * s + 1;
    double dmin, n[3];
    int c = dtac_deepest_collider(im->col, im->ncol, x + 3 * a, &dmin, n);
    if (c < 0) continue;
    const lag* lg = im->lag + s;
    const dtac_collider* cc = im->col + c;
    if (lg->c == c) {
      double da[3], dt[3];
      dtac_sub3(da, x + 3 * a, lg->a);
      double dn = dtac_dot3(da, lg->n);
      for (int k = 0; k < 3; k++) dt[k] = da[k] - dn * lg->n[k];
      double u = gm->surf_param[s].kt * dtac_norm3(dt) / lg->L;
      if (u <= DTAC_SLIP_RATIO && out->anchor0) {
        for (int k = 0; k < 3; k++) out->anchor0[4 * s + 1 + k] += ab[k];
      }
      continue;
    }
    double rab[3];
    dtac_mulmv3(rab, cc->mat, ab);
    for (int k = 0; k < 3; k++) {
      xbe[3 * a + k] += rab[k];
      if (out->col_pos) out->col_pos[3 * c + k] -= rab[k];
    }
  }
  xb = xbe;

  // H lambda = xb + vb / h on the free dofs, H the unprojected Hessian at the converged state:
  // the implicit function theorem needs the true Hessian; CG preconditioned by the kept factor
  for (int d = 0; d < im->ndof; d++) {
    int i = im->dof_node[d];
    im->b[d] = xb[i] + vb[i] / h;
  }
  assemble(im, gm, x, p->adj_projected ? 1 : 0, im->Hx_true, 0);
  if (!im->factor_ok) {
    assemble(im, gm, x, 1, (double*)im->A->x, 0);
    double tf = 0;
    int nf = 0;
    if (factorize_at(im, gm, x, &tf, &nf)) return -1;
  }
  if (pcg(im, gm, im->Hx_true, im->b, im->dx, p->adj_tolerance, 2000) < 0) return -1;
  double* lam = im->nv;  // node vector of lambda, zero at the placed components
  for (int i = 0; i < n3; i++) lam[i] = im->dof[i] >= 0 ? im->dx[im->dof[i]] : 0;

  // every theta's cotangent is -d(lambda . grad E)/d theta, plus what bypasses the solve
  // inertia: grad = m/h^2 (x - x0 - h v0) - m g; velocities v = (x - x0)/h
  double h2 = h * h, lam_gi = 0;
  for (int i = 0; i < n3; i++) {
    double m = gm->mass[i / 3];
    if (im->dof[i] >= 0) {
      out->x0[i] += m / h2 * lam[i] - vb[i] / h;
      out->v0[i] += m / h * lam[i];
      // the inertia and gravity gradient is linear in the masses, and they in the density
      lam_gi += lam[i] * (m / h2 * (x[i] - im->x0[i] - h * im->v0[i]) - m * im->grav[i % 3]);
    }
  }
  if (gm->def.density > 0) out->density -= lam_gi / gm->def.density;
  // placed components: their positions enter grad E of the free ones through the full Hessian
  double* y = im->ny;
  hvp_full_true(im, gm, x, lam, y);
  for (int a = 0; a < gm->nnode; a++) {
    if (gm->fixed[a]) {
      // x_a = p + R X_a, v_a = vel + w x (R X_a)
      double r[3], xab[3], rb[3], t[3];
      dtac_mulmv3(r, site1->mat, gm->X + 3 * a);
      for (int k = 0; k < 3; k++) xab[k] = xb[3 * a + k] - y[3 * a + k];
      const double* vab = vb + 3 * a;
      dtac_cross3(t, r, vab);
      dtac_cross3(rb, vab, site1->angvel);
      for (int k = 0; k < 3; k++) {
        out->site1.pos[k] += xab[k];
        out->site1.vel[k] += vab[k];
        out->site1.angvel[k] += t[k];
        rb[k] += xab[k];
      }
      for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++) out->site1.mat[3 * i + j] += rb[i] * gm->X[3 * a + j];
      }
      continue;
    }
    for (int k = 0; k < 3; k++) {
      int i = 3 * a + k;
      if (im->dof[i] < 0) out->x0[i] += xb[i] - y[i];  // locked: x = x0, v = 0
    }
  }

  // elements: material constants, and the damping's lag on the start positions
  dtac_material_adj ma;
  memset(&ma, 0, sizeof(ma));
  const dtac_material* mat = &gm->mat;
  for (int t = 0; t < gm->ntet; t++) {
    const int* tv = gm->tet + 4 * t;
    double F[9], Dl[9], Pb[9], Fb[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
    tet_F(gm, t, x, F);
    dtac_tet_defgrad(lam + 3 * tv[0], lam + 3 * tv[1], lam + 3 * tv[2], lam + 3 * tv[3],
                     gm->Dm_inv + 9 * t, Dl);
    double vol = gm->vol[t];
    // lambda . grad = vol P(F) : Dl
    for (int k = 0; k < 9; k++) Pb[k] = -vol * Dl[k];
    if (im->material == DTAC_MAT_LINEAR) {
      double tr = F[0] + F[4] + F[8] - 3, trq = Pb[0] + Pb[4] + Pb[8], eq = 0;
      for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++) {
          double eij = 0.5 * (F[3 * i + j] + F[3 * j + i]) - (i == j ? 1 : 0);
          eq += eij * Pb[3 * i + j];
        }
      }
      ma.mu += 2 * eq;
      ma.lambda += tr * trq;
    } else {
      dtac_snh_stress_adj(mat, F, Pb, Fb, &ma);
    }
    if (!(mat->beta > 0)) continue;
    // damping: lambda . grad = (vol beta/h) S(E) : El, E = sym(Fl^T (F - F0)), El = sym(Fl^T Dl)
    const double* F0 = im->F0 + 9 * t;
    const double* Fl = lag_F(im, t);
    double dF[9], E[9], El[9], S[9], Sl[9];
    for (int k = 0; k < 9; k++) dF[k] = F[k] - F0[k];
    dtac_sym_ft(Fl, dF, E);
    dtac_sym_ft(Fl, Dl, El);
    dtac_iso_stress(mat, E, S);
    dtac_iso_stress(mat, El, Sl);
    double c = vol * mat->beta / h;
    double trE = E[0] + E[4] + E[8], trEl = El[0] + El[4] + El[8], EE = 0;
    for (int k = 0; k < 9; k++) EE += E[k] * El[k];
    ma.beta -= c / mat->beta * dtac_ddot33(S, El);
    ma.mu -= c * 2 * EE;
    ma.lambda -= c * trE * trEl;
    // d/dF0 = c [ -Fl S(El) + (Fl = F0 only) ((F - F0) S(El) + Dl S(E)) ]
    double G[9], t1[9], t2[9];
    dtac_mul33(t1, Fl, Sl);
    for (int k = 0; k < 9; k++) G[k] = -t1[k];
    if (im->material != DTAC_MAT_LINEAR) {
      dtac_mul33(t1, dF, Sl);
      dtac_mul33(t2, Dl, S);
      for (int k = 0; k < 9; k++) G[k] += t1[k] + t2[k];
    }
    for (int k = 0; k < 9; k++) G[k] *= -c;  // cotangent = -d/dF0
    double* x0b = out->x0;
    dtac_tet_defgrad_adj(gm->Dm_inv + 9 * t, G, x0b + 3 * tv[0], x0b + 3 * tv[1], x0b + 3 * tv[2],
                         x0b + 3 * tv[3]);
  }
  double yb = 0, pb = 0, bb = 0;
  dtac_material_set_adj(gm->def.young, gm->def.poisson, &ma, &yb, &pb, &bb);
  out->young += yb;
  out->poisson += pb;
  out->damping += bb;

  // contact: collider positions (translation moves the penalty and the anchors with it) and
  // the contact stiffness per area
  for (int s = 0; s < gm->nsurf; s++) {
    int a = gm->surf[s];
    const double* xa = x + 3 * a;
    const double* la = lam + 3 * a;
    for (int c = 0; c < im->ncol; c++) {
      dtac_contact_node_param pe = dtac_contact_scaled(gm->surf_param + s, im->col + c);
      double g3[3], H3[9];
      dtac_contact_energy(pe.kn, pe.width, im->col + c, xa, g3, H3, 0);
      if (out->col_pos) {
        for (int i = 0; i < 3; i++) {
          for (int j = 0; j < 3; j++) out->col_pos[3 * c + i] += H3[3 * i + j] * la[j];
        }
      }
      // grad is linear in kn
      if (gm->contact_stiffness > 0)
        out->contact_stiffness -= dtac_dot3(g3, la) / gm->contact_stiffness;
    }
    const lag* lg = im->lag + s;
    if (lg->c < 0) continue;
    const dtac_collider* c = im->col + lg->c;
    double kt = gm->surf_param[s].kt;
    double g3[3], H3[9];
    dtac_friction_energy(lg->L, kt, lg->n, xa, lg->a, g3, H3);
    // the anchor (p + R a_local) moves with the collider, and with its local coordinates
    double ha[3];
    for (int i = 0; i < 3; i++) {
      ha[i] = 0;
      for (int j = 0; j < 3; j++) ha[i] += H3[3 * i + j] * la[j];
      if (out->col_pos) out->col_pos[3 * lg->c + i] += ha[i];
    }
    if (out->anchor0) {
      double hl[3];
      dtac_mulmTv3(hl, c->mat, ha);
      for (int k = 0; k < 3; k++) out->anchor0[4 * s + 1 + k] += hl[k];
    }
    // the lag: L = mu kn ramp(-d(x0)), n = grad d(x0), both against the collider at the step end
    double dL, dn[3];
    dtac_friction_lag_adj(lg->L, kt, lg->n, xa, lg->a, la, &dL, dn);
    dtac_contact_node_param pe = dtac_contact_scaled(gm->surf_param + s, c);
    const double* x0a = im->x0 + 3 * a;
    double m[3], pl[3], Hl[9], t[9], Hd[9], dramp;
    double d0 = dtac_collider_dist(c, x0a, m);
    dtac_contact_ramp(-d0, pe.width, &dramp);
    dtac_collider_to_local(c, x0a, pl);
    dtac_sdf_hess(c->type, c->size, c->planes, c->nplane, pl, Hl);
    dtac_mul33(t, c->mat, Hl);
    dtac_mul33T(Hd, t, c->mat);
    // d(lam.g)/dx0 = dL dL/dx0 + Hd dn with dL/dx0 = -mu kn dramp m; d/dp is minus that
    double gx0[3];
    for (int i = 0; i < 3; i++) {
      gx0[i] = -dL * c->mu * pe.kn * dramp * m[i];
      for (int j = 0; j < 3; j++) gx0[i] += Hd[3 * i + j] * dn[j];
    }
    for (int k = 0; k < 3; k++) {
      out->x0[3 * a + k] -= gx0[k];
      if (out->col_pos) out->col_pos[3 * lg->c + k] += gx0[k];
    }
    // L is proportional to kn (so to the stiffness per area) and to mu
    if (gm->contact_stiffness > 0) out->contact_stiffness -= dL * lg->L / gm->contact_stiffness;
    if (out->col_mu && c->mu > 0) out->col_mu[lg->c] -= dL * lg->L / c->mu;
  }
  return 0;
}
