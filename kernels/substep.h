// substep.h: one explicit substep of a gel, per node and per frame, for host and device: the
// moving frames of sites, colliders and coupled bodies, a contact node against its colliders,
// the implicit normal contact update, mass damping, and the back face's placement. src/step.c
// loops over these on the CPU; kernels/gel_dev.h runs the same functions in a device kernel.
#ifndef DTAC_KERNELS_SUBSTEP_H_
#define DTAC_KERNELS_SUBSTEP_H_

#include <stddef.h>

#include "contact.h"

// a rigid frame's pose and velocity (the site the gel's back face is attached to)
typedef struct dtac_frame_ {
  double pos[3];
  double mat[9];     // local -> world, row-major
  double vel[3];     // linear velocity of pos
  double angvel[3];  // angular velocity
} dtac_frame;

// the substeps one gel takes in a step, from those it needs at rest (nsub) and the smallest
// det F of its elements at the step start: compressed and inverted elements are stiffer than
// the rest state the stable substep was computed at (stable Neo-Hookean's lambda' (J - alpha)
// term grows), so such steps take 2x (J < 0.5) or 3x (J < 0) more. The joint step of several
// gels takes the largest of their counts. The one rule of both backends (step.c, gel_dev.h).
DTAC_HD int dtac_substep_count(int nsub, double min_J) {
  return nsub * (min_J < 0 ? 3 : (min_J < 0.5 ? 2 : 1));
}

// doubles of a joint step's tape (dtac_gels_advance_tape): the substep count, then per substep
// every gel's state (state_total doubles together) and every coupled body's frame (18 each), for
// at most 3x the substeps the gels need at rest (nsub, the largest; dtac_substep_count)
DTAC_HD size_t dtac_tape_size(int nsub, size_t state_total, int nbody) {
  return 1 + 3 * (size_t)nsub * (state_total + 18 * (size_t)nbody);
}

// a rigid body moved inside the substeps by the gel's forces (substep coupling): the part of its
// response to the gel that the rigid solver did not see (it applied wrench_app for the whole step)
// is integrated with the gel, so stiff gel contact stays stable at large rigid steps
typedef struct dtac_body_ {
  dtac_frame frame;      // reference point (pos), orientation and velocity at the step start
  double Winv[36];       // inverse effective mass at pos: velocity [lin; ang] per impulse [f; t]
  double wrench_app[6];  // gel wrench the rigid step already applied (force; torque about pos)
  double dP[6];          // out: gel impulse beyond wrench_app * h, about pos
  double dQ[6];          // out: time integral of that impulse (for the position correction)
} dtac_body;

// one body slot's cotangents in the reverse pass
typedef struct dtac_body_bar_ {
  double dP[6], dQ[6];   // in: of the outputs dP and dQ
  dtac_frame frame;      // out (accumulated): of the step-start frame
  double Winv[36];       // out (accumulated)
  double wrench_app[6];  // out (accumulated)
} dtac_body_bar;

// ---- frames
// ---------------------------------------------------------------------------------------

// pose of a frame moved for time t at constant velocity (rotation by exp(t w))
DTAC_HD void dtac_frame_at(const dtac_frame* f0, double t, double pos[3], double mat[9]) {
  for (int k = 0; k < 3; k++) pos[k] = f0->pos[k] + t * f0->vel[k];
  // rotation by angle |w| t about w (Rodrigues), applied to the initial orientation
  double th = dtac_norm3(f0->angvel) * t;
  if (th < 1e-300) {
    for (int k = 0; k < 9; k++) mat[k] = f0->mat[k];
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

// VJP of dtac_frame_at(f0, t) -> (pos, mat): accumulates f0_bar (pos, mat, vel, angvel)
DTAC_HD void dtac_frame_at_adj(const dtac_frame* f0, double t, const double pos_bar[3],
                               const double mat_bar[9], dtac_frame* f0_bar) {
  double phi[3], R[9], Rb[9], Mb[9], phib[3] = {0, 0, 0};
  for (int k = 0; k < 3; k++) phi[k] = f0->angvel[k] * t;
  dtac_rotvec_mat(phi, R);
  dtac_mulT33(Mb, R, mat_bar);        // mat = R M0: M0_bar = R^T mat_bar
  dtac_mul33T(Rb, mat_bar, f0->mat);  // R_bar = mat_bar M0^T
  dtac_rotvec_mat_adj(phi, Rb, phib);
  for (int k = 0; k < 3; k++) {
    f0_bar->pos[k] += pos_bar[k];
    f0_bar->vel[k] += t * pos_bar[k];
    f0_bar->angvel[k] += t * phib[k];
  }
  for (int k = 0; k < 9; k++) f0_bar->mat[k] += Mb[k];
}

// a frame fixed in body B at (lpos, lmat): its world pose, velocity and angular velocity
DTAC_HD void dtac_frame_on_body(const dtac_frame* B, const double* lpos, const double* lmat,
                                dtac_frame* f) {
  dtac_mulmv3(f->pos, B->mat, lpos);
  for (int k = 0; k < 3; k++) f->pos[k] += B->pos[k];
  dtac_mul33(f->mat, B->mat, lmat);
  double r[3], w[3];
  dtac_sub3(r, f->pos, B->pos);
  dtac_cross3(w, B->angvel, r);
  for (int k = 0; k < 3; k++) {
    f->vel[k] = B->vel[k] + w[k];
    f->angvel[k] = B->angvel[k];
  }
}

// VJP of dtac_frame_on_body(B, lpos, lmat) -> f: accumulates B_bar and lpos_bar, lmat_bar
DTAC_HD void dtac_frame_on_body_adj(const dtac_frame* B, const double* lpos, const double* lmat,
                                    const dtac_frame* f_bar, dtac_frame* B_bar, double* lpos_bar,
                                    double* lmat_bar) {
  double r[3], t[3], rb[3], pb[3];
  dtac_mulmv3(r, B->mat, lpos);
  // vel = B.vel + B.angvel x r, angvel = B.angvel
  dtac_cross3(t, r, f_bar->vel);
  dtac_cross3(rb, f_bar->vel, B->angvel);
  for (int k = 0; k < 3; k++) {
    B_bar->vel[k] += f_bar->vel[k];
    B_bar->angvel[k] += f_bar->angvel[k] + t[k];
    B_bar->pos[k] += f_bar->pos[k];
    pb[k] = f_bar->pos[k] + rb[k];  // cotangent of r = B.mat lpos
  }
  // r = B.mat lpos, mat = B.mat lmat
  double lb[3], Lb[9], Bb[9];
  dtac_mulmTv3(lb, B->mat, pb);
  dtac_mulT33(Lb, B->mat, f_bar->mat);
  dtac_mul33T(Bb, f_bar->mat, lmat);
  for (int i = 0; i < 3; i++) {
    lpos_bar[i] += lb[i];
    for (int j = 0; j < 3; j++) B_bar->mat[3 * i + j] += pb[i] * lpos[j] + Bb[3 * i + j];
  }
  for (int k = 0; k < 9; k++) lmat_bar[k] += Lb[k];
}

// a site at substep time t: on its body slot's current frame cur[slot] at (lpos, lmat), or
// (slot -1) moved at constant velocity from its step-start frame f0
DTAC_HD void dtac_site_at(const dtac_frame* f0, int slot, const dtac_frame* lsite,
                          const dtac_frame* cur, double t, dtac_frame* st) {
  if (slot >= 0) {
    dtac_frame_on_body(cur + slot, lsite->pos, lsite->mat, st);
  } else {
    *st = *f0;
    dtac_frame_at(f0, t, st->pos, st->mat);
  }
}

// collider c0 (at the step start) at substep time t: on its body slot's current frame at local
// pose (pos 3, mat 9), or (slot -1) moved at constant velocity
DTAC_HD void dtac_collider_at(const dtac_collider* c0, int slot, const double* local,
                              const dtac_frame* cur, double t, dtac_collider* ct) {
  *ct = *c0;
  if (slot >= 0) {
    dtac_frame f;
    dtac_frame_on_body(cur + slot, local, local + 3, &f);
    for (int k = 0; k < 3; k++) {
      ct->pos[k] = f.pos[k];
      ct->vel[k] = f.vel[k];
      ct->angvel[k] = f.angvel[k];
    }
    for (int k = 0; k < 9; k++) ct->mat[k] = f.mat[k];
  } else {
    dtac_frame fc;
    for (int k = 0; k < 3; k++) {
      fc.pos[k] = c0->pos[k];
      fc.vel[k] = c0->vel[k];
      fc.angvel[k] = c0->angvel[k];
    }
    for (int k = 0; k < 9; k++) fc.mat[k] = c0->mat[k];
    dtac_frame_at(&fc, t, ct->pos, ct->mat);
  }
}

// one body's substep: velocity from the wrench wb beyond the applied one, then pose; dP and dQ
// (may be NULL) accumulate the impulse and its time integral
DTAC_HD void dtac_body_substep(const dtac_body* B, dtac_frame* F, double* dP, double* dQ,
                               const double wb[6], double dt) {
  double dw[6], dv[6];
  for (int k = 0; k < 6; k++) dw[k] = wb[k] - B->wrench_app[k];
  for (int i = 0; i < 6; i++) {
    dv[i] = 0;
    for (int j = 0; j < 6; j++) dv[i] += B->Winv[6 * i + j] * dw[j];
  }
  for (int k = 0; k < 3; k++) {
    F->vel[k] += dt * dv[k];
    F->angvel[k] += dt * dv[3 + k];
  }
  if (dP) {
    for (int k = 0; k < 6; k++) {
      dP[k] += dt * dw[k];
      dQ[k] += dt * dP[k];
    }
  }
  dtac_frame F0 = *F;
  dtac_frame_at(&F0, dt, F->pos, F->mat);
}

// one body's substep (dtac_body_substep) in reverse: F is the frame before it, wb the wrench;
// Fb holds the cotangent of the frame after and leaves with the one before; dPb, dQb likewise;
// wb_bar (6) is written
DTAC_HD void dtac_body_substep_adj(const dtac_body* B, const dtac_frame* F, const double wb[6],
                                   double dt, dtac_frame* Fb, double dPb[6], double dQb[6],
                                   double wb_bar[6], dtac_body_bar* bb) {
  double dw[6], dv[6];
  for (int k = 0; k < 6; k++) dw[k] = wb[k] - B->wrench_app[k];
  for (int i = 0; i < 6; i++) {
    dv[i] = 0;
    for (int j = 0; j < 6; j++) dv[i] += B->Winv[6 * i + j] * dw[j];
  }
  dtac_frame F1 = *F;  // velocities updated, pose not yet
  for (int k = 0; k < 3; k++) {
    F1.vel[k] += dt * dv[k];
    F1.angvel[k] += dt * dv[3 + k];
  }
  dtac_frame nb = {{0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0}, {0, 0, 0}};
  dtac_frame_at_adj(&F1, dt, Fb->pos, Fb->mat, &nb);
  double dvb[6], dwb[6];
  for (int k = 0; k < 3; k++) {
    nb.vel[k] += Fb->vel[k];
    nb.angvel[k] += Fb->angvel[k];
    dvb[k] = dt * nb.vel[k];
    dvb[3 + k] = dt * nb.angvel[k];
  }
  // dP' = dP + dt dw, dQ' = dQ + dt dP'
  for (int k = 0; k < 6; k++) {
    dPb[k] += dt * dQb[k];
    dwb[k] = dt * dPb[k];
  }
  for (int j = 0; j < 6; j++) {
    for (int i = 0; i < 6; i++) {
      dwb[j] += B->Winv[6 * i + j] * dvb[i];
      bb->Winv[6 * i + j] += dvb[i] * dw[j];
    }
  }
  for (int k = 0; k < 6; k++) {
    wb_bar[k] = dwb[k];
    bb->wrench_app[k] -= dwb[k];
  }
  *Fb = nb;
}

// a back-face node (rest position Xa in the site frame) placed rigidly with the site frame sf
DTAC_HD void dtac_place_node(const dtac_frame* sf, const double Xa[3], double xa[3],
                             double va[3]) {
  double r[3], w[3];
  dtac_mulmv3(r, sf->mat, Xa);
  dtac_cross3(w, sf->angvel, r);
  for (int k = 0; k < 3; k++) {
    xa[k] = sf->pos[k] + r[k];
    va[k] = sf->vel[k] + w[k];
  }
}

// ---- contact of one node
// --------------------------------------------------------------------------

// a node's contact constants against collider c: normal stiffness scaled for light bodies,
// damping with it (same damping ratio)
DTAC_HD dtac_contact_node_param dtac_contact_scaled(const dtac_contact_node_param* p,
                                                    const dtac_collider* c) {
  dtac_contact_node_param q = *p;
  if (c->kscale > 0 && c->kscale < 1) {
    q.kn *= c->kscale;
    q.cn *= sqrt(c->kscale);
  }
  return q;
}

// signed distance and world normal of x to collider c, +INFINITY (n untouched) outside its bound
DTAC_HD double dtac_collider_dist_near(const dtac_collider* c, const double x[3], double n[3]) {
  if (c->rbound > 0) {
    double r[3];
    dtac_sub3(r, x, c->pos);
    if (dtac_dot3(r, r) > c->rbound * c->rbound) return INFINITY;
  }
  return dtac_collider_dist(c, x, n);
}

// the deepest collider (index, -1 if none penetrated) at point x within its bound, its signed
// distance dmin (< 0) and world normal n
DTAC_HD int dtac_deepest_collider(const dtac_collider* col, int ncol, const double x[3],
                                  double* dmin, double n[3]) {
  int deepest = -1;
  *dmin = 0;
  n[0] = n[1] = n[2] = 0;
  for (int c = 0; c < ncol; c++) {
    double nc[3] = {0, 0, 0};
    double d = dtac_collider_dist_near(col + c, x, nc);
    if (d < *dmin) {
      *dmin = d;
      deepest = c;
      n[0] = nc[0];
      n[1] = nc[1];
      n[2] = nc[2];
    }
  }
  return deepest;
}

// what the implicit normal update needs of one node-collider contact (7 values): normal
// stiffness, damping, normal (3), collider index (-1: none), elastic normal force
#define DTAC_IMP_SIZE 14
DTAC_HD void dtac_imp_record(double* q, const dtac_contact_node_param* p, double dist,
                             const double n[3], int c) {
  double dramp;
  q[6] = p->kn * dtac_contact_ramp(-dist, p->width, &dramp);
  q[0] = p->kn * dramp;
  q[1] = p->cn * dramp;
  q[2] = n[0];
  q[3] = n[1];
  q[4] = n[2];
  q[5] = c;
}

// cotangents of an implicit contact record q (kn dramp, cn dramp, n, elastic force) made at
// distance d: d_bar, n_bar, and the effective kn, cn
DTAC_HD void dtac_imp_record_adj(const dtac_contact_node_param* pe, double cn, double d,
                                 const double* q_bar, double* d_bar, double n_bar[3],
                                 double* kn_bar, double* cn_bar) {
  double pen = -d, dramp;
  double ramp = dtac_contact_ramp(pen, pe->width, &dramp);
  double ddramp = (pen > 0 && pen < pe->width) ? 1 / pe->width : 0;
  *d_bar -= q_bar[0] * pe->kn * ddramp + q_bar[1] * cn * ddramp + q_bar[6] * pe->kn * dramp;
  *kn_bar += q_bar[0] * dramp + q_bar[6] * ramp;
  *cn_bar += q_bar[1] * dramp;
  for (int k = 0; k < 3; k++) n_bar[k] += q_bar[2 + k];
}

// colliders one node pushes on at once: the deepest and the first DTAC_NODE_MAXCOL - 1 other
// penetrated ones (a node inside more is counted in `over` and feels only those)
#define DTAC_NODE_MAXCOL 4

// the forces one contact node puts on its colliders (their reactions are minus these), in the
// order they were added
typedef struct dtac_node_react_ {
  int n;                         // entries
  int over;                      // penetrated colliders left out (beyond DTAC_NODE_MAXCOL)
  int c[DTAC_NODE_MAXCOL];       // collider index
  double f[DTAC_NODE_MAXCOL][3]; // force on the node from that collider, world
} dtac_node_react;

// contact of one surface node at xa (velocity va, anchor an: geom id and anchor in the geom
// frame) with colliders col: adds the forces to fa, writes the new anchor (ao, may be NULL),
// the implicit terms (imp: DTAC_IMP_SIZE values, may be NULL; the deepest collider's normal
// damping is then left to the implicit update) and each collider's force in r. Returns 1 if
// the node touches a collider.
DTAC_HD int dtac_contact_node(const dtac_contact_node_param* p, const double xa[3],
                              const double va[3], const double an[4], double* ao,
                              const dtac_collider* col, int ncol, double fa[3], double* imp,
                              dtac_node_react* r) {
  r->n = r->over = 0;
  if (imp) imp[5] = imp[12] = -1;

  // narrow phase: the deepest collider near the node carries friction
  double dmin, nd[3];
  int deepest = dtac_deepest_collider(col, ncol, xa, &dmin, nd);
  if (deepest < 0) {
    if (ao) ao[0] = -1;
    return 0;
  }

  // other penetrated colliders: normal force only; the first of them implicit too
  int second = 0;
  for (int c = 0; c < ncol; c++) {
    if (c == deepest) continue;
    double n[3], f[3];
    double d = dtac_collider_dist_near(col + c, xa, n);
    if (d >= 0) continue;
    if (r->n == DTAC_NODE_MAXCOL - 1) {
      r->over++;
      continue;
    }
    dtac_contact_node_param pe = dtac_contact_scaled(p, col + c);
    if (imp && !second) {
      dtac_imp_record(imp + 7, &pe, d, n, c);
      pe.cn = 0;
      second = 1;
    }
    dtac_contact_force(&pe, col + c, d, n, xa, va, xa, f, 0);
    for (int k = 0; k < 3; k++) {
      fa[k] += f[k];
      r->f[r->n][k] = f[k];
    }
    r->c[r->n++] = c;
  }

  // the deepest: normal force and friction from the stick anchor kept in its frame
  const dtac_collider* c = col + deepest;
  double aw[3], anew[3], f[3];
  if ((int)an[0] == c->geom) {
    dtac_collider_to_world(c, an + 1, aw);
  } else {
    for (int k = 0; k < 3; k++) aw[k] = xa[k];
  }
  dtac_contact_node_param pe = dtac_contact_scaled(p, c);
  if (imp) {
    dtac_imp_record(imp, &pe, dmin, nd, deepest);
    pe.cn = 0;  // damping goes into the implicit update
  }
  dtac_contact_force(&pe, c, dmin, nd, xa, va, aw, f, anew);
  for (int k = 0; k < 3; k++) {
    fa[k] += f[k];
    r->f[r->n][k] = f[k];
  }
  r->c[r->n++] = deepest;
  if (ao) {
    ao[0] = c->geom;
    dtac_collider_to_local(c, anew, ao + 1);
  }
  return 1;
}

// the linearly implicit normal update of one node (mass m at xa, velocity va updated in place)
// against the collider c of implicit record q (backward Euler on the node's own penalty spring
// relative to the collider, never pulling): (m + dt c + dt^2 k) u_n' = m u_n*, u = v - v_c.
// Writes the correction force on the node to f.
DTAC_HD void dtac_contact_implicit(const double* q, const dtac_collider* c, double m,
                                   const double xa[3], double va[3], double dt, double f[3]) {
  double r[3], w[3], u[3];
  dtac_sub3(r, xa, c->pos);
  dtac_cross3(w, c->angvel, r);
  for (int k = 0; k < 3; k++) u[k] = va[k] - c->vel[k] - w[k];
  double un = q[2] * u[0] + q[3] * u[1] + q[4] * u[2];
  double un_new = m * un / (m + dt * q[1] + dt * dt * q[0]);
  double fcorr = m / dt * (un_new - un);
  if (q[6] + fcorr < 0) fcorr = -q[6];
  for (int k = 0; k < 3; k++) {
    f[k] = fcorr * q[2 + k];
    va[k] += dt / m * f[k];
  }
}

// mass-proportional damping of one node (mass m) relative to the rigid motion of frame (its
// point pos): the force on the node, f = -alpha m (v - v_rigid)
DTAC_HD void dtac_mass_damping_node(double alpha, double m, const double xa[3], const double va[3],
                                    const double pos[3], const dtac_frame* frame, double f[3]) {
  double r[3], w[3];
  dtac_sub3(r, xa, pos);
  dtac_cross3(w, frame->angvel, r);
  for (int k = 0; k < 3; k++) f[k] = -alpha * m * (va[k] - frame->vel[k] - w[k]);
}

#endif  // DTAC_KERNELS_SUBSTEP_H_
