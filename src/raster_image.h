// raster_image.h: the tactile images as functions of the gel's top-face nodes, their adjoints
// (vector-Jacobian products) and tangents (Jacobian-vector products), MuJoCo-free; one file per
// image kind (raster_depth.c, raster_traction.c, raster_rgb.c) holds its forward, VJP and JVP,
// raster.c the building blocks with theirs. Forward: the same composition src/tactile.c
// evaluates (visibility pass, per-vertex attributes, resolve pass; see raster.h and
// docs/tactile.md), bit for bit. Adjoint: given the cotangent of an image, accumulates (+=) the
// cotangents of the node positions p (site frame, nv x 3), of the node forces and of the optics
// parameters.
//
// Visibility is held fixed: every adjoint takes the visibility buffer of the forward pass (per
// pixel the covering triangle) as a constant and differentiates the image with the covering
// triangle of each pixel frozen, as rasterisers' gradients usually are. The image is smooth in p
// at a pixel whose centre is not on a projected triangle edge (a pixel whose covering triangle
// does not change under a small perturbation); where a pixel centre lies on an edge, the image
// is continuous across inner edges (P1 interpolation) but not differentiable, and jumps at the
// pad's outline where it leaves the camera's rest face (the image is 0 outside the pad); there
// the adjoint is the one-sided derivative of the frozen triangle and coverage changes (pixels
// entering or leaving the pad) are not seen. Inside the rest face a rim pixel that the deformed
// face no longer covers holds the nearest point of the outline (raster.c), continuous with the
// covered pixels, and its adjoint differentiates that point's edge weights.
// Markers and the force output are not covered here (they are linear in p and in the wrench).
// Everything is in the site frame: a caller with world-frame nodes x (p = R^T (x - pos)) and
// forces (f_site = R^T f) maps the cotangents back with x_bar = R p_bar, f_bar = R f_site_bar.
//
// All scatters run serially in a fixed order (pixels in index order, then triangles in index
// order), so the results are deterministic. Output arrays are accumulated into, not cleared.
#ifndef DTAC_SRC_RASTER_IMAGE_H_
#define DTAC_SRC_RASTER_IMAGE_H_

#include "optics.h"  // static inline only: included outside the C-linkage block (it includes math.h)

#ifdef __cplusplus
extern "C" {
#endif

#include "raster.h"  // plain C declarations: C linkage from C++ too

// doubles of scratch memory the functions below need for nv top-face vertices
#define DTAC_RASTER_WORK(nv) (24 * (size_t)(nv))

// ---- images: forward, adjoint, tangent per kind ------------------------------------------------
// p: top-face nodes in the site frame (nv x 3); X: rest positions (nv x 3, only z is used: the
// indentation of node a is X[3a+2] - p[3a+2]); vis: the camera's visibility buffer (written by
// the forward, read by the adjoint and the tangent); work: DTAC_RASTER_WORK(nv) doubles.
// Tangents hold the forward pass's visibility (the same frozen-coverage derivative the adjoints
// give): dp (nv x 3) tangent of the top face, df (nv x 3) of the site-frame forces (may be NULL);
// the image tangent is written (not accumulated).

// depth image (H x W), 0 outside the pad (raster_depth.c)
void dtac_raster_depth(const dtac_camera* cam, int nvx, int nvy, const double* p, const double* X,
                       dtac_vis* vis, double* work, double* img);
void dtac_raster_depth_adj(const dtac_camera* cam, int nvx, int nvy, const double* p,
                           const double* X, const dtac_vis* vis, const double* img_bar,
                           double* p_bar, double* work);
void dtac_raster_depth_jvp(const dtac_camera* cam, int nvx, int nvy, const double* p,
                           const double* X, const dtac_vis* vis, const double* dp, double* dimg,
                           double* work);

// traction image from site-frame node forces f (nv x 3) and the lumped projected areas A(p):
// C = 1 pressure -f_z / A, C = 2 shear (f_x, f_y) / A (H x W x C); a node of zero area reads 0
// (raster_traction.c)
void dtac_raster_traction(const dtac_camera* cam, int nvx, int nvy, const double* p,
                          const double* f, int C, dtac_vis* vis, double* work, double* img);
// accumulates p_bar (through the weights and the areas) and f_bar (nv x 3); either may be null
void dtac_raster_traction_adj(const dtac_camera* cam, int nvx, int nvy, const double* p,
                              const double* f, int C, const dtac_vis* vis, const double* img_bar,
                              double* p_bar, double* f_bar, double* work);
void dtac_raster_traction_jvp(const dtac_camera* cam, int nvx, int nvy, const double* p,
                              const double* f, int C, const dtac_vis* vis, const double* dp,
                              const double* df, double* dimg, double* work);

// rgb image (H x W x 3): area-weighted vertex normals and indentations interpolated per pixel,
// the normal renormalised, then dtac_optics_shade with bg (3), coef (3 x NBASIS); pix: 4 H W
// doubles of scratch (the interpolated normal and indentation per pixel) (raster_rgb.c)
void dtac_raster_rgb(const dtac_camera* cam, int nvx, int nvy, const double* p, const double* X,
                     const double bg[3], const double* coef, dtac_vis* vis, double* work,
                     double* pix, double* img);
// accumulates p_bar (through the normals, the indentation and the weights), bg_bar (3) and
// coef_bar (3 x NBASIS); any may be null. A saturated channel passes no gradient
void dtac_raster_rgb_adj(const dtac_camera* cam, int nvx, int nvy, const double* p, const double* X,
                         const double bg[3], const double* coef, const dtac_vis* vis,
                         const double* img_bar, double* p_bar, double* bg_bar, double* coef_bar,
                         double* work);
void dtac_raster_rgb_jvp(const dtac_camera* cam, int nvx, int nvy, const double* p, const double* X,
                         const double bg[3], const double* coef, const dtac_vis* vis,
                         const double* dp, double* dimg, double* work);

#ifdef __cplusplus
}
#endif

#endif  // DTAC_SRC_RASTER_IMAGE_H_
