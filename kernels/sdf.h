// sdf.h: signed distance of MuJoCo geom shapes in the geom's local frame, with gradient and
// Hessian. Header-only; compiles as C11, C++ and CUDA device code (DTAC_HD). Negative inside.
// Sizes follow MuJoCo's geom_size and are assumed positive.
#ifndef DTAC_KERNELS_SDF_H_
#define DTAC_KERNELS_SDF_H_

#include "dtac_hd.h"

// geom type codes: the numeric values of MuJoCo's mjtGeom
typedef enum dtacGeom_ {
  DTAC_GEOM_PLANE = 0,
  DTAC_GEOM_HFIELD = 1,  // unsupported
  DTAC_GEOM_SPHERE = 2,
  DTAC_GEOM_CAPSULE = 3,
  DTAC_GEOM_ELLIPSOID = 4,
  DTAC_GEOM_CYLINDER = 5,
  DTAC_GEOM_BOX = 6,
  DTAC_GEOM_MESH = 7
} dtacGeom;

// returned for unsupported types and empty meshes: far outside, never in contact
#define DTAC_SDF_FAR 1e30

// lengths below this are degenerate: direction is picked, curvature term dropped
#define DTAC_SDF_TINY 1e-150

// ---- helpers
// -------------------------------------------------------------------------------------

DTAC_HD void dtac_sdf_set3(double r[3], double x, double y, double z) {
  r[0] = x;
  r[1] = y;
  r[2] = z;
}

DTAC_HD void dtac_sdf_zero9(double* H) {
  if (!H) return;
  for (int k = 0; k < 9; k++) H[k] = 0;
}

// |v|, n <= 3, scaled by max |v_i| so the squares neither overflow nor underflow
DTAC_HD double dtac_sdf_len(const double* v, int n) {
  double m = 0, s = 0;
  for (int i = 0; i < n; i++) {
    double a = fabs(v[i]);
    if (a > m) m = a;
  }
  if (m == 0) return 0;
  for (int i = 0; i < n; i++) {
    double t = v[i] / m;
    s += t * t;
  }
  return m * sqrt(s);
}

// H = (diag(jd) - n n^T) / L: Hessian of L = |J x| with J = diag(jd) a 0/1 projector, n = grad
DTAC_HD void dtac_sdf_curv(double* H, const double jd[3], const double n[3], double L) {
  if (!H) return;
  if (L < DTAC_SDF_TINY) {
    dtac_sdf_zero9(H);
    return;
  }
  for (int i = 0; i < 3; i++) {
    for (int j = 0; j < 3; j++) {
      H[3 * i + j] = ((i == j ? jd[i] : 0.0) - n[i] * n[j]) / L;
    }
  }
}

// ---- per-type sdf; H may be null ----------------------------------------------------------------

// plane: half-space z <= 0 is inside
DTAC_HD double dtac_sdf_plane(const double p[3], double g[3], double* H) {
  dtac_sdf_set3(g, 0, 0, 1);
  dtac_sdf_zero9(H);
  return p[2];
}

// sphere: |p| - R; at the centre grad = +z
DTAC_HD double dtac_sdf_sphere(const double size[3], const double p[3], double g[3], double* H) {
  const double one[3] = {1, 1, 1};
  double L = dtac_sdf_len(p, 3);
  if (L < DTAC_SDF_TINY) {
    dtac_sdf_set3(g, 0, 0, 1);
  } else {
    dtac_sdf_set3(g, p[0] / L, p[1] / L, p[2] / L);
  }
  dtac_sdf_curv(H, one, g, L);
  return L - size[0];
}

// capsule: distance to the z-segment [-h, h] minus R; on the segment grad = +x
DTAC_HD double dtac_sdf_capsule(const double size[3], const double p[3], double g[3], double* H) {
  double h = size[1];
  double zc = p[2] > h ? h : (p[2] < -h ? -h : p[2]);
  double d[3] = {p[0], p[1], p[2] - zc};
  double L = dtac_sdf_len(d, 3);
  if (L < DTAC_SDF_TINY) {
    dtac_sdf_set3(g, 1, 0, 0);
  } else {
    dtac_sdf_set3(g, d[0] / L, d[1] / L, d[2] / L);
  }

  // along the side the closest point slides with z: d is the xy-projection of p
  double jd[3] = {1, 1, (p[2] > -h && p[2] < h) ? 0.0 : 1.0};
  dtac_sdf_curv(H, jd, g, L);
  return L - size[0];
}

// ellipsoid: f = k0 (k0 - 1) / k1, k0 = |p/r|, k1 = |p/r^2| (first-order distance (k0-1)/|grad
// k0|), exact zero set, exact for equal radii; computed on q = p/s, s = max|p_i|, to avoid overflow
DTAC_HD double dtac_sdf_ellipsoid(const double size[3], const double p[3], double g[3], double* H) {
  double rmin = size[0];
  if (size[1] < rmin) rmin = size[1];
  if (size[2] < rmin) rmin = size[2];
  double s = fabs(p[0]);
  if (fabs(p[1]) > s) s = fabs(p[1]);
  if (fabs(p[2]) > s) s = fabs(p[2]);

  // centre: f is discontinuous there (limit -r_i along axis i); return the true distance -rmin
  if (s <= 1e-12 * rmin) {
    dtac_sdf_set3(g, 0, 0, 1);
    dtac_sdf_zero9(H);
    return -rmin;
  }

  // k0 = s*a0, k1 = s*b0
  double q[3] = {p[0] / s, p[1] / s, p[2] / s};
  double A[3], B[3], qa[3], qb[3];
  for (int i = 0; i < 3; i++) {
    A[i] = 1 / (size[i] * size[i]);
    B[i] = A[i] * A[i];
    qa[i] = q[i] / size[i];
    qb[i] = q[i] * A[i];
  }
  double a0 = dtac_norm3(qa), b0 = dtac_norm3(qb);
  double k0 = s * a0, k1 = s * b0;
  double f = a0 * (k0 - 1) / b0;

  // a = grad k0 = A p / k0, b = grad k1 = B p / k1
  double a[3], b[3];
  for (int i = 0; i < 3; i++) {
    a[i] = A[i] * q[i] / a0;
    b[i] = B[i] * q[i] / b0;
  }

  // grad f = ((2 k0 - 1) a - f b) / k1; c = (2 k0 - 1)/k1, fk1 = f/k1 written without s*s
  double is = 1 / s;
  double c = (2 * a0 - is) / b0;
  double fk1 = a0 * (a0 - is) / (b0 * b0);
  for (int i = 0; i < 3; i++) g[i] = c * a[i] - fk1 * b[i];

  // hess k0 = (A - a a^T)/k0, hess k1 = (B - b b^T)/k1, N = k0^2 - k0, f = N/k1, gN = grad N / k1:
  // H = [2 a a^T + (2k0-1)(A - a a^T)/k0 - gN b^T - b gN^T] / k1 + f (3 b b^T - B) / k1^2
  if (H) {
    double gN[3] = {c * a[0], c * a[1], c * a[2]};
    double e = 2 - 1 / k0;
    double fk = fk1 / k1;
    for (int i = 0; i < 3; i++) {
      for (int j = 0; j < 3; j++) {
        double m = 2 * a[i] * a[j] + e * ((i == j ? A[i] : 0.0) - a[i] * a[j]) - gN[i] * b[j] -
                   b[i] * gN[j];
        H[3 * i + j] = m / k1 + fk * (3 * b[i] * b[j] - (i == j ? B[i] : 0.0));
      }
    }
  }
  return f;
}

// cylinder: 2D box distance in (r, |z|) lifted to 3D; on the axis the radial direction is +x
DTAC_HD double dtac_sdf_cylinder(const double size[3], const double p[3], double g[3], double* H) {
  double r = dtac_sdf_len(p, 2);
  double w0 = r - size[0], w1 = fabs(p[2]) - size[1];
  double ux = 1, uy = 0, sz = p[2] >= 0 ? 1.0 : -1.0;
  if (r >= DTAC_SDF_TINY) {
    ux = p[0] / r;
    uy = p[1] / r;
  }

  // F(r, |z|) with first (Fr, Fz) and second (Frr, Frz, Fzz) derivatives
  double F, Fr = 0, Fz = 0, Frr = 0, Frz = 0, Fzz = 0;
  if (w0 <= 0 && w1 <= 0) {
    // inside: nearest face
    if (w0 >= w1) {
      F = w0;
      Fr = 1;
    } else {
      F = w1;
      Fz = 1;
    }
  } else {
    // outside: |max(w, 0)|; curvature only where both are active (the rim)
    double m[2] = {w0 > 0 ? w0 : 0.0, w1 > 0 ? w1 : 0.0};
    F = dtac_sdf_len(m, 2);
    Fr = m[0] / F;
    Fz = m[1] / F;
    if (w0 > 0 && w1 > 0) {
      Frr = Fz * Fz / F;
      Frz = -Fr * Fz / F;
      Fzz = Fr * Fr / F;
    }
  }

  // grad = Fr (u, 0) + Fz (0, 0, sz)
  dtac_sdf_set3(g, Fr * ux, Fr * uy, Fz * sz);

  // H = Frr uu^T + Frz (u ez^T + ez u^T) sz + Fzz ez ez^T + Fr (Pxy - uu^T) / r
  if (H) {
    double u[3] = {ux, uy, 0};
    double k = (r >= DTAC_SDF_TINY) ? Fr / r : 0.0;
    for (int i = 0; i < 3; i++) {
      for (int j = 0; j < 3; j++) {
        H[3 * i + j] = (Frr - k) * u[i] * u[j] + (i == j && i < 2 ? k : 0.0);
      }
    }
    H[2] = H[6] = Frz * sz * ux;
    H[5] = H[7] = Frz * sz * uy;
    H[8] = Fzz;
  }
  return F;
}

// box: exact; inside max_i(|p_i| - b_i), outside |max(|p| - b, 0)|; sign(0) = +
DTAC_HD double dtac_sdf_box(const double size[3], const double p[3], double g[3], double* H) {
  double q[3], sg[3];
  int imax = 0;
  for (int i = 0; i < 3; i++) {
    sg[i] = p[i] >= 0 ? 1.0 : -1.0;
    q[i] = fabs(p[i]) - size[i];
    if (q[i] > q[imax]) imax = i;
  }

  // inside or on the surface: nearest face, piecewise linear
  if (q[imax] <= 0) {
    dtac_sdf_set3(g, 0, 0, 0);
    g[imax] = sg[imax];
    dtac_sdf_zero9(H);
    return q[imax];
  }

  // outside: distance to the clamped point; curvature on edges and corners
  double m[3], jd[3];
  for (int i = 0; i < 3; i++) {
    m[i] = q[i] > 0 ? q[i] : 0.0;
    jd[i] = q[i] > 0 ? 1.0 : 0.0;
  }
  double L = dtac_sdf_len(m, 3);
  for (int i = 0; i < 3; i++) g[i] = sg[i] * m[i] / L;
  dtac_sdf_curv(H, jd, g, L);
  return L;
}

// convex mesh {p : n_k.p <= d_k}: max_k (n_k.p - d_k); exact inside, outside a lower bound on the
// distance (exact in face regions, smaller near edges and vertices) with the correct sign
DTAC_HD double dtac_sdf_mesh(const double* planes, int nplane, const double p[3], double g[3],
                             double* H) {
  dtac_sdf_zero9(H);
  if (!planes || nplane <= 0) {
    dtac_sdf_set3(g, 0, 0, 1);
    return DTAC_SDF_FAR;
  }
  int kmax = 0;
  double vmax = 0;
  for (int k = 0; k < nplane; k++) {
    double v = dtac_dot3(planes + 4 * k, p) - planes[4 * k + 3];
    if (k == 0 || v > vmax) {
      vmax = v;
      kmax = k;
    }
  }
  dtac_sdf_set3(g, planes[4 * kmax], planes[4 * kmax + 1], planes[4 * kmax + 2]);
  return vmax;
}

// dispatch; unsupported types are far outside
DTAC_HD double dtac_sdf_eval(int type, const double size[3], const double* planes, int nplane,
                             const double p[3], double g[3], double* H) {
  switch (type) {
    case DTAC_GEOM_PLANE:
      return dtac_sdf_plane(p, g, H);
    case DTAC_GEOM_SPHERE:
      return dtac_sdf_sphere(size, p, g, H);
    case DTAC_GEOM_CAPSULE:
      return dtac_sdf_capsule(size, p, g, H);
    case DTAC_GEOM_ELLIPSOID:
      return dtac_sdf_ellipsoid(size, p, g, H);
    case DTAC_GEOM_CYLINDER:
      return dtac_sdf_cylinder(size, p, g, H);
    case DTAC_GEOM_BOX:
      return dtac_sdf_box(size, p, g, H);
    case DTAC_GEOM_MESH:
      return dtac_sdf_mesh(planes, nplane, p, g, H);
    default:
      dtac_sdf_set3(g, 0, 0, 1);
      dtac_sdf_zero9(H);
      return DTAC_SDF_FAR;
  }
}

// ---- API
// -----------------------------------------------------------------------------------------

// signed distance of local point p (negative inside); grad = d(sdf)/dp
DTAC_HD double dtac_sdf(int type, const double size[3], const double* planes, int nplane,
                        const double p[3], double grad[3]) {
  return dtac_sdf_eval(type, size, planes, nplane, p, grad, 0);
}

// Hessian of the sdf at p, H = d(grad)/dp, row-major 3x3
DTAC_HD void dtac_sdf_hess(int type, const double size[3], const double* planes, int nplane,
                           const double p[3], double H[9]) {
  double g[3];
  dtac_sdf_eval(type, size, planes, nplane, p, g, H);
}

// true if the type is supported
DTAC_HD int dtac_sdf_supported(int type) {
  return type == DTAC_GEOM_PLANE || type == DTAC_GEOM_SPHERE || type == DTAC_GEOM_CAPSULE ||
         type == DTAC_GEOM_ELLIPSOID || type == DTAC_GEOM_CYLINDER || type == DTAC_GEOM_BOX ||
         type == DTAC_GEOM_MESH;
}

#endif  // DTAC_KERNELS_SDF_H_
