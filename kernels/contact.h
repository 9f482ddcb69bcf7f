// contact.h: smooth penalty contact of one gel surface node with one rigid collider:
// normal force from penetration with damping, friction by a per-node stick anchor and a
// smooth Coulomb limit. Host and device.
#ifndef DTAC_KERNELS_CONTACT_H_
#define DTAC_KERNELS_CONTACT_H_

#include "dtac_hd.h"
#include "sdf.h"

// a rigid shape the gel may touch, posed in the world (MuJoCo-free copy of a geom)
typedef struct dtac_collider_ {
  int type;              // DTAC_GEOM_*
  int geom;              // MuJoCo geom id
  int body;              // MuJoCo body id of the geom
  int nplane;            // mesh: number of hull planes
  const double* planes;  // mesh: hull planes (nplane x 4) in the geom frame
  double size[3];        // geom size, MuJoCo semantics
  double rbound;         // bounding sphere radius about pos; 0: unbounded (plane)
  double pos[3];         // frame origin, world
  double mat[9];         // frame orientation, local -> world, row-major
  double vel[3];         // linear velocity of the frame origin, world
  double angvel[3];      // angular velocity, world
  double mu;             // friction coefficient gel-collider
  double kscale;         // scale of the normal stiffness against this collider (light bodies)
} dtac_collider;

// per-node contact constants
typedef struct dtac_contact_node_param_ {
  double kn;     // normal stiffness, N/m
  double cn;     // normal damping, N s/m
  double kt;     // tangential stick stiffness, N/m
  double width;  // penetration over which the normal force ramps to linear, m
} dtac_contact_node_param;

// anchors are dragged when the stick spring exceeds this multiple of mu*fn
#define DTAC_SLIP_RATIO 3.0

// position of a collider-local point in the world
DTAC_HD void dtac_collider_to_world(const dtac_collider* c, const double pl[3], double pw[3]) {
  dtac_mulmv3(pw, c->mat, pl);
  pw[0] += c->pos[0];
  pw[1] += c->pos[1];
  pw[2] += c->pos[2];
}

// collider-local coordinates of a world point
DTAC_HD void dtac_collider_to_local(const dtac_collider* c, const double pw[3], double pl[3]) {
  double d[3];
  dtac_sub3(d, pw, c->pos);
  dtac_mulmTv3(pl, c->mat, d);
}

// signed distance of a world point to the collider, with the world normal
DTAC_HD double dtac_collider_dist(const dtac_collider* c, const double x[3], double n[3]) {
  double pl[3], gl[3];
  dtac_collider_to_local(c, x, pl);
  double d = dtac_sdf(c->type, c->size, c->planes, c->nplane, pl, gl);
  dtac_mulmv3(n, c->mat, gl);
  return d;
}

// adds a wrench (force f, torque t about point p) to w, taken about point q
DTAC_HD void dtac_wrench_add(double w[6], const double f[3], const double t[3], const double p[3],
                             const double q[3]) {
  double r[3], m[3];
  dtac_sub3(r, p, q);
  dtac_cross3(m, r, f);
  for (int k = 0; k < 3; k++) {
    w[k] += f[k];
    w[3 + k] += t[k] + m[k];
  }
}

// smooth ramp of the normal force: quadratic below width w, linear above (C1)
DTAC_HD double dtac_contact_ramp(double pen, double w, double* dramp) {
  if (pen <= 0) {
    *dramp = 0;
    return 0;
  }
  if (pen < w) {
    *dramp = pen / w;
    return 0.5 * pen * pen / w;
  }
  *dramp = 1;
  return pen - 0.5 * w;
}

// Contact force f (world) on a node at x with velocity v, against collider c at distance
// dist < 0 along normal n. anchor (world) is where the node stuck; it is dragged along when
// the node slips and written back if anchor_out is non-null. Returns the normal force.
DTAC_HD double dtac_contact_force(const dtac_contact_node_param* p, const dtac_collider* c,
                                  double dist, const double n[3], const double x[3],
                                  const double v[3], const double anchor[3], double f[3],
                                  double anchor_out[3]) {
  // normal: penalty on the smoothed penetration, damping on the approach speed
  double dramp, r[3], w[3], vrel[3];
  double fn = p->kn * dtac_contact_ramp(-dist, p->width, &dramp);
  dtac_sub3(r, x, c->pos);
  dtac_cross3(w, c->angvel, r);
  for (int k = 0; k < 3; k++) vrel[k] = v[k] - c->vel[k] - w[k];
  double vn = dtac_dot3(vrel, n);
  fn -= p->cn * dramp * vn;
  if (fn < 0) fn = 0;
  for (int k = 0; k < 3; k++) f[k] = fn * n[k];

  // friction: tangential offset from the anchor, force L tanh(kt |dt| / L), L = mu fn
  double dt[3], da[3];
  dtac_sub3(da, x, anchor);
  double an = dtac_dot3(da, n);
  for (int k = 0; k < 3; k++) dt[k] = da[k] - an * n[k];
  double s = dtac_norm3(dt);
  double L = c->mu * fn;
  double a[3] = {anchor[0], anchor[1], anchor[2]};
  if (L > 0 && s > 0) {
    double u = p->kt * s / L;
    double ft = L * tanh(u);
    for (int k = 0; k < 3; k++) f[k] -= ft * dt[k] / s;
    // slipping: drag the anchor so the stick spring stays at DTAC_SLIP_RATIO * L
    if (u > DTAC_SLIP_RATIO) {
      double keep = DTAC_SLIP_RATIO / u;
      for (int k = 0; k < 3; k++) a[k] = x[k] - an * n[k] - keep * dt[k];
    }
  } else if (L <= 0) {
    // no normal load: nothing holds the node, re-anchor where it is
    for (int k = 0; k < 3; k++) a[k] = x[k];
  }
  if (anchor_out) {
    for (int k = 0; k < 3; k++) anchor_out[k] = a[k];
  }
  return fn;
}

// contact force of a node against a collider with nothing moved (no anchor update): the
// function the adjoint below differentiates; returns the normal force (0 out of contact)
DTAC_HD double dtac_contact_node_force(const dtac_contact_node_param* p, const dtac_collider* c,
                                       const double x[3], const double v[3], const double anchor[3],
                                       double f[3]) {
  double n[3];
  double d = dtac_collider_dist(c, x, n);
  if (d >= 0) {
    f[0] = f[1] = f[2] = 0;
    return 0;
  }
  return dtac_contact_force(p, c, d, n, x, v, anchor, f, 0);
}

// cotangents of a node's contact constants (accumulated)
typedef struct dtac_contact_param_adj_ {
  double kn, cn, kt, mu;
} dtac_contact_param_adj;

#endif  // DTAC_KERNELS_CONTACT_H_
