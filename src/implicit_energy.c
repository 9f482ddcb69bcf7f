// implicit_energy.c: the implicit step's incremental potential (implicit.c): energy, gradient,
// Hessian assembly (projected or true) and Hessian-vector products.

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "implicit_internal.h"

// ---- energy and gradient ---------------------------------------------------------------------

// F and lag matrix of tet t at positions x
void dtac_imp_tet_F(const dtac_gel_model* gm, int t, const double* x, double F[9]) {
  const int* tv = gm->tet + 4 * t;
  dtac_tet_defgrad(x + 3 * tv[0], x + 3 * tv[1], x + 3 * tv[2], x + 3 * tv[3], gm->Dm_inv + 9 * t,
                   F);
}
const double* dtac_imp_lag_F(const dtac_implicit* im, int t) {
  return im->material == DTAC_MAT_LINEAR ? im->frame_R : im->F0 + 9 * t;
}

// the elastic energy density of F, its stress P (may be NULL) and dP/dF (A, may be NULL). The
// linear material is measured in the gel's frame (im->frame_R, the site's rotation): psi(R^T F),
// P = R P_lin(R^T F), so that a rotated pad at rest has no strain
double dtac_imp_elastic(const dtac_implicit* im, const dtac_gel_model* gm, const double F[9],
                        double P[9], double A[81]) {
  if (im->material != DTAC_MAT_LINEAR) {
    if (P) dtac_elastic_stress(im->material, &gm->mat, F, P);
    if (A) dtac_elastic_dPdF(im->material, &gm->mat, F, A);
    return dtac_elastic_energy(im->material, &gm->mat, F);
  }
  const double* R = im->frame_R;
  double G[9];
  dtac_mulT33(G, R, F);
  if (P) {
    double Pl[9];
    dtac_lin_stress(&gm->mat, G, Pl);
    dtac_mul33(P, R, Pl);
  }
  if (A) {
    // A[rc][sd] = R_ra R_sb Al[ac][bd]
    double Al[81], T[81];
    dtac_elastic_dPdF(DTAC_MAT_LINEAR, &gm->mat, G, Al);
    for (int r = 0; r < 3; r++) {
      for (int c = 0; c < 3; c++) {
        for (int j = 0; j < 9; j++) {
          double v = 0;
          for (int a = 0; a < 3; a++) v += R[3 * r + a] * Al[9 * (3 * a + c) + j];
          T[9 * (3 * r + c) + j] = v;
        }
      }
    }
    for (int i = 0; i < 9; i++) {
      for (int sd = 0; sd < 9; sd++) {
        int sr = sd / 3, d = sd % 3;
        double v = 0;
        for (int b = 0; b < 3; b++) v += R[3 * sr + b] * T[9 * i + 3 * b + d];
        A[9 * i + sd] = v;
      }
    }
  }
  return dtac_lin_energy(&gm->mat, G);
}

// the friction terms of this step from the start state: a contact node whose anchor is on the
// deepest collider at its start position (colliders at the step end) keeps that normal load
void dtac_imp_make_lag(dtac_implicit* im, const dtac_gel_model* gm, const double* state0) {
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

// node a at xa relative to collider c as its body's correction moves the collider (im->delta):
// y = xa - (dl + dw x r), r the lever from the slot's point to the node's start position (held
// over the step, so that y is linear in the correction); the slot, or -1 (y = xa)
int dtac_imp_rel_pos(const dtac_implicit* im, int c, int a, const double* xa, double y[3],
                     double r[3]) {
  int k = im->delta && im->cslot ? im->cslot[c] : -1;
  if (k < 0) {
    for (int i = 0; i < 3; i++) y[i] = xa[i];
    return -1;
  }
  const double* dl = im->delta + 6 * k;
  dtac_sub3(r, im->x0 + 3 * a, im->slot_pos + 3 * k);
  double wr[3];
  dtac_cross3(wr, dl + 3, r);
  for (int i = 0; i < 3; i++) y[i] = xa[i] - dl[i] - wr[i];
  return k;
}

// contact and friction energy of contact node s at xa, gradient g3, Hessian H3 (may be null;
// projected if project); with gb (may be null), the gradient in the coupled slots'
// corrections is accumulated into it (6 per slot: -f, -r x f for the node's gradient f)
double dtac_imp_node_contact(const dtac_implicit* im, const dtac_gel_model* gm, int s,
                             const double* xa, double g3[3], double* H3, int project, double* gb) {
  double e = 0, gk[3], Hk[9], y[3], r[3];
  int a = gm->surf[s];
  g3[0] = g3[1] = g3[2] = 0;
  if (H3) memset(H3, 0, 9 * sizeof(double));
  const lag* lg = im->lag + s;
  for (int c = 0; c < im->ncol; c++) {
    dtac_contact_node_param pe = dtac_contact_scaled(gm->surf_param + s, im->col + c);
    int k = dtac_imp_rel_pos(im, c, a, xa, y, r);
    double gc[3] = {0, 0, 0};
    e += dtac_contact_energy(pe.kn, pe.width, im->col + c, y, gk, H3 ? Hk : NULL, project);
    for (int i = 0; i < 3; i++) gc[i] += gk[i];
    if (H3) {
      for (int i = 0; i < 9; i++) H3[i] += Hk[i];
    }
    // friction against its stuck collider, the anchor moving with it
    if (lg->c == c) {
      e += dtac_friction_energy(lg->L, gm->surf_param[s].kt, lg->n, y, lg->a, gk, H3 ? Hk : NULL);
      for (int i = 0; i < 3; i++) gc[i] += gk[i];
      if (H3) {
        for (int i = 0; i < 9; i++) H3[i] += Hk[i];
      }
    }
    for (int i = 0; i < 3; i++) g3[i] += gc[i];
    if (gb && k >= 0) {
      double rf[3];
      dtac_cross3(rf, r, gc);
      for (int i = 0; i < 3; i++) {
        gb[6 * k + i] -= gc[i];
        gb[6 * k + 3 + i] -= rf[i];
      }
    }
  }
  return e;
}

// the contact Hessian blocks between the contact nodes and the coupled slots at x (each node's
// colliders on one slot summed; im->npair of them, at most maxpair)
void dtac_imp_pairs(dtac_implicit* im, const dtac_gel_model* gm, const double* x, int project) {
  im->npair = 0;
  if (!im->delta) return;
  const lag* lgs = im->lag;
  for (int s = 0; s < gm->nsurf; s++) {
    int a = gm->surf[s];
    const double* xa = x + 3 * a;
    for (int c = 0; c < im->ncol; c++) {
      double y[3], r[3], gk[3], Hk[9];
      int k = dtac_imp_rel_pos(im, c, a, xa, y, r);
      if (k < 0) continue;
      dtac_contact_node_param pe = dtac_contact_scaled(gm->surf_param + s, im->col + c);
      double H[9];
      dtac_contact_energy(pe.kn, pe.width, im->col + c, y, gk, H, project);
      if (lgs[s].c == c) {
        dtac_friction_energy(lgs[s].L, gm->surf_param[s].kt, lgs[s].n, y, lgs[s].a, gk, Hk);
        for (int i = 0; i < 9; i++) H[i] += Hk[i];
      }
      int zero = 1;
      for (int i = 0; i < 9; i++) zero &= H[i] == 0;
      if (zero) continue;
      // merged with this node's pair on the same slot (the last ones: nodes come in order)
      int q = im->npair - 1;
      while (q >= 0 && im->pair_a[q] == a && im->pair_k[q] != k) q--;
      if (q < 0 || im->pair_a[q] != a) {
        if (im->npair >= im->maxpair) continue;  // beyond the bound: out of the Hessian only
        q = im->npair++;
        im->pair_a[q] = a;
        im->pair_k[q] = k;
        memset(im->pair_H + 9 * q, 0, 9 * sizeof(double));
        for (int i = 0; i < 3; i++) im->pair_r[3 * q + i] = r[i];
      }
      for (int i = 0; i < 9; i++) im->pair_H[9 * q + i] += H[i];
    }
  }
}

// the incremental potential at x (all nodes); gradient of every node component into g (may be
// null); im->scale gets |elastic| + |contact| + |inertia and gravity| over the free dofs
double dtac_imp_energy_grad(dtac_implicit* im, const dtac_gel_model* gm, const double* x, double* g) {
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
    dtac_imp_tet_F(gm, t, x, F);
    double vol = gm->vol[t];
    e_el += vol * dtac_imp_elastic(im, gm, F, g ? P : NULL, NULL);
    if (gm->mat.beta > 0) {
      e_el += vol *
              dtac_kv_step_energy(&gm->mat, dtac_imp_lag_F(im, t), im->F0 + 9 * t, F, im->h, g ? Pd : NULL);
    }
    if (!g) continue;
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
    e_c += dtac_imp_node_contact(im, gm, s, x + 3 * a, g3, NULL, 0, g ? im->gbody : NULL);
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
int dtac_imp_tet_block(const dtac_implicit* im, const dtac_gel_model* gm, int t, const double* x,
                     int project, double A[81]) {
  double F[9];
  dtac_imp_tet_F(gm, t, x, F);
  dtac_imp_elastic(im, gm, F, NULL, A);
  int changed = 0;
  if (project && im->material != DTAC_MAT_LINEAR) changed = dtac_iso_project(A, F);
  if (gm->mat.beta > 0) dtac_kv_step_dPdF_add(&gm->mat, dtac_imp_lag_F(im, t), im->h, A);
  return changed;
}

// assembles the Hessian of the free dofs at x into values Hx (A's pattern); with matfree, the
// element and contact blocks are kept (tetA, surfH) instead of assembled
void dtac_imp_assemble(dtac_implicit* im, const dtac_gel_model* gm, const double* x, int project,
                     double* Hx, int matfree) {
  int nnz = (int)((int*)im->A->p)[im->ndof];
  double h2 = im->h * im->h;
  im->nproject = 0;
  // the linear material's inertia, elastic and damping part is constant: kept, keyed on what it
  // depends on (h, the Lame constants, the damping time; the masses are fixed at creation)
  int linear = im->material == DTAC_MAT_LINEAR && !matfree;
  if (linear) {
    // (and the gel's frame: a rotating site makes it anew each step)
    double key[13] = {im->h, gm->mat.mu, gm->mat.lambda, gm->mat.beta};
    memcpy(key + 4, im->frame_R, sizeof(im->frame_R));
    if (!im->lin_ok || memcmp(key, im->lin_key, sizeof(key))) {
      memset(im->Hx_lin, 0, nnz * sizeof(double));
      for (int d = 0; d < im->ndof; d++) {
        im->Hx_lin[im->diag[d]] += gm->mass[im->dof_node[d] / 3] / h2;
      }
      for (int t = 0; t < gm->ntet; t++) {
        double A[81], H[144];
        dtac_imp_tet_block(im, gm, t, x, 0, A);
        dtac_tet_hess12(gm->Dm_inv + 9 * t, gm->vol[t], A, H);
        const int* map = im->tet_map + 144 * t;
        for (int k = 0; k < 144; k++) {
          if (map[k] >= 0) im->Hx_lin[map[k]] += H[k];
        }
        if (im->ptet_of[t] >= 0) memcpy(im->ptetH + 144 * im->ptet_of[t], H, sizeof(H));
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
    im->nproject += dtac_imp_tet_block(im, gm, t, x, project, A);
    if (matfree) continue;
    dtac_tet_hess12(gm->Dm_inv + 9 * t, gm->vol[t], A, H);
    const int* map = im->tet_map + 144 * t;
    for (int k = 0; k < 144; k++) {
      if (map[k] >= 0) Hx[map[k]] += H[k];
    }
    if (im->ptet_of[t] >= 0) memcpy(im->ptetH + 144 * im->ptet_of[t], H, sizeof(H));
  }
  for (int s = 0; s < gm->nsurf; s++) {
    int a = gm->surf[s];
    double g3[3], H3[9];
    dtac_imp_node_contact(im, gm, s, x + 3 * a, g3, H3, project, NULL);
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
void dtac_imp_spmv(const dtac_implicit* im, const double* Hx, const double* p, double* y) {
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
void dtac_imp_hvp_matfree(dtac_implicit* im, const dtac_gel_model* gm, const double* p, double* y) {
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
void dtac_imp_hvp_full_true(dtac_implicit* im, const dtac_gel_model* gm, const double* x,
                          const double* lam, double* y) {
  int n3 = 3 * gm->nnode;
  double h2 = im->h * im->h;
  for (int i = 0; i < n3; i++) y[i] = im->dof[i] >= 0 ? gm->mass[i / 3] / h2 * lam[i] : 0;
  for (int pt = 0; pt < im->nptet; pt++) {
    int t = im->ptet[pt];
    const int* tv = gm->tet + 4 * t;
    double A[81], dx[12], ye[12];
    dtac_imp_tet_block(im, gm, t, x, 0, A);
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
    dtac_imp_node_contact(im, gm, s, x + 3 * a, g3, H3, 0, NULL);
    for (int i = 0; i < 3; i++) {
      for (int j = 0; j < 3; j++) y[3 * a + i] += H3[3 * i + j] * lam[3 * a + j];
    }
  }
}
