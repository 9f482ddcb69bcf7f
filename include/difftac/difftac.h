// difftac.h: the public C API of difftac, a MuJoCo plugin library for differentiable FEM gels
// (the elastomer of GelSight/DIGIT-style tactile sensors), penalty contact and tactile sensors.
//
// Loading libdifftac.so (mj_loadPluginLibrary) registers the plugins `difftac.elastomer` and
// `difftac.tactile`. The functions below read an elastomer instance of a model and its data.
#ifndef DIFFTAC_DIFFTAC_H_
#define DIFFTAC_DIFFTAC_H_

#include <mujoco/mujoco.h>

#if defined(DTAC_BUILDING)
#define DTAC_API __attribute__((visibility("default")))
#else
#define DTAC_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define DTAC_VERSION_STRING "0.1.0"

// library version and the MuJoCo header version it was built against (mjVERSION_HEADER)
DTAC_API const char* dtac_version(void);
DTAC_API int dtac_mujoco_header_version(void);

// number of CUDA devices this build of difftac can step gels on (0 without a GPU, or in a build
// without CUDA); the `device` config key picks one per model (docs/mjcf.md)
DTAC_API int dtac_cuda_available(void);

// plugin instance id of the elastomer named `name` (the <instance name=...>), or -1
DTAC_API int dtac_gel_find(const mjModel* m, const char* name);

// description of one elastomer instance in one mjData
typedef struct dtac_gel_info_ {
  int nnode;         // mesh nodes
  int ntet;          // tetrahedra
  int nsurf;         // contact (surface) nodes
  int ncell[3];      // grid cells along x y z of the pad
  int nsub;          // explicit substeps per MuJoCo step
  double dt_sub;     // substep, s
  double dt_stable;  // largest stable substep, s
  double omega_max;  // highest elastic angular frequency at rest, rad/s
  double mass;       // gel mass, kg
  int site;          // MuJoCo site id of the gel frame
  int body;          // MuJoCo body id the back face is attached to
  int ncontact;      // surface nodes in contact after the last step
  int nwarning;      // blow-ups detected and recovered from (gel reset to rest)
  int nsub_last;     // substeps the last step took (more when elements were compressed)
  int integrator;    // 0 explicit, 1 implicit (key 'integrator')
  int iterations;    // implicit: Newton iterations of the last step
  double residual;   // implicit: its final relative residual
  int nnonconverged; // implicit: steps that stopped short of the tolerance (state kept, finite)
} dtac_gel_info;

// fills info; returns 0, or -1 if `instance` is not a difftac elastomer
DTAC_API int dtac_gel_get_info(const mjModel* m, const mjData* d, int instance,
                               dtac_gel_info* info);

// node positions in the world (nnode x 3), pointing into d->plugin_state; NULL if not an elastomer
DTAC_API const mjtNum* dtac_gel_positions(const mjModel* m, const mjData* d, int instance);

// rest positions in the gel (site) frame (nnode x 3); NULL if not an elastomer
DTAC_API const mjtNum* dtac_gel_rest_positions(const mjModel* m, const mjData* d, int instance);

// net contact force and torque the scene exerts on the gel, world frame, torque about the site
// origin, as of the last passive-force evaluation (mj_forward / mj_step); returns 0 or -1
DTAC_API int dtac_gel_contact_wrench(const mjModel* m, const mjData* d, int instance,
                                     mjtNum wrench[6]);

// per-node contact force on the gel (world, nnode x 3) from the last passive stage; returns
// nnode, or -1 if the instance is not an elastomer
DTAC_API int dtac_gel_contact_forces(const mjModel* m, const mjData* d, int instance, mjtNum* f);

// elastic strain energy and kinetic energy of the gel, J
DTAC_API mjtNum dtac_gel_elastic_energy(const mjModel* m, const mjData* d, int instance);
DTAC_API mjtNum dtac_gel_kinetic_energy(const mjModel* m, const mjData* d, int instance);

#ifdef __cplusplus
}
#endif

// ==== tactile sensor (difftac.tactile) and its optics ============================================
// Sensor outputs are read from mjData.sensordata (docs/tactile.md gives each layout and unit).
#ifdef __cplusplus
extern "C" {
#endif

// lighting basis size: rgb_c = background_c + sum_k lighting[c * NBASIS + k] phi_k(n, depth)
#define DTAC_TACTILE_NBASIS 10

// output kinds of a tactile sensor (the `output` key)
enum {
  DTAC_TACTILE_RGB = 0,   // H x W x 3 in [0, 1]
  DTAC_TACTILE_DEPTH,     // H x W indentation, m
  DTAC_TACTILE_PRESSURE,  // H x W normal contact pressure, Pa
  DTAC_TACTILE_SHEAR,     // H x W x 2 tangential traction (u, v), Pa
  DTAC_TACTILE_MARKERS,   // N x 2 marker displacement (u, v), pixels
  DTAC_TACTILE_FORCE      // 6: contact force (N) and torque about the site (N m), site frame
};

// description of one tactile sensor in one mjData
typedef struct dtac_tactile_info_ {
  int output;         // DTAC_TACTILE_*
  int width, height;  // image size, pixels
  double pitch;       // m per pixel
  double x0, y0;      // site-frame x, y of the image corner: pixel (col, row) has its centre
                      // at (x0 + (col + 0.5) pitch, y0 + (row + 0.5) pitch)
  int gel;            // plugin instance id of the elastomer it reads
  int nmarker, marker_cols, marker_rows;
  double marker_pitch;   // m
  int nout;              // sensordata values
  long nevaluation;      // evaluations that were not cache hits
  double background[3];  // lighting parameters in use
  double lighting[3 * DTAC_TACTILE_NBASIS];
} dtac_tactile_info;

// sensor id of the difftac.tactile sensor named `name`, or -1
DTAC_API int dtac_tactile_find(const mjModel* m, const char* name);

// fills info for sensor id `sensor`; returns 0, or -1 if it is not a difftac.tactile sensor
DTAC_API int dtac_tactile_get_info(const mjModel* m, const mjData* d, int sensor,
                                   dtac_tactile_info* info);

// rest pixel positions (u, v) of the marker grid (nmarker x 2, marker k = row * cols + col);
// returns nmarker, or -1
DTAC_API int dtac_tactile_marker_rest(const mjModel* m, const mjData* d, int sensor, mjtNum* uv);

// the default lighting parameters (three coloured lights, GelSight-Mini-like background)
DTAC_API void dtac_optics_default_params(double background[3],
                                         double lighting[3 * DTAC_TACTILE_NBASIS]);

// the lighting basis phi(n, depth): n unit outward normal of the gel surface in the site frame
// (+z at rest), depth the indentation in m
DTAC_API void dtac_optics_basis_eval(const double normal[3], double depth,
                                     double phi[DTAC_TACTILE_NBASIS]);

// renders rgb (H x W x 3) from a depth map (H x W, m, row-major) sampled at `pitch` m/pixel,
// normals by finite differences of the depth map
DTAC_API void dtac_optics_render(int width, int height, double pitch, const double* depth,
                                 const double background[3], const double* lighting, double* rgb);

// calibration: least-squares fit of background (3) and lighting (3 x NBASIS) to nimage pairs of
// depth map (nimage x H x W, m) and rgb image (nimage x H x W x 3, [0, 1]) sampled at `pitch`;
// normals by finite differences; pixels with a saturated channel are left out. Returns the rms
// colour residual, or -1 with a reason in err (may be NULL)
DTAC_API double dtac_optics_fit(int nimage, int width, int height, double pitch,
                                const double* depth, const double* rgb, double background[3],
                                double* lighting, char* err, int errlen);

#ifdef __cplusplus
}
#endif

// ==== gradients ====================================================================================
// Parameters, the rollout tape and its reverse pass (docs/gradients.md). The gradient state of a
// model is [qpos tangent (nv, as mj_differentiatePos), qvel (nv), act (na), plugin_state
// (npluginstate)]; cotangents of plugin_state entries that are not continuous (anchor ids,
// flags) are ignored and returned as 0.
#ifdef __cplusplus
extern "C" {
#endif

// differentiable parameters: named "<plugin instance>/<parameter>" (for an elastomer instance
// "gel": gel/young, gel/poisson, gel/damping, gel/mass_damping, gel/friction,
// gel/contact_stiffness, gel/contact_damping, gel/friction_stiffness)
DTAC_API int dtac_param_count(const mjModel* m);
// writes parameter i's name; returns 0, or -1 if there is no parameter i
DTAC_API int dtac_param_name(const mjModel* m, int i, char* name, int len);
// index of the parameter named `name`, or -1
DTAC_API int dtac_param_find(const mjModel* m, const char* name);
// value in d (each mjData has its own gel models), as the step uses it (derived defaults
// resolved); NaN if there is no parameter i
DTAC_API mjtNum dtac_param_get(const mjModel* m, const mjData* d, int i);
// sets a parameter in d; other values derived at load (substep, default damping, light-body
// stiffness scale) stay. Returns 0, or -1 (with a warning) if out of range
DTAC_API int dtac_param_set(const mjModel* m, mjData* d, int i, mjtNum value);

// size of the gradient state: 2 nv + na + npluginstate
DTAC_API int dtac_grad_state_size(const mjModel* m);

typedef struct dtac_tape_ dtac_tape;

// a tape for up to nstep steps of d, with a checkpoint every `every` steps (0: every step when
// nstep + 1 states fit in 64 MiB, so that the reverse pass recomputes no segment, else
// ceil(sqrt(nstep))); runs mj_forward(m, d). Euler and implicitfast integrators. NULL (with a
// warning) on failure
DTAC_API dtac_tape* dtac_tape_make(const mjModel* m, mjData* d, int nstep, int every);
DTAC_API void dtac_tape_free(dtac_tape* tp);
// mj_step(m, d), recorded; returns the step's index, or -1 if the tape is full
DTAC_API int dtac_tape_step(dtac_tape* tp);
DTAC_API int dtac_tape_nstep(const dtac_tape* tp);
// forgets the recorded steps (the next dtac_tape_step records step 0 again)
DTAC_API void dtac_tape_reset(dtac_tape* tp);
// bytes the tape holds: (ceil(nstep / every) + every + 1) * integration state size + nstep * user
// input size (mj_stateSize with mjSTATE_INTEGRATION, mjSTATE_USER), plus, once a backward pass
// ran, what the plugins allocated for it (the gels' substep tape of one step)
DTAC_API size_t dtac_tape_memory(const dtac_tape* tp);

// the reverse pass over the recorded steps. sensor_bar: cotangent of d->sensordata after each
// step (nstep x nsensordata; row t holds what mj_step number t wrote, the sensors of the state
// it started from), or NULL; state_bar: of the final state (gradient state), or NULL. Returns,
// where not NULL: state0_bar (gradient state at the first recorded step), ctrl_bar (nstep x nu,
// the ctrl each step used) and param_bar (dtac_param_count). 0 on success; -1 with a warning if
// nothing was recorded, a gel blew up and was reset during the recording (no gradient exists),
// or a cotangent became non-finite (never passed on).
DTAC_API int dtac_tape_backward(dtac_tape* tp, const mjtNum* sensor_bar, const mjtNum* state_bar,
                                mjtNum* state0_bar, mjtNum* ctrl_bar, mjtNum* param_bar);

// transition Jacobians of one step at d's current state, as mjd_transitionFD lays them out
// (row-major; any may be NULL; ndx = 2 nv + na, the rigid gradient state): A (ndx x ndx) and
// B (ndx x nu): the next rigid state against the rigid state and ctrl, the plugins' state
// (the gels) held at its current value as mjd_transitionFD holds it; C (nsensordata x ndx) and
// D (nsensordata x nu): this state's sensordata. A and B come from one reverse pass with all
// ndx rows at once (the gels analytic, the rigid maps differenced); the tactile rows of C
// analytically (image tangents for the site's and the contact forces' tangents), the other
// sensors' rows by central differences of the forward pass with the gels held (no gel step). dtac_tape_transition reuses a tape made on d (its private data and buffers);
// dtac_transition makes one for the call. 0 on success
DTAC_API int dtac_tape_transition(dtac_tape* tp, mjtNum* A, mjtNum* B, mjtNum* C, mjtNum* D);
DTAC_API int dtac_transition(const mjModel* m, mjData* d, mjtNum* A, mjtNum* B, mjtNum* C,
                             mjtNum* D);

#ifdef __cplusplus
}
#endif

// ==== many environments ============================================================================
// Batched stepping of many mjData of one model (one per environment) on a persistent pool of
// worker threads (docs/guide.md). Environments are split statically over the threads, each
// mjData is stepped exactly as mj_step steps it alone, so results are bit-identical to stepping
// them one after another, for any thread count.
#ifdef __cplusplus
extern "C" {
#endif

typedef struct dtac_batch_ dtac_batch;

// a stepper for mjData made by mj_makeData(m), on nthread threads (0: one per online CPU; the
// calling thread is one of them, so nthread - 1 worker threads are started here, once). m must
// outlive the batch. NULL (with a warning) on bad arguments or failure to start the threads
DTAC_API dtac_batch* dtac_batch_make(const mjModel* m, int nthread);
DTAC_API void dtac_batch_free(dtac_batch* b);

// steps each of d[0..n-1] nstep times (mj_step(m, d[i]); each mjData independent, each at most
// once in d; one call at a time per batch). Returns 0; -1 when an mjData reported a gel blow-up
// (reset by the gel) or a MuJoCo bad qpos/qvel/qacc warning during the call (the call still
// completes every step), or, stepping nothing, with a warning naming the problem, for bad
// arguments: NULL b or d, n < 0, nstep < 0, a NULL d[i], or a d[i] not of m's size
DTAC_API int dtac_batch_step(dtac_batch* b, mjData* const* d, int n, int nstep);

// threads the batch steps on (the calling thread included)
DTAC_API int dtac_batch_nthread(const dtac_batch* b);

#ifdef __cplusplus
}
#endif

#endif  // DIFFTAC_DIFFTAC_H_
