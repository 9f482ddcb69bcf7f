// implicit_adj.c: the reverse of one implicit gel step by the implicit function theorem. At the
// minimum grad E(x*, theta) = 0, so a cotangent xb of x* gives theta_bar = -lambda . d(grad
// E)/d theta with H lambda = xb (H the true Hessian at x*): dtac_implicit_step_adj (the solve's
// part) and dtac_implicit_gel_adj (in the terms of the explicit step's reverse pass, gel.h:
// dtac_gel_step_bar: the step-start site frame and colliders with their velocities, the gel's
// parameters). The colliders' step-end poses enter the potential only through the contact
// nodes' terms, so their cotangents are central differences of the Lagrangian (anchors made or
// dragged at the end) . ab - lambda . grad E over those terms alone, at the converged positions:
// 24 cheap passes over the contact nodes per collider.
//
// The pieces (dtac_imp_adj_rhs, dtac_imp_adj_theta, dtac_imp_adj_rest) also serve a gel solved
// together with coupled bodies (implicit_joint_adj.c): there a contact node meets a collider at
// its position relative to the collider's correction, y = x - B delta (dtac_imp_rel_pos), and
// the multiplier of its contact terms is lambda - B nut (nut: the corrections' multiplier less
// the cotangent of the wrench the gel puts on the body, 6 per slot); the back face moves with
// its body's correction.

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "implicit_internal.h"

// ---- coupled colliders ---------------------------------------------------------------------------

// the lever of node a against slot k: from the slot's point to the node's start position
static void lever(const dtac_implicit* im, int k, int a, double r[3]) {
  dtac_sub3(r, im->x0 + 3 * a, im->slot_pos + 3 * k);
}

// the cotangent yb of node a's position relative to collider c (y = x - dl - dw x r) passed on:
// to the node's position (xb_a) and, for a coupled collider, to its slot's correction (db, 6
// per slot; may be NULL), the node's start position (x0b_a, through the lever) and the slot's
// point (posb, 3 per slot)
static void rel_pos_adj(const dtac_implicit* im, int c, int a, const double yb[3], double* xb_a,
                        double* db, double* x0b_a, double* posb) {
  for (int i = 0; i < 3; i++) xb_a[i] += yb[i];
  int k = im->delta && im->cslot ? im->cslot[c] : -1;
  if (k < 0) return;
  double r[3], ry[3], rb[3];
  lever(im, k, a, r);
  const double* dw = im->delta + 6 * k + 3;
  if (db) {
    dtac_cross3(ry, r, yb);
    for (int i = 0; i < 3; i++) {
      db[6 * k + i] -= yb[i];
      db[6 * k + 3 + i] -= ry[i];
    }
  }
  dtac_cross3(rb, dw, yb);
  for (int i = 0; i < 3; i++) {
    if (x0b_a) x0b_a[i] += rb[i];
    if (posb) posb[3 * k + i] -= rb[i];
  }
}

// the multiplier of node a's terms against collider c: la, less the motion B nut the collider
// has there (nut_l + nut_w x r) when it is coupled; returns the slot, or -1
static int lam_eff(const dtac_implicit* im, const double* nut, int c, int a, const double* la,
                   double le[3]) {
  for (int i = 0; i < 3; i++) le[i] = la[i];
  int k = im->delta && im->cslot && nut ? im->cslot[c] : -1;
  if (k < 0) return -1;
  double r[3], wr[3];
  lever(im, k, a, r);
  dtac_cross3(wr, nut + 6 * k + 3, r);
  for (int i = 0; i < 3; i++) le[i] -= nut[6 * k + i] + wr[i];
  return k;
}

// a coupled contact term's dependence on its lever (y and the multiplier both move with it):
// d(le . g(y))/dr = dw x (H le) + nut_w x g, passed to the start position and the slot's point
static void lever_adj(const dtac_implicit* im, const double* nut, int k, int a, const double H[9],
                      const double le[3], const double g[3], double* x0b, double* posb) {
  double hl[3], t1[3], t2[3];
  dtac_mulmv3(hl, H, le);
  dtac_cross3(t1, im->delta + 6 * k + 3, hl);
  dtac_cross3(t2, nut + 6 * k + 3, g);
  for (int i = 0; i < 3; i++) {
    x0b[3 * a + i] -= t1[i] + t2[i];
    if (posb) posb[3 * k + i] += t1[i] + t2[i];
  }
}

// ---- the pieces ---------------------------------------------------------------------------------

int dtac_imp_adj_rhs(dtac_implicit* im, const dtac_gel_model* gm, const double* state1,
                     const double* xb, dtac_implicit_bar* out, dtac_imp_adj* w) {
  dtac_state_layout Ly = dtac_gel_state_layout(gm);
  int n3 = 3 * gm->nnode;
  const double* x = state1 + Ly.x;
  // the new anchors (dtac_imp_finish's rule): kept ones pass their cotangent to the old, ones
  // made where the node ended (a = R^T (y1 - p)) to y1 and the collider's position
  memcpy(w->xbe, xb, n3 * sizeof(double));
  memset(w->lag_bar, 0, 8 * (size_t)gm->nsurf * sizeof(double));
  for (int s = 0; s < gm->nsurf && out->anchor1; s++) {
    int a = gm->surf[s];
    const double* ab = out->anchor1 + 4 * s + 1;
    double y[3];
    int c = dtac_imp_deepest(im, a, x + 3 * a, y);
    if (c < 0) continue;
    const lag* lg = im->lag + s;
    const dtac_collider* cc = im->col + c;
    if (lg->c == c) {
      double da[3], dt[3];
      dtac_sub3(da, y, lg->a);
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
      // slipping: dragged to aw = y1 - (da.n) n - c t, c = DTAC_SLIP_RATIO L / kt, t = dt/|dt|
      // (dtac_imp_finish), held in the frame of the collider at the step end: its cotangent
      // reaches y1 (before the solve), the lagged anchor, normal and load (lag_bar, after it)
      // and the friction stiffness; the colliders' share is dtac_imp_adj_rest's
      double awb[3], t[3], cs = DTAC_SLIP_RATIO * lg->L / kt;
      dtac_mulmv3(awb, cc->mat, ab);
      for (int k = 0; k < 3; k++) t[k] = dt[k] / sn;
      // Q = I - (c/s)(I - t t^T) maps d(dt) to d(aw); d(dt)/dy1 = P = I - n n^T
      double tw = dtac_dot3(t, awb), v[3];
      for (int k = 0; k < 3; k++) v[k] = awb[k] - cs / sn * (awb[k] - tw * t[k]);
      double wn = dtac_dot3(v, lg->n), y1b[3];
      for (int k = 0; k < 3; k++) y1b[k] = v[k] - wn * lg->n[k];
      rel_pos_adj(im, c, a, y1b, w->xbe + 3 * a, w->dbar, out->x0 + 3 * a, w->posb);
      // aw = a_l + f(y1 - a_l): a_l's cotangent is awb - y1b
      double* lb = w->lag_bar + 8 * s;
      for (int k = 0; k < 3; k++) {
        lb[1 + k] += -wn * da[k] - dn * v[k];  // normal
        lb[4 + k] += awb[k] - y1b[k];          // lagged anchor (world)
      }
      double cb = -tw;  // of c
      lb[0] += cb * DTAC_SLIP_RATIO / kt;  // of L
      // kt = friction_stiffness * area: d c / d friction_stiffness = -c / friction_stiffness
      if (gm->friction_stiffness > 0) out->friction_stiffness -= cb * cs / gm->friction_stiffness;
      continue;
    }
    double rab[3];
    dtac_mulmv3(rab, cc->mat, ab);
    rel_pos_adj(im, c, a, rab, w->xbe + 3 * a, w->dbar, out->x0 + 3 * a, w->posb);
    if (out->col_pos) {
      for (int k = 0; k < 3; k++) out->col_pos[3 * c + k] -= rab[k];
    }
  }
  return 0;
}

void dtac_imp_adj_theta(dtac_implicit* im, const dtac_gel_model* gm, const double* x,
                        const dtac_frame* site1, const double* xb, const double* vb,
                        const double* lam, const double* gfull, const dtac_imp_adj* w,
                        dtac_implicit_bar* out) {
  int n3 = 3 * gm->nnode;
  double h = im->h, h2 = h * h, lam_gi = 0;
  const double* nut = w->nut;
  // every theta's cotangent is -d(lambda . grad E)/d theta, plus what bypasses the solve
  // inertia: grad = m/h^2 (x - x0 - h v0) - m g; velocities v = (x - x0)/h
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
  int kb = im->delta ? im->site_k : -1;  // the back face moves with this slot's correction
  for (int a = 0; a < gm->nnode; a++) {
    if (gm->fixed[a]) {
      // x_a = p + R X_a (+ dl + dw x r_b, r_b = x_a - pos_kb), v_a = vel + w x (R X_a) (+ the
      // correction's over the step)
      double r[3], xab[3], rb[3], t[3];
      dtac_mulmv3(r, site1->mat, gm->X + 3 * a);
      for (int k = 0; k < 3; k++) xab[k] = xb[3 * a + k] - y[3 * a + k];
      const double* vab = vb + 3 * a;
      if (kb >= 0) {
        // the lever r_b moves with the placed node: through x_b, v_b and nut's B_b^T g_b
        double tv[3], l1[3], l2[3];
        for (int k = 0; k < 3; k++) tv[k] = xab[k] + vab[k] / h;
        dtac_cross3(l1, tv, im->delta + 6 * kb + 3);
        dtac_cross3(l2, gfull + 3 * a, nut + 6 * kb + 3);
        for (int k = 0; k < 3; k++) {
          xab[k] += l1[k] - l2[k];
          w->posb[3 * kb + k] -= l1[k] - l2[k];
        }
      }
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
  // the contact stiffness per area; each term at the node's position relative to its collider
  for (int s = 0; s < gm->nsurf; s++) {
    int a = gm->surf[s];
    const double* xa = x + 3 * a;
    const double* la = lam + 3 * a;
    for (int c = 0; c < im->ncol; c++) {
      dtac_contact_node_param pe = dtac_contact_scaled(gm->surf_param + s, im->col + c);
      double g3[3], H3[9], ya[3], r[3], le[3];
      dtac_imp_rel_pos(im, c, a, xa, ya, r);
      int k = lam_eff(im, nut, c, a, la, le);
      dtac_contact_energy(pe.kn, pe.width, im->col + c, ya, g3, H3, 0);
      if (out->col_pos) {
        for (int i = 0; i < 3; i++) {
          for (int j = 0; j < 3; j++) out->col_pos[3 * c + i] += H3[3 * i + j] * le[j];
        }
      }
      // grad is linear in kn
      if (gm->contact_stiffness > 0)
        out->contact_stiffness -= dtac_dot3(g3, le) / gm->contact_stiffness;
      if (k >= 0) lever_adj(im, nut, k, a, H3, le, g3, out->x0, w->posb);
    }
    const lag* lg = im->lag + s;
    if (lg->c < 0) continue;
    const dtac_collider* c = im->col + lg->c;
    double kt = gm->surf_param[s].kt;
    double g3[3], H3[9], ya[3], r[3], le[3];
    dtac_imp_rel_pos(im, lg->c, a, xa, ya, r);
    int k = lam_eff(im, nut, lg->c, a, la, le);
    dtac_friction_energy(lg->L, kt, lg->n, ya, lg->a, g3, H3);
    if (k >= 0) lever_adj(im, nut, k, a, H3, le, g3, out->x0, w->posb);
    // the anchor (p + R a_local) moves with the collider, and with its local coordinates
    double ha[3];
    for (int i = 0; i < 3; i++) {
      ha[i] = 0;
      for (int j = 0; j < 3; j++) ha[i] += H3[3 * i + j] * le[j];
      if (out->col_pos) out->col_pos[3 * lg->c + i] += ha[i];
    }
    if (out->anchor0) {
      double hl[3];
      dtac_mulmTv3(hl, c->mat, ha);
      for (int q = 0; q < 3; q++) out->anchor0[4 * s + 1 + q] += hl[q];
    }
    // the lag: L = mu kn ramp(-d(x0)), n = grad d(x0), both against the collider at the step end
    double dL, dn[3];
    dtac_friction_lag_adj(lg->L, kt, lg->n, ya, lg->a, le, &dL, dn);
    // a dragged anchor's direct cotangents (the terms here are -d(lam . grad E))
    const double* lb = w->lag_bar + 8 * s;
    dL -= lb[0];
    for (int q = 0; q < 3; q++) dn[q] -= lb[1 + q];
    if (out->anchor0) {
      double hl[3];
      dtac_mulmTv3(hl, c->mat, lb + 4);
      for (int q = 0; q < 3; q++) out->anchor0[4 * s + 1 + q] += hl[q];
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
    for (int q = 0; q < 3; q++) {
      out->x0[3 * a + q] -= gx0[q];
      if (out->col_pos) out->col_pos[3 * lg->c + q] += gx0[q];
    }
    // L is proportional to kn (so to the stiffness per area) and to mu
    if (gm->contact_stiffness > 0) out->contact_stiffness -= dL * lg->L / gm->contact_stiffness;
    if (out->col_mu && c->mu > 0) out->col_mu[lg->c] -= dL * lg->L / c->mu;
  }
}

// the adjoint work of one gel (4 nnode... doubles: xbe 3 nnode, lag_bar 8 nsurf)
static int adj_alloc(const dtac_gel_model* gm, dtac_imp_adj* w) {
  memset(w, 0, sizeof(*w));
  w->xbe = (double*)malloc(sizeof(double) * (3 * (size_t)gm->nnode + 8 * (size_t)gm->nsurf + 1));
  if (!w->xbe) return -1;
  w->lag_bar = w->xbe + 3 * gm->nnode;
  return 0;
}

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
  dtac_imp_adj w;
  if (adj_alloc(gm, &w)) return -1;
  dtac_imp_adj_rhs(im, gm, state1, xb, out, &w);

  // H lambda = xb + vb / h on the free dofs, H the unprojected Hessian at the converged state:
  // the implicit function theorem needs the true Hessian; CG preconditioned by the kept factor
  for (int d = 0; d < im->ndof; d++) {
    int i = im->dof_node[d];
    im->b[d] = w.xbe[i] + vb[i] / h;
  }
  dtac_imp_assemble(im, gm, x, p->adj_projected ? 1 : 0, im->Hx_true, 0);
  int fail = 0;
  if (!im->factor_ok) {
    dtac_imp_assemble(im, gm, x, 1, (double*)im->A->x, 0);
    double tf = 0;
    int nf = 0;
    fail = dtac_imp_factorize_at(im, gm, x, &tf, &nf);
  }
  if (!fail) fail = dtac_imp_pcg(im, gm, im->Hx_true, im->b, im->dx, p->adj_tolerance, 2000) < 0;
  if (!fail) {
    double* lam = im->nv;  // node vector of lambda, zero at the placed components
    for (int i = 0; i < n3; i++) lam[i] = im->dof[i] >= 0 ? im->dx[im->dof[i]] : 0;
    dtac_imp_adj_theta(im, gm, x, site1, w.xbe, vb, lam, NULL, &w, out);
  }
  free(w.xbe);
  return fail ? -1 : 0;
}

// ---- in the explicit reverse pass's terms ------------------------------------------------------

// the contact nodes' share of <ab1, anchors made at the step end> - <lam, grad E> at positions x1
// with the colliders col (the lag made against them from the start state); coupled colliders
// at the nodes' relative positions, with the multiplier less the corrections' (nut)
static double col_lagrangian(dtac_implicit* im, const dtac_gel_model* gm, const double* state0,
                             const double* x1, const double* lam, const double* nut,
                             const double* ab1, const dtac_collider* col) {
  im->col = col;
  dtac_imp_make_lag(im, gm, state0);
  double s = 0;
  for (int k = 0; k < gm->nsurf; k++) {
    int a = gm->surf[k];
    const double* xa = x1 + 3 * a;
    const lag* lg = im->lag + k;
    for (int c = 0; c < im->ncol; c++) {
      dtac_contact_node_param pe = dtac_contact_scaled(gm->surf_param + k, im->col + c);
      double g3[3], y[3], r[3], le[3];
      dtac_imp_rel_pos(im, c, a, xa, y, r);
      lam_eff(im, nut, c, a, lam + 3 * a, le);
      dtac_contact_energy(pe.kn, pe.width, im->col + c, y, g3, NULL, 0);
      if (lg->c == c) {
        double gf[3];
        dtac_friction_energy(lg->L, gm->surf_param[k].kt, lg->n, y, lg->a, gf, NULL);
        for (int i = 0; i < 3; i++) g3[i] += gf[i];
      }
      s -= dtac_dot3(le, g3);
    }
    if (!ab1) continue;
    // an anchor made where the node ended (dtac_imp_finish): a = R^T (y1 - p)
    double y[3];
    int c = dtac_imp_deepest(im, a, xa, y);
    if (c < 0) continue;
    double aw[3] = {y[0], y[1], y[2]};
    // kept (its local coordinates do not move) or dragged by a slipping node
    if (lg->c == c && !dtac_imp_stuck_anchor(im, gm, k, y, aw)) continue;
    double loc[3];
    dtac_collider_to_local(col + c, aw, loc);
    s += dtac_dot3(ab1 + 4 * k + 1, loc);
  }
  return s;
}

int dtac_imp_adj_rest(dtac_implicit* im, const dtac_gel_model* gm, const double* state0,
                      const double* x1, const dtac_frame* site0, const dtac_collider* col0,
                      const dtac_collider* col1, int ncol, double h, const double* lam,
                      const double* nut, const double* ab1, const double* mub,
                      const dtac_implicit_bar* out, dtac_frame* site0_bar,
                      dtac_collider_bar* col0_bar, dtac_gel_param_bar* pb) {
  int ns = gm->nsurf;
  dtac_collider* colp = (dtac_collider*)malloc(sizeof(dtac_collider) * (ncol > 0 ? ncol : 1));
  if (!colp) return -1;
  // the friction stiffness: grad of the stick potential is L tanh(kt s / L) / s dt, whose
  // derivative in kt is sech^2(u) dt
  for (int k = 0; k < ns; k++) {
    const lag* lg = im->lag + k;
    if (lg->c < 0 || !(gm->surf_param[k].kt > 0)) continue;
    int a = gm->surf[k];
    double nl = dtac_norm3(lg->n), n[3], da[3], dt[3], y[3], r[3], le[3];
    dtac_imp_rel_pos(im, lg->c, a, x1 + 3 * a, y, r);
    lam_eff(im, nut, lg->c, a, lam + 3 * a, le);
    for (int i = 0; i < 3; i++) n[i] = nl > 0 ? lg->n[i] / nl : 0;
    dtac_sub3(da, y, lg->a);
    double an = dtac_dot3(da, n);
    for (int i = 0; i < 3; i++) dt[i] = da[i] - an * n[i];
    double u = gm->surf_param[k].kt * dtac_norm3(dt) / lg->L, th = tanh(u);
    pb->friction_stiffness -= (1 - th * th) * dtac_dot3(le, dt) * gm->surf_area[k];
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
      double lp = col_lagrangian(im, gm, state0, x1, lam, nut, ab1, colp);
      *v = v0 - e;
      double lm = col_lagrangian(im, gm, state0, x1, lam, nut, ab1, colp);
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
  im->col = NULL;  // col1 is the caller's: the next step sets its own
  free(colp);

  // the site: its step-end pose from the step-start frame; its velocities pass through
  dtac_frame_at_adj(site0, h, out->site1.pos, out->site1.mat, site0_bar);
  for (int i = 0; i < 3; i++) {
    site0_bar->vel[i] += out->site1.vel[i];
    site0_bar->angvel[i] += out->site1.angvel[i];
  }
  pb->young += out->young;
  pb->poisson += out->poisson;
  pb->damping += out->damping;
  pb->contact_stiffness += out->contact_stiffness;
  pb->friction_stiffness += out->friction_stiffness;
  return 0;
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
  dtac_collider* col1 = (dtac_collider*)malloc(sizeof(dtac_collider) * nc1);
  if (!xb || !col1) {
    free(xb), free(col1);
    return -1;
  }
  double* vb = xb + n3;
  double* ab1 = vb + n3;
  double* lam = ab1 + 4 * ns;
  double* mub = lam + n3;
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
  int fail = dtac_implicit_step_adj(im, gm, state0, state1, &site1, col1, ncol, gravity, h, p,
                                    xb, vb, &out);
  if (!fail) {
    memcpy(lam, im->nv, sizeof(double) * n3);  // lambda of the solve, zero at placed components
    fail = dtac_imp_adj_rest(im, gm, state0, state1 + Ly.x, site0, col0, col1, ncol, h, lam,
                             NULL, ab1, mub, &out, site0_bar, col0_bar, pb);
  }
  free(xb), free(col1);
  return fail ? -1 : 0;
}
