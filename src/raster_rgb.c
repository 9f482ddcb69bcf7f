// raster_rgb.c: the rgb image: forward, VJP and tangent side by side (raster_image.h).
#include <math.h>
#include <string.h>

#include "raster_image.h"

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
    dtac_pixel_interp_adj(cam, nvx, p, vis, k, attr, 4, qb, p_bar, attr_bar);
  }
  if (!p_bar) return;
  for (int a = 0; a < nv; a++) {
    for (int k = 0; k < 3; k++) nrm_bar[3 * a + k] = attr_bar[4 * a + k];
    p_bar[3 * a + 2] -= attr_bar[4 * a + 3];
  }
  dtac_top_normals_adj(nvx, nvy, p, nrm_bar, p_bar, scratch);
}

void dtac_raster_rgb_jvp(const dtac_camera* cam, int nvx, int nvy, const double* p, const double* X,
                         const double bg[3], const double* coef, const dtac_vis* vis,
                         const double* dp, double* dimg, double* work) {
  const int nv = nvx * nvy, npix = cam->width * cam->height;
  double* m = work;                // nv x 3: unnormalised vertex normals, then their tangents
  double* dm = work + 3 * nv;      // nv x 3
  double* attr = work + 6 * nv;    // nv x 4
  double* dattr = work + 10 * nv;  // nv x 4
  memset(m, 0, sizeof(double) * 6 * nv);
  const int ntri = dtac_top_ntri(nvx, nvy);
  for (int t = 0; t < ntri; t++) {
    int v[3];
    dtac_top_tri(nvx, t, v);
    double e1[3], e2[3], d1[3], d2[3], n[3], t1[3], t2[3];
    dtac_sub3(e1, p + 3 * v[1], p + 3 * v[0]);
    dtac_sub3(e2, p + 3 * v[2], p + 3 * v[0]);
    dtac_sub3(d1, dp + 3 * v[1], dp + 3 * v[0]);
    dtac_sub3(d2, dp + 3 * v[2], dp + 3 * v[0]);
    dtac_cross3(n, e1, e2);
    dtac_cross3(t1, d1, e2);
    dtac_cross3(t2, e1, d2);
    for (int q = 0; q < 3; q++) {
      for (int k = 0; k < 3; k++) {
        m[3 * v[q] + k] += n[k];
        dm[3 * v[q] + k] += t1[k] + t2[k];
      }
    }
  }
  for (int a = 0; a < nv; a++) {
    double n[3], len = dtac_norm3(m + 3 * a);
    if (len > 0) {
      for (int k = 0; k < 3; k++) n[k] = m[3 * a + k] / len;
    } else {
      n[0] = n[1] = 0;
      n[2] = 1;
    }
    double dn = len > 0 ? dtac_dot3(n, dm + 3 * a) : 0;
    for (int k = 0; k < 3; k++) {
      attr[4 * a + k] = n[k];
      dattr[4 * a + k] = len > 0 ? (dm[3 * a + k] - dn * n[k]) / len : 0;
    }
    attr[4 * a + 3] = X[3 * a + 2] - p[3 * a + 2];
    dattr[4 * a + 3] = -dp[3 * a + 2];
  }
  // per pixel: (q, dq) interpolated, normal renormalised, then the lighting model
  const int W = cam->width;
  for (int k = 0; k < npix; k++) {
    double* o = dimg + 3 * (size_t)k;
    o[0] = o[1] = o[2] = 0;
    int t = vis->tri[k];
    if (t < 0) continue;
    int v[3];
    dtac_top_tri(nvx, t, v);
    double w[3] = {vis->bary[2 * k], vis->bary[2 * k + 1], 0}, uv[3][2], duv[3][2], dw[3];
    w[2] = 1.0 - w[0] - w[1];
    for (int q = 0; q < 3; q++) {
      dtac_camera_project(cam, p + 3 * v[q], uv[q]);
      duv[q][0] = dp[3 * v[q]] / cam->pitch;
      duv[q][1] = dp[3 * v[q] + 1] / cam->pitch;
    }
    const double pc[2] = {k % W + 0.5, k / W + 0.5};
    dtac_pixel_weights_jvp((const double(*)[2])uv, (const double(*)[2])duv, pc, w, dw);
    double qv[4], dqv[4];
    for (int c = 0; c < 4; c++) {
      qv[c] = dqv[c] = 0;
      for (int q = 0; q < 3; q++) {
        qv[c] += w[q] * attr[4 * v[q] + c];
        dqv[c] += dw[q] * attr[4 * v[q] + c] + w[q] * dattr[4 * v[q] + c];
      }
    }
    double n[3] = {0, 0, 1}, dnv[3] = {0, 0, 0}, len = dtac_norm3(qv);
    if (len > 0) {
      for (int c = 0; c < 3; c++) n[c] = qv[c] / len;
      double s = dtac_dot3(n, dqv);
      for (int c = 0; c < 3; c++) dnv[c] = (dqv[c] - s * n[c]) / len;
    }
    // the lighting model's row c: its gradient in (n, depth) from the adjoint with a unit bar
    for (int c = 0; c < 3; c++) {
      double rb[3] = {0, 0, 0}, nb[3] = {0, 0, 0}, db = 0;
      rb[c] = 1;
      dtac_optics_shade_adj(bg, coef, n, qv[3], rb, nb, &db, NULL, NULL);
      o[c] = dtac_dot3(nb, dnv) + db * dqv[3];
    }
  }
}
