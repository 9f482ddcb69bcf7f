// derivative.h: the derivative registry. MuJoCo has no derivative hook for plugins, so each difftac
// plugin registers its derivative callbacks here when the library is loaded (register.c), and
// the rollout tape (grad.c) composes whatever is registered: a later plugin (a deformable object,
// another sensor) plugs in with its own entry, without touching the tape.
//
// One MuJoCo step, as the tape differentiates it (docs/gradients.md):
//   f   = sum of the passive plugins' qfrc(g, q, v)         (compute)
//   x*  = R(q, v, act, ctrl, f)                              (MuJoCo's rigid step, plugins frozen)
//   x'  = A(g, x*, q)                                        (stateful plugins' advance)
//   y   = sensors(q, v, act, ctrl, f; plugin sensors of g)   (in the step's forward pass)
// R and the rigid dependencies of the plugins' parts are differentiated by central finite
// differences over the small rigid state; the plugins' own state g analytically (callbacks).
#ifndef DTAC_SRC_DERIVATIVE_H_
#define DTAC_SRC_DERIVATIVE_H_

#include <mujoco/mujoco.h>

#define DTAC_MAX_DERIVATIVE 16

// cotangents exchanged with the callbacks in the reverse pass of one step
typedef struct dtac_grad_ctx_ {
  // advance_vjp handles nrow cotangents at once: its arrays hold nrow rows (q1_bar, v1_bar,
  // qstar_bar, vstar_bar, qpos0_bar: nv each; state_bar: npluginstate; param_bar: nparam).
  // The other callbacks see one row: `row`, with the arrays pointing at it
  int nrow, row, nparam;
  const mjtNum* state0;  // the step's start state (mjSTATE_INTEGRATION)
  int sig;               // its signature
  mjtNum eps;            // finite-difference step
  // advance: in q1_bar/v1_bar (qpos tangent, qvel after the step); out: cotangents of the
  // rigid step's result (qstar_bar, vstar_bar) and of the start qpos (qpos0_bar, accumulated)
  const mjtNum* q1_bar;
  const mjtNum* v1_bar;
  mjtNum* qstar_bar;
  mjtNum* vstar_bar;
  mjtNum* qpos0_bar;  // tangent (nv)
  mjtNum* qvel0_bar;  // (nv)
  // the plugins' state (indexed like d->plugin_state): in, after the step; out, before it
  mjtNum* state_bar;
  // passive: cotangent of the passive plugins' total qfrc (nv)
  const mjtNum* qfrc_bar;
  // sensors: cotangent of d->sensordata (nsensordata, may be NULL)
  const mjtNum* sensor_bar;
  // sensors and forces: cotangent of each site's pose (site_xpos 3, site_xmat 9; nsite x 12)
  mjtNum* site_bar;
  // parameters: cotangents, indexed like the tape's parameter list
  mjtNum* param_bar;
  int* param_adr;  // first parameter of each plugin instance (nplugin; -1: none)
} dtac_grad_ctx;

typedef struct dtac_derivative_ {
  const char* plugin;  // the MuJoCo plugin these callbacks belong to
  // rigid-only mode on or off: the instance's compute and advance do nothing
  void (*freeze)(const mjModel* m, mjData* d, int instance, int on);
  // passive plugins: adds the instance's share of qfrc_passive in the last compute to qfrc
  void (*qfrc)(const mjModel* m, const mjData* d, int instance, mjtNum* qfrc);
  // passive plugins, after passive_vjp: a function of d's kinematics and velocities (mj_kinematics,
  // mj_comPos, mj_comVel done) whose derivative in the rigid state is that of <ctx bars, the
  // instance's force outputs> with its own state held (the tape differences it); may be NULL
  mjtNum (*rigid_dot)(const mjModel* m, mjData* d, int instance, const dtac_grad_ctx* ctx);
  // stateful plugins: turns recording of the next step's reverse-pass inputs on or off;
  // returns nonzero if it cannot record
  int (*record)(const mjModel* m, mjData* d, int instance, int on);
  // stateful plugins, optional: with recording on, the state after the step about to be recorded
  // (signature sig), as an earlier mj_step of the same start state made it: the plugin may take
  // its own state after the step from it instead of computing it again
  void (*record_state1)(const mjModel* m, mjData* d, int instance, const mjtNum* state1, int sig);
  // stateful plugins: the reverse of the recorded step's advance (d holds the state after it)
  int (*advance_vjp)(const mjModel* m, mjData* d, int instance, dtac_grad_ctx* ctx);
  // sensor plugins: the reverse of the instance's sensordata at d's state (after mj_forward);
  // y_bar is the instance's slice of the sensor cotangent. Called before passive_vjp.
  int (*sensor_vjp)(const mjModel* m, mjData* d, int instance, const mjtNum* y_bar,
                    dtac_grad_ctx* ctx);
  // passive plugins: the reverse of compute at d's state (after mj_forward), given
  // ctx->qfrc_bar, with the rigid state held fixed
  int (*passive_vjp)(const mjModel* m, mjData* d, int instance, dtac_grad_ctx* ctx);
  // sensor plugins: the instance's rows of C (sensordata x ndx, ndx = 2 nv + na, row-major) at
  // the state s (signature sig), analytically where the sensor allows; the tape's finite
  // differences leave these rows to it (the instance is frozen there). eps: the difference step of
  // the rigid directions it needs. d is the tape's private mjData. May be NULL.
  int (*sensor_rows)(const mjModel* m, mjData* d, int instance, const mjtNum* s, int sig,
                     mjtNum eps, mjtNum* C);
  // stateful plugins: blow-ups the instance counted in d (it reset its state); may be NULL
  int (*nwarning)(const mjModel* m, const mjData* d, int instance);
  // bytes the instance allocated for the reverse pass (its step tape, scratch); may be NULL
  size_t (*memory)(const mjModel* m, const mjData* d, int instance);
  // parameters of one instance: how many (the names are the first that many of param_names)
  int (*nparam)(const mjModel* m, int instance);
  const char* const* param_names;
  mjtNum (*param_get)(const mjModel* m, const mjData* d, int instance, int k);
  int (*param_set)(const mjModel* m, mjData* d, int instance, int k, mjtNum value);
} dtac_derivative;

// registers a plugin's callbacks (at library load); returns 0, or -1 if the table is full
int dtac_register_derivative(const dtac_derivative* der);

// the callbacks of plugin instance `instance` of m, or NULL
const dtac_derivative* dtac_derivative_of(const mjModel* m, int instance);

// the first parameter of each plugin instance into adr (nplugin; -1: none, adr may be NULL) in
// the order of dtac_param_name; returns the parameter count
int dtac_param_layout(const mjModel* m, int* adr);

// blow-ups d has counted: MuJoCo's bad qpos/qvel/qacc warnings (MuJoCo resets the state) and
// every registered plugin's (nwarning); a step whose count rose blew up
int dtac_blowup_count(const mjModel* m, const mjData* d);

// perturbs input j of the rigid step at d (qpos tangent, qvel, act, ctrl, qfrc_applied) by e;
// dq: nv scratch
void dtac_rigid_perturb(const mjModel* m, mjData* d, mjtNum* dq, int j, mjtNum e);

// the elastomer's entry (elastomer_deriv.c; the tactile sensor's: tactile.h)
void dtac_elastomer_register_derivative(void);

#endif  // DTAC_SRC_DERIVATIVE_H_
