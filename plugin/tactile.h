// tactile.h: the difftac.tactile sensor plugin: images (rgb, depth, pressure, shear), marker
// displacements and the net contact wrench of one difftac.elastomer gel, seen by an orthographic
// camera behind the gel's back face. One sensor element per output; any number may read one gel.
#ifndef DTAC_PLUGIN_TACTILE_H_
#define DTAC_PLUGIN_TACTILE_H_

#include <mujoco/mujoco.h>

#include "difftac/difftac.h"
#include "elastomer.h"
#include "optics.h"
#include "raster.h"
#include "raster_adj.h"

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

// the sensor's config with defaults (parsed in tactile.c, the only place the keys are named)
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

void dtac_tactile_register(void);

#endif  // DTAC_PLUGIN_TACTILE_H_
