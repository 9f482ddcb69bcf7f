// raster_depth.c: the depth image: forward, VJP and tangent side by side (raster_image.h).
#include <math.h>
#include <string.h>

#include "raster_image.h"

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
