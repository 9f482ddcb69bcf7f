// raster_jvp.c: tangents (Jacobian-vector products) of the tactile images of raster_adj.c, with
// the visibility of the forward pass held (as the adjoints hold it): given tangents of the
// top-face nodes dp (site frame, nv x 3) and of the node forces df, the tangent of the image.
#include <math.h>
#include <string.h>

#include "raster_adj.h"

// tangent of dtac_edge2(a, b, p)
static double edge2_jvp(const double a[2], const double b[2], const double p[2], const double da[2],
                        const double db[2], const double dp[2]) {
  return (db[0] - da[0]) * (p[1] - a[1]) + (b[0] - a[0]) * (dp[1] - da[1]) -
         (db[1] - da[1]) * (p[0] - a[0]) - (b[1] - a[1]) * (dp[0] - da[0]);
}

// tangent of the barycentric weights (dtac_barycentric) of the fixed point pc
static void barycentric_jvp(const double a[2], const double b[2], const double c[2],
                            const double pc[2], const double da[2], const double db[2],
                            const double dc[2], double dw[3]) {
  const double z[2] = {0, 0};
  double E = dtac_edge2(a, b, c), dE = edge2_jvp(a, b, c, da, db, dc);
  double E0 = dtac_edge2(b, c, pc), dE0 = edge2_jvp(b, c, pc, db, dc, z);
  double E1 = dtac_edge2(c, a, pc), dE1 = edge2_jvp(c, a, pc, dc, da, z);
  dw[0] = (dE0 * E - E0 * dE) / (E * E);
  dw[1] = (dE1 * E - E1 * dE) / (E * E);
  dw[2] = -dw[0] - dw[1];
}

void dtac_raster_interp_jvp(const dtac_camera* cam, int nvx, const double* p, const double* dp,
                            const dtac_vis* vis, const double* attr, const double* dattr, int C,
                            double* dout) {
  const int W = cam->width, npix = W * cam->height;
  for (int k = 0; k < npix; k++) {
    double* o = dout + (size_t)k * C;
    int t = vis->tri[k];
    for (int c = 0; c < C; c++) o[c] = 0;
    if (t < 0) continue;
    int v[3];
    dtac_top_tri(nvx, t, v);
    double w[3] = {vis->bary[2 * k], vis->bary[2 * k + 1], 0}, uv[3][2], duv[3][2], dw[3] = {0};
    w[2] = 1.0 - w[0] - w[1];
    if (dp) {
      for (int q = 0; q < 3; q++) {
        dtac_camera_project(cam, p + 3 * v[q], uv[q]);
        duv[q][0] = dp[3 * v[q]] / cam->pitch;
        duv[q][1] = dp[3 * v[q] + 1] / cam->pitch;
      }
      const double pc[2] = {k % W + 0.5, k / W + 0.5};
      barycentric_jvp(uv[0], uv[1], uv[2], pc, duv[0], duv[1], duv[2], dw);
    }
    for (int q = 0; q < 3; q++) {
      for (int c = 0; c < C; c++) {
        o[c] += dw[q] * attr[(size_t)v[q] * C + c];
        if (dattr) o[c] += w[q] * dattr[(size_t)v[q] * C + c];
      }
    }
  }
}

void dtac_raster_depth_jvp(const dtac_camera* cam, int nvx, int nvy, const double* p,
                           const double* X, const dtac_vis* vis, const double* dp, double* dimg,
                           double* work) {
  const int nv = nvx * nvy;
  double* attr = work;
  double* dattr = work + nv;
  for (int a = 0; a < nv; a++) {
    attr[a] = X[3 * a + 2] - p[3 * a + 2];
    dattr[a] = -dp[3 * a + 2];
  }
  dtac_raster_interp_jvp(cam, nvx, p, dp, vis, attr, dattr, 1, dimg);
}

void dtac_raster_traction_jvp(const dtac_camera* cam, int nvx, int nvy, const double* p,
                              const double* f, int C, const dtac_vis* vis, const double* dp,
                              const double* df, double* dimg, double* work) {
  const int nv = nvx * nvy;
  double* area = work;            // nv
  double* darea = work + nv;      // nv
  double* attr = work + 2 * nv;   // nv x C
  double* dattr = work + 4 * nv;  // nv x C
  dtac_top_areas(nvx, nvy, p, area);
  memset(darea, 0, sizeof(double) * nv);
  const int ntri = dtac_top_ntri(nvx, nvy);
  for (int t = 0; t < ntri; t++) {
    int v[3];
    dtac_top_tri(nvx, t, v);
    double a[2] = {p[3 * v[0]], p[3 * v[0] + 1]}, b[2] = {p[3 * v[1]], p[3 * v[1] + 1]};
    double c[2] = {p[3 * v[2]], p[3 * v[2] + 1]};
    double da[2] = {dp[3 * v[0]], dp[3 * v[0] + 1]}, db[2] = {dp[3 * v[1]], dp[3 * v[1] + 1]};
    double dc[2] = {dp[3 * v[2]], dp[3 * v[2] + 1]};
    double E = dtac_edge2(a, b, c), dE = edge2_jvp(a, b, c, da, db, dc);
    double dthird = (E > 0 ? dE : (E < 0 ? -dE : 0)) / 6.0;
    for (int q = 0; q < 3; q++) darea[v[q]] += dthird;
  }
  for (int a = 0; a < nv; a++) {
    double inv = area[a] > 0 ? 1.0 / area[a] : 0;
    double dinv = area[a] > 0 ? -darea[a] * inv * inv : 0;
    if (C == 1) {
      attr[a] = -f[3 * a + 2] * inv;
      dattr[a] = -(df ? df[3 * a + 2] : 0) * inv - f[3 * a + 2] * dinv;
    } else {
      for (int k = 0; k < 2; k++) {
        attr[2 * a + k] = f[3 * a + k] * inv;
        dattr[2 * a + k] = (df ? df[3 * a + k] : 0) * inv + f[3 * a + k] * dinv;
      }
    }
  }
  dtac_raster_interp_jvp(cam, nvx, p, dp, vis, attr, dattr, C, dimg);
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
    barycentric_jvp(uv[0], uv[1], uv[2], pc, duv[0], duv[1], duv[2], dw);
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
