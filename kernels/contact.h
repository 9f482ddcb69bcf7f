// contact.h: smooth penalty contact of one gel surface node with one rigid collider:
// normal force from penetration with damping, friction by a per-node stick anchor and a
// smooth Coulomb limit; each VJP (with the collider's pose and motion as inputs, every output
// cotangent accumulated) right after its forward. Host and device.
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

// cotangents of a collider's pose and motion (accumulated)
typedef struct dtac_collider_bar_ {
  double pos[3], mat[9], vel[3], angvel[3];
} dtac_collider_bar;

// cotangents of a node's contact constants (accumulated)
typedef struct dtac_contact_param_adj_ {
  double kn, cn, kt, mu;
} dtac_contact_param_adj;

// anchors are dragged when the stick spring exceeds this multiple of mu*fn
#define DTAC_SLIP_RATIO 3.0

// position of a collider-local point in the world
DTAC_HD void dtac_collider_to_world(const dtac_collider* c, const double pl[3], double pw[3]) {
  dtac_mulmv3(pw, c->mat, pl);
  pw[0] += c->pos[0];
  pw[1] += c->pos[1];
  pw[2] += c->pos[2];
}

// VJP of dtac_collider_to_world(c, pl, pw): accumulates pl_bar, cb->pos, cb->mat
DTAC_HD void dtac_collider_to_world_adj(const dtac_collider* c, const double pl[3],
                                        const double pw_bar[3], double pl_bar[3],
                                        dtac_collider_bar* cb) {
  // pw = R pl + pos
  double t[3];
  dtac_mulmTv3(t, c->mat, pw_bar);
  for (int i = 0; i < 3; i++) {
    pl_bar[i] += t[i];
    cb->pos[i] += pw_bar[i];
    for (int j = 0; j < 3; j++) cb->mat[3 * i + j] += pw_bar[i] * pl[j];
  }
}

// collider-local coordinates of a world point
DTAC_HD void dtac_collider_to_local(const dtac_collider* c, const double pw[3], double pl[3]) {
  double d[3];
  dtac_sub3(d, pw, c->pos);
  dtac_mulmTv3(pl, c->mat, d);
}

// VJP of dtac_collider_to_local(c, pw, pl): accumulates pw_bar, cb->pos, cb->mat
DTAC_HD void dtac_collider_to_local_adj(const dtac_collider* c, const double pw[3],
                                        const double pl_bar[3], double pw_bar[3],
                                        dtac_collider_bar* cb) {
  // pl = R^T d, d = pw - pos
  double d[3], d_bar[3];
  dtac_sub3(d, pw, c->pos);
  dtac_mulmv3(d_bar, c->mat, pl_bar);
  for (int i = 0; i < 3; i++) {
    pw_bar[i] += d_bar[i];
    cb->pos[i] -= d_bar[i];
    for (int j = 0; j < 3; j++) cb->mat[3 * i + j] += d[i] * pl_bar[j];
  }
}

// signed distance of a world point to the collider, with the world normal
DTAC_HD double dtac_collider_dist(const dtac_collider* c, const double x[3], double n[3]) {
  double pl[3], gl[3];
  dtac_collider_to_local(c, x, pl);
  double d = dtac_sdf(c->type, c->size, c->planes, c->nplane, pl, gl);
  dtac_mulmv3(n, c->mat, gl);
  return d;
}

// VJP of d = dtac_collider_dist(c, x, n) (outputs d and n): accumulates x_bar and cb->pos, cb->mat
DTAC_HD void dtac_collider_dist_adj(const dtac_collider* c, const double x[3], double d_bar,
                                    const double n_bar[3], double x_bar[3], dtac_collider_bar* cb) {
  // forward: pl = R^T (x - pos), d = sdf(pl), gl = grad sdf(pl), n = R gl
  double pl[3], gl[3], H[9];
  dtac_collider_to_local(c, x, pl);
  dtac_sdf(c->type, c->size, c->planes, c->nplane, pl, gl);
  dtac_sdf_hess(c->type, c->size, c->planes, c->nplane, pl, H);

  // n = R gl: R_bar += n_bar gl^T, gl_bar = R^T n_bar; pl_bar = d_bar gl + H^T gl_bar
  double gl_bar[3], Hg[3], pl_bar[3];
  for (int i = 0; i < 3; i++) {
    for (int j = 0; j < 3; j++) cb->mat[3 * i + j] += n_bar[i] * gl[j];
  }
  dtac_mulmTv3(gl_bar, c->mat, n_bar);
  dtac_mulmTv3(Hg, H, gl_bar);
  for (int k = 0; k < 3; k++) pl_bar[k] = d_bar * gl[k] + Hg[k];
  dtac_collider_to_local_adj(c, x, pl_bar, x_bar, cb);
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

// w += (f, t about p) moved to q: cotangents of f, t (may be NULL), p and q (may be NULL)
DTAC_HD void dtac_wrench_add_adj(const double f[3], const double p[3], const double q[3],
                                 const double w_bar[6], double f_bar[3], double t_bar[3],
                                 double p_bar[3], double q_bar[3]) {
  double r[3], fm[3], rb[3];
  dtac_sub3(r, p, q);
  dtac_cross3(fm, w_bar + 3, r);  // m = r x f: f_bar += m_bar x r
  dtac_cross3(rb, f, w_bar + 3);  // r_bar = f x m_bar
  for (int k = 0; k < 3; k++) {
    f_bar[k] += w_bar[k] + fm[k];
    if (t_bar) t_bar[k] += w_bar[3 + k];
    if (p_bar) p_bar[k] += rb[k];
    if (q_bar) q_bar[k] -= rb[k];
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

// VJP of dtac_contact_force(p, c, dist, n, x, v, anchor, f, anchor_out) with dist and n treated
// as independent inputs: given f_bar and anchor_out_bar (may be NULL = zero), accumulates
// dist_bar, n_bar, x_bar, v_bar, anchor_bar, cb->pos, cb->vel, cb->angvel, and pa (kn, cn, kt,
// and mu = the collider's friction coefficient c->mu; pa may be NULL). Branches exactly as the
// forward: normal force clamped at 0 (zero derivative of the clamped part), friction only when
// L = mu fn > 0, slip anchor drag when u > DTAC_SLIP_RATIO, anchor = x when L <= 0, anchor
// unchanged otherwise. At s = 0 (L > 0) the forward's friction is zero but its derivative is not:
// L tanh(kt s / L) dt / s = kt dt + O(s^3) is smooth in dt there, so the limit -kt dt is used.
// The cotangent of p->width is not computed; cb->mat gets nothing (the force does not use mat).
DTAC_HD void dtac_contact_force_adj(const dtac_contact_node_param* p, const dtac_collider* c,
                                    double dist, const double n[3], const double x[3],
                                    const double v[3], const double anchor[3],
                                    const double f_bar[3], const double anchor_out_bar[3],
                                    double* dist_bar, double n_bar[3], double x_bar[3],
                                    double v_bar[3], double anchor_bar[3], dtac_collider_bar* cb,
                                    dtac_contact_param_adj* pa) {
  // forward, as dtac_contact_force, keeping what the reverse pass needs
  double pen = -dist, dramp;
  double ramp = dtac_contact_ramp(pen, p->width, &dramp);
  double ddramp = (pen > 0 && pen < p->width) ? 1 / p->width : 0;
  double r[3], w[3], vrel[3];
  dtac_sub3(r, x, c->pos);
  dtac_cross3(w, c->angvel, r);
  for (int k = 0; k < 3; k++) vrel[k] = v[k] - c->vel[k] - w[k];
  double vn = dtac_dot3(vrel, n);
  double fn = p->kn * ramp - p->cn * dramp * vn;
  int clamped = fn < 0;
  if (clamped) fn = 0;
  double da[3], dt[3];
  dtac_sub3(da, x, anchor);
  double an = dtac_dot3(da, n);
  for (int k = 0; k < 3; k++) dt[k] = da[k] - an * n[k];
  double s = dtac_norm3(dt);
  double L = c->mu * fn;
  const double zero[3] = {0, 0, 0};
  const double* a_bar = anchor_out_bar ? anchor_out_bar : zero;

  // reverse: f = fn n - ft dt / s; a = anchor, x, or x - an n - keep dt
  double fn_bar = dtac_dot3(f_bar, n), nb[3], dt_bar[3] = {0, 0, 0}, an_bar = 0;
  for (int k = 0; k < 3; k++) nb[k] = fn * f_bar[k];
  if (L > 0 && s > 0) {
    double e[3], u = p->kt * s / L, th = tanh(u), sech2 = 1 - th * th, ft = L * th;
    for (int k = 0; k < 3; k++) e[k] = dt[k] / s;
    double u_bar = 0, s_bar = 0, L_bar = 0;
    if (u > DTAC_SLIP_RATIO) {
      // a = x - an n - keep dt, keep = SR / u
      double keep = DTAC_SLIP_RATIO / u;
      double keep_bar = -dtac_dot3(a_bar, dt);
      an_bar -= dtac_dot3(a_bar, n);
      for (int k = 0; k < 3; k++) {
        x_bar[k] += a_bar[k];
        nb[k] -= an * a_bar[k];
        dt_bar[k] -= keep * a_bar[k];
      }
      u_bar -= keep_bar * keep / u;
    } else {
      for (int k = 0; k < 3; k++) anchor_bar[k] += a_bar[k];
    }
    // ft = L tanh(u), e = dt / s
    double ft_bar = -dtac_dot3(f_bar, e);
    u_bar += ft_bar * L * sech2;
    L_bar += ft_bar * th;
    double ee = -ft * dtac_dot3(f_bar, e);  // e_bar . e, e_bar = -ft f_bar
    for (int k = 0; k < 3; k++) dt_bar[k] += (-ft * f_bar[k] - ee * e[k]) / s;
    // u = kt s / L
    s_bar += u_bar * p->kt / L;
    L_bar -= u_bar * u / L;
    if (pa) pa->kt += u_bar * s / L;
    for (int k = 0; k < 3; k++) dt_bar[k] += s_bar * e[k];
    // L = mu fn
    fn_bar += c->mu * L_bar;
    if (pa) pa->mu += fn * L_bar;
  } else if (L > 0) {
    // s = 0: friction -kt dt to first order, anchor kept
    for (int k = 0; k < 3; k++) {
      dt_bar[k] -= p->kt * f_bar[k];
      anchor_bar[k] += a_bar[k];
    }
  } else {
    // L <= 0: a = x
    for (int k = 0; k < 3; k++) x_bar[k] += a_bar[k];
  }

  // dt = da - an n, an = da . n, da = x - anchor
  an_bar -= dtac_dot3(dt_bar, n);
  for (int k = 0; k < 3; k++) {
    double da_bar = dt_bar[k] + an_bar * n[k];
    nb[k] += an_bar * da[k] - an * dt_bar[k];
    x_bar[k] += da_bar;
    anchor_bar[k] -= da_bar;
  }

  // fn = kn ramp(pen) - cn dramp(pen) vn, unless clamped
  if (!clamped) {
    if (pa) {
      pa->kn += fn_bar * ramp;
      pa->cn -= fn_bar * dramp * vn;
    }
    *dist_bar -= fn_bar * (p->kn * dramp - p->cn * vn * ddramp);
    double vn_bar = -fn_bar * p->cn * dramp;
    // vn = vrel . n, vrel = v - vel - angvel x (x - pos)
    double vrel_bar[3], t[3];
    for (int k = 0; k < 3; k++) {
      vrel_bar[k] = vn_bar * n[k];
      nb[k] += vn_bar * vrel[k];
      v_bar[k] += vrel_bar[k];
      cb->vel[k] -= vrel_bar[k];
    }
    // r_bar = angvel x vrel_bar, angvel_bar = vrel_bar x r
    dtac_cross3(t, c->angvel, vrel_bar);
    for (int k = 0; k < 3; k++) {
      x_bar[k] += t[k];
      cb->pos[k] -= t[k];
    }
    dtac_cross3(t, vrel_bar, r);
    for (int k = 0; k < 3; k++) cb->angvel[k] += t[k];
  }
  for (int k = 0; k < 3; k++) n_bar[k] += nb[k];
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

// VJP of dtac_contact_node_force (contact.h): given f_bar, accumulates the cotangents of the node
// position, velocity and anchor and of the contact constants (pa, may be null), through the
// contact force and the collider's signed distance. Where the force is clamped at zero
// (separating) or out of contact the derivative is zero.
DTAC_HD void dtac_contact_node_force_adj(const dtac_contact_node_param* p, const dtac_collider* c,
                                         const double x[3], const double v[3],
                                         const double anchor[3], const double f_bar[3],
                                         double x_bar[3], double v_bar[3], double anchor_bar[3],
                                         dtac_contact_param_adj* pa) {
  double n[3];
  double d = dtac_collider_dist(c, x, n);
  if (d >= 0) return;
  double d_bar = 0, n_bar[3] = {0, 0, 0};
  dtac_collider_bar cb = {
      {0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0}, {0, 0, 0}};  // constant
  dtac_contact_force_adj(p, c, d, n, x, v, anchor, f_bar, NULL, &d_bar, n_bar, x_bar, v_bar,
                         anchor_bar, &cb, pa);
  dtac_collider_dist_adj(c, x, d_bar, n_bar, x_bar, &cb);
}

#endif  // DTAC_KERNELS_CONTACT_H_
