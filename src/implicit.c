// implicit.c: backward Euler over one step h on the incremental potential
//   E(x) = sum_a m_a/(2h^2) |x_a - x0_a - h v0_a|^2 - m_a g.x_a + sum_t V_t [psi(F_t) + D_t]
//          + sum_(node, collider) kn R(-d) + sum_(stuck node) Phi_friction
// (backward Euler as the minimisation of an incremental potential: Gast, Schroeder, Stomakhin,
// Jiang, Teran, "Optimization integrator for large time steps", IEEE TVCG 21(10), 2015),
// minimised by Newton with per-element SPD projection and an Armijo line search; the back face is
// placed with the site at the step end and eliminated. Sparse algebra by CHOLMOD. The VJP by the
// implicit function theorem: at the minimum grad E(x*, theta) = 0, so dx*/dtheta = -H^{-1} d(grad
// E)/dtheta.

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
    memcpy(im->xback + 3 * i, im->x + 3 * gm->fixed_id[i], 3 * sizeof(double));
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
        vs[3 * a + k] += (im->x[3 * a + k] - im->xback[3 * i + k]) / h;
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

// ---- VJP by the implicit function theorem ------------------------------------------------------

int dtac_implicit_step_adj(dtac_implicit* im, const dtac_gel_model* gm, const double* state0,
                           const double* state1, const dtac_frame* site1, const dtac_collider* col,
                           int ncol, const double gravity[3], double h,
                           const dtac_implicit_params* p, const double* xb, const double* vb,
                           dtac_implicit_bar* out) {
  dtac_state_layout Ly = dtac_gel_state_layout(gm);
  int n3 = 3 * gm->nnode;
  dtac_imp_set_context(im, gm, state0, col, ncol, gravity, h, p->material);
  memcpy(im->frame_R, site1->mat, sizeof(im->frame_R));  // the linear material's frame
  const double* x = state1 + Ly.x;

  // the new anchors (dtac_implicit_step's rule): kept ones pass their cotangent to the old,
  // ones made where the node ended (a = R^T (x1 - p)) to x1 and the collider's position
  double* xbe = im->gt;  // xb with that added
  memcpy(xbe, xb, n3 * sizeof(double));
  // cotangents of each contact node's lag (L, n, anchor in the world) from dragged anchors
  double* lag_bar = (double*)calloc(8 * (size_t)(gm->nsurf > 0 ? gm->nsurf : 1), sizeof(double));
  if (!lag_bar) return -1;
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
      double kt = gm->surf_param[s].kt, sn = dtac_norm3(dt);
      double u = kt * sn / lg->L;
      if (u <= DTAC_SLIP_RATIO) {
        if (out->anchor0) {
          for (int k = 0; k < 3; k++) out->anchor0[4 * s + 1 + k] += ab[k];
        }
        continue;
      }
      // slipping: dragged to aw = x1 - (da.n) n - c t, c = DTAC_SLIP_RATIO L / kt, t = dt/|dt|
      // (dtac_imp_finish), held in the frame of the collider at the step end: its cotangent
      // reaches x1 (before the solve), the lagged anchor, normal and load (lag_bar, after it)
      // and the friction stiffness; the colliders' share is implicit_adj.c's
      double awb[3], t[3], cs = DTAC_SLIP_RATIO * lg->L / kt;
      dtac_mulmv3(awb, cc->mat, ab);
      for (int k = 0; k < 3; k++) t[k] = dt[k] / sn;
      // Q = I - (c/s)(I - t t^T) maps d(dt) to d(aw); d(dt)/dx1 = P = I - n n^T
      double tw = dtac_dot3(t, awb), w[3];
      for (int k = 0; k < 3; k++) w[k] = awb[k] - cs / sn * (awb[k] - tw * t[k]);
      double wn = dtac_dot3(w, lg->n), x1b[3];
      for (int k = 0; k < 3; k++) x1b[k] = w[k] - wn * lg->n[k];
      // aw = a_l + f(x1 - a_l): a_l's cotangent is awb - x1b
      double* lb = lag_bar + 8 * s;
      for (int k = 0; k < 3; k++) {
        xbe[3 * a + k] += x1b[k];
        lb[1 + k] += -wn * da[k] - dn * w[k];  // normal
        lb[4 + k] += awb[k] - x1b[k];          // lagged anchor (world)
      }
      double cb = -tw;  // of c
      lb[0] += cb * DTAC_SLIP_RATIO / kt;  // of L
      // kt = friction_stiffness * area: d c / d friction_stiffness = -c / friction_stiffness
      if (gm->friction_stiffness > 0) out->friction_stiffness -= cb * cs / gm->friction_stiffness;
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
  dtac_imp_assemble(im, gm, x, p->adj_projected ? 1 : 0, im->Hx_true, 0);
  if (!im->factor_ok) {
    dtac_imp_assemble(im, gm, x, 1, (double*)im->A->x, 0);
    double tf = 0;
    int nf = 0;
    if (dtac_imp_factorize_at(im, gm, x, &tf, &nf)) {
      free(lag_bar);
      return -1;
    }
  }
  if (dtac_imp_pcg(im, gm, im->Hx_true, im->b, im->dx, p->adj_tolerance, 2000) < 0) {
    free(lag_bar);
    return -1;
  }
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
  dtac_imp_hvp_full_true(im, gm, x, lam, y);
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
    dtac_imp_tet_F(gm, t, x, F);
    dtac_tet_defgrad(lam + 3 * tv[0], lam + 3 * tv[1], lam + 3 * tv[2], lam + 3 * tv[3],
                     gm->Dm_inv + 9 * t, Dl);
    double vol = gm->vol[t];
    // lambda . grad = vol P(F) : Dl
    for (int k = 0; k < 9; k++) Pb[k] = -vol * Dl[k];
    if (im->material == DTAC_MAT_LINEAR) {
      // in the gel's frame R: lambda . grad = vol P_lin(G) : M, G = R^T F, M = R^T Dl
      const double* R = im->frame_R;
      double G[9], M[9], Mb[9], PG[9], CM[9], t1[9], t2[9];
      dtac_mulT33(G, R, F);
      dtac_mulT33(M, R, Dl);
      for (int k = 0; k < 9; k++) Mb[k] = -vol * M[k];
      double tr = G[0] + G[4] + G[8] - 3, trq = Mb[0] + Mb[4] + Mb[8], eq = 0;
      for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++) {
          double eij = 0.5 * (G[3 * i + j] + G[3 * j + i]) - (i == j ? 1 : 0);
          eq += eij * Mb[3 * i + j];
        }
      }
      ma.mu += 2 * eq;
      ma.lambda += tr * trq;
      // and the frame: d/dR = vol [F C(M)^T + Dl P_lin(G)^T], C(M) = 2 mu sym(M) + lambda tr(M) I
      double Ms[9];
      for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++) Ms[3 * i + j] = 0.5 * (M[3 * i + j] + M[3 * j + i]);
      }
      dtac_iso_stress(mat, Ms, CM);
      dtac_lin_stress(mat, G, PG);
      dtac_mul33T(t1, F, CM);
      dtac_mul33T(t2, Dl, PG);
      for (int k = 0; k < 9; k++) out->site1.mat[k] -= vol * (t1[k] + t2[k]);
    } else {
      dtac_snh_stress_adj(mat, F, Pb, Fb, &ma);
    }
    if (!(mat->beta > 0)) continue;
    // damping: lambda . grad = (vol beta/h) S(E) : El, E = sym(Fl^T (F - F0)), El = sym(Fl^T Dl)
    const double* F0 = im->F0 + 9 * t;
    const double* Fl = dtac_imp_lag_F(im, t);
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
    // d/dF0 = c [ -Fl S(El) + (Fl = F0 only) ((F - F0) S(El) + Dl S(E)) ]; with the linear
    // material Fl = R, the gel's frame: d/dR = c [(F - F0) S(El) + Dl S(E)]
    double G[9], t1[9], t2[9];
    dtac_mul33(t1, Fl, Sl);
    for (int k = 0; k < 9; k++) G[k] = -t1[k];
    dtac_mul33(t1, dF, Sl);
    dtac_mul33(t2, Dl, S);
    if (im->material != DTAC_MAT_LINEAR) {
      for (int k = 0; k < 9; k++) G[k] += t1[k] + t2[k];
    } else {
      for (int k = 0; k < 9; k++) out->site1.mat[k] -= c * (t1[k] + t2[k]);
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
    // a dragged anchor's direct cotangents (the terms here are -d(lam . grad E))
    const double* lb = lag_bar + 8 * s;
    dL -= lb[0];
    for (int k = 0; k < 3; k++) dn[k] -= lb[1 + k];
    if (out->anchor0) {
      double hl[3];
      dtac_mulmTv3(hl, c->mat, lb + 4);
      for (int k = 0; k < 3; k++) out->anchor0[4 * s + 1 + k] += hl[k];
    }
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
  free(lag_bar);
  return 0;
}
