// passive_adj.c: the reverse of the force evaluation (passive.c): its VJP in the gel state and
// parameters, the function of the rigid state whose derivative the tape differences, and the
// contact forces' tangent in the colliders' frames (the tactile sensors' rows of C).
#include <string.h>

#include "elastomer.h"

void dtac_elastomer_passive_adj(const mjModel* m, mjData* d, dtac_elastomer* e,
                                const mjtNum* qfrc_bar, const mjtNum* wrench_bar,
                                const double* cf_bar, double* state_bar, dtac_gel_param_bar* pb) {
  const double* state = d->plugin_state + m->plugin_stateadr[e->instance];
  const double* x = state + e->L.x;
  const double* v = state + e->L.v;
  double* xb = state_bar + e->L.x;
  double* vb = state_bar + e->L.v;
  double* ab = state_bar + e->L.anchor;
  dtac_gel_model* gm = &e->model;
  dtac_gel_scratch* s = &e->scratch;
  int nv = m->nv;
  mjtNum* jp = e->jac;
  mjtNum* jr = e->jac + 3 * nv;
  memset(&s->ma, 0, sizeof(s->ma));

  // contact: each collider's reaction wrench reaches qfrc through J^T at its origin (the
  // colliders as compute gathered them)
  dtac_elastomer_colliders(m, d, e, 0);
  memset(s->col_ft_bar, 0, sizeof(double) * 6 * e->ncol);
  memset(s->col_bar, 0, sizeof(dtac_collider_bar) * e->ncol);
  for (int c = 0; c < e->ncol; c++) {
    const dtac_collider* col = e->col + c;
    if (col->body <= 0) continue;
    double* ftb = s->col_ft_bar + 6 * c;
    mj_jac(m, d, jp, jr, col->pos, col->body);
    for (int k = 0; k < 3; k++) {
      ftb[k] = mju_dot(jp + nv * k, qfrc_bar, nv);
      ftb[3 + k] = mju_dot(jr + nv * k, qfrc_bar, nv);
    }
    if (wrench_bar) {
      // body_wrench += (ft, t about col pos) moved to xpos: ft_bar += w_f + w_t x r, t_bar += w_t
      const mjtNum* wb = wrench_bar + 6 * col->body;
      double r[3], t[3];
      dtac_sub3(r, col->pos, d->xpos + 3 * col->body);
      dtac_cross3(t, wb + 3, r);
      for (int k = 0; k < 3; k++) {
        ftb[k] += wb[k] + t[k];
        ftb[3 + k] += wb[3 + k];
      }
    }
  }
  double* fbar = s->fbar;
  for (int i = 0; i < 3 * gm->nnode; i++) fbar[i] = cf_bar ? cf_bar[i] : 0;
  for (int sn = 0; sn < gm->nsurf; sn++) {
    dtac_gel_contact_node_adj(gm, sn, e->col, e->ncol, x, v, state + e->L.anchor, 0, 0, fbar,
                              s->col_ft_bar, NULL, xb, vb, ab, s->col_bar, pb);
  }
  memcpy(e->col_bar, s->col_bar, sizeof(dtac_collider_bar) * e->ncol);
  memset(&e->psite_bar, 0, sizeof(e->psite_bar));
  memset(e->pFT, 0, sizeof(e->pFT));

  // the back face and the damping relative to the body: (F, T about the site) on the body
  if (e->body > 0) {
    const mjtNum* sp = d->site_xpos + 3 * e->site;
    double Fb[3], Tb[3];
    mj_jac(m, d, jp, jr, sp, e->body);
    for (int k = 0; k < 3; k++) {
      Fb[k] = mju_dot(jp + nv * k, qfrc_bar, nv);
      Tb[k] = mju_dot(jr + nv * k, qfrc_bar, nv);
    }
    if (wrench_bar) {
      const mjtNum* wb = wrench_bar + 6 * e->body;
      double r[3], t[3];
      dtac_sub3(r, sp, d->xpos + 3 * e->body);
      dtac_cross3(t, wb + 3, r);
      for (int k = 0; k < 3; k++) {
        Fb[k] += wb[k] + t[k];
        Tb[k] += wb[3 + k];
      }
    }
    // F = sum of the back face's internal forces (+ damping), T = sum of r x f about the site
    dtac_gel_back_force(gm, s, x, v);
    memset(fbar, 0, sizeof(double) * 3 * gm->nnode);
    for (int i = 0; i < gm->nfixed; i++) {
      int a = gm->fixed_id[i];
      const double* f = s->force + 3 * a;
      double r[3], t1[3], t2[3], t3[3];
      dtac_sub3(r, x + 3 * a, sp);
      dtac_cross3(t1, Tb, r);
      dtac_cross3(t2, f, Tb);
      dtac_cross3(t3, r, f);
      for (int k = 0; k < 3; k++) {
        fbar[3 * a + k] = Fb[k] + t1[k];
        xb[3 * a + k] += t2[k];
        e->psite_bar.pos[k] -= t2[k];  // r = x - site
        e->pFT[k] += f[k];
        e->pFT[3 + k] += t3[k];
      }
    }
    dtac_gel_internal_force_adj(gm, x, v, fbar, xb, vb, &s->ma);
    if (gm->alpha > 0) {
      dtac_frame site, site_bar;
      dtac_site_pose(d, e->site, &site);
      mjtNum vel[6];
      mj_objectVelocity(m, d, mjOBJ_SITE, e->site, vel, 0);
      memcpy(site.angvel, vel, sizeof(site.angvel));
      memcpy(site.vel, vel + 3, sizeof(site.vel));
      memset(&site_bar, 0, sizeof(site_bar));
      double wbar[6] = {Fb[0], Fb[1], Fb[2], Tb[0], Tb[1], Tb[2]};
      dtac_gel_mass_damping_adj(gm, x, v, &site, NULL, wbar, xb, vb, &site_bar, &pb->mass_damping);
      for (int k = 0; k < 3; k++) {
        e->psite_bar.pos[k] += site_bar.pos[k];
        e->psite_bar.vel[k] += site_bar.vel[k];
        e->psite_bar.angvel[k] += site_bar.angvel[k];
      }
      double wr[6] = {0, 0, 0, 0, 0, 0};
      dtac_gel_mass_damping(gm, x, v, sp, &site, NULL, wr);
      for (int k = 0; k < 6; k++) e->pFT[k] += wr[k];
    }
  }
  dtac_material_set_adj(gm->def.young, gm->def.poisson, &s->ma, &pb->young, &pb->poisson,
                        &pb->damping);
}

mjtNum dtac_elastomer_rigid_dot(const mjModel* m, mjData* d, dtac_elastomer* e,
                                const mjtNum* qfrc_bar, const mjtNum* wrench_bar) {
  int nv = m->nv;
  mjtNum* q = e->qtmp;  // scratch: the held wrenches mapped to qfrc
  mju_zero(q, nv);
  mjtNum s = 0;
  // colliders as compute gathered them (the same list), at the current kinematics
  dtac_elastomer_colliders(m, d, e, 1);
  for (int c = 0; c < e->ncol; c++) {
    const dtac_collider* col = e->col + c;
    const dtac_collider_bar* cb = e->col_bar + c;
    for (int k = 0; k < 3; k++) {
      s += col->pos[k] * cb->pos[k] + col->vel[k] * cb->vel[k] + col->angvel[k] * cb->angvel[k];
    }
    for (int k = 0; k < 9; k++) s += col->mat[k] * cb->mat[k];
    if (col->body <= 0) continue;
    const double* ft = e->col_ft + 6 * c;
    mj_applyFT(m, d, ft, ft + 3, col->pos, col->body, q);
    if (wrench_bar) {
      mjtNum w[6] = {0, 0, 0, 0, 0, 0};
      dtac_wrench_add(w, ft, ft + 3, col->pos, d->xpos + 3 * col->body);
      s += mju_dot(w, wrench_bar + 6 * col->body, 6);
    }
  }
  // the site: the back face's and the damping's wrench about it, its frame for the damping
  if (e->body > 0) {
    const mjtNum* sp = d->site_xpos + 3 * e->site;
    mjtNum vel[6];
    mj_objectVelocity(m, d, mjOBJ_SITE, e->site, vel, 0);
    for (int k = 0; k < 3; k++) {
      s += sp[k] * e->psite_bar.pos[k] + vel[3 + k] * e->psite_bar.vel[k] +
           vel[k] * e->psite_bar.angvel[k];
    }
    mj_applyFT(m, d, e->pFT, e->pFT + 3, sp, e->body, q);
    if (wrench_bar) {
      mjtNum w[6] = {0, 0, 0, 0, 0, 0};
      dtac_wrench_add(w, e->pFT, e->pFT + 3, sp, d->xpos + 3 * e->body);
      s += mju_dot(w, wrench_bar + 6 * e->body, 6);
    }
  }
  return s + mju_dot(q, qfrc_bar, nv);
}

int dtac_elastomer_collider_frames(const mjModel* m, mjData* d, dtac_elastomer* e, double* frames) {
  dtac_elastomer_colliders(m, d, e, 1);
  for (int c = 0; c < e->ncol; c++) {
    const dtac_collider* col = e->col + c;
    double* f = frames + 18 * c;
    memcpy(f, col->pos, sizeof(double) * 3);
    memcpy(f + 3, col->mat, sizeof(double) * 9);
    memcpy(f + 12, col->vel, sizeof(double) * 3);
    memcpy(f + 15, col->angvel, sizeof(double) * 3);
  }
  return e->ncol;
}

void dtac_elastomer_contact_jvp(const mjModel* m, mjData* d, dtac_elastomer* e, const double* dcol,
                                double* df) {
  const double* state = d->plugin_state + m->plugin_stateadr[e->instance];
  const double* x = state + e->L.x;
  const double* v = state + e->L.v;
  dtac_gel_model* gm = &e->model;
  dtac_gel_scratch* s = &e->scratch;
  memset(df, 0, sizeof(double) * 3 * gm->nnode);
  memset(s->fbar, 0, sizeof(double) * 3 * gm->nnode);
  memset(s->col_ft_bar, 0, sizeof(double) * 6 * e->ncol);
  // the node's force row k against the colliders' frames, from the adjoint with a unit bar;
  // the cotangents of x, v and the anchors land in scratch that is not read
  for (int sn = 0; sn < gm->nsurf; sn++) {
    int a = gm->surf[sn];
    for (int k = 0; k < 3; k++) {
      dtac_gel_param_bar pb;
      memset(s->col_bar, 0, sizeof(dtac_collider_bar) * e->ncol);
      s->fbar[3 * a + k] = 1;
      dtac_gel_contact_node_adj(gm, sn, e->col, e->ncol, x, v, state + e->L.anchor, 0, 0, s->fbar,
                                s->col_ft_bar, NULL, s->fint, s->force, s->imp_bar, s->col_bar,
                                &pb);
      s->fbar[3 * a + k] = 0;
      double g = 0;
      for (int c = 0; c < e->ncol; c++) {
        const double* cb = (const double*)(s->col_bar + c);
        for (int q = 0; q < 18; q++) g += cb[q] * dcol[18 * c + q];
      }
      df[3 * a + k] = g;
    }
  }
}
