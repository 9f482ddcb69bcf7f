// raster.c: rasterisation of a gel's top face into a camera's pixel grid (see raster.h).
#include "raster.h"

#include <math.h>
#include <string.h>

void dtac_top_tri(int nvx, int t, int v[3]) {
  int q = t >> 1, i = q % (nvx - 1), j = q / (nvx - 1);
  int a00 = i + nvx * j, a10 = a00 + 1, a01 = a00 + nvx, a11 = a01 + 1;
  if (t & 1) {
    v[0] = a00;
    v[1] = a11;
    v[2] = a01;
  } else {
    v[0] = a00;
    v[1] = a10;
    v[2] = a11;
  }
}

void dtac_raster_visibility(const dtac_camera* cam, int nvx, int nvy, const double* p,
                            dtac_vis* vis) {
  const int W = cam->width, H = cam->height, npix = W * H;
  for (int k = 0; k < npix; k++) {
    vis->zbuf[k] = INFINITY;
    vis->tri[k] = -1;
  }
  const int ntri = dtac_top_ntri(nvx, nvy);
  for (int t = 0; t < ntri; t++) {
    int v[3];
    dtac_top_tri(nvx, t, v);
    double uv[3][2], z[3];
    for (int q = 0; q < 3; q++) {
      dtac_camera_project(cam, p + 3 * v[q], uv[q]);
      z[q] = p[3 * v[q] + 2];
    }
    // pixel centres (k + 0.5) inside the triangle's bounding box
    double umin = fmin(uv[0][0], fmin(uv[1][0], uv[2][0]));
    double umax = fmax(uv[0][0], fmax(uv[1][0], uv[2][0]));
    double vmin = fmin(uv[0][1], fmin(uv[1][1], uv[2][1]));
    double vmax = fmax(uv[0][1], fmax(uv[1][1], uv[2][1]));
    if (!(umax >= 0 && vmax >= 0 && umin <= W && vmin <= H)) continue;  // off image or NaN
    int c0 = (int)fmax(0, ceil(umin - 0.5)), c1 = (int)fmin(W - 1, floor(umax - 0.5));
    int r0 = (int)fmax(0, ceil(vmin - 0.5)), r1 = (int)fmin(H - 1, floor(vmax - 0.5));
    for (int r = r0; r <= r1; r++) {
      for (int c = c0; c <= c1; c++) {
        double pc[2] = {c + 0.5, r + 0.5}, w[3];
        if (!dtac_barycentric(uv[0], uv[1], uv[2], pc, w)) continue;
        double zp = w[0] * z[0] + w[1] * z[1] + w[2] * z[2];
        int k = r * W + c;
        if (zp < vis->zbuf[k]) {
          vis->zbuf[k] = zp;
          vis->tri[k] = t;
          vis->bary[2 * k] = w[0];
          vis->bary[2 * k + 1] = w[1];
        }
      }
    }
  }
}

void dtac_raster_resolve(const dtac_camera* cam, int nvx, const dtac_vis* vis, const double* attr,
                         int C, double outside, double* out) {
  const int npix = cam->width * cam->height;
  for (int k = 0; k < npix; k++) {
    double* o = out + (size_t)k * C;
    int t = vis->tri[k];
    if (t < 0) {
      for (int c = 0; c < C; c++) o[c] = outside;
      continue;
    }
    int v[3];
    dtac_top_tri(nvx, t, v);
    double w0 = vis->bary[2 * k], w1 = vis->bary[2 * k + 1], w2 = 1.0 - w0 - w1;
    const double* a0 = attr + (size_t)v[0] * C;
    const double* a1 = attr + (size_t)v[1] * C;
    const double* a2 = attr + (size_t)v[2] * C;
    for (int c = 0; c < C; c++) o[c] = w0 * a0[c] + w1 * a1[c] + w2 * a2[c];
  }
}

void dtac_top_normals(int nvx, int nvy, const double* p, double* nrm) {
  const int nv = nvx * nvy;
  memset(nrm, 0, sizeof(double) * 3 * nv);
  const int ntri = dtac_top_ntri(nvx, nvy);
  for (int t = 0; t < ntri; t++) {
    int v[3];
    dtac_top_tri(nvx, t, v);
    double e1[3], e2[3], n[3];
    dtac_sub3(e1, p + 3 * v[1], p + 3 * v[0]);
    dtac_sub3(e2, p + 3 * v[2], p + 3 * v[0]);
    dtac_cross3(n, e1, e2);  // twice the area times the +z-facing unit normal
    for (int q = 0; q < 3; q++) {
      for (int k = 0; k < 3; k++) nrm[3 * v[q] + k] += n[k];
    }
  }
  for (int a = 0; a < nv; a++) {
    double* n = nrm + 3 * a;
    double len = dtac_norm3(n);
    if (len > 0) {
      for (int k = 0; k < 3; k++) n[k] /= len;
    } else {
      n[0] = n[1] = 0;
      n[2] = 1;
    }
  }
}

void dtac_top_areas(int nvx, int nvy, const double* p, double* area) {
  const int nv = nvx * nvy;
  memset(area, 0, sizeof(double) * nv);
  const int ntri = dtac_top_ntri(nvx, nvy);
  for (int t = 0; t < ntri; t++) {
    int v[3];
    dtac_top_tri(nvx, t, v);
    double a[2] = {p[3 * v[0]], p[3 * v[0] + 1]}, b[2] = {p[3 * v[1]], p[3 * v[1] + 1]};
    double c[2] = {p[3 * v[2]], p[3 * v[2] + 1]};
    double third = fabs(dtac_edge2(a, b, c)) / 6.0;
    for (int q = 0; q < 3; q++) area[v[q]] += third;
  }
}

int dtac_top_locate(int nvx, int nvy, const double* p, double x, double y, double w[3]) {
  const int ntri = dtac_top_ntri(nvx, nvy);
  const double q[2] = {x, y};
  for (int t = 0; t < ntri; t++) {
    int v[3];
    dtac_top_tri(nvx, t, v);
    double a[2] = {p[3 * v[0]], p[3 * v[0] + 1]}, b[2] = {p[3 * v[1]], p[3 * v[1] + 1]};
    double c[2] = {p[3 * v[2]], p[3 * v[2] + 1]};
    if (dtac_barycentric(a, b, c, q, w)) return t;
  }
  return -1;
}
