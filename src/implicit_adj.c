// implicit_adj.c: the reverse of one implicit gel step in the terms of the explicit step's reverse
// pass (gel.h: dtac_gel_step_bar): from the cotangent of the state after the step to those of the
// state before it, of the step-start site frame and colliders (with their velocities, which move
// them to the step end) and of the gel's parameters. The solve's part is dtac_implicit_step_adj
// (the implicit function theorem: one CG solve with the true Hessian); the colliders' step-end
// poses enter the potential only through the contact nodes' terms, so their cotangents are central
// differences of the Lagrangian (anchors made or dragged at the end) . ab - lambda . grad E over those terms
// alone, at the converged positions: 24 cheap passes over the contact nodes per collider.

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "implicit_internal.h"

// the contact nodes' share of <ab1, anchors made at the step end> - <lam, grad E> at positions x1
// with the colliders col (the lag made against them from the start state)
static double col_lagrangian(dtac_implicit* im, const dtac_gel_model* gm, const double* state0,
                             const double* x1, const double* lam, const double* ab1,
                             const dtac_collider* col) {
  im->col = col;
  dtac_imp_make_lag(im, gm, state0);
  double s = 0;
  for (int k = 0; k < gm->nsurf; k++) {
    int a = gm->surf[k];
    const double* xa = x1 + 3 * a;
    double g3[3];
    dtac_imp_node_contact(im, gm, k, xa, g3, NULL, 0, NULL);
    s -= dtac_dot3(lam + 3 * a, g3);
    if (!ab1) continue;
    // an anchor made where the node ended (dtac_imp_finish): a = R^T (x1 - p)
    double dmin, n[3];
    int c = dtac_deepest_collider(col, im->ncol, xa, &dmin, n);
    if (c < 0) continue;
    double aw[3] = {xa[0], xa[1], xa[2]};
    // kept (its local coordinates do not move) or dragged by a slipping node
    if (im->lag[k].c == c && !dtac_imp_stuck_anchor(im, gm, k, xa, aw)) continue;
    double loc[3];
    dtac_collider_to_local(col + c, aw, loc);
    s += dtac_dot3(ab1 + 4 * k + 1, loc);
  }
  return s;
}

int dtac_implicit_gel_adj(dtac_implicit* im, const dtac_gel_model* gm, const double* state0,
                          const double* state1, const dtac_frame* site0,
                          const dtac_collider* col0, int ncol, const double gravity[3], double h,
                          const dtac_implicit_params* p, double* sbar, dtac_frame* site0_bar,
                          dtac_collider_bar* col0_bar, dtac_gel_param_bar* pb) {
  dtac_state_layout Ly = dtac_gel_state_layout(gm);
  int n3 = 3 * gm->nnode, ns = gm->nsurf;
  if (ncol > im->maxcol) ncol = im->maxcol;
  int nc1 = ncol > 0 ? ncol : 1;
  double* xb = (double*)malloc(sizeof(double) * (2 * (size_t)n3 + 4 * (size_t)ns + n3 + nc1));
  dtac_collider* col1 = (dtac_collider*)malloc(sizeof(dtac_collider) * 2 * nc1);
  if (!xb || !col1) {
    free(xb), free(col1);
    return -1;
  }
  double* vb = xb + n3;
  double* ab1 = vb + n3;
  double* lam = ab1 + 4 * ns;
  double* mub = lam + n3;
  dtac_collider* colp = col1 + nc1;
  // the cotangents of the state after the step, taken out: sbar leaves with those before it
  memcpy(xb, sbar + Ly.x, sizeof(double) * n3);
  memcpy(vb, sbar + Ly.v, sizeof(double) * n3);
  memcpy(ab1, sbar + Ly.anchor, sizeof(double) * 4 * ns);
  memset(sbar, 0, sizeof(double) * Ly.size);
  memset(mub, 0, sizeof(double) * nc1);

  // the step-end frames the forward step was given (world.c, implicit_advance)
  dtac_frame site1 = *site0;
  dtac_frame_at(site0, h, site1.pos, site1.mat);
  for (int c = 0; c < ncol; c++) dtac_collider_at(col0 + c, -1, NULL, NULL, h, col1 + c);

  dtac_implicit_bar out;
  memset(&out, 0, sizeof(out));
  out.x0 = sbar + Ly.x;
  out.v0 = sbar + Ly.v;
  out.col_mu = mub;
  out.anchor1 = ab1;
  out.anchor0 = sbar + Ly.anchor;
  if (dtac_implicit_step_adj(im, gm, state0, state1, &site1, col1, ncol, gravity, h, p, xb, vb,
                             &out)) {
    free(xb), free(col1);
    return -1;
  }
  memcpy(lam, im->nv, sizeof(double) * n3);  // lambda of the solve, zero at placed components
  const double* x1 = state1 + Ly.x;

  // the friction stiffness: grad of the stick potential is L tanh(kt s / L) / s dt, whose
  // derivative in kt is sech^2(u) dt
  for (int k = 0; k < ns; k++) {
    const lag* lg = im->lag + k;
    if (lg->c < 0 || !(gm->surf_param[k].kt > 0)) continue;
    int a = gm->surf[k];
    double nl = dtac_norm3(lg->n), n[3], da[3], dt[3];
    for (int i = 0; i < 3; i++) n[i] = nl > 0 ? lg->n[i] / nl : 0;
    dtac_sub3(da, x1 + 3 * a, lg->a);
    double an = dtac_dot3(da, n);
    for (int i = 0; i < 3; i++) dt[i] = da[i] - an * n[i];
    double u = gm->surf_param[k].kt * dtac_norm3(dt) / lg->L, th = tanh(u);
    pb->friction_stiffness -= (1 - th * th) * dtac_dot3(lam + 3 * a, dt) * gm->surf_area[k];
  }

  // the colliders' step-end poses, by central differences of their Lagrangian terms, chained
  // to the step-start frames they were moved from at constant velocity
  double ext = 0;
  for (int i = 0; i < 3; i++) ext = fmax(ext, fabs(gm->def.size[i]));
  if (!(ext > 0)) ext = 0.01;
  for (int c = 0; c < ncol; c++) {
    memcpy(colp, col1, sizeof(dtac_collider) * ncol);
    double pos_bar[3], mat_bar[9];
    for (int j = 0; j < 12; j++) {
      double* v = j < 3 ? colp[c].pos + j : colp[c].mat + j - 3;
      double v0 = *v, e = j < 3 ? 1e-7 * ext : 1e-7;
      *v = v0 + e;
      double lp = col_lagrangian(im, gm, state0, x1, lam, ab1, colp);
      *v = v0 - e;
      double lm = col_lagrangian(im, gm, state0, x1, lam, ab1, colp);
      *v = v0;
      double g = (lp - lm) / (2 * e);
      if (j < 3) {
        pos_bar[j] = g;
      } else {
        mat_bar[j - 3] = g;
      }
    }
    dtac_frame f0, fb;
    memset(&fb, 0, sizeof(fb));
    memcpy(f0.pos, col0[c].pos, sizeof(f0.pos));
    memcpy(f0.mat, col0[c].mat, sizeof(f0.mat));
    memcpy(f0.vel, col0[c].vel, sizeof(f0.vel));
    memcpy(f0.angvel, col0[c].angvel, sizeof(f0.angvel));
    dtac_frame_at_adj(&f0, h, pos_bar, mat_bar, &fb);
    dtac_collider_bar* cb = col0_bar + c;
    for (int i = 0; i < 3; i++) {
      cb->pos[i] += fb.pos[i];
      cb->vel[i] += fb.vel[i];
      cb->angvel[i] += fb.angvel[i];
    }
    for (int i = 0; i < 9; i++) cb->mat[i] += fb.mat[i];
    pb->friction += mub[c];  // every collider's friction coefficient is the gel's
  }
  im->col = NULL;  // col1 is freed below: the next step sets its own

  // the site: its step-end pose from the step-start frame; its velocities pass through
  dtac_frame_at_adj(site0, h, out.site1.pos, out.site1.mat, site0_bar);
  for (int i = 0; i < 3; i++) {
    site0_bar->vel[i] += out.site1.vel[i];
    site0_bar->angvel[i] += out.site1.angvel[i];
  }
  pb->young += out.young;
  pb->poisson += out.poisson;
  pb->damping += out.damping;
  pb->contact_stiffness += out.contact_stiffness;
  pb->friction_stiffness += out.friction_stiffness;
  free(xb), free(col1);
  return 0;
}
