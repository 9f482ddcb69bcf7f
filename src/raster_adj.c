// raster_adj.c: tactile images as functions of the top-face nodes and their adjoints (see
// raster_adj.h). Forwards compose raster.c exactly as plugin/tactile.c does; adjoints hold the
// visibility (covering triangle per pixel) fixed and run serially in a fixed order.
#include "raster_adj.h"

#include <math.h>
#include <string.h>

// ---- building blocks
// ------------------------------------------------------------------------------

void dtac_edge2_adj(const double a[2], const double b[2], const double p[2], double e_bar,
                    double a_bar[2], double b_bar[2], double p_bar[2]) {
  // edge2 = (b0 - a0)(p1 - a1) - (b1 - a1)(p0 - a0)
  if (a_bar) {
    a_bar[0] += e_bar * (b[1] - p[1]);
    a_bar[1] += e_bar * (p[0] - b[0]);
  }
  if (b_bar) {
    b_bar[0] += e_bar * (p[1] - a[1]);
    b_bar[1] += e_bar * (a[0] - p[0]);
  }
  if (p_bar) {
    p_bar[0] += e_bar * (a[1] - b[1]);
    p_bar[1] += e_bar * (b[0] - a[0]);
  }
}

void dtac_barycentric_adj(const double a[2], const double b[2], const double c[2],
                          const double p[2], const double w_bar[3], double a_bar[2],
                          double b_bar[2], double c_bar[2]) {
  // w0 = e(b, c, p) / A, w1 = e(c, a, p) / A, w2 = 1 - w0 - w1, A = e(a, b, c)
  double area = dtac_edge2(a, b, c);
  if (area == 0) return;
  double inv = 1.0 / area;
  double w0 = dtac_edge2(b, c, p) * inv, w1 = dtac_edge2(c, a, p) * inv;
  double g0 = w_bar[0] - w_bar[2], g1 = w_bar[1] - w_bar[2];
  dtac_edge2_adj(b, c, p, g0 * inv, b_bar, c_bar, NULL);
  dtac_edge2_adj(c, a, p, g1 * inv, c_bar, a_bar, NULL);
  dtac_edge2_adj(a, b, c, -(g0 * w0 + g1 * w1) * inv, a_bar, b_bar, c_bar);
}

void dtac_raster_resolve_adj(const dtac_camera* cam, int nvx, const dtac_vis* vis,
                             const double* out_bar, int C, double* attr_bar) {
  const int npix = cam->width * cam->height;
  for (int k = 0; k < npix; k++) {
    int t = vis->tri[k];
    if (t < 0) continue;  // `outside` is a constant
    int v[3];
    dtac_top_tri(nvx, t, v);
    double w0 = vis->bary[2 * k], w1 = vis->bary[2 * k + 1], w[3] = {w0, w1, 1.0 - w0 - w1};
    const double* ob = out_bar + (size_t)k * C;
    for (int q = 0; q < 3; q++) {
      double* ab = attr_bar + (size_t)v[q] * C;
      for (int c = 0; c < C; c++) ab[c] += w[q] * ob[c];
    }
  }
}

// one covered pixel k's share of dtac_raster_interp_adj: ob (C) is the cotangent of its value
static void pixel_interp_adj(const dtac_camera* cam, int nvx, const double* p, const dtac_vis* vis,
                             int k, const double* attr, int C, const double* ob, double* p_bar,
                             double* attr_bar) {
  int v[3];
  dtac_top_tri(nvx, vis->tri[k], v);
  if (attr_bar) {
    double w0 = vis->bary[2 * k], w1 = vis->bary[2 * k + 1], w[3] = {w0, w1, 1.0 - w0 - w1};
    for (int q = 0; q < 3; q++) {
      double* ab = attr_bar + (size_t)v[q] * C;
      for (int c = 0; c < C; c++) ab[c] += w[q] * ob[c];
    }
  }
  if (p_bar) {
    double uv[3][2], uvb[3][2] = {{0, 0}, {0, 0}, {0, 0}}, wb[3];
    for (int q = 0; q < 3; q++) {
      dtac_camera_project(cam, p + 3 * v[q], uv[q]);
      const double* a = attr + (size_t)v[q] * C;
      wb[q] = 0;
      for (int c = 0; c < C; c++) wb[q] += ob[c] * a[c];
    }
    const double pc[2] = {k % cam->width + 0.5, k / cam->width + 0.5};
    dtac_barycentric_adj(uv[0], uv[1], uv[2], pc, wb, uvb[0], uvb[1], uvb[2]);
    for (int q = 0; q < 3; q++) {  // u = (x - x0) / pitch, v = (y - y0) / pitch
      p_bar[3 * v[q]] += uvb[q][0] / cam->pitch;
      p_bar[3 * v[q] + 1] += uvb[q][1] / cam->pitch;
    }
  }
}

void dtac_raster_interp_adj(const dtac_camera* cam, int nvx, const double* p, const dtac_vis* vis,
                            const double* attr, int C, const double* out_bar, double* p_bar,
                            double* attr_bar) {
  const int npix = cam->width * cam->height;
  for (int k = 0; k < npix; k++) {
    if (vis->tri[k] < 0) continue;
    pixel_interp_adj(cam, nvx, p, vis, k, attr, C, out_bar + (size_t)k * C, p_bar, attr_bar);
  }
}

void dtac_top_normals_adj(int nvx, int nvy, const double* p, const double* nrm_bar, double* p_bar,
                          double* work) {
  const int nv = nvx * nvy, ntri = dtac_top_ntri(nvx, nvy);
  double* m = work;  // unnormalised vertex normals (nv x 3), as dtac_top_normals sums them
  double* mb = work + 3 * nv;  // their cotangents
  memset(work, 0, sizeof(double) * 6 * nv);
  for (int t = 0; t < ntri; t++) {
    int v[3];
    dtac_top_tri(nvx, t, v);
    double e1[3], e2[3], n[3];
    dtac_sub3(e1, p + 3 * v[1], p + 3 * v[0]);
    dtac_sub3(e2, p + 3 * v[2], p + 3 * v[0]);
    dtac_cross3(n, e1, e2);
    for (int q = 0; q < 3; q++) {
      for (int k = 0; k < 3; k++) m[3 * v[q] + k] += n[k];
    }
  }
  // a zero sum gets the constant (0, 0, 1): no gradient (dtac_normalize3_adj adds nothing)
  for (int a = 0; a < nv; a++) dtac_normalize3_adj(m + 3 * a, nrm_bar + 3 * a, mb + 3 * a);
  for (int t = 0; t < ntri; t++) {
    int v[3];
    dtac_top_tri(nvx, t, v);
    double e1[3], e2[3], nb[3], e1b[3], e2b[3];
    dtac_sub3(e1, p + 3 * v[1], p + 3 * v[0]);
    dtac_sub3(e2, p + 3 * v[2], p + 3 * v[0]);
    for (int k = 0; k < 3; k++) nb[k] = mb[3 * v[0] + k] + mb[3 * v[1] + k] + mb[3 * v[2] + k];
    // n = e1 x e2: nb . (e1 x e2) = e1 . (e2 x nb) = e2 . (nb x e1)
    dtac_cross3(e1b, e2, nb);
    dtac_cross3(e2b, nb, e1);
    for (int k = 0; k < 3; k++) {
      p_bar[3 * v[1] + k] += e1b[k];
      p_bar[3 * v[2] + k] += e2b[k];
      p_bar[3 * v[0] + k] -= e1b[k] + e2b[k];
    }
  }
}

void dtac_top_areas_adj(int nvx, int nvy, const double* p, const double* area_bar, double* p_bar) {
  const int ntri = dtac_top_ntri(nvx, nvy);
  for (int t = 0; t < ntri; t++) {
    int v[3];
    dtac_top_tri(nvx, t, v);
    double a[2] = {p[3 * v[0]], p[3 * v[0] + 1]}, b[2] = {p[3 * v[1]], p[3 * v[1] + 1]};
    double c[2] = {p[3 * v[2]], p[3 * v[2] + 1]};
    double e = dtac_edge2(a, b, c);
    double sgn = e > 0 ? 1.0 : (e < 0 ? -1.0 : 0.0);  // |e| at e = 0: subgradient 0
    double eb = sgn / 6.0 * (area_bar[v[0]] + area_bar[v[1]] + area_bar[v[2]]);
    double ab[2] = {0, 0}, bb[2] = {0, 0}, cb[2] = {0, 0};
    dtac_edge2_adj(a, b, c, eb, ab, bb, cb);
    p_bar[3 * v[0]] += ab[0];
    p_bar[3 * v[0] + 1] += ab[1];
    p_bar[3 * v[1]] += bb[0];
    p_bar[3 * v[1] + 1] += bb[1];
    p_bar[3 * v[2]] += cb[0];
    p_bar[3 * v[2] + 1] += cb[1];
  }
}

// ---- depth
// ----------------------------------------------------------------------------------------

static void depth_attr(int nv, const double* p, const double* X, double* attr) {
  for (int a = 0; a < nv; a++) attr[a] = X[3 * a + 2] - p[3 * a + 2];
}

void dtac_raster_depth(const dtac_camera* cam, int nvx, int nvy, const double* p, const double* X,
                       dtac_vis* vis, double* work, double* img) {
  dtac_raster_visibility(cam, nvx, nvy, p, vis);
  depth_attr(nvx * nvy, p, X, work);
  dtac_raster_resolve(cam, nvx, vis, work, 1, 0, img);
}

void dtac_raster_depth_adj(const dtac_camera* cam, int nvx, int nvy, const double* p,
                           const double* X, const dtac_vis* vis, const double* img_bar,
                           double* p_bar, double* work) {
  const int nv = nvx * nvy;
  double* attr = work;
  double* attr_bar = work + nv;
  depth_attr(nv, p, X, attr);
  memset(attr_bar, 0, sizeof(double) * nv);
  dtac_raster_interp_adj(cam, nvx, p, vis, attr, 1, img_bar, p_bar, attr_bar);
  for (int a = 0; a < nv; a++) p_bar[3 * a + 2] -= attr_bar[a];
}

// ---- pressure and shear
// -----------------------------------------------------------------------------

// nodal traction (nv x C) from the forces and areas, as plugin/tactile.c forms it
static void traction_attr(int nv, const double* f, const double* area, int C, double* attr) {
  for (int a = 0; a < nv; a++) {
    double inv = area[a] > 0 ? 1.0 / area[a] : 0;
    if (C == 1) {
      attr[a] = -f[3 * a + 2] * inv;
    } else {
      attr[2 * a] = f[3 * a] * inv;
      attr[2 * a + 1] = f[3 * a + 1] * inv;
    }
  }
}

void dtac_raster_traction(const dtac_camera* cam, int nvx, int nvy, const double* p,
                          const double* f, int C, dtac_vis* vis, double* work, double* img) {
  const int nv = nvx * nvy;
  dtac_raster_visibility(cam, nvx, nvy, p, vis);
  dtac_top_areas(nvx, nvy, p, work);
  traction_attr(nv, f, work, C, work + nv);
  dtac_raster_resolve(cam, nvx, vis, work + nv, C, 0, img);
}

void dtac_raster_traction_adj(const dtac_camera* cam, int nvx, int nvy, const double* p,
                              const double* f, int C, const dtac_vis* vis, const double* img_bar,
                              double* p_bar, double* f_bar, double* work) {
  const int nv = nvx * nvy;
  double* area = work;               // nv
  double* attr = work + nv;          // nv x C
  double* attr_bar = work + 3 * nv;  // nv x C
  double* area_bar = work + 5 * nv;  // nv
  dtac_top_areas(nvx, nvy, p, area);
  traction_attr(nv, f, area, C, attr);
  memset(attr_bar, 0, sizeof(double) * C * nv);
  dtac_raster_interp_adj(cam, nvx, p, vis, attr, C, img_bar, p_bar, attr_bar);
  for (int a = 0; a < nv; a++) {
    double inv = area[a] > 0 ? 1.0 / area[a] : 0, inv_bar;
    if (C == 1) {
      if (f_bar) f_bar[3 * a + 2] -= attr_bar[a] * inv;
      inv_bar = -f[3 * a + 2] * attr_bar[a];
    } else {
      if (f_bar) {
        f_bar[3 * a] += attr_bar[2 * a] * inv;
        f_bar[3 * a + 1] += attr_bar[2 * a + 1] * inv;
      }
      inv_bar = f[3 * a] * attr_bar[2 * a] + f[3 * a + 1] * attr_bar[2 * a + 1];
    }
    area_bar[a] = area[a] > 0 ? -inv_bar * inv * inv : 0;  // d(1/A) = -dA / A^2
  }
  if (p_bar) dtac_top_areas_adj(nvx, nvy, p, area_bar, p_bar);
}

// ---- rgb
// --------------------------------------------------------------------------------------------

// per-vertex (unit normal, indentation) (nv x 4), as plugin/tactile.c forms it; nrm: nv x 3 scratch
static void rgb_attr(int nvx, int nvy, const double* p, const double* X, double* nrm,
                     double* attr) {
  dtac_top_normals(nvx, nvy, p, nrm);
  for (int a = 0; a < nvx * nvy; a++) {
    for (int k = 0; k < 3; k++) attr[4 * a + k] = nrm[3 * a + k];
    attr[4 * a + 3] = X[3 * a + 2] - p[3 * a + 2];
  }
}

// the shading normal of an interpolated (normal, indentation) q: q renormalised, +z if zero
static double pixel_normal(const double* q, double n[3]) {
  double len = dtac_norm3(q);
  n[0] = n[1] = 0;
  n[2] = 1;
  if (len > 0) {
    for (int c = 0; c < 3; c++) n[c] = q[c] / len;
  }
  return len;
}

void dtac_raster_rgb(const dtac_camera* cam, int nvx, int nvy, const double* p, const double* X,
                     const double bg[3], const double* coef, dtac_vis* vis, double* work,
                     double* pix, double* img) {
  const int nv = nvx * nvy, npix = cam->width * cam->height;
  dtac_raster_visibility(cam, nvx, nvy, p, vis);
  rgb_attr(nvx, nvy, p, X, work, work + 3 * nv);
  dtac_raster_resolve(cam, nvx, vis, work + 3 * nv, 4, 0, pix);
  for (int k = 0; k < npix; k++) {
    double* o = img + 3 * (size_t)k;
    if (vis->tri[k] < 0) {
      o[0] = o[1] = o[2] = 0;
      continue;
    }
    const double* q = pix + 4 * (size_t)k;
    double n[3];
    pixel_normal(q, n);
    dtac_optics_shade(bg, coef, n, q[3], o);
  }
}

void dtac_raster_rgb_adj(const dtac_camera* cam, int nvx, int nvy, const double* p, const double* X,
                         const double bg[3], const double* coef, const dtac_vis* vis,
                         const double* img_bar, double* p_bar, double* bg_bar, double* coef_bar,
                         double* work) {
  const int nv = nvx * nvy, npix = cam->width * cam->height;
  double* attr = work;               // nv x 4
  double* attr_bar = work + 4 * nv;  // nv x 4
  double* nrm_bar = work + 8 * nv;   // nv x 3 (first the normals' scratch)
  double* scratch = work + 11 * nv;  // 6 nv for dtac_top_normals_adj
  rgb_attr(nvx, nvy, p, X, nrm_bar, attr);
  memset(attr_bar, 0, sizeof(double) * 4 * nv);
  for (int k = 0; k < npix; k++) {
    int t = vis->tri[k];
    if (t < 0) continue;  // 0 outside the pad
    // the pixel's interpolated (normal, indentation) exactly as dtac_raster_resolve forms it
    int v[3];
    dtac_top_tri(nvx, t, v);
    double w0 = vis->bary[2 * k], w1 = vis->bary[2 * k + 1], w2 = 1.0 - w0 - w1, q[4];
    for (int c = 0; c < 4; c++) {
      q[c] = w0 * attr[4 * v[0] + c] + w1 * attr[4 * v[1] + c] + w2 * attr[4 * v[2] + c];
    }
    double n[3], nb[3] = {0, 0, 0}, qb[4] = {0, 0, 0, 0};
    double len = pixel_normal(q, n);
    dtac_optics_shade_adj(bg, coef, n, q[3], img_bar + 3 * (size_t)k, nb, &qb[3], bg_bar, coef_bar);
    if (!p_bar) continue;
    if (len > 0) dtac_normalize3_adj(q, nb, qb);
    pixel_interp_adj(cam, nvx, p, vis, k, attr, 4, qb, p_bar, attr_bar);
  }
  if (!p_bar) return;
  for (int a = 0; a < nv; a++) {
    for (int k = 0; k < 3; k++) nrm_bar[3 * a + k] = attr_bar[4 * a + k];
    p_bar[3 * a + 2] -= attr_bar[4 * a + 3];
  }
  dtac_top_normals_adj(nvx, nvy, p, nrm_bar, p_bar, scratch);
}
