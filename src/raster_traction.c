// raster_traction.c: the pressure and shear images: forward, VJP and tangent side by side
// (raster_image.h).
#include <math.h>
#include <string.h>

#include "raster_image.h"

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
    double E = dtac_edge2(a, b, c), dE = dtac_edge2_jvp(a, b, c, da, db, dc);
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
