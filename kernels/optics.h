// optics.h: the tactile sensor's optics, per pixel and per triangle: orthographic camera,
// triangle rasterisation (edge functions, barycentrics), and the smooth lighting model
//   rgb_c = background_c + sum_k coef[c][k] phi_k(n, depth)
// whose basis phi is a polynomial in the surface normal and the indentation, so that the model is
// linear in its parameters (calibration is linear least squares) and smooth in the geometry (its
// gradient is informative, unlike a binned look-up table). Each shading function has its adjoint
// after it. Host and device; MuJoCo-free.
#ifndef DTAC_KERNELS_OPTICS_H_
#define DTAC_KERNELS_OPTICS_H_

#include "dtac_hd.h"

// lighting basis size: cubic polynomial in (nx, ny) without constant (9) and indentation (1)
#define DTAC_OPTICS_NBASIS 10

// the indentation enters the basis in millimetres so that all basis values are O(0.1..1)
#define DTAC_OPTICS_DEPTH_SCALE 1e3

// ---- camera ------------------------------------------------------------------------------------------

// orthographic camera in the gel (site) frame, looking along +z from behind the back face;
// image column u runs along +x, row v along +y; pixel (col, row) has its centre at
// x = x0 + (col + 0.5) pitch, y = y0 + (row + 0.5) pitch
typedef struct dtac_camera_ {
  int width, height;  // pixels
  double pitch;       // m per pixel
  double x0, y0;      // site-frame x, y of the image's corner (col = 0, row = 0 edge)
  // site-frame rest face x_min x_max y_min y_max: a pixel centred in it that no deformed
  // triangle covers (the rim moved inwards) shows the face's nearest rim point; none if
  // x_max <= x_min (zero-initialised)
  double face[4];
} dtac_camera;

// continuous pixel coordinates (u, v) of a site-frame point: pixel centres at k + 0.5
DTAC_HD void dtac_camera_project(const dtac_camera* cam, const double p[3], double uv[2]) {
  uv[0] = (p[0] - cam->x0) / cam->pitch;
  uv[1] = (p[1] - cam->y0) / cam->pitch;
}

// ---- rasterisation ---------------------------------------------------------------------------------

// twice the signed area of (a, b, p) in the image plane: > 0 when p is left of a -> b
DTAC_HD double dtac_edge2(const double a[2], const double b[2], const double p[2]) {
  return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]);
}

// barycentric coordinates of p in the projected triangle (a, b, c); returns 1 if p is inside
// (boundary included), 0 outside or for a degenerate triangle
DTAC_HD int dtac_barycentric(const double a[2], const double b[2], const double c[2],
                             const double p[2], double w[3]) {
  double area = dtac_edge2(a, b, c);
  if (area == 0) return 0;
  double inv = 1.0 / area;
  w[0] = dtac_edge2(b, c, p) * inv;
  w[1] = dtac_edge2(c, a, p) * inv;
  w[2] = 1.0 - w[0] - w[1];
  const double tol = -1e-12;
  return w[0] >= tol && w[1] >= tol && w[2] >= tol;
}

// ---- lighting model ----------------------------------------------------------------------------------

// basis phi(n, depth): n is the unit outward surface normal in the site frame (+z at rest),
// depth the indentation in metres; every phi_k vanishes at rest, so an undeformed gel shows the
// background exactly
DTAC_HD void dtac_optics_basis(const double n[3], double depth, double phi[DTAC_OPTICS_NBASIS]) {
  double x = n[0], y = n[1];
  phi[0] = x;
  phi[1] = y;
  phi[2] = x * x;
  phi[3] = x * y;
  phi[4] = y * y;
  phi[5] = x * x * x;
  phi[6] = x * x * y;
  phi[7] = x * y * y;
  phi[8] = y * y * y;
  phi[9] = depth * DTAC_OPTICS_DEPTH_SCALE;
}

// colour of one pixel before clamping: bg (3), coef (3 x NBASIS, row c = channel c)
DTAC_HD void dtac_optics_shade_raw(const double bg[3], const double* coef, const double n[3],
                                   double depth, double rgb[3]) {
  double phi[DTAC_OPTICS_NBASIS];
  dtac_optics_basis(n, depth, phi);
  for (int c = 0; c < 3; c++) {
    double s = bg[c];
    for (int k = 0; k < DTAC_OPTICS_NBASIS; k++) s += coef[DTAC_OPTICS_NBASIS * c + k] * phi[k];
    rgb[c] = s;
  }
}

// VJP of dtac_optics_basis: n_bar (3) and depth_bar accumulate phi_bar's pull-back
DTAC_HD void dtac_optics_basis_adj(const double n[3], const double phi_bar[DTAC_OPTICS_NBASIS],
                                   double n_bar[3], double* depth_bar) {
  double x = n[0], y = n[1];
  const double* b = phi_bar;
  n_bar[0] += b[0] + 2 * x * b[2] + y * b[3] + 3 * x * x * b[5] + 2 * x * y * b[6] + y * y * b[7];
  n_bar[1] += b[1] + x * b[3] + 2 * y * b[4] + x * x * b[6] + 2 * x * y * b[7] + 3 * y * y * b[8];
  *depth_bar += DTAC_OPTICS_DEPTH_SCALE * b[9];
}

// VJP of dtac_optics_shade_raw: accumulates the cotangents of the normal, the depth and (when
// not null) the parameters bg (3) and coef (3 x NBASIS)
DTAC_HD void dtac_optics_shade_raw_adj(const double* coef, const double n[3], double depth,
                                       const double rgb_bar[3], double n_bar[3], double* depth_bar,
                                       double* bg_bar, double* coef_bar) {
  double phi[DTAC_OPTICS_NBASIS], phi_bar[DTAC_OPTICS_NBASIS];
  dtac_optics_basis(n, depth, phi);
  for (int k = 0; k < DTAC_OPTICS_NBASIS; k++) {
    phi_bar[k] = 0;
    for (int c = 0; c < 3; c++) phi_bar[k] += coef[DTAC_OPTICS_NBASIS * c + k] * rgb_bar[c];
  }
  for (int c = 0; c < 3; c++) {
    if (bg_bar) bg_bar[c] += rgb_bar[c];
    if (coef_bar) {
      for (int k = 0; k < DTAC_OPTICS_NBASIS; k++) {
        coef_bar[DTAC_OPTICS_NBASIS * c + k] += rgb_bar[c] * phi[k];
      }
    }
  }
  dtac_optics_basis_adj(n, phi_bar, n_bar, depth_bar);
}

// colour of one pixel, clamped to [0, 1] (a real sensor's pixels saturate too)
DTAC_HD void dtac_optics_shade(const double bg[3], const double* coef, const double n[3],
                               double depth, double rgb[3]) {
  dtac_optics_shade_raw(bg, coef, n, depth, rgb);
  for (int c = 0; c < 3; c++) rgb[c] = fmin(1.0, fmax(0.0, rgb[c]));
}

// VJP of dtac_optics_shade: a saturated channel passes no gradient
DTAC_HD void dtac_optics_shade_adj(const double bg[3], const double* coef, const double n[3],
                                   double depth, const double rgb_bar[3], double n_bar[3],
                                   double* depth_bar, double* bg_bar, double* coef_bar) {
  double raw[3], g[3];
  dtac_optics_shade_raw(bg, coef, n, depth, raw);
  for (int c = 0; c < 3; c++) g[c] = (raw[c] > 0 && raw[c] < 1) ? rgb_bar[c] : 0;
  dtac_optics_shade_raw_adj(coef, n, depth, g, n_bar, depth_bar, bg_bar, coef_bar);
}

// unit vector n = m / |m| and its VJP: m_bar += (n_bar - (n_bar . n) n) / |m|
DTAC_HD double dtac_normalize3(const double m[3], double n[3]) {
  double l = dtac_norm3(m);
  for (int k = 0; k < 3; k++) n[k] = l > 0 ? m[k] / l : 0;
  return l;
}

DTAC_HD void dtac_normalize3_adj(const double m[3], const double n_bar[3], double m_bar[3]) {
  double n[3];
  double l = dtac_normalize3(m, n);
  if (l <= 0) return;
  double d = dtac_dot3(n_bar, n);
  for (int k = 0; k < 3; k++) m_bar[k] += (n_bar[k] - d * n[k]) / l;
}

// default parameters: three coloured directional lights around the pad (red from +x, green and
// blue 120 degrees apart) at elevation `elev` with gain `gain`, Lambertian, expanded to second
// order in (nx, ny) (n.l - n0.l with nz = 1 - (nx^2 + ny^2)/2), plus a slight darkening with
// indentation; background a GelSight-Mini-like grey-blue
DTAC_HD void dtac_optics_default(double bg[3], double* coef) {
  const double gain = 1.6, elev = 30.0 * DTAC_PI / 180.0, darken_per_mm = -0.05;
  const double az[3] = {0.0, 2.0 * DTAC_PI / 3.0, 4.0 * DTAC_PI / 3.0};
  bg[0] = 0.45;
  bg[1] = 0.47;
  bg[2] = 0.52;
  for (int c = 0; c < 3; c++) {
    double* k = coef + DTAC_OPTICS_NBASIS * c;
    for (int j = 0; j < DTAC_OPTICS_NBASIS; j++) k[j] = 0;
    double lx = cos(elev) * cos(az[c]), ly = cos(elev) * sin(az[c]), lz = sin(elev);
    k[0] = gain * lx;
    k[1] = gain * ly;
    k[2] = -0.5 * gain * lz;
    k[4] = -0.5 * gain * lz;
    k[9] = darken_per_mm;
  }
}

// unit normal of a height field from its slopes: the surface z = T - depth(x, y) seen from +z
// has the outward normal (d depth/dx, d depth/dy, 1) / |.|
DTAC_HD void dtac_optics_normal_from_slope(double ddx, double ddy, double n[3]) {
  double s = 1.0 / sqrt(1.0 + ddx * ddx + ddy * ddy);
  n[0] = ddx * s;
  n[1] = ddy * s;
  n[2] = s;
}

// VJP of dtac_optics_normal_from_slope
DTAC_HD void dtac_optics_normal_from_slope_adj(double ddx, double ddy, const double n_bar[3],
                                               double* ddx_bar, double* ddy_bar) {
  double m[3] = {ddx, ddy, 1}, m_bar[3] = {0, 0, 0};
  dtac_normalize3_adj(m, n_bar, m_bar);
  *ddx_bar += m_bar[0];
  *ddy_bar += m_bar[1];
}

#endif  // DTAC_KERNELS_OPTICS_H_
