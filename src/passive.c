// passive.c: the gel's forces on MuJoCo's bodies in the passive stage, a pure function of the gel
// state and d's kinematics: the back face's internal and damping forces on the site's body, and
// the contact reactions on the touched bodies (the gel feels the opposite in its own step).
#include <math.h>
#include <string.h>

#include "elastomer.h"

void dtac_elastomer_colliders(const mjModel* m, mjData* d, dtac_elastomer* e, int fixed) {
  const double* state = d->plugin_state + m->plugin_stateadr[e->instance];
  const double* sz = e->def.gel.size;
  dtac_colliders_gather(&e->geoms, m, d, state + e->L.x, state + e->L.v, e->model.nnode,
                        fmax(sz[0], fmax(sz[1], sz[2])), e->model.def.friction, 0, fixed, e->col,
                        &e->ncol, e->jac);
}

void dtac_elastomer_passive(const mjModel* m, mjData* d, dtac_elastomer* e) {
  dtac_elastomer_ensure_placed(m, d, e);
  dtac_elastomer_check_finite(m, d, e, "found before the force evaluation");
  const double* state = d->plugin_state + m->plugin_stateadr[e->instance];
  const double* x = state + e->L.x;
  const double* v = state + e->L.v;
  dtac_gel_model* gm = &e->model;

  // back face: the elements pull on the nodes the site's body holds (only the elements touching
  // it are evaluated: the gel's step evaluates them all)
  dtac_gel_back_force(gm, &e->scratch, x, v);
  const mjtNum* sp = d->site_xpos + 3 * e->site;
  mjtNum F[3] = {0, 0, 0}, T[3] = {0, 0, 0};
  for (int i = 0; i < gm->nfixed; i++) {
    int a = gm->fixed_id[i];
    const double* f = e->scratch.force + 3 * a;
    double r[3], t[3];
    dtac_sub3(r, x + 3 * a, sp);
    dtac_cross3(t, r, f);
    for (int k = 0; k < 3; k++) {
      F[k] += f[k];
      T[k] += t[k];
    }
  }
  // damping relative to the body: its reaction acts on the body too
  dtac_frame site;
  dtac_site_pose(d, e->site, &site);
  if (gm->alpha > 0) {
    mjtNum vel[6];
    mj_objectVelocity(m, d, mjOBJ_SITE, e->site, vel, 0);
    memcpy(site.angvel, vel, sizeof(site.angvel));
    memcpy(site.vel, vel + 3, sizeof(site.vel));
    double wr[6] = {0, 0, 0, 0, 0, 0};
    dtac_gel_mass_damping(gm, x, v, sp, &site, NULL, wr);
    for (int k = 0; k < 3; k++) {
      F[k] += wr[k];
      T[k] += wr[3 + k];
    }
  }
  memset(e->body_wrench, 0, sizeof(mjtNum) * 6 * m->nbody);
  mju_zero(e->qfrc, m->nv);
  if (e->body > 0) {
    mj_applyFT(m, d, F, T, sp, e->body, e->qfrc);
    dtac_wrench_add(e->body_wrench + 6 * e->body, F, T, sp, d->xpos + 3 * e->body);
  }

  // contact: reactions on the touched bodies; the gel feels the opposite
  dtac_elastomer_colliders(m, d, e, 0);
  memset(e->col_ft, 0, sizeof(double) * 6 * e->ncol);
  memset(e->contact_force, 0, sizeof(double) * 3 * gm->nnode);
  e->ncontact = dtac_gel_contact(gm, x, v, state + e->L.anchor, NULL, e->col, e->ncol,
                                 e->contact_force, e->col_ft);
  memset(e->wrench, 0, sizeof(e->wrench));
  for (int c = 0; c < e->ncol; c++) {
    const double* ft = e->col_ft + 6 * c;
    const dtac_collider* col = e->col + c;
    if (col->body > 0) {
      mj_applyFT(m, d, ft, ft + 3, col->pos, col->body, e->qfrc);
      dtac_wrench_add(e->body_wrench + 6 * col->body, ft, ft + 3, col->pos,
                      d->xpos + 3 * col->body);
    }
    // the gel's wrench about the site: minus the collider's, moved from its origin
    double r[3], t[3];
    dtac_sub3(r, col->pos, sp);
    dtac_cross3(t, r, ft);
    for (int k = 0; k < 3; k++) {
      e->wrench[k] -= ft[k];
      e->wrench[3 + k] -= ft[3 + k] + t[k];
    }
  }
  // forces that are not finite are never handed to MuJoCo: the gel is restarted, its
  // contribution this evaluation is zero
  // (nor a force beyond MuJoCo's own bound on a sane value, mjMAXVAL: a gel that has blown up
  // without overflowing yet)
  int bad = 0;
  for (int i = 0; i < m->nv && !bad; i++) bad = !(fabs(e->qfrc[i]) < mjMAXVAL);
  for (int k = 0; k < 6 && !bad; k++) bad = !(fabs(e->wrench[k]) < mjMAXVAL);
  for (int i = 0; i < 3 * gm->nnode && !bad; i++) bad = !(fabs(e->contact_force[i]) < mjMAXVAL);
  if (bad) {
    mju_zero(e->qfrc, m->nv);
    mju_zero(e->body_wrench, 6 * m->nbody);
    memset(e->wrench, 0, sizeof(e->wrench));
    memset(e->contact_force, 0, sizeof(double) * 3 * gm->nnode);
    e->ncontact = 0;
    dtac_elastomer_restart(m, d, e, "the gel's forces were not finite or above mjMAXVAL, left out");
    return;
  }
  mju_addTo(d->qfrc_passive, e->qfrc, m->nv);
}
