// step_adj.c: the reverse pass of the gel step (dtac_gels_advance_tape). Substeps run last to
// first; each is recomputed from the state the tape kept (dtac_gel_substep with s->rec set, so
// the values are bit for bit those of the forward pass) and then differentiated operation by
// operation in reverse: back face placement, bodies, positions, implicit contact, explicit
// velocities, contact, mass damping, internal forces, and the frames of colliders and site.
// Branches (which collider is deepest, stick or slip, clamped forces, the substep count) are
// those the forward pass took: the result is the derivative of the piecewise-smooth step on the
// piece the forward pass was on.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gel.h"

// ---- small adjoints
// ----------------------------------------------------------------------------

// VJP of a pose expressed in a body's frame: lpos = B^T (pos - B.pos), lmat = B^T mat
static void local_pose_adj(const dtac_frame* B, const double pos[3], const double mat[9],
                           const double lpos_bar[3], const double lmat_bar[9], dtac_frame* B_bar,
                           double pos_bar[3], double mat_bar[9]) {
  double r[3], pb[3], mb[9], Bb[9];
  dtac_sub3(r, pos, B->pos);
  dtac_mulmv3(pb, B->mat, lpos_bar);
  dtac_mul33(mb, B->mat, lmat_bar);
  dtac_mul33T(Bb, mat, lmat_bar);
  for (int i = 0; i < 3; i++) {
    pos_bar[i] += pb[i];
    B_bar->pos[i] -= pb[i];
    for (int j = 0; j < 3; j++) B_bar->mat[3 * i + j] += r[i] * lpos_bar[j] + Bb[3 * i + j];
  }
  for (int k = 0; k < 9; k++) mat_bar[k] += mb[k];
}

// VJP of dtac_site_frame: the site frame's cotangent st_bar goes to its body's frame (and the
// site's pose in it) or to the step-start site frame
static void site_frame_adj(const dtac_gel_step* g, const dtac_frame* cur, double t,
                           const dtac_frame* st_bar, dtac_frame* cur_bar, dtac_gel_step_bar* gb,
                           double* site_lbar) {
  if (g->site_slot >= 0) {
    dtac_frame_on_body_adj(cur + g->site_slot, g->site_b.pos, g->site_b.mat, st_bar,
                      cur_bar + g->site_slot, site_lbar, site_lbar + 3);
  } else {
    dtac_frame_at_adj(g->site, t, st_bar->pos, st_bar->mat, &gb->site);
    for (int k = 0; k < 3; k++) {
      gb->site.vel[k] += st_bar->vel[k];
      gb->site.angvel[k] += st_bar->angvel[k];
    }
  }
}

static void frame_add(dtac_frame* a, const dtac_frame* b) {
  double* pa = (double*)a;
  const double* pb = (const double*)b;
  for (int k = 0; k < 18; k++) pa[k] += pb[k];
}

// cotangents of a node's effective contact constants (kn, cn before any zeroing, kt, mu)
// against collider c, chained to the gel's parameters
static void param_chain(const dtac_gel_model* gm, int s, const dtac_collider* c, double kn_bar,
                        double cn_bar, double kt_bar, double mu_bar, dtac_gel_param_bar* pb) {
  double ks = (c->kscale > 0 && c->kscale < 1) ? c->kscale : 1;
  const dtac_contact_node_param* p = gm->surf_param + s;
  double A = gm->surf_area[s], m = gm->mass[gm->surf[s]];
  // effective: kn ks, cn sqrt(ks); node: kn = K A, cn = 2 zeta sqrt(kn m)
  double pkn_bar = kn_bar * ks, pcn_bar = cn_bar * sqrt(ks);
  if (p->kn > 0) pkn_bar += pcn_bar * p->cn / (2 * p->kn);
  pb->contact_stiffness += pkn_bar * A;
  pb->contact_damping += pcn_bar * 2 * sqrt(p->kn * m);
  pb->friction_stiffness += kt_bar * A;
  pb->friction += mu_bar;
}

// reaction of node force f at xa on collider c (react in step.c): f_bar from the collider's
// wrench cotangent ft_bar, and the lever's cotangents
static void react_adj(const dtac_collider* c, const double xa[3], const double f[3],
                      const double ft_bar[6], double f_bar[3], double xa_bar[3],
                      dtac_collider_bar* cb) {
  double r[3], mb[3], t[3], rb[3];
  dtac_sub3(r, xa, c->pos);
  for (int k = 0; k < 3; k++) mb[k] = -ft_bar[3 + k];
  dtac_cross3(t, mb, r);
  dtac_cross3(rb, f, mb);
  for (int k = 0; k < 3; k++) {
    f_bar[k] += t[k] - ft_bar[k];
    xa_bar[k] += rb[k];
    cb->pos[k] -= rb[k];
  }
}

// ---- one gel's substep in reverse
// ---------------------------------------------------------------

void dtac_gel_contact_node_adj(const dtac_gel_model* gm, int s, const dtac_collider* col, int ncol,
                               const double* x, const double* v, const double* anchor, int imp,
                               int anchor_out, const double* fbar, const double* col_ft_bar,
                               const double* imp_bar, double* xb, double* vb, double* ab,
                               dtac_collider_bar* col_bar, dtac_gel_param_bar* pb) {
  int a = gm->surf[s];
  const double* xa = x + 3 * a;
  const double* va = v + 3 * a;
  const double* an = anchor + 4 * s;
  const dtac_contact_node_param* p = gm->surf_param + s;
  double* xab = xb + 3 * a;
  double* vab = vb + 3 * a;
  double aob[3] = {0, 0, 0};
  if (anchor_out) {
    for (int k = 0; k < 3; k++) {
      aob[k] = ab[4 * s + 1 + k];
      ab[4 * s + 1 + k] = 0;
    }
  }

  double dmin, nd[3];
  int deepest = dtac_deepest_collider(col, ncol, xa, &dmin, nd);
  if (deepest < 0) {
    // the anchor's coordinates pass through unchanged (its geom id is cleared)
    if (anchor_out) {
      for (int k = 0; k < 3; k++) ab[4 * s + 1 + k] = aob[k];
    }
    return;
  }

  // other penetrated colliders: normal force only, the first of them recorded for the
  // implicit update (its damping then left to it)
  int second = 0, nother = 0;
  for (int c = 0; c < ncol; c++) {
    if (c == deepest) continue;
    double n[3], f[3];
    double d = dtac_collider_dist_near(col + c, xa, n);
    if (d >= 0) continue;
    if (nother == DTAC_NODE_MAXCOL - 1) break;  // left out by the forward (dtac_contact_node)
    nother++;
    dtac_contact_node_param pe = dtac_contact_scaled(p, col + c);
    double cn = pe.cn;
    int recorded = imp && !second;
    if (recorded) {
      pe.cn = 0;
      second = 1;
    }
    dtac_contact_force(&pe, col + c, d, n, xa, va, xa, f, NULL);
    double fb[3] = {fbar[3 * a], fbar[3 * a + 1], fbar[3 * a + 2]};
    dtac_collider_bar* cb = col_bar + c;
    react_adj(col + c, xa, f, col_ft_bar + 6 * c, fb, xab, cb);
    double d_bar = 0, n_bar[3] = {0, 0, 0}, kn_bar = 0, cn_bar = 0;
    dtac_contact_param_adj pa = {0, 0, 0, 0};
    dtac_contact_force_adj(&pe, col + c, d, n, xa, va, xa, fb, NULL, &d_bar, n_bar, xab, vab, xab,
                           cb, &pa);
    kn_bar += pa.kn;
    if (!recorded) cn_bar += pa.cn;
    if (recorded) {
      dtac_imp_record_adj(&pe, cn, d, imp_bar + DTAC_IMP_SIZE * s + 7, &d_bar, n_bar, &kn_bar,
                          &cn_bar);
    }
    dtac_collider_dist_adj(col + c, xa, d_bar, n_bar, xab, cb);
    param_chain(gm, s, col + c, kn_bar, cn_bar, pa.kt, pa.mu, pb);
  }

  // the deepest: normal force and friction from the stick anchor in its frame
  const dtac_collider* c = col + deepest;
  dtac_collider_bar* cb = col_bar + deepest;
  dtac_contact_node_param pe = dtac_contact_scaled(p, c);
  double cn = pe.cn;
  if (imp) pe.cn = 0;
  int stuck = (int)an[0] == c->geom;
  double aw[3], anew[3], f[3];
  if (stuck) {
    dtac_collider_to_world(c, an + 1, aw);
  } else {
    memcpy(aw, xa, sizeof(aw));
  }
  dtac_contact_force(&pe, c, dmin, nd, xa, va, aw, f, anew);
  double fb[3] = {fbar[3 * a], fbar[3 * a + 1], fbar[3 * a + 2]};
  react_adj(c, xa, f, col_ft_bar + 6 * deepest, fb, xab, cb);
  double anew_bar[3] = {0, 0, 0}, aw_bar[3] = {0, 0, 0};
  if (anchor_out) dtac_collider_to_local_adj(c, anew, aob, anew_bar, cb);
  double d_bar = 0, n_bar[3] = {0, 0, 0}, kn_bar = 0, cn_bar = 0;
  dtac_contact_param_adj pa = {0, 0, 0, 0};
  dtac_contact_force_adj(&pe, c, dmin, nd, xa, va, aw, fb, anew_bar, &d_bar, n_bar, xab, vab,
                         aw_bar, cb, &pa);
  if (stuck) {
    dtac_collider_to_world_adj(c, an + 1, aw_bar, ab + 4 * s + 1, cb);
  } else {
    for (int k = 0; k < 3; k++) xab[k] += aw_bar[k];
  }
  kn_bar += pa.kn;
  if (imp) {
    dtac_imp_record_adj(&pe, cn, dmin, imp_bar + DTAC_IMP_SIZE * s, &d_bar, n_bar, &kn_bar,
                        &cn_bar);
  } else {
    cn_bar += pa.cn;
  }
  dtac_collider_dist_adj(c, xa, d_bar, n_bar, xab, cb);
  param_chain(gm, s, c, kn_bar, cn_bar, pa.kt, pa.mu, pb);
}

void dtac_gel_internal_force_adj(const dtac_gel_model* gm, const double* x, const double* v,
                                 const double* fbar, double* xb, double* vb,
                                 dtac_material_adj* ma) {
  for (int tt = 0; tt < gm->ntet; tt++) {
    const int* tv = gm->tet + 4 * tt;
    double fb[12], xbt[12], vbt[12];
    int any = 0;
    for (int i = 0; i < 4; i++) {
      for (int k = 0; k < 3; k++) {
        fb[3 * i + k] = fbar[3 * tv[i] + k];
        any |= fb[3 * i + k] != 0;
        xbt[3 * i + k] = vbt[3 * i + k] = 0;
      }
    }
    if (!any) continue;
    dtac_tet_force_adj(&gm->mat, x + 3 * tv[0], x + 3 * tv[1], x + 3 * tv[2], x + 3 * tv[3],
                       v + 3 * tv[0], v + 3 * tv[1], v + 3 * tv[2], v + 3 * tv[3],
                       gm->Dm_inv + 9 * tt, gm->vol[tt], fb, xbt, vbt, ma);
    for (int i = 0; i < 4; i++) {
      for (int k = 0; k < 3; k++) {
        xb[3 * tv[i] + k] += xbt[3 * i + k];
        vb[3 * tv[i] + k] += vbt[3 * i + k];
      }
    }
  }
}

void dtac_gel_mass_damping_adj(const dtac_gel_model* gm, const double* x, const double* v,
                               const dtac_frame* st, const double* fbar, const double* wrench_bar,
                               double* xb, double* vb, dtac_frame* st_bar, double* alpha_bar) {
  if (gm->alpha > 0) {
    for (int a = 0; a < gm->nnode; a++) {
      if (gm->inv_mass[a] == 0) continue;
      double r[3], w[3], rel[3], f[3], fb[3], rb[3] = {0, 0, 0};
      dtac_sub3(r, x + 3 * a, st->pos);
      dtac_cross3(w, st->angvel, r);
      for (int k = 0; k < 3; k++) {
        rel[k] = v[3 * a + k] - st->vel[k] - w[k];
        f[k] = -gm->alpha * gm->mass[a] * rel[k];
        fb[k] = fbar ? fbar[3 * a + k] : 0;
      }
      if (wrench_bar) {
        double mb[3], t1[3], t2[3];
        for (int k = 0; k < 3; k++) mb[k] = -wrench_bar[3 + k];
        dtac_cross3(t1, mb, r);
        dtac_cross3(t2, f, mb);
        for (int k = 0; k < 3; k++) {
          fb[k] += t1[k] - wrench_bar[k];
          rb[k] += t2[k];
        }
      }
      *alpha_bar -= gm->mass[a] * dtac_dot3(fb, rel);
      double relb[3], t1[3], t2[3];
      for (int k = 0; k < 3; k++) {
        relb[k] = -gm->alpha * gm->mass[a] * fb[k];
        vb[3 * a + k] += relb[k];
        st_bar->vel[k] -= relb[k];
      }
      // rel -= w, w = angvel x r
      double wbar[3] = {-relb[0], -relb[1], -relb[2]};
      dtac_cross3(t1, r, wbar);
      dtac_cross3(t2, wbar, st->angvel);
      for (int k = 0; k < 3; k++) {
        st_bar->angvel[k] += t1[k];
        rb[k] += t2[k];
        xb[3 * a + k] += rb[k];
        st_bar->pos[k] -= rb[k];
      }
    }
  }
}

// one gel's substep (dtac_gel_substep) in reverse, its intermediates in g->s (recomputed from
// x, v, anchor at the substep start). gb->state holds the cotangent of the state after the
// substep and leaves with the one before; wb_bar: cotangents of the wrench on each body slot;
// cur_bar: of the body frames at the substep start (accumulated); ma: material cotangents
static void substep_adj(const dtac_gel_step* g, const dtac_frame* cur, double t, double dt,
                        const double* x, const double* v, const double* anchor,
                        const double* wb_bar, dtac_frame* cur_bar, dtac_gel_step_bar* gb,
                        dtac_material_adj* ma, double* site_lbar, double* col_lbar) {
  const dtac_gel_model* gm = g->gm;
  dtac_gel_scratch* s = g->s;
  dtac_state_layout L = dtac_gel_state_layout(gm);
  double* xb = gb->state + L.x;
  double* vb = gb->state + L.v;
  double* ab = gb->state + L.anchor;
  int ncol = g->ncol;
  const dtac_frame* st = &s->st;
  dtac_frame st_bar;
  double wsite_bar[6] = {0, 0, 0, 0, 0, 0};
  memset(&st_bar, 0, sizeof(st_bar));
  memset(s->col_ft_bar, 0, sizeof(double) * 6 * ncol);
  memset(s->col_bar, 0, sizeof(dtac_collider_bar) * ncol);
  memset(s->imp_bar, 0, sizeof(double) * DTAC_IMP_SIZE * gm->nsurf);

  // the gel's wrench on the bodies
  if (wb_bar) {
    for (int c = 0; c < ncol; c++) {
      int b = g->col_slot ? g->col_slot[c] : -1;
      if (b < 0) continue;
      dtac_wrench_add_adj(s->col_ft + 6 * c, s->col_t[c].pos, cur[b].pos, wb_bar + 6 * b,
                     s->col_ft_bar + 6 * c, s->col_ft_bar + 6 * c + 3, s->col_bar[c].pos,
                     cur_bar[b].pos);
    }
    if (g->site_slot >= 0) {
      int b = g->site_slot;
      dtac_wrench_add_adj(s->wsite, st->pos, cur[b].pos, wb_bar + 6 * b, wsite_bar, wsite_bar + 3,
                     st_bar.pos, cur_bar[b].pos);
    }
  }

  // positions x += dt v, after locked components were zeroed
  for (int a = 0; a < gm->nnode; a++) {
    if (gm->inv_mass[a] == 0) continue;
    for (int k = 0; k < 3; k++) {
      vb[3 * a + k] += dt * xb[3 * a + k];
      if (gm->lock[a] & (1 << k)) vb[3 * a + k] = 0;
    }
  }

  // implicit normal contact updates, last first
  for (int si = 2 * gm->nsurf - 1; si >= 0; si--) {
    const double* q = s->imp + DTAC_IMP_SIZE * (si >> 1) + 7 * (si & 1);
    double* qb = s->imp_bar + DTAC_IMP_SIZE * (si >> 1) + 7 * (si & 1);
    if (q[5] < 0) continue;
    int a = gm->surf[si >> 1];
    if (gm->inv_mass[a] == 0) continue;
    const dtac_collider* c = s->col_t + (int)q[5];
    dtac_collider_bar* cb = s->col_bar + (int)q[5];
    const double* vv = s->vimp + 3 * si;
    double m = gm->mass[a], r[3], w[3], u[3];
    dtac_sub3(r, x + 3 * a, c->pos);
    dtac_cross3(w, c->angvel, r);
    for (int k = 0; k < 3; k++) u[k] = vv[k] - c->vel[k] - w[k];
    double un = q[2] * u[0] + q[3] * u[1] + q[4] * u[2];
    double D = m + dt * q[1] + dt * dt * q[0];
    double un_new = m * un / D;
    double fcorr = m / dt * (un_new - un);
    int clamped = q[6] + fcorr < 0;
    if (clamped) fcorr = -q[6];
    double f[3], fb[3];
    for (int k = 0; k < 3; k++) {
      f[k] = fcorr * q[2 + k];
      fb[k] = dt / m * vb[3 * a + k];
    }
    react_adj(c, x + 3 * a, f, s->col_ft_bar + 6 * (int)q[5], fb, xb + 3 * a, cb);
    double fcorr_bar = dtac_dot3(fb, q + 2);
    for (int k = 0; k < 3; k++) qb[2 + k] += fcorr * fb[k];
    if (clamped) {
      qb[6] -= fcorr_bar;
      continue;
    }
    // fcorr = (m/dt) (m/D - 1) un
    double un_bar = (m / dt) * (m / D - 1) * fcorr_bar;
    double D_bar = -fcorr_bar * (m / dt) * m * un / (D * D);
    qb[1] += dt * D_bar;
    qb[0] += dt * dt * D_bar;
    double ub[3], wbar[3], t1[3], t2[3];
    for (int k = 0; k < 3; k++) {
      qb[2 + k] += un_bar * u[k];
      ub[k] = un_bar * q[2 + k];
      vb[3 * a + k] += ub[k];
      cb->vel[k] -= ub[k];
      wbar[k] = -ub[k];
    }
    dtac_cross3(t1, r, wbar);
    dtac_cross3(t2, wbar, c->angvel);
    for (int k = 0; k < 3; k++) {
      cb->angvel[k] += t1[k];
      xb[3 * a + k] += t2[k];
      cb->pos[k] -= t2[k];
    }
  }

  // explicit velocities v += dt f / m
  for (int a = 0; a < gm->nnode; a++) {
    double im = gm->inv_mass[a];
    for (int k = 0; k < 3; k++) s->fbar[3 * a + k] = dt * im * vb[3 * a + k];
  }

  // contact
  for (int sn = 0; sn < gm->nsurf; sn++) {
    dtac_gel_contact_node_adj(gm, sn, s->col_t, ncol, x, v, anchor, 1, 1, s->fbar, s->col_ft_bar,
                              s->imp_bar, xb, vb, ab, s->col_bar, &gb->param);
  }

  // mass damping relative to the site's frame
  dtac_gel_mass_damping_adj(gm, x, v, st, s->fbar, g->site_slot >= 0 ? wsite_bar : NULL, xb, vb,
                            &st_bar, &gb->param.mass_damping);

  // the back face's internal forces on the site's body
  if (g->site_slot >= 0) {
    for (int i = 0; i < gm->nfixed; i++) {
      int a = gm->fixed_id[i];
      dtac_wrench_add_adj(s->fint + 3 * a, x + 3 * a, st->pos, wsite_bar, s->fbar + 3 * a, NULL,
                     xb + 3 * a, st_bar.pos);
    }
  }

  // internal forces
  dtac_gel_internal_force_adj(gm, x, v, s->fbar, xb, vb, ma);

  // the site's and the colliders' frames at this substep
  site_frame_adj(g, cur, t, &st_bar, cur_bar, gb, site_lbar);
  for (int c = 0; c < ncol; c++) {
    int b = g->col_slot ? g->col_slot[c] : -1;
    dtac_frame cbf;
    memcpy(&cbf, s->col_bar + c, sizeof(cbf));
    if (b >= 0) {
      dtac_frame_on_body_adj(cur + b, s->col_local + 12 * c, s->col_local + 12 * c + 3, &cbf,
                        cur_bar + b, col_lbar + 12 * c, col_lbar + 12 * c + 3);
    } else {
      dtac_frame f0, f0b;
      memset(&f0b, 0, sizeof(f0b));
      memcpy(f0.pos, g->col[c].pos, sizeof(f0.pos));
      memcpy(f0.mat, g->col[c].mat, sizeof(f0.mat));
      memcpy(f0.vel, g->col[c].vel, sizeof(f0.vel));
      memcpy(f0.angvel, g->col[c].angvel, sizeof(f0.angvel));
      dtac_frame_at_adj(&f0, t, cbf.pos, cbf.mat, &f0b);
      for (int k = 0; k < 3; k++) {
        f0b.vel[k] += cbf.vel[k];
        f0b.angvel[k] += cbf.angvel[k];
      }
      frame_add((dtac_frame*)(gb->col + c), &f0b);
    }
  }
}

// the back face placed with the site at time t (dtac_gel_place_back) in reverse: the fixed
// nodes' cotangents go to the site's frame and are cleared
static void place_back_adj(const dtac_gel_step* g, const dtac_frame* cur, double t,
                           dtac_frame* cur_bar, dtac_gel_step_bar* gb, double* site_lbar) {
  const dtac_gel_model* gm = g->gm;
  dtac_state_layout L = dtac_gel_state_layout(gm);
  double* xb = gb->state + L.x;
  double* vb = gb->state + L.v;
  dtac_frame sf, sfb;
  memset(&sfb, 0, sizeof(sfb));
  dtac_site_frame(g, cur, t, &sf);
  for (int i = 0; i < gm->nfixed; i++) {
    int a = gm->fixed_id[i];
    double r[3], t1[3], t2[3], rb[3];
    dtac_mulmv3(r, sf.mat, gm->X + 3 * a);
    // x = pos + r, v = vel + angvel x r
    dtac_cross3(t1, r, vb + 3 * a);
    dtac_cross3(t2, vb + 3 * a, sf.angvel);
    for (int k = 0; k < 3; k++) {
      sfb.pos[k] += xb[3 * a + k];
      sfb.vel[k] += vb[3 * a + k];
      sfb.angvel[k] += t1[k];
      rb[k] = xb[3 * a + k] + t2[k];
      xb[3 * a + k] = vb[3 * a + k] = 0;
    }
    for (int p = 0; p < 3; p++) {
      for (int q = 0; q < 3; q++) sfb.mat[3 * p + q] += rb[p] * gm->X[3 * a + q];
    }
  }
  site_frame_adj(g, cur, t, &sfb, cur_bar, gb, site_lbar);
}

// ---- the joint step in reverse
// ------------------------------------------------------------------

// doubles of work one row of the reverse pass accumulates in: the bodies' frame, dP and dQ
// cotangents, and per gel its site's and colliders' local poses and material constants
static size_t row_work(const dtac_gel_step* gels, int ngel, int nbody) {
  size_t n = 30 * (size_t)nbody;
  for (int i = 0; i < ngel; i++) n += 18 + 12 * (size_t)gels[i].s->maxcol;
  return n;
}

size_t dtac_gels_adj_work_size(const dtac_gel_step* gels, int ngel, int nbody, int nrow) {
  if (nbody > DTAC_MAX_BODY) nbody = DTAC_MAX_BODY;
  return (size_t)nrow * row_work(gels, ngel, nbody);
}

void dtac_gels_advance_adj(dtac_gel_step* gels, int ngel, const dtac_body* bodies, int nbody,
                           const double gravity[3], double h, const double* tape,
                           dtac_gel_step_bar* gb, dtac_body_bar* bb) {
  double* work = (double*)malloc(sizeof(double) * dtac_gels_adj_work_size(gels, ngel, nbody, 1));
  if (!work) return;
  dtac_gels_advance_adj_rows(gels, ngel, bodies, nbody, gravity, h, tape, 1, gb, bb, work);
  free(work);
}

void dtac_gels_advance_adj_rows(dtac_gel_step* gels, int ngel, const dtac_body* bodies, int nbody,
                                const double gravity[3], double h, const double* tape, int nrow,
                                dtac_gel_step_bar* gb, dtac_body_bar* bb, double* work) {
  if (nbody > DTAC_MAX_BODY) nbody = DTAC_MAX_BODY;
  int nsub = (int)tape[0];
  double dt = h / nsub;
  size_t per_sub = 18 * (size_t)nbody;
  for (int i = 0; i < ngel; i++) {
    per_sub += dtac_gel_state_layout(gels[i].gm).size;
    if (gels[i].ncol > gels[i].s->maxcol) gels[i].ncol = gels[i].s->maxcol;
  }
  dtac_gels_locals(gels, ngel, bodies);

  // each row's accumulators: cur_bar (nbody frames), dPb, dQb (6 nbody each), then per gel
  // site_lbar (12), material (6), col_lbar (12 maxcol)
  size_t rw = row_work(gels, ngel, nbody);
  memset(work, 0, sizeof(double) * rw * nrow);
  for (int r = 0; r < nrow; r++) {
    double* w = work + rw * r;
    for (int b = 0; b < nbody; b++) {
      memcpy(w + 18 * nbody + 6 * b, bb[r * nbody + b].dP, sizeof(double) * 6);
      memcpy(w + 24 * nbody + 6 * b, bb[r * nbody + b].dQ, sizeof(double) * 6);
    }
  }
#define ROW_CUR(r) ((dtac_frame*)(work + rw * (r)))
#define ROW_DP(r) (work + rw * (r) + 18 * nbody)
#define ROW_DQ(r) (work + rw * (r) + 24 * nbody)
  // a gel's accumulators in row r
  double* gacc[64];
  if (ngel > 64) ngel = 64;
  {
    size_t off = 30 * (size_t)nbody;
    for (int i = 0; i < ngel; i++) {
      gacc[i] = work + off;  // + rw * r for row r
      off += 18 + 12 * (size_t)gels[i].s->maxcol;
    }
  }
#define ROW_SITE(r, i) (gacc[i] + rw * (r))
#define ROW_MA(r, i) ((dtac_material_adj*)(gacc[i] + rw * (r) + 12))
#define ROW_COL(r, i) (gacc[i] + rw * (r) + 18)

  for (int sub = nsub - 1; sub >= 0; sub--) {
    double t = sub * dt;
    const double* rec = tape + 1 + per_sub * sub;
    const dtac_frame* cur = (const dtac_frame*)(rec + per_sub - 18 * (size_t)nbody);

    // recompute the substep, keeping its intermediates (each gel in its own scratch)
    double wb[DTAC_MAX_BODY * 6];
    memset(wb, 0, sizeof(double) * 6 * nbody);
    const double* gs = rec;
    for (int i = 0; i < ngel; i++) {
      dtac_gel_step g = gels[i];
      dtac_state_layout L = dtac_gel_state_layout(g.gm);
      memcpy(g.s->state_tmp, gs, sizeof(double) * L.size);
      g.state = g.s->state_tmp;
      g.s->rec = 1;
      dtac_gel_substep(&g, cur, t, dt, gravity, nbody ? wb : NULL);
      g.s->rec = 0;
      gs += L.size;
    }
    dtac_frame after[DTAC_MAX_BODY];
    for (int b = 0; b < nbody; b++) {
      after[b] = cur[b];
      dtac_body_substep(bodies + b, after + b, NULL, NULL, wb + 6 * b, dt);
    }

    // reverse, row by row: back faces, bodies, gels
    for (int r = 0; r < nrow; r++) {
      dtac_frame* cur_bar = ROW_CUR(r);
      for (int i = ngel - 1; i >= 0; i--) {
        place_back_adj(gels + i, after, t + dt, cur_bar, gb + r * ngel + i, ROW_SITE(r, i));
      }
      double wb_bar[DTAC_MAX_BODY * 6];
      for (int b = 0; b < nbody; b++) {
        dtac_body_substep_adj(bodies + b, cur + b, wb + 6 * b, dt, cur_bar + b, ROW_DP(r) + 6 * b,
                         ROW_DQ(r) + 6 * b, wb_bar + 6 * b, bb + r * nbody + b);
      }
      gs = rec;
      for (int i = 0; i < ngel; i++) gs += dtac_gel_state_layout(gels[i].gm).size;
      for (int i = ngel - 1; i >= 0; i--) {
        dtac_state_layout L = dtac_gel_state_layout(gels[i].gm);
        gs -= L.size;
        substep_adj(gels + i, cur, t, dt, gs + L.x, gs + L.v, gs + L.anchor, nbody ? wb_bar : NULL,
                    cur_bar, gb + r * ngel + i, ROW_MA(r, i), ROW_SITE(r, i), ROW_COL(r, i));
      }
    }
  }

  for (int r = 0; r < nrow; r++) {
    dtac_frame* cur_bar = ROW_CUR(r);
    dtac_gel_step_bar* gbr = gb + r * ngel;
    // sites' and colliders' poses in their bodies' frames came from the step-start frames
    for (int i = 0; i < ngel; i++) {
      dtac_gel_step* g = gels + i;
      double* sl = ROW_SITE(r, i);
      double* cl = ROW_COL(r, i);
      if (g->site_slot >= 0) {
        local_pose_adj(&bodies[g->site_slot].frame, g->site->pos, g->site->mat, sl, sl + 3,
                       cur_bar + g->site_slot, gbr[i].site.pos, gbr[i].site.mat);
      }
      for (int c = 0; c < g->ncol; c++) {
        int b = g->col_slot ? g->col_slot[c] : -1;
        if (b < 0) continue;
        local_pose_adj(&bodies[b].frame, g->col[c].pos, g->col[c].mat, cl + 12 * c, cl + 12 * c + 3,
                       cur_bar + b, gbr[i].col[c].pos, gbr[i].col[c].mat);
      }
    }
    for (int b = 0; b < nbody; b++) frame_add(&bb[r * nbody + b].frame, cur_bar + b);
    // material constants to the gel's parameters
    for (int i = 0; i < ngel; i++) {
      const dtac_gel_model* gm = gels[i].gm;
      dtac_material_set_adj(gm->def.young, gm->def.poisson, ROW_MA(r, i), &gbr[i].param.young,
                            &gbr[i].param.poisson, &gbr[i].param.damping);
    }
  }
#undef ROW_CUR
#undef ROW_DP
#undef ROW_DQ
#undef ROW_SITE
#undef ROW_MA
#undef ROW_COL
}
