// raster.c: rasterisation of a gel's top face into a camera's pixel grid, and the building
// blocks' adjoints and tangents (see raster.h, raster_image.h).
#include <math.h>
#include <string.h>

#include "raster.h"

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

// the point of the projected triangle uv nearest pc (on one of its edges: pc is outside it) as
// barycentric weights w with one or two zeros; returns the squared distance
static double nearest_on_tri(const double uv[3][2], const double pc[2], double w[3]) {
  double best = INFINITY;
  for (int e = 0; e < 3; e++) {
    const double* a = uv[e];
    const double* b = uv[(e + 1) % 3];
    double d[2] = {b[0] - a[0], b[1] - a[1]}, r[2] = {pc[0] - a[0], pc[1] - a[1]};
    double dd = d[0] * d[0] + d[1] * d[1];
    double s = dd > 0 ? fmin(1, fmax(0, (r[0] * d[0] + r[1] * d[1]) / dd)) : 0;
    double ex = r[0] - s * d[0], ey = r[1] - s * d[1], dist2 = ex * ex + ey * ey;
    if (dist2 < best) {
      best = dist2;
      w[0] = w[1] = w[2] = 0;
      w[e] = 1 - s;
      w[(e + 1) % 3] = s;
    }
  }
  return best;
}

// pixels centred inside the rest face that no deformed triangle covers (a rim pulled inwards,
// a sheared edge) take the nearest point of the deformed face's outline: a convex combination
// of two rim vertices' values, so no extrapolation beyond the gel and nothing non-finite
static void fill_rim(const dtac_camera* cam, int nvx, int nvy, const double* p, dtac_vis* vis) {
  const int W = cam->width, H = cam->height, nqx = nvx - 1, nqy = nvy - 1;
  for (int r = 0; r < H; r++) {
    double y = cam->y0 + (r + 0.5) * cam->pitch;
    if (y < cam->face[2] || y > cam->face[3]) continue;
    for (int c = 0; c < W; c++) {
      double x = cam->x0 + (c + 0.5) * cam->pitch;
      int k = r * W + c;
      if (vis->tri[k] >= 0 || x < cam->face[0] || x > cam->face[1]) continue;
      const double pc[2] = {c + 0.5, r + 0.5};
      double best = INFINITY, bw[3] = {0, 0, 0}, bz = 0;
      int bt = -1;
      // the triangles of the outer ring of quads
      for (int j = 0; j < nqy; j++) {
        int ring = j == 0 || j == nqy - 1;
        for (int i = 0; i < nqx; i += ring ? 1 : (nqx > 1 ? nqx - 1 : 1)) {
          for (int h = 0; h < 2; h++) {
            int t = 2 * (i + nqx * j) + h, v[3];
            dtac_top_tri(nvx, t, v);
            double uv[3][2], w[3] = {1, 0, 0};
            for (int q = 0; q < 3; q++) dtac_camera_project(cam, p + 3 * v[q], uv[q]);
            double dist2 = nearest_on_tri(uv, pc, w);
            if (dist2 < best) {
              best = dist2;
              bt = t;
              memcpy(bw, w, sizeof(bw));
              bz = w[0] * p[3 * v[0] + 2] + w[1] * p[3 * v[1] + 2] + w[2] * p[3 * v[2] + 2];
            }
          }
        }
      }
      if (bt < 0 || !isfinite(bz)) continue;  // no finite face: stays uncovered
      vis->zbuf[k] = bz;
      vis->tri[k] = bt;
      vis->bary[2 * k] = bw[0];
      vis->bary[2 * k + 1] = bw[1];
    }
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
  if (cam->face[1] > cam->face[0]) fill_rim(cam, nvx, nvy, p, vis);
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

// ---- adjoints of the building blocks
// ------------------------------------------------------------

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

// a rim pixel (pc outside its triangle, filled by fill_rim) has the weights of the nearest point
// of an edge (a, b) = (uv[ia], uv[ib]): w[ia] = 1 - s, w[ib] = s, s = (pc - a).(b - a) / |b - a|^2;
// returns 0 for an inside pixel, and for a rim pixel at a vertex (constant weights: ia = -1)
static int rim_edge(const double uv[3][2], const double pc[2], const double w[3], int* ia,
                    int* ib) {
  double wt[3];
  if (dtac_barycentric(uv[0], uv[1], uv[2], pc, wt)) return 0;
  // the vertex off the edge has the smallest weight (0 up to the rounding of w[2] = 1 - w0 - w1)
  int off = 0;
  for (int q = 1; q < 3; q++) off = fabs(w[q]) < fabs(w[off]) ? q : off;
  *ia = (off + 1) % 3;
  *ib = (off + 2) % 3;
  const double tol = 1e-12;
  if (w[*ib] < tol || w[*ib] > 1 - tol) *ia = *ib = -1;  // clamped at a vertex
  return 1;
}

// ds/da (2) and ds/db (2) of the rim parameter s of edge (a, b) at pc
static void rim_ds(const double a[2], const double b[2], const double pc[2], double s,
                   double dsda[2], double dsdb[2]) {
  double d[2] = {b[0] - a[0], b[1] - a[1]}, r[2] = {pc[0] - a[0], pc[1] - a[1]};
  double dd = d[0] * d[0] + d[1] * d[1];
  for (int k = 0; k < 2; k++) {
    dsdb[k] = (r[k] - 2 * s * d[k]) / dd;
    dsda[k] = -dsdb[k] - d[k] / dd;
  }
}

void dtac_pixel_weights_adj(const double uv[3][2], const double pc[2], const double w[3],
                            const double w_bar[3], double uv_bar[3][2]) {
  int ia, ib;
  if (!rim_edge(uv, pc, w, &ia, &ib)) {
    dtac_barycentric_adj(uv[0], uv[1], uv[2], pc, w_bar, uv_bar[0], uv_bar[1], uv_bar[2]);
    return;
  }
  if (ia < 0) return;
  double dsda[2], dsdb[2], sb = w_bar[ib] - w_bar[ia];
  rim_ds(uv[ia], uv[ib], pc, w[ib], dsda, dsdb);
  for (int k = 0; k < 2; k++) {
    uv_bar[ia][k] += sb * dsda[k];
    uv_bar[ib][k] += sb * dsdb[k];
  }
}

void dtac_pixel_weights_jvp(const double uv[3][2], const double duv[3][2], const double pc[2],
                            const double w[3], double dw[3]) {
  int ia, ib;
  if (!rim_edge(uv, pc, w, &ia, &ib)) {
    dtac_barycentric_jvp(uv[0], uv[1], uv[2], pc, duv[0], duv[1], duv[2], dw);
    return;
  }
  dw[0] = dw[1] = dw[2] = 0;
  if (ia < 0) return;
  double dsda[2], dsdb[2];
  rim_ds(uv[ia], uv[ib], pc, w[ib], dsda, dsdb);
  double ds = dsda[0] * duv[ia][0] + dsda[1] * duv[ia][1] + dsdb[0] * duv[ib][0] +
              dsdb[1] * duv[ib][1];
  dw[ia] = -ds;
  dw[ib] = ds;
}

// one covered pixel k's share of dtac_raster_interp_adj: ob (C) is the cotangent of its value
void dtac_pixel_interp_adj(const dtac_camera* cam, int nvx, const double* p,
                           const dtac_vis* vis, int k, const double* attr, int C, const double* ob, double* p_bar,
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
    const double w0 = vis->bary[2 * k], w1 = vis->bary[2 * k + 1], w[3] = {w0, w1, 1.0 - w0 - w1};
    dtac_pixel_weights_adj(uv, pc, w, wb, uvb);
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
    dtac_pixel_interp_adj(cam, nvx, p, vis, k, attr, C, out_bar + (size_t)k * C, p_bar, attr_bar);
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

// ---- tangents of the building blocks
// ------------------------------------------------------------

// tangent of dtac_edge2(a, b, p)
double dtac_edge2_jvp(const double a[2], const double b[2], const double p[2], const double da[2],
                        const double db[2], const double dp[2]) {
  return (db[0] - da[0]) * (p[1] - a[1]) + (b[0] - a[0]) * (dp[1] - da[1]) -
         (db[1] - da[1]) * (p[0] - a[0]) - (b[1] - a[1]) * (dp[0] - da[0]);
}

// tangent of the barycentric weights (dtac_barycentric) of the fixed point pc
void dtac_barycentric_jvp(const double a[2], const double b[2], const double c[2],
                          const double pc[2], const double da[2], const double db[2],
                          const double dc[2], double dw[3]) {
  const double z[2] = {0, 0};
  double E = dtac_edge2(a, b, c), dE = dtac_edge2_jvp(a, b, c, da, db, dc);
  double E0 = dtac_edge2(b, c, pc), dE0 = dtac_edge2_jvp(b, c, pc, db, dc, z);
  double E1 = dtac_edge2(c, a, pc), dE1 = dtac_edge2_jvp(c, a, pc, dc, da, z);
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
      dtac_pixel_weights_jvp((const double(*)[2])uv, (const double(*)[2])duv, pc, w, dw);
    }
    for (int q = 0; q < 3; q++) {
      for (int c = 0; c < C; c++) {
        o[c] += dw[q] * attr[(size_t)v[q] * C + c];
        if (dattr) o[c] += w[q] * dattr[(size_t)v[q] * C + c];
      }
    }
  }
}
