// raster.h: images of a gel's top face, MuJoCo-free. The top face is a grid of nvx x nvy vertices
// (vertex a = i + nvx j), each quad split into two triangles along its (i, j) -> (i+1, j+1)
// diagonal, as the FEM's Kuhn tetrahedra split it. Vertices are given in the camera (gel site)
// frame. A visibility pass rasterises the projected triangles once (per pixel: nearest triangle
// and barycentric coordinates, cost linear in triangles plus pixels); resolve passes interpolate
// any per-vertex attribute from it.
#ifndef DTAC_SRC_RASTER_H_
#define DTAC_SRC_RASTER_H_

#include "optics.h"

// visibility buffer of one camera: W*H entries each
typedef struct dtac_vis_ {
  double* zbuf;  // site-frame z of the visible surface (smallest z: nearest the camera)
  int* tri;      // visible triangle id, -1 where no triangle covers the pixel centre
  double* bary;  // barycentric weights of the triangle's vertices 0 and 1 (W*H x 2)
} dtac_vis;

static inline int dtac_top_ntri(int nvx, int nvy) {
  return 2 * (nvx - 1) * (nvy - 1);
}

// vertex ids of top-face triangle t (counter-clockwise seen from +z)
void dtac_top_tri(int nvx, int t, int v[3]);

// rasterises the top face (p: nv x 3, camera frame) into vis
void dtac_raster_visibility(const dtac_camera* cam, int nvx, int nvy, const double* p,
                            dtac_vis* vis);

// out[pix * C + c] = barycentric interpolation of attr[v * C + c] over the visible triangle;
// `outside` where no triangle is visible
void dtac_raster_resolve(const dtac_camera* cam, int nvx, const dtac_vis* vis, const double* attr,
                         int C, double outside, double* out);

// area-weighted unit vertex normals of the top face, oriented to +z (nv x 3)
void dtac_top_normals(int nvx, int nvy, const double* p, double* nrm);

// lumped projected area of each vertex: a third of the projected (xy) areas of its triangles,
// so that the integral of the P1 interpolant of nodal values t_a is sum_a t_a area_a (nv)
void dtac_top_areas(int nvx, int nvy, const double* p, double* area);

// the triangle whose xy-projection contains (x, y) and the barycentric weights there; -1 if none
int dtac_top_locate(int nvx, int nvy, const double* p, double x, double y, double w[3]);

// ---- adjoints and tangents of the building blocks (raster.c), for the images' own

// VJP of dtac_edge2(a, b, p) (any argument's cotangent may be null): e_bar d(edge2)/d(.)
void dtac_edge2_adj(const double a[2], const double b[2], const double p[2], double e_bar,
                    double a_bar[2], double b_bar[2], double p_bar[2]);

// VJP of the barycentric weights w (3) of the fixed point p in the triangle (a, b, c) with
// respect to the vertices (as dtac_barycentric computes them; non-degenerate triangle)
void dtac_barycentric_adj(const double a[2], const double b[2], const double c[2],
                          const double p[2], const double w_bar[3], double a_bar[2],
                          double b_bar[2], double c_bar[2]);

// VJP and tangent of pixel centre pc's weights w (3) in its projected triangle uv with respect to
// the projected vertices: barycentric coordinates when pc is inside, and for a rim pixel outside
// it (raster.c's fill: the nearest point of the triangle's outline) the weights of that point
void dtac_pixel_weights_adj(const double uv[3][2], const double pc[2], const double w[3],
                            const double w_bar[3], double uv_bar[3][2]);
void dtac_pixel_weights_jvp(const double uv[3][2], const double duv[3][2], const double pc[2],
                            const double w[3], double dw[3]);

// transpose of dtac_raster_resolve with the weights fixed: attr_bar (nv x C) +=
// sum over covered pixels of the pixel's weights times out_bar (H x W x C)
void dtac_raster_resolve_adj(const dtac_camera* cam, int nvx, const dtac_vis* vis,
                             const double* out_bar, int C, double* attr_bar);

// VJP of out = resolve(attr) including the weights' dependence on the projected vertices: for
// the image of the per-vertex attribute attr (nv x C) over the top face p (nv x 3), visibility
// vis fixed, accumulates p_bar (x and y only: orthographic projection) and attr_bar; either may
// be null
void dtac_raster_interp_adj(const dtac_camera* cam, int nvx, const double* p, const dtac_vis* vis,
                            const double* attr, int C, const double* out_bar, double* p_bar,
                            double* attr_bar);

// VJP of dtac_top_normals: nrm_bar (nv x 3, cotangent of the unit normals) -> p_bar (work: 6 nv)
void dtac_top_normals_adj(int nvx, int nvy, const double* p, const double* nrm_bar, double* p_bar,
                          double* work);

// VJP of dtac_top_areas: area_bar (nv) -> p_bar (x and y)
void dtac_top_areas_adj(int nvx, int nvy, const double* p, const double* area_bar, double* p_bar);

// one covered pixel k's share of dtac_raster_interp_adj: ob (C) is the cotangent of its value
void dtac_pixel_interp_adj(const dtac_camera* cam, int nvx, const double* p,
                           const dtac_vis* vis, int k, const double* attr, int C, const double* ob,
                           double* p_bar, double* attr_bar);

// tangent of dtac_edge2(a, b, p) for tangents da, db, dp of the points
double dtac_edge2_jvp(const double a[2], const double b[2], const double p[2], const double da[2],
                      const double db[2], const double dp[2]);
// tangent of the barycentric weights (dtac_barycentric) of the fixed point pc in (a, b, c)
void dtac_barycentric_jvp(const double a[2], const double b[2], const double c[2],
                          const double pc[2], const double da[2], const double db[2],
                          const double dc[2], double dw[3]);
// barycentric interpolation of attr (nv x C) with its tangent dattr (may be NULL), the weights
// moving with dp (may be NULL): the image tangent dout (H x W x C, written)
void dtac_raster_interp_jvp(const dtac_camera* cam, int nvx, const double* p, const double* dp,
                            const dtac_vis* vis, const double* attr, const double* dattr, int C,
                            double* dout);

// ---- lighting calibration (optics_fit.c)
// ---------------------------------------------------------

// unit normals (W*H x 3) of the surface z = T - depth(x, y) from a depth map (H x W, row-major,
// m) sampled at `pitch`: central differences inside, one-sided at the border
void dtac_optics_normals_from_depth(int width, int height, double pitch, const double* depth,
                                    double* nrm);

// rgb (H x W x 3) of a depth map under the lighting model (normals by finite differences)
void dtac_optics_render_depth(int width, int height, double pitch, const double* depth,
                              const double bg[3], const double* coef, double* rgb);

// least-squares fit of bg (3) and coef (3 x NBASIS) to nimage pairs of depth map and rgb image;
// pixels with a saturated channel (<= 0 or >= 1) are left out. Returns the rms residual over
// the pixels used, or -1 if the data do not determine the parameters (err says why)
double dtac_optics_fit_depth(int nimage, int width, int height, double pitch, const double* depth,
                             const double* rgb, double bg[3], double* coef, char* err, int errlen);

#endif  // DTAC_SRC_RASTER_H_
