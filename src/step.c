// step.c: the gel's step, read top to bottom: internal forces, gravity, contact, explicit
// substeps with the back face moving with its site.
#include <math.h>
#include <string.h>

#include "fem_loops.h"
#include "gel.h"
#include "gel_dev.h"

void dtac_gel_state_rest(const dtac_gel_model* gm, const dtac_frame* site, double* state) {
  dtac_state_layout L = dtac_gel_state_layout(gm);
  for (int a = 0; a < gm->nnode; a++) {
    double* x = state + L.x + 3 * a;
    dtac_mulmv3(x, site->mat, gm->X + 3 * a);
    for (int k = 0; k < 3; k++) {
      x[k] += site->pos[k];
      state[L.v + 3 * a + k] = 0;
    }
  }
  for (int s = 0; s < gm->nsurf; s++) {
    double* an = state + L.anchor + 4 * s;
    an[0] = -1;
    an[1] = an[2] = an[3] = 0;
  }
  state[L.placed] = 1;
}

void dtac_gel_state_rigid(const dtac_gel_model* gm, const dtac_frame* site, double* state) {
  dtac_gel_state_rest(gm, site, state);
  dtac_state_layout L = dtac_gel_state_layout(gm);
  for (int a = 0; a < gm->nnode; a++) {
    double r[3], w[3];
    dtac_sub3(r, state + L.x + 3 * a, site->pos);
    dtac_cross3(w, site->angvel, r);
    for (int k = 0; k < 3; k++) state[L.v + 3 * a + k] = site->vel[k] + w[k];
  }
}

double dtac_gel_tet_forces(const dtac_gel_model* gm, dtac_gel_scratch* s, const double* x,
                           const double* v) {
  dtac_fem_tet_forces_cpu(gm->ntet, gm->tet, gm->Dm_inv, gm->vol, &gm->mat, x, v, s->tet_force,
                          s->tet_J);
  double minJ = INFINITY;
  for (int t = 0; t < gm->ntet; t++) minJ = fmin(minJ, s->tet_J[t]);
  return minJ;
}

double dtac_gel_internal_force(const dtac_gel_model* gm, dtac_gel_scratch* s, const double* x,
                               const double* v) {
  double minJ = dtac_gel_tet_forces(gm, s, x, v);
  dtac_fem_gather_cpu(gm->nnode, gm->node_tetadr, gm->node_tet, s->tet_force, s->force);
  return minJ;
}

void dtac_gel_back_force(const dtac_gel_model* gm, dtac_gel_scratch* s, const double* x,
                         const double* v) {
  for (int i = 0; i < gm->nback_tet; i++) {
    int t = gm->back_tet[i];
    const int* tv = gm->tet + 4 * t;
    s->tet_J[t] =
        dtac_tet_force(&gm->mat, x + 3 * tv[0], x + 3 * tv[1], x + 3 * tv[2], x + 3 * tv[3],
                       v + 3 * tv[0], v + 3 * tv[1], v + 3 * tv[2], v + 3 * tv[3],
                       gm->Dm_inv + 9 * t, gm->vol[t], s->tet_force + 12 * t);
  }
  for (int i = 0; i < gm->nfixed; i++) {
    dtac_node_gather(gm->fixed_id[i], gm->node_tetadr, gm->node_tet, s->tet_force, s->force);
  }
}

int dtac_gel_contact(const dtac_gel_model* gm, const double* x, const double* v,
                     const double* anchor, double* anchor_out, const dtac_collider* col, int ncol,
                     double* node_force, double* col_ft) {
  return dtac_gel_contact_ex(gm, x, v, anchor, anchor_out, col, ncol, node_force, col_ft, NULL,
                             NULL);
}

// adds the reaction of node force f at xa to collider c's wrench (about its origin)
static void react(double* col_ft, const dtac_collider* c, int ci, const double xa[3],
                  const double f[3]) {
  if (!col_ft) return;
  double r[3], t[3];
  dtac_sub3(r, xa, c->pos);
  dtac_cross3(t, r, f);
  for (int k = 0; k < 3; k++) {
    col_ft[6 * ci + k] -= f[k];
    col_ft[6 * ci + 3 + k] -= t[k];
  }
}

int dtac_gel_contact_ex(const dtac_gel_model* gm, const double* x, const double* v,
                        const double* anchor, double* anchor_out, const dtac_collider* col,
                        int ncol, double* node_force, double* col_ft, double* imp, int* nover) {
  int ncontact = 0;
  for (int s = 0; s < gm->nsurf; s++) {
    int a = gm->surf[s];
    double fa[3] = {0, 0, 0};
    if (node_force) memcpy(fa, node_force + 3 * a, sizeof(fa));
    dtac_node_react r;
    ncontact += dtac_contact_node(gm->surf_param + s, x + 3 * a, v + 3 * a, anchor + 4 * s,
                                  anchor_out ? anchor_out + 4 * s : NULL, col, ncol, fa,
                                  imp ? imp + DTAC_IMP_SIZE * s : NULL, &r);
    if (node_force) memcpy(node_force + 3 * a, fa, sizeof(fa));
    for (int i = 0; i < r.n; i++) react(col_ft, col + r.c[i], r.c[i], x + 3 * a, r.f[i]);
    if (nover) *nover += r.over;
  }
  return ncontact;
}

void dtac_gel_mass_damping(const dtac_gel_model* gm, const double* x, const double* v,
                           const double pos[3], const dtac_frame* frame, double* force,
                           double wrench[6]) {
  if (gm->alpha <= 0) return;
  for (int a = 0; a < gm->nnode; a++) {
    if (gm->inv_mass[a] == 0) continue;
    double r[3], f[3];
    dtac_mass_damping_node(gm->alpha, gm->mass[a], x + 3 * a, v + 3 * a, pos, frame, f);
    if (force) {
      for (int k = 0; k < 3; k++) force[3 * a + k] += f[k];
    }
    if (wrench) {
      double t[3];
      dtac_sub3(r, x + 3 * a, pos);
      dtac_cross3(t, r, f);
      for (int k = 0; k < 3; k++) {
        wrench[k] -= f[k];
        wrench[3 + k] -= t[k];
      }
    }
  }
}

void dtac_gel_advance(const dtac_gel_model* gm, dtac_gel_scratch* s, double* state,
                      const dtac_frame* site, const dtac_collider* col, int ncol,
                      const double gravity[3], double h, int nsub, dtac_step_report* rep) {
  dtac_gel_advance_coupled(gm, s, state, site, -1, NULL, 0, col, NULL, ncol, gravity, h, nsub, rep);
}

void dtac_gel_advance_coupled(const dtac_gel_model* gm, dtac_gel_scratch* s, double* state,
                              const dtac_frame* site, int site_slot, dtac_body* bodies, int nbody,
                              const dtac_collider* col, const int* col_slot, int ncol,
                              const double gravity[3], double h, int nsub, dtac_step_report* rep) {
  dtac_gel_step g;
  memset(&g, 0, sizeof(g));
  g.gm = gm;
  g.s = s;
  g.state = state;
  g.site = site;
  g.site_slot = site_slot;
  g.col = col;
  g.col_slot = col_slot;
  g.ncol = ncol;
  g.nsub = nsub;
  dtac_gels_advance(&g, 1, bodies, nbody, gravity, h);
  if (rep) *rep = g.rep;
}

void dtac_site_frame(const dtac_gel_step* g, const dtac_frame* cur, double t, dtac_frame* st) {
  dtac_site_at(g->site, g->site_slot, &g->site_b, cur, t, st);
}

// the colliders (col_t, ncol) and the site (st) of gel g at substep time t: on their bodies'
// current frames, or moved at constant velocity from the step start
void dtac_substep_frames(const dtac_gel_step* g, const dtac_frame* cur, double t,
                         dtac_collider* col_t, dtac_frame* st) {
  for (int c = 0; c < g->ncol; c++) {
    int b = g->col_slot ? g->col_slot[c] : -1;
    dtac_collider_at(g->col + c, b, g->s->col_local + 12 * c, cur, t, col_t + c);
  }
  dtac_site_frame(g, cur, t, st);
}

// gel g as the per-node substep reads it (kernels/gel_dev.h), on its host arrays, with its site
// at st in this substep
static void gel_view(const dtac_gel_step* g, const dtac_frame* st, dtac_dev_gel* v) {
  const dtac_gel_model* gm = g->gm;
  dtac_gel_scratch* s = g->s;
  memset(v, 0, sizeof(*v));
  v->nnode = gm->nnode;
  v->ntet = gm->ntet;
  v->nsurf = gm->nsurf;
  v->nfixed = gm->nfixed;
  v->mass = gm->mass;
  v->inv_mass = gm->inv_mass;
  v->lock = gm->lock;
  v->node_tetadr = gm->node_tetadr;
  v->node_tet = gm->node_tet;
  v->node_surf = gm->node_surf;
  v->surf = gm->surf;
  v->surf_param = gm->surf_param;
  v->mat = gm->mat;
  v->alpha = gm->alpha;
  v->state = g->state;
  v->tet_force = s->tet_force;
  v->tet_J = s->tet_J;
  v->react = s->react;
  v->react_t = s->react_t;
  v->site_slot = g->site_slot;
  v->ncol = g->ncol;
  v->col_t = s->col_t;
  v->st = *st;
}

// one gel's substep at time t: forces, implicit contact, integration of free nodes, node after
// node (dtac_node_substep, as the device kernel does it); the gel's wrench on each body slot is
// added to wb (about the slots' current origins)
void dtac_gel_substep(dtac_gel_step* g, const dtac_frame* cur, double t, double dt,
                      const double gravity[3], double* wb) {
  const dtac_gel_model* gm = g->gm;
  dtac_gel_scratch* s = g->s;
  int ncol = g->ncol;

  // colliders and the site at the start of this substep
  dtac_frame st;
  dtac_substep_frames(g, cur, t, s->col_t, &st);

  // element forces (the first substep of a step keeps those of the substep count's pass: the
  // same state)
  dtac_state_layout L = dtac_gel_state_layout(gm);  // x, v, anchors, as the view takes them
  if (!g->fresh || s->rec) {
    g->rep.min_J =
        fmin(g->rep.min_J, dtac_gel_tet_forces(gm, s, g->state + L.x, g->state + L.v));
  }
  g->fresh = 0;

  // each node: forces, velocity, implicit contact, position; wsite: the gel's wrench on the
  // site's body about st.pos (0..5), contact nodes (6), colliders left out (7)
  dtac_dev_gel view;
  gel_view(g, &st, &view);
  dtac_node_rec rec = {s->fint, s->imp, s->vimp};
  double wsite[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int a = 0; a < gm->nnode; a++) {
    wsite[6] += dtac_node_substep(&view, a, gravity, dt, wsite, s->rec ? &rec : NULL);
  }
  g->rep.ncontact = (int)wsite[6];
  g->rep.nover += (int)wsite[7];
  for (int c = 0; c < ncol; c++) {
    for (int k = 0; k < 6; k++) s->col_ft[6 * c + k] = 0;
    dtac_collider_reaction(&view, c, 0, 1, s->col_ft + 6 * c);
  }
  if (s->rec) {
    s->st = st;
    memcpy(s->wsite, wsite, sizeof(s->wsite));
  }

  // this gel's wrench on the bodies
  if (wb) {
    for (int c = 0; c < ncol; c++) {
      int b = g->col_slot ? g->col_slot[c] : -1;
      if (b < 0) continue;
      dtac_wrench_add(wb + 6 * b, s->col_ft + 6 * c, s->col_ft + 6 * c + 3, s->col_t[c].pos,
                      cur[b].pos);
    }
    if (g->site_slot >= 0) {
      dtac_wrench_add(wb + 6 * g->site_slot, wsite, wsite + 3, st.pos, cur[g->site_slot].pos);
    }
  }
}

// the back face rigidly with the site at time t
void dtac_gel_place_back(dtac_gel_step* g, const dtac_frame* cur, double t) {
  const dtac_gel_model* gm = g->gm;
  dtac_state_layout L = dtac_gel_state_layout(gm);
  double* x = g->state + L.x;
  double* v = g->state + L.v;
  dtac_frame sf;
  dtac_site_frame(g, cur, t, &sf);
  for (int i = 0; i < gm->nfixed; i++) {
    int a = gm->fixed_id[i];
    dtac_place_node(&sf, gm->X + 3 * a, x + 3 * a, v + 3 * a);
  }
}

void dtac_gels_locals(dtac_gel_step* gels, int ngel, const dtac_body* bodies) {
  for (int i = 0; i < ngel; i++) {
    dtac_gel_step* g = gels + i;
    if (g->site_slot >= 0) {
      const dtac_frame* B = &bodies[g->site_slot].frame;
      double r[3];
      dtac_sub3(r, g->site->pos, B->pos);
      dtac_mulmTv3(g->site_b.pos, B->mat, r);
      dtac_mulT33(g->site_b.mat, B->mat, g->site->mat);
    }
    for (int c = 0; c < g->ncol; c++) {
      int b = g->col_slot ? g->col_slot[c] : -1;
      if (b < 0) continue;
      const dtac_frame* B = &bodies[b].frame;
      double r[3];
      dtac_sub3(r, g->col[c].pos, B->pos);
      dtac_mulmTv3(g->s->col_local + 12 * c, B->mat, r);
      dtac_mulT33(g->s->col_local + 12 * c + 3, B->mat, g->col[c].mat);
    }
  }
}

// doubles of tape one substep takes: every gel's state and every body's frame
static size_t tape_substep(const dtac_gel_step* gels, int ngel, int nbody) {
  size_t n = 18 * (size_t)nbody;
  for (int i = 0; i < ngel; i++) n += dtac_gel_state_layout(gels[i].gm).size;
  return n;
}

size_t dtac_gels_tape_size(const dtac_gel_step* gels, int ngel, int nbody) {
  int nsub = 1;
  for (int i = 0; i < ngel; i++) nsub = gels[i].nsub > nsub ? gels[i].nsub : nsub;
  if (nbody > DTAC_MAX_BODY) nbody = DTAC_MAX_BODY;
  return dtac_tape_size(nsub, tape_substep(gels, ngel, 0), nbody);
}

void dtac_gels_advance(dtac_gel_step* gels, int ngel, dtac_body* bodies, int nbody,
                       const double gravity[3], double h) {
  dtac_gels_advance_tape(gels, ngel, bodies, nbody, gravity, h, NULL);
}

void dtac_gels_advance_tape(dtac_gel_step* gels, int ngel, dtac_body* bodies, int nbody,
                            const double gravity[3], double h, double* tape) {
  if (nbody > DTAC_MAX_BODY) nbody = DTAC_MAX_BODY;

  // substeps: the finest any gel needs, more when elements are compressed or inverted
  // (dtac_substep_count)
  int nsub = 1;
  for (int i = 0; i < ngel; i++) {
    dtac_gel_step* g = gels + i;
    dtac_state_layout L = dtac_gel_state_layout(g->gm);
    double minJ0 = dtac_gel_tet_forces(g->gm, g->s, g->state + L.x, g->state + L.v);
    int n = dtac_substep_count(g->nsub, minJ0);
    if (n > nsub) nsub = n;
    g->rep.min_J = minJ0;
    g->rep.nover = 0;
    g->fresh = 1;
    if (g->ncol > g->s->maxcol) g->ncol = g->s->maxcol;
  }
  double dt = h / nsub;

  // bodies start at their step-start frames; colliders and sites are fixed in them
  for (int b = 0; b < nbody; b++) {
    for (int k = 0; k < 6; k++) bodies[b].dP[k] = bodies[b].dQ[k] = 0;
  }
  dtac_gels_locals(gels, ngel, bodies);
  dtac_frame cur[DTAC_MAX_BODY];
  for (int b = 0; b < nbody; b++) cur[b] = bodies[b].frame;

  size_t per_sub = tape_substep(gels, ngel, nbody);
  if (tape) tape[0] = nsub;
  for (int sub = 0; sub < nsub; sub++) {
    double t = sub * dt;
    if (tape) {
      double* rec = tape + 1 + per_sub * sub;
      for (int i = 0; i < ngel; i++) {
        int n = dtac_gel_state_layout(gels[i].gm).size;
        memcpy(rec, gels[i].state, sizeof(double) * n);
        rec += n;
      }
      memcpy(rec, cur, sizeof(dtac_frame) * nbody);
    }
    double wb[DTAC_MAX_BODY * 6];
    memset(wb, 0, sizeof(double) * 6 * nbody);
    for (int i = 0; i < ngel; i++)
      dtac_gel_substep(gels + i, cur, t, dt, gravity, nbody ? wb : NULL);

    // bodies: the gels' wrench beyond what the rigid step applied changes their velocity now
    for (int b = 0; b < nbody; b++) {
      dtac_body_substep(bodies + b, cur + b, bodies[b].dP, bodies[b].dQ, wb + 6 * b, dt);
    }
    for (int i = 0; i < ngel; i++) dtac_gel_place_back(gels + i, cur, t + dt);
  }

  for (int i = 0; i < ngel; i++) {
    dtac_gel_step* g = gels + i;
    g->rep.nsub = nsub;
    g->rep.nonfinite = 0;
    for (int k = 0; k < 6 * g->gm->nnode; k++) {
      if (!isfinite(g->state[k])) {
        g->rep.nonfinite = 1;
        break;
      }
    }
  }
}

double dtac_gel_kinetic(const dtac_gel_model* gm, const double* v) {
  double e = 0;
  for (int a = 0; a < gm->nnode; a++) e += 0.5 * gm->mass[a] * dtac_dot3(v + 3 * a, v + 3 * a);
  return e;
}

double dtac_gel_strain_energy(const dtac_gel_model* gm, const double* x) {
  double e = 0;
  for (int t = 0; t < gm->ntet; t++) {
    const int* tv = gm->tet + 4 * t;
    double F[9];
    dtac_tet_defgrad(x + 3 * tv[0], x + 3 * tv[1], x + 3 * tv[2], x + 3 * tv[3], gm->Dm_inv + 9 * t,
                     F);
    e += gm->vol[t] * dtac_snh_energy(&gm->mat, F);
  }
  return e;
}
