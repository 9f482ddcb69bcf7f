// contact_energy.h: the potentials whose gradients are contact.h's forces, for an implicit step:
// the normal penalty (with its C1 ramp) and a lagged friction potential (the stick spring's
// L tanh(kt s / L) law with the normal load L and the normal lagged). Energy, gradient, Hessian
// of one node against one collider. Host and device.
#ifndef DTAC_KERNELS_CONTACT_ENERGY_H_
#define DTAC_KERNELS_CONTACT_ENERGY_H_

#include "contact.h"
#include "dtac_hd.h"
#include "fem_hess.h"
#include "sdf.h"
#include "substep.h"

// integral of dtac_contact_ramp: R(p) = p^3 / (6 w) below w, w^2/6 + (p^2 - w^2)/2 - w (p - w)/2
// above (R' = ramp, R'' = dramp)
DTAC_HD double dtac_contact_ramp_int(double pen, double w) {
  if (pen <= 0) return 0;
  if (pen < w) return pen * pen * pen / (6 * w);
  return w * w / 6 + 0.5 * (pen * pen - w * w) - 0.5 * w * (pen - w);
}

// normal penalty energy kn R(-d(x)) of a node at x against collider c (kn already scaled), its
// gradient g (3, = minus contact.h's normal force without damping) and Hessian H (9, may be
// null): kn dramp n n^T - kn ramp Hd (Hd: the sdf's Hessian, world). project = 1 clamps H to
// positive semidefinite (a convex collider's curvature term is negative). Returns the energy;
// 0 (g, H zero) out of contact.
DTAC_HD double dtac_contact_energy(double kn, double width, const dtac_collider* c,
                                   const double x[3], double g[3], double* H, int project) {
  g[0] = g[1] = g[2] = 0;
  if (H) {
    for (int k = 0; k < 9; k++) H[k] = 0;
  }
  double n[3];
  double d = dtac_collider_dist_near(c, x, n);
  if (!(d < 0)) return 0;
  double dramp, ramp = dtac_contact_ramp(-d, width, &dramp);
  for (int k = 0; k < 3; k++) g[k] = -kn * ramp * n[k];
  if (H) {
    double pl[3], Hl[9], t[9], Hw[9];
    dtac_collider_to_local(c, x, pl);
    dtac_sdf_hess(c->type, c->size, c->planes, c->nplane, pl, Hl);
    // world Hessian R Hl R^T
    dtac_mul33(t, c->mat, Hl);
    dtac_mul33T(Hw, t, c->mat);
    for (int i = 0; i < 3; i++) {
      for (int j = 0; j < 3; j++)
        H[3 * i + j] = kn * dramp * n[i] * n[j] - kn * ramp * Hw[3 * i + j];
    }
    if (project) dtac_sym_project(H, 3);
  }
  return kn * dtac_contact_ramp_int(-d, width);
}

// log cosh(u) without overflow
DTAC_HD double dtac_logcosh(double u) {
  double a = fabs(u);
  return a + log1p(exp(-2 * a)) - 0.69314718055994530942;
}

// lagged friction potential of a node at x stuck to world anchor a, with the normal load L (> 0)
// and unit normal n held: s = |P (x - a)|, P = I - n n^T, Phi = L^2/kt log cosh(kt s / L), whose
// gradient L tanh(kt s / L) t (t = P (x - a) / s) is minus contact.h's friction force. Gradient g,
// Hessian H (may be null; positive semidefinite: kt sech^2 t t^T + L tanh / s (P - t t^T)). n is
// normalised here (contact.h projects with the sdf gradient as it is: the same for unit normals).
DTAC_HD double dtac_friction_energy(double L, double kt, const double n_in[3], const double x[3],
                                    const double a[3], double g[3], double* H) {
  // P must be a projector: an ellipsoid's sdf gradient is not of unit length
  double nl = dtac_norm3(n_in), n[3];
  for (int k = 0; k < 3; k++) n[k] = nl > 0 ? n_in[k] / nl : 0;
  double da[3], dt[3];
  dtac_sub3(da, x, a);
  double an = dtac_dot3(da, n);
  for (int k = 0; k < 3; k++) dt[k] = da[k] - an * n[k];
  double s = dtac_norm3(dt);
  double u = kt * s / L;
  double th = tanh(u);
  // near s = 0 the potential is kt s^2 / 2: L tanh(u)/s -> kt
  double ratio = u > 1e-8 ? L * th / s : kt * (1 - u * u / 3);
  for (int k = 0; k < 3; k++) g[k] = ratio * dt[k];
  if (H) {
    double sech2 = 1 - th * th;
    for (int i = 0; i < 3; i++) {
      for (int j = 0; j < 3; j++) {
        double P = (i == j ? 1 : 0) - n[i] * n[j];
        double tt = s > 0 ? dt[i] * dt[j] / (s * s) : 0;
        H[3 * i + j] = kt * sech2 * tt + ratio * (P - tt);
      }
    }
  }
  return L * L / kt * dtac_logcosh(u);
}

// derivatives of lam . grad Phi (dtac_friction_energy's gradient dotted with lam) with respect to
// the held normal load L (*dL) and the held normal n_in before its normalisation (dn, 3): what a
// VJP through the lag needs
DTAC_HD void dtac_friction_lag_adj(double L, double kt, const double n_in[3], const double x[3],
                                   const double a[3], const double lam[3], double* dL,
                                   double dn[3]) {
  double nl = dtac_norm3(n_in), n[3];
  for (int k = 0; k < 3; k++) n[k] = nl > 0 ? n_in[k] / nl : 0;
  double da[3], dt[3];
  dtac_sub3(da, x, a);
  double an = dtac_dot3(da, n);
  for (int k = 0; k < 3; k++) dt[k] = da[k] - an * n[k];
  double s = dtac_norm3(dt);
  double u = kt * s / L, th = tanh(u), sech2 = 1 - th * th;
  // grad = psi(s) dt, psi = L tanh(u) / s (-> kt at s = 0)
  double psi = u > 1e-8 ? L * th / s : kt * (1 - u * u / 3);
  double dpsi = u > 1e-8 ? (kt * sech2 - psi) / s : -2.0 / 3.0 * kt * kt * s / (L * L);
  double ldt = dtac_dot3(lam, dt);
  // d/dL of L tanh(kt s / L) = tanh(u) - u sech^2(u), times (lam . t)
  *dL = s > 0 ? (th - u * sech2) * ldt / s : 0;
  // d(lam . grad) = w . d(dt), w = psi' (lam . dt) t + psi lam, d(dt) = -(da.dn) n - (da.n) dn
  double w[3];
  for (int k = 0; k < 3; k++) w[k] = (s > 0 ? dpsi * ldt * dt[k] / s : 0) + psi * lam[k];
  double wn = dtac_dot3(w, n), dnn[3];
  for (int k = 0; k < 3; k++) dnn[k] = -wn * da[k] - an * w[k];
  // n = n_in / |n_in|
  double p = dtac_dot3(dnn, n);
  for (int k = 0; k < 3; k++) dn[k] = nl > 0 ? (dnn[k] - p * n[k]) / nl : 0;
}

#endif  // DTAC_KERNELS_CONTACT_ENERGY_H_
