// step.c: the gel's step, read top to bottom: internal forces, gravity, contact, explicit
// substeps with the back face moving with its site.
#include <math.h>
#include <string.h>

#include "fem_loops.h"
#include "gel.h"

void dtac_frame_at(const dtac_frame* f0, double t, double pos[3], double mat[9]) {
  for (int k = 0; k < 3; k++) pos[k] = f0->pos[k] + t * f0->vel[k];
  // rotation by angle |w| t about w (Rodrigues), applied to the initial orientation
  double th = dtac_norm3(f0->angvel) * t;
  if (th < 1e-300) {
    memcpy(mat, f0->mat, sizeof(double) * 9);
    return;
  }
  double a[3];
  for (int k = 0; k < 3; k++) a[k] = f0->angvel[k] * t / th;
  double c = cos(th), s = sin(th), C = 1 - c;
  double R[9] = {c + a[0] * a[0] * C,        a[0] * a[1] * C - a[2] * s, a[0] * a[2] * C + a[1] * s,
                 a[1] * a[0] * C + a[2] * s, c + a[1] * a[1] * C,        a[1] * a[2] * C - a[0] * s,
                 a[2] * a[0] * C - a[1] * s, a[2] * a[1] * C + a[0] * s, c + a[2] * a[2] * C};
  dtac_mul33(mat, R, f0->mat);
}

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

double dtac_gel_internal_force(const dtac_gel_model* gm, dtac_gel_scratch* s, const double* x,
                               const double* v) {
  dtac_fem_tet_forces_cpu(gm->ntet, gm->tet, gm->Dm_inv, gm->vol, &gm->mat, x, v, s->tet_force,
                          s->tet_J);
  dtac_fem_gather_cpu(gm->nnode, gm->node_tetadr, gm->node_tet, s->tet_force, s->force);
  double minJ = INFINITY;
  for (int t = 0; t < gm->ntet; t++) minJ = fmin(minJ, s->tet_J[t]);
  return minJ;
}

int dtac_gel_contact(const dtac_gel_model* gm, const double* x, const double* v,
                     const double* anchor, double* anchor_out, const dtac_collider* col, int ncol,
                     double* node_force, double* col_ft) {
  int ncontact = 0;
  for (int s = 0; s < gm->nsurf; s++) {
    int a = gm->surf[s];
    const double* xa = x + 3 * a;
    const double* va = v + 3 * a;
    const dtac_contact_node_param* p = gm->surf_param + s;

    // narrow phase: distance to every collider near the node; friction with the deepest
    int deepest = -1;
    double dmin = 0, nd[3] = {0, 0, 0};
    for (int c = 0; c < ncol; c++) {
      if (col[c].rbound > 0) {
        double r[3];
        dtac_sub3(r, xa, col[c].pos);
        if (dtac_dot3(r, r) > col[c].rbound * col[c].rbound) continue;
      }
      double n[3];
      double d = dtac_collider_dist(col + c, xa, n);
      if (d >= 0) continue;
      double f[3];
      if (d < dmin) {
        dmin = d;
        deepest = c;
        memcpy(nd, n, sizeof(nd));
      }
      // normal force from each penetrated collider (no anchor offset: no friction here)
      dtac_contact_force(p, col + c, d, n, xa, va, xa, f, NULL);
      if (node_force) {
        for (int k = 0; k < 3; k++) node_force[3 * a + k] += f[k];
      }
      if (col_ft) {
        double r[3], t[3];
        dtac_sub3(r, xa, col[c].pos);
        dtac_cross3(t, r, f);
        for (int k = 0; k < 3; k++) {
          col_ft[6 * c + k] -= f[k];
          col_ft[6 * c + 3 + k] -= t[k];
        }
      }
    }
    const double* an = anchor + 4 * s;
    double* ao = anchor_out ? anchor_out + 4 * s : NULL;
    if (deepest < 0) {
      if (ao) ao[0] = -1;
      continue;
    }
    ncontact++;

    // friction with the deepest collider, from the stick anchor kept in its frame
    const dtac_collider* c = col + deepest;
    double aw[3], anew[3], f[3], fn_only[3];
    if ((int)an[0] == c->geom) {
      dtac_collider_to_world(c, an + 1, aw);
    } else {
      memcpy(aw, xa, sizeof(aw));
    }
    dtac_contact_force(p, c, dmin, nd, xa, va, xa, fn_only, NULL);
    dtac_contact_force(p, c, dmin, nd, xa, va, aw, f, anew);
    for (int k = 0; k < 3; k++) f[k] -= fn_only[k];  // the friction part alone
    if (node_force) {
      for (int k = 0; k < 3; k++) node_force[3 * a + k] += f[k];
    }
    if (col_ft) {
      double r[3], t[3];
      dtac_sub3(r, xa, c->pos);
      dtac_cross3(t, r, f);
      for (int k = 0; k < 3; k++) {
        col_ft[6 * deepest + k] -= f[k];
        col_ft[6 * deepest + 3 + k] -= t[k];
      }
    }
    if (ao) {
      ao[0] = c->geom;
      dtac_collider_to_local(c, anew, ao + 1);
    }
  }
  return ncontact;
}

void dtac_gel_mass_damping(const dtac_gel_model* gm, const double* x, const double* v,
                           const double pos[3], const dtac_frame* frame, double* force,
                           double wrench[6]) {
  if (gm->alpha <= 0) return;
  for (int a = 0; a < gm->nnode; a++) {
    if (gm->inv_mass[a] == 0) continue;
    double r[3], w[3], f[3];
    dtac_sub3(r, x + 3 * a, pos);
    dtac_cross3(w, frame->angvel, r);
    for (int k = 0; k < 3; k++) {
      f[k] = -gm->alpha * gm->mass[a] * (v[3 * a + k] - frame->vel[k] - w[k]);
      if (force) force[3 * a + k] += f[k];
    }
    if (wrench) {
      double t[3];
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
  dtac_gel_advance_coupled(gm, s, state, site, -1, NULL, 0, col, NULL, ncol, gravity, h, nsub,
                           rep);
}

// a frame's pose at time t when it moves at constant velocity from f0
static void frame_pose_const(const dtac_frame* f0, double t, double pos[3], double mat[9]) {
  dtac_frame_at(f0, t, pos, mat);
}

// world pose of a point/frame given in a moving body's frame: pw = P + R pl, Rw = R Rl
static void pose_from_local(const dtac_frame* b, const double* lpos, const double* lmat,
                            double pos[3], double mat[9]) {
  dtac_mulmv3(pos, b->mat, lpos);
  for (int k = 0; k < 3; k++) pos[k] += b->pos[k];
  if (mat) dtac_mul33(mat, b->mat, lmat);
}

// adds a wrench (force f, torque t about point p) to w, taken about point q
static void add_wrench(double w[6], const double f[3], const double t[3], const double p[3],
                       const double q[3]) {
  double r[3], m[3];
  dtac_sub3(r, p, q);
  dtac_cross3(m, r, f);
  for (int k = 0; k < 3; k++) {
    w[k] += f[k];
    w[3 + k] += t[k] + m[k];
  }
}

void dtac_gel_advance_coupled(const dtac_gel_model* gm, dtac_gel_scratch* s, double* state,
                              const dtac_frame* site, int site_slot, dtac_body* bodies,
                              int nbody, const dtac_collider* col, const int* col_slot, int ncol,
                              const double gravity[3], double h, int nsub,
                              dtac_step_report* rep) {
  dtac_state_layout L = dtac_gel_state_layout(gm);
  double* x = state + L.x;
  double* v = state + L.v;
  double* anchor = state + L.anchor;
  double dt = h / nsub;
  double minJ = INFINITY;
  int ncontact = 0;
  if (ncol > s->maxcol) ncol = s->maxcol;

  // bodies start at their step-start frames; colliders and the site are fixed in them
  for (int b = 0; b < nbody; b++) {
    for (int k = 0; k < 6; k++) bodies[b].dP[k] = bodies[b].dQ[k] = 0;
  }
  dtac_frame site_b;  // the site in its body's frame, when it has one
  if (site_slot >= 0) {
    const dtac_frame* B = &bodies[site_slot].frame;
    double r[3];
    dtac_sub3(r, site->pos, B->pos);
    dtac_mulmTv3(site_b.pos, B->mat, r);
    dtac_mulT33(site_b.mat, B->mat, site->mat);
  }
  for (int c = 0; c < ncol; c++) {
    int b = col_slot ? col_slot[c] : -1;
    if (b < 0) continue;
    const dtac_frame* B = &bodies[b].frame;
    double r[3];
    dtac_sub3(r, col[c].pos, B->pos);
    dtac_mulmTv3(s->col_local + 12 * c, B->mat, r);
    dtac_mulT33(s->col_local + 12 * c + 3, B->mat, col[c].mat);
  }
  // current body frames (pose and velocity evolve over the substeps)
  dtac_frame cur[64];
  if (nbody > 64) nbody = 64;
  for (int b = 0; b < nbody; b++) cur[b] = bodies[b].frame;

  for (int sub = 0; sub < nsub; sub++) {
    double t = sub * dt;

    // colliders and the site at the start of this substep
    for (int c = 0; c < ncol; c++) {
      dtac_collider* ct = s->col_t + c;
      *ct = col[c];
      int b = col_slot ? col_slot[c] : -1;
      if (b >= 0) {
        const dtac_frame* B = cur + b;
        pose_from_local(B, s->col_local + 12 * c, s->col_local + 12 * c + 3, ct->pos, ct->mat);
        double r[3], w[3];
        dtac_sub3(r, ct->pos, B->pos);
        dtac_cross3(w, B->angvel, r);
        for (int k = 0; k < 3; k++) {
          ct->vel[k] = B->vel[k] + w[k];
          ct->angvel[k] = B->angvel[k];
        }
      } else {
        dtac_frame fc;
        memcpy(fc.pos, col[c].pos, sizeof(fc.pos));
        memcpy(fc.mat, col[c].mat, sizeof(fc.mat));
        memcpy(fc.vel, col[c].vel, sizeof(fc.vel));
        memcpy(fc.angvel, col[c].angvel, sizeof(fc.angvel));
        frame_pose_const(&fc, t, ct->pos, ct->mat);
      }
    }
    dtac_frame st;  // the site now
    if (site_slot >= 0) {
      const dtac_frame* B = cur + site_slot;
      pose_from_local(B, site_b.pos, site_b.mat, st.pos, st.mat);
      double r[3], w[3];
      dtac_sub3(r, st.pos, B->pos);
      dtac_cross3(w, B->angvel, r);
      for (int k = 0; k < 3; k++) {
        st.vel[k] = B->vel[k] + w[k];
        st.angvel[k] = B->angvel[k];
      }
    } else {
      st = *site;
      frame_pose_const(site, t, st.pos, st.mat);
    }

    // forces: internal, damping relative to the site's body, gravity, contact
    minJ = fmin(minJ, dtac_gel_internal_force(gm, s, x, v));
    double wsite[6] = {0, 0, 0, 0, 0, 0};  // gel wrench on the site's body, about st.pos
    if (site_slot >= 0) {
      for (int i = 0; i < gm->nfixed; i++) {
        int a = gm->fixed_id[i];
        const double zero[3] = {0, 0, 0};
        add_wrench(wsite, s->force + 3 * a, zero, x + 3 * a, st.pos);
      }
    }
    dtac_gel_mass_damping(gm, x, v, st.pos, &st, s->force, site_slot >= 0 ? wsite : NULL);
    for (int a = 0; a < gm->nnode; a++) {
      for (int k = 0; k < 3; k++) s->force[3 * a + k] += gm->mass[a] * gravity[k];
    }
    memset(s->col_ft, 0, sizeof(double) * 6 * ncol);
    ncontact = dtac_gel_contact(gm, x, v, anchor, anchor, s->col_t, ncol, s->force, s->col_ft);

    // symplectic Euler on free nodes
    for (int a = 0; a < gm->nnode; a++) {
      double im = gm->inv_mass[a];
      if (im == 0) continue;
      for (int k = 0; k < 3; k++) {
        v[3 * a + k] += dt * im * s->force[3 * a + k];
        if (gm->lock[a] & (1 << k)) v[3 * a + k] = 0;
        x[3 * a + k] += dt * v[3 * a + k];
      }
    }

    // bodies: the gel's wrench beyond what the rigid step applied changes their velocity now
    if (nbody > 0) {
      double wb[64 * 6];
      memset(wb, 0, sizeof(double) * 6 * nbody);
      for (int c = 0; c < ncol; c++) {
        int b = col_slot ? col_slot[c] : -1;
        if (b < 0) continue;
        add_wrench(wb + 6 * b, s->col_ft + 6 * c, s->col_ft + 6 * c + 3, s->col_t[c].pos,
                   cur[b].pos);
      }
      if (site_slot >= 0) add_wrench(wb + 6 * site_slot, wsite, wsite + 3, st.pos, cur[site_slot].pos);
      for (int b = 0; b < nbody; b++) {
        dtac_body* B = bodies + b;
        dtac_frame* F = cur + b;
        double dw[6], dv[6];
        for (int k = 0; k < 6; k++) dw[k] = wb[6 * b + k] - B->wrench_app[k];
        for (int i = 0; i < 6; i++) {
          dv[i] = 0;
          for (int j = 0; j < 6; j++) dv[i] += B->Winv[6 * i + j] * dw[j];
        }
        for (int k = 0; k < 3; k++) {
          F->vel[k] += dt * dv[k];
          F->angvel[k] += dt * dv[3 + k];
        }
        for (int k = 0; k < 6; k++) {
          B->dP[k] += dt * dw[k];
          B->dQ[k] += dt * B->dP[k];
        }
        // move with the new velocity
        dtac_frame F0 = *F;
        dtac_frame_at(&F0, dt, F->pos, F->mat);
      }
    }

    // back face: rigidly with the site at the end of the substep
    double sp[3], sm[9], sw[3], svel[3];
    if (site_slot >= 0) {
      const dtac_frame* B = cur + site_slot;
      pose_from_local(B, site_b.pos, site_b.mat, sp, sm);
      memcpy(sw, B->angvel, sizeof(sw));
      double r[3], w[3];
      dtac_sub3(r, sp, B->pos);
      dtac_cross3(w, B->angvel, r);
      for (int k = 0; k < 3; k++) svel[k] = B->vel[k] + w[k];
    } else {
      dtac_frame_at(site, t + dt, sp, sm);
      memcpy(sw, site->angvel, sizeof(sw));
      memcpy(svel, site->vel, sizeof(svel));
    }
    for (int i = 0; i < gm->nfixed; i++) {
      int a = gm->fixed_id[i];
      double* xa = x + 3 * a;
      double r[3], w[3];
      dtac_mulmv3(r, sm, gm->X + 3 * a);
      dtac_cross3(w, sw, r);
      for (int k = 0; k < 3; k++) {
        xa[k] = sp[k] + r[k];
        v[3 * a + k] = svel[k] + w[k];
      }
    }
  }

  if (rep) {
    rep->min_J = minJ;
    rep->ncontact = ncontact;
    rep->nonfinite = 0;
    for (int i = 0; i < 6 * gm->nnode; i++) {
      if (!isfinite(state[i])) {
        rep->nonfinite = 1;
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
    dtac_tet_defgrad(x + 3 * tv[0], x + 3 * tv[1], x + 3 * tv[2], x + 3 * tv[3],
                     gm->Dm_inv + 9 * t, F);
    e += gm->vol[t] * dtac_snh_energy(&gm->mat, F);
  }
  return e;
}
