// implicit.c: backward Euler over one step h on the incremental potential
//   E(x) = sum_a m_a/(2h^2) |x_a - x0_a - h v0_a|^2 - m_a g.x_a + sum_t V_t [psi(F_t) + D_t]
//          + sum_(node, collider) kn R(-d) + sum_(stuck node) Phi_friction
// (backward Euler as the minimisation of an incremental potential: Gast, Schroeder, Stomakhin,
// Jiang, Teran, "Optimization integrator for large time steps", IEEE TVCG 21(10), 2015),
// minimised by Newton with per-element SPD projection and an Armijo line search; the back face is
// placed with the site at the step end and eliminated. Sparse algebra by CHOLMOD. Its VJP (the
// implicit function theorem) is implicit_adj.c's, and implicit_joint_adj.c's with coupled bodies.

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "implicit_internal.h"

double dtac_imp_now_s(void) {
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
  p->fresh_factor = 1;
}

int dtac_implicit_ndof(const dtac_implicit* im) {
  return im->ndof;
}

// ---- the step ----------------------------------------------------------------------------------

// the step's context from the start state: x0, v0, F0, the lag, colliders
void dtac_imp_set_context(dtac_implicit* im, const dtac_gel_model* gm, const double* state0,
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
  for (int t = 0; t < gm->ntet; t++) dtac_imp_tet_F(gm, t, im->x0, im->F0 + 9 * t);
  dtac_imp_make_lag(im, gm, state0);
}

// positions with the placed components set: back face with the site frame, locked as at start
void dtac_imp_place(dtac_implicit* im, const dtac_gel_model* gm, const dtac_frame* site1, double* x,
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
  dtac_imp_set_context(im, gm, state0, col, ncol, gravity, h, material);
  return dtac_imp_energy_grad(im, gm, x, g);
}

void dtac_implicit_reactions(dtac_implicit* im, const dtac_gel_model* gm, const double* state0,
                             const double* state1, const dtac_frame* site1,
                             const dtac_collider* col, int ncol, const double gravity[3], double h,
                             int material, double* col_ft, double site_ft[6]) {
  dtac_state_layout Ly = dtac_gel_state_layout(gm);
  const double* x = state1 + Ly.x;
  dtac_imp_set_context(im, gm, state0, col, ncol, gravity, h, material);
  memcpy(im->frame_R, site1->mat, sizeof(im->frame_R));  // the linear material's frame
  dtac_imp_energy_grad(im, gm, x, im->g);  // im->gel: elastic and damping gradient of every node
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

int dtac_imp_all_finite(const double* a, int n) {
  for (int i = 0; i < n; i++) {
    if (!isfinite(a[i])) return 0;
  }
  return 1;
}

// the deepest collider node a at xa is inside, with its correction (dtac_deepest_collider on
// each collider's relative position), -1 if none; y: xa relative to it
int dtac_imp_deepest(const dtac_implicit* im, int a, const double* xa, double y[3]) {
  if (!im->delta) {
    double dmin, n[3];
    for (int k = 0; k < 3; k++) y[k] = xa[k];
    return dtac_deepest_collider(im->col, im->ncol, xa, &dmin, n);
  }
  int deepest = -1;
  double dmin = 0;
  for (int c = 0; c < im->ncol; c++) {
    double yc[3], r[3], n[3];
    dtac_imp_rel_pos(im, c, a, xa, yc, r);
    double d = dtac_collider_dist_near(im->col + c, yc, n);
    if (d < dmin) {
      dmin = d;
      deepest = c;
      for (int k = 0; k < 3; k++) y[k] = yc[k];
    }
  }
  return deepest;
}

int dtac_imp_begin(dtac_implicit* im, const dtac_gel_model* gm, double* state,
                   const dtac_frame* site0, const dtac_frame* site1, const dtac_collider* col,
                   int ncol, const double gravity[3], double h, const dtac_implicit_params* p,
                   dtac_implicit_report* rep) {
  memset(rep, 0, sizeof(*rep));
  dtac_state_layout Ly = dtac_gel_state_layout(gm);
  int n3 = 3 * gm->nnode;
  if (!state[Ly.placed]) dtac_gel_state_rest(gm, site0 ? site0 : site1, state);
  if (!dtac_imp_all_finite(state, Ly.size) || !(h > 0)) {
    rep->status = DTAC_IMPLICIT_NONFINITE;
    return rep->status;
  }
  dtac_imp_set_context(im, gm, state, col, ncol, gravity, h, p->material);
  memcpy(im->frame_R, site1->mat, sizeof(im->frame_R));
  // the preconditioner starts every step from the first factor, so that a step depends on the
  // state alone (mj_getState / mj_setState and mj_copyData continue bit for bit)
  if (p->fresh_factor && dtac_imp_restore_factor(im)) {
    rep->status = DTAC_IMPLICIT_SOLVE;
    return rep->status;
  }

  // warm start: the start state moved on by its velocity (or the start itself if that is worse)
  double t0 = dtac_imp_now_s();
  for (int i = 0; i < n3; i++) im->x[i] = im->x0[i] + h * im->v0[i];
  dtac_imp_place(im, gm, site1, im->x, NULL);
  double e = dtac_imp_energy_grad(im, gm, im->x, NULL);
  for (int i = 0; i < n3; i++) im->xt[i] = im->x0[i];
  dtac_imp_place(im, gm, site1, im->xt, NULL);
  double e0 = dtac_imp_energy_grad(im, gm, im->xt, NULL);
  if (!(e <= e0) && isfinite(e0)) memcpy(im->x, im->xt, n3 * sizeof(double));
  for (int i = 0; i < gm->nfixed; i++) {
    int a = gm->fixed_id[i];
    memcpy(im->xback + 3 * a, im->x + 3 * a, 3 * sizeof(double));
  }
  rep->t_grad += dtac_imp_now_s() - t0;
  return DTAC_IMPLICIT_OK;
}

int dtac_imp_stuck_anchor(const dtac_implicit* im, const dtac_gel_model* gm, int s,
                          const double* xa, double aw[3]) {
  const lag* lg = im->lag + s;
  double da[3], dt[3];
  dtac_sub3(da, xa, lg->a);
  double dn = dtac_dot3(da, lg->n);
  for (int k = 0; k < 3; k++) dt[k] = da[k] - dn * lg->n[k];
  double u = gm->surf_param[s].kt * dtac_norm3(dt) / lg->L;
  for (int k = 0; k < 3; k++) aw[k] = lg->a[k];
  if (u <= DTAC_SLIP_RATIO) return 0;
  // slipping: drag the anchor so the stick spring stays at DTAC_SLIP_RATIO * L
  double keep = DTAC_SLIP_RATIO / u;
  for (int k = 0; k < 3; k++) aw[k] = xa[k] - dn * lg->n[k] - keep * dt[k];
  return 1;
}

int dtac_imp_finish(dtac_implicit* im, const dtac_gel_model* gm, double* state,
                    const dtac_frame* site1, double h, dtac_implicit_report* rep) {
  dtac_state_layout Ly = dtac_gel_state_layout(gm);
  int n3 = 3 * gm->nnode;
  if (!dtac_imp_all_finite(im->x, n3)) {
    rep->status = DTAC_IMPLICIT_NONFINITE;
    return rep->status;
  }
  // the new state: positions, velocities (x - x0)/h, back face with the site's velocity,
  // locked components at rest; anchors as the explicit contact moves them, on the collider as
  // its body's correction placed it
  double t0 = dtac_imp_now_s();
  double* xs = state + Ly.x;
  double* vs = state + Ly.v;
  rep->ncontact = 0;
  for (int s = 0; s < gm->nsurf; s++) {
    int a = gm->surf[s];
    double* an = state + Ly.anchor + 4 * s;
    double xa[3];
    int c = dtac_imp_deepest(im, a, im->x + 3 * a, xa);
    if (c < 0) {
      an[0] = -1;
      continue;
    }
    double aw[3] = {xa[0], xa[1], xa[2]};
    if (im->lag[s].c == c) dtac_imp_stuck_anchor(im, gm, s, xa, aw);
    an[0] = im->col[c].geom;
    dtac_collider_to_local(im->col + c, aw, an + 1);
    rep->ncontact++;
  }
  for (int i = 0; i < n3; i++) {
    vs[i] = im->dof[i] >= 0 ? (im->x[i] - im->x0[i]) / h : 0;
  }
  memcpy(xs, im->x, n3 * sizeof(double));
  dtac_imp_place(im, gm, site1, xs, vs);
  // the back face moved with its body's correction: there, at the site's velocity plus the
  // correction's over the step
  if (im->delta && im->site_k >= 0) {
    for (int i = 0; i < gm->nfixed; i++) {
      int a = gm->fixed_id[i];
      for (int k = 0; k < 3; k++) {
        vs[3 * a + k] += (im->x[3 * a + k] - im->xback[3 * a + k]) / h;
        xs[3 * a + k] = im->x[3 * a + k];
      }
    }
  }
  rep->t_contact += dtac_imp_now_s() - t0;
  double minJ = INFINITY;
  for (int t = 0; t < gm->ntet; t++) {
    double F[9];
    dtac_imp_tet_F(gm, t, xs, F);
    minJ = fmin(minJ, dtac_det33(F));
  }
  rep->min_J = minJ;
  return rep->status;
}

int dtac_implicit_step(dtac_implicit* im, const dtac_gel_model* gm, double* state,
                       const dtac_frame* site0, const dtac_frame* site1, const dtac_collider* col,
                       int ncol, const double gravity[3], double h, const dtac_implicit_params* p,
                       dtac_implicit_report* rep) {
  dtac_implicit_gel g = {im, gm, state, site0, site1, col, ncol, NULL, -1, p->material, {0}};
  int status = dtac_implicit_joint_step(&g, 1, NULL, NULL, 0, NULL, gravity, h, p);
  if (rep) *rep = g.rep;
  return status;
}
