// tactile.h: a tactile sensor in one mjData: images (rgb, depth, pressure, shear), marker
// displacements and the net contact wrench of one gel (src/elastomer.h), seen by an orthographic
// camera behind the gel's back face. One sensor element per output; any number may read one gel.
// Image formation is the rasteriser's (raster.h, raster_*.c); this file sets the camera up,
// gathers the sensor's inputs, and holds the sensor's forward (tactile.c), VJP and JVP
// (tactile_adj.c) and derivative callbacks (tactile_deriv.c).
#ifndef DTAC_SRC_TACTILE_H_
#define DTAC_SRC_TACTILE_H_

#include <mujoco/mujoco.h>

#include "difftac/difftac.h"
#include "elastomer.h"
#include "optics.h"
#include "raster.h"
#include "raster_image.h"

#define DTAC_TACTILE_NAME "difftac.tactile"

typedef enum dtac_tactile_output_ {
  DTAC_OUT_RGB = 0,   // H x W x 3, [0, 1]
  DTAC_OUT_DEPTH,     // H x W, m
  DTAC_OUT_PRESSURE,  // H x W, Pa
  DTAC_OUT_SHEAR,     // H x W x 2, Pa
  DTAC_OUT_MARKERS,   // N x 2, pixels
  DTAC_OUT_FORCE,     // 6: force N, torque N m, site frame
  DTAC_OUT_COUNT
} dtac_tactile_output;

// the sensor's config; dtac_tactile_def_default gives the documented defaults (docs/tactile.md),
// plugin/config.c fills it from the MJCF config keys
typedef struct dtac_tactile_def_ {
  char elastomer[DTAC_NAMELEN];         // elastomer instance name
  int output;                           // dtac_tactile_output
  int width, height;                    // image size, pixels
  double pitch;                         // m per pixel
  double center[2];                     // site-frame x, y of the image centre, m
  double bg[3];                         // lighting: background colour
  double coef[3 * DTAC_OPTICS_NBASIS];  // lighting: basis coefficients per channel
  int marker_cols, marker_rows;         // marker grid (along u, along v)
  double marker_pitch;                  // m
} dtac_tactile_def;

// plugin_data of one sensor in one mjData: setup, scratch and the cache of the last output
typedef struct dtac_tactile_ {
  char name[DTAC_NAMELEN];  // sensor name, for messages
  int instance, sensor;     // plugin instance id, sensor id
  int gel;                  // plugin instance id of the elastomer
  dtac_tactile_def def;
  dtac_camera cam;
  int nvx, nvy, nv;  // top-face vertex grid of the gel
  int top0;          // node id of the first top-face vertex (top face: top0 .. top0 + nv)
  int ready;         // 1 once the marker embedding was computed from the gel's rest mesh
  int nout;          // sensordata size
  // scratch (allocated at init for the output)
  double* p;      // top-face vertices, site frame (nv x 3)
  double* attr;   // per-vertex attributes (nv x 4)
  double* fsite;  // per-vertex contact force in the site frame (nv x 3)
  dtac_vis vis;   // visibility buffer (images only)
  double* pix;    // per-pixel normal + depth for rgb (W*H x 4)
  double* bar;    // VJP scratch: cotangents of p and of fsite (nv x 6)
  // markers
  int nmarker;
  int* mk_tri;      // top-face triangle of each marker (nmarker)
  double* mk_w;     // barycentric weights (nmarker x 3)
  double* mk_rest;  // rest position, site frame x y (nmarker x 2)
  // cache: the inputs of the last evaluation and its output
  int nkey;
  double* key;  // site pose (12), top-face positions and contact forces, wrench
  double* keynew;
  double* out;  // last output (nout)
  int valid;
  long ncompute;  // evaluations that were not cache hits (tests, benchmarks)
  int frozen;     // 1: compute does nothing (the tape's rigid step alone)
} dtac_tactile;

// width = height = 0 (no `size` key): the image fits the pad (dtac_tactile_def_fit)
void dtac_tactile_def_default(dtac_tactile_def* def);

// the longest side of a default (fitted) image at the default pitch, pixels
#define DTAC_TACTILE_FIT_MAXPX 640

// a def without size (width 0) gets the image that covers the pad's face (size_xy: its x y
// extents, m) at def->pitch: W = round(x / pitch), H = round(y / pitch), at least 1. A pitch that
// was not given (pitch_given 0) grows to longer side / DTAC_TACTILE_FIT_MAXPX when the face is
// longer than that many default pixels. Returns W * H (the caller checks its limit)
double dtac_tactile_def_fit(dtac_tactile_def* def, const double size_xy[2], int pitch_given);
// sensordata size of a sensor with this def
int dtac_tactile_output_size(const dtac_tactile_def* def);

// builds the sensor of plugin instance `instance` (held by sensor `sensor`, -1 if none) reading
// elastomer instance `gel` configured by edef; checks that the sensor's object, if a site, is
// the gel's site. NULL with a message in err on failure.
dtac_tactile* dtac_tactile_make(const mjModel* m, int instance, int sensor, const char* name,
                                const dtac_tactile_def* def, int gel,
                                const dtac_elastomer_def* edef, char* err, int errlen);
void dtac_tactile_free(dtac_tactile* t);
// mj_copyData: the run-time parameters of src (optics)
void dtac_tactile_copy(dtac_tactile* dst, const dtac_tactile* src);
// evaluates the sensor's output at d's state into sd (nout values; zeros if its gel has no
// data), from its cache when the inputs did not change
void dtac_tactile_evaluate(const mjModel* m, mjData* d, dtac_tactile* t, mjtNum* sd);
// the sensor's gel with its inputs gathered into t->keynew, as the evaluation, the VJP and the JVP
// read them (the gel placed, the markers embedded); NULL if the gel has no data
dtac_elastomer* dtac_tactile_inputs(const mjModel* m, mjData* d, dtac_tactile* t);
// the markers' rest positions embedded in the gel's rest top face (once)
void dtac_tactile_setup_markers(dtac_tactile* t, const dtac_elastomer* e);
// marker k interpolated from the top-face vertex values p (nv x 3; first ncomp components), each
// term divided by div, into out (ncomp): the marker's barycentric weights in its triangle; 0 if
// the marker is off the face
void dtac_marker_interp(const dtac_tactile* t, int k, const double* p, int ncomp, double div,
                        double* out);
// its adjoint: p_bar (nv x 3) += weights * out_bar / div (first ncomp components)
void dtac_marker_interp_adj(const dtac_tactile* t, int k, const double* out_bar, int ncomp,
                            double div, double* p_bar);
// the top face in the site (camera) frame, p = R^T (x - pos), into t->p from the inputs in key,
// and its contact forces in the site frame, f_site = R^T f, into t->fsite
void dtac_tactile_site_points(dtac_tactile* t, const double* key);
void dtac_tactile_site_forces(dtac_tactile* t, const double* key);

// the tactile sensor of a plugin instance in d, or NULL
dtac_tactile* dtac_tactile_get(const mjModel* m, const mjData* d, int instance);

// VJP of the sensor's output at d's current state (as tactile_compute evaluates it there),
// holding the site pose fixed: given y_bar (the sensor's nout sensordata values), accumulates
// the cotangents of the gel's world node positions x_bar (nnode x 3), of its per-node contact
// forces f_bar (nnode x 3, world, e->contact_force as computed in the last passive stage) and,
// if param_bar is not NULL, of the optics parameters (background 3, then lighting 3 x NBASIS).
// Visibility (which triangle covers each pixel) is held at the forward pass's. Returns 0, or -1
// if the instance is not a tactile sensor.
// Call it where sensordata is current (after mj_forward: after mj_step the gel state has moved
// on from the sensordata and contact forces of that step's forward pass).
// Only the sensor's scratch is written (never sensordata, its cached output or cache key); a
// sensor without sensordata or without its gel's data (constant output) accumulates nothing.
// If site_bar is not NULL, the cotangent of the site's pose (site_xpos 3, then site_xmat 9,
// row-major) is accumulated into it as well.
// Exported (not in the public header) for the gradient tape and the plugin tests.
DTAC_API int dtac_tactile_vjp(const mjModel* m, mjData* d, int instance, const mjtNum* y_bar,
                              double* x_bar, double* f_bar, double* param_bar, double* site_bar);

// JVP of the sensor's output at d's current state, holding the gel's positions: given the
// tangent of the site's pose (dsite: site_xpos 3, then site_xmat 9, row-major) and of the gel's
// per-node contact forces (df: nnode x 3, world; NULL: none), writes the output's tangent dy
// (nout). Visibility is held at the forward pass's, as in dtac_tactile_vjp. Returns 0, or -1 if
// the instance is not a tactile sensor.
DTAC_API int dtac_tactile_jvp(const mjModel* m, mjData* d, int instance, const double dsite[12],
                              const double* df, mjtNum* dy);

// the optics parameters of an rgb sensor: background r g b, then the lighting coefficients per
// channel and basis
#define DTAC_TACTILE_NPARAM (3 + 3 * DTAC_OPTICS_NBASIS)

// registers the sensor's derivative callbacks (tactile_deriv.c); nparam: how many parameters
// instance `instance` has (DTAC_TACTILE_NPARAM for rgb sensors, else 0: from its config)
void dtac_tactile_register_derivative(int (*nparam)(const mjModel* m, int instance));

#endif  // DTAC_SRC_TACTILE_H_
