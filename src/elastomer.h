// elastomer.h: a gel pad in one mjData: a soft body (src/gel.h: its mesh, material and scratch)
// whose back face is held kinematically by a MuJoCo site, the geoms it may touch
// (src/collider.h), what its force evaluation handed to MuJoCo, and its device copy. All
// elastomers of one mjData are stepped together by one dtac_world (the joint step: a body
// squeezed between two pads feels both at the substep rate).
//
// The path of one mj_step (docs/design.md):
//   passive stage: dtac_elastomer_passive (passive.c): back-face and contact forces -> qfrc_passive
//   sensors:       the tactile sensors read the gel state and those contact forces (tactile.c)
//   advance:       dtac_world_advance (world.c): setup (sites, colliders, body slots), the joint
//                  step (step.c on the CPU, device.c on a device), corrections of the coupled
//                  bodies (coupling.c), each gel's report
#ifndef DTAC_SRC_ELASTOMER_H_
#define DTAC_SRC_ELASTOMER_H_

#include <mujoco/mujoco.h>

#include "collider.h"
#include "coupling.h"
#include "device.h"
#include "gel.h"
#include "implicit.h"
#include "warning.h"

#define DTAC_ELASTOMER_NAME "difftac.elastomer"
#define DTAC_NAMELEN 128
#define DTAC_LOAD_NOTE_TETS 50000  // gels with more tets say what they build at load (seconds)

// everything a difftac.elastomer instance is configured with; dtac_elastomer_def_default gives
// the documented defaults (docs/mjcf.md), plugin/config.c fills it from the MJCF config keys
typedef struct dtac_elastomer_def_ {
  dtac_gel_def gel;         // the soft body: mesh, material, contact constants
  char site[DTAC_NAMELEN];  // name of the site whose frame holds the back face (required)
  int contype;              // contact bits of the gel, MuJoCo semantics (default 1)
  int conaffinity;          // (default 1)
  int coupling;             // 1: substep coupling of touched bodies (default), 0: explicit
  int device;               // dtac_dev_kind the gel is stepped on, -1: auto (default)
  int ordinal;              // CUDA device number (default 0)
  int integrator;           // DTAC_INTEGRATOR_* (default explicit)
  double tolerance;         // implicit: relative residual the Newton iteration stops at (1e-6)
  int iterations;           // implicit: Newton iteration cap (20)
  int material;             // DTAC_MAT_NEOHOOKEAN (default) or DTAC_MAT_LINEAR (implicit only)
} dtac_elastomer_def;

#define DTAC_INTEGRATOR_EXPLICIT 0  // substeps of the stable explicit step (step.c)
#define DTAC_INTEGRATOR_IMPLICIT 1  // one backward-Euler solve per step (implicit.h)

void dtac_elastomer_def_default(dtac_elastomer_def* def);

struct dtac_world_;

// plugin_data of one instance in one mjData. The mesh (model's geometry), the layout and the
// geom table are never written after dtac_elastomer_make; the model's material block is the
// run-time parameter set (dtac_param_set), carried by dtac_elastomer_copy.
typedef struct dtac_elastomer_ {
  char name[DTAC_NAMELEN];  // instance name, for messages
  int instance;
  int site, body;  // site id, its body id
  dtac_elastomer_def def;
  dtac_gel_model model;
  dtac_state_layout L;
  dtac_geom_table geoms;  // which geoms the gel may touch
  int nsub;               // substeps per MuJoCo step (follows the parameters)
  dtac_gel_scratch scratch;
  struct dtac_world_* world;  // the joint step of this mjData (owned by the first elastomer)
  int is_lead;                // 1: this is the first elastomer, which owns the world
  // device (src/device.h): a context and the gel's device copy (CPU: kind DTAC_DEV_CPU)
  dtac_dev dev;
  dtac_gel_mirror mirror;
  // candidate colliders of the last evaluation, and scratch
  dtac_collider* col;  // (ngeom)
  int ncol;
  int* col_slot;   // body slot of each collider in the joint step (ngeom)
  double* col_ft;  // reaction wrench on each collider (ngeom x 6)
  mjtNum* jac;     // Jacobian scratch (6 x nv)
  mjtNum* qtmp;    // joint-space scratch (nv)
  // what the last force evaluation (passive.c) handed to MuJoCo, and its outputs
  mjtNum* qfrc;           // the gel's share of qfrc_passive (nv)
  mjtNum* body_wrench;    // the gel's wrench on each body, about xpos (nbody x 6)
  double* contact_force;  // contact force on each node, world (nnode x 3; 0 off the surface)
  mjtNum wrench[6];       // contact force/torque on the gel (world; torque about the site)
  int ncontact;
  // reverse of the force evaluation (passive_adj.c): what its rigid dependencies are differenced
  // with, and the cotangent of the contact forces the sensors hand over
  int frozen;                  // 1: the force evaluation and the step do nothing (the tape)
  double* cf_bar;              // cotangent of the node contact forces (nnode x 3)
  dtac_collider_bar* col_bar;  // cotangents of the colliders' frames (ngeom)
  dtac_frame psite_bar;        // cotangent of the site frame (pos, vel, angvel)
  double pFT[6];               // the back face's force and torque about the site applied
  // run-time reports
  int nwarning;    // blow-ups (the gel was reset to rest)
  int nover_said;  // the warning of a node inside too many colliders was given
  int nsub_last;   // substeps taken in the last step
  // implicit integrator: the solver, the step-end frames it is given, its last report
  dtac_implicit* imp;
  dtac_collider* col1;  // the colliders at the step end (ngeom)
  dtac_frame site1;     // the site at the step end
  dtac_implicit_report irep;
  int nnonconverged;  // implicit steps that stopped short of the tolerance
} dtac_elastomer;

// the joint step of all elastomers of one mjData
typedef struct dtac_world_ {
  dtac_elastomer* lead;   // the first elastomer instance: owns the world; steps on its device
  int maxgel;             // elastomers the model may have (nplugin)
  dtac_elastomer** gels;  // the elastomers of this step (maxgel)
  dtac_gel_step* steps;   // their parts of the joint step (maxgel)
  dtac_frame* sites;      // their sites at the step start (maxgel)
  int ngel;               // of the last setup
  dtac_coupling cp;       // the coupled bodies
  int integrator;         // DTAC_INTEGRATOR_* of every gel of the model (the lead's)
  dtac_implicit_joint* ij;    // implicit: the joint step's work
  dtac_implicit_gel* igels;   // implicit: the gels of the joint step (maxgel)
  mjtNum* jac;            // Jacobian scratch (6 x nv)
  // device: the joint step's inputs on the lead's device, and a prepared step
  dtac_env_block block;
  dtac_gel_mirror** mirrors;  // the mirrors of the gels of the joint step (maxgel)
  int defer;                  // 1: advance prepares the device step only (dtac_batch launches it)
  dtac_dev_env* dev_env;      // the prepared step's device address (NULL: none pending)
  int dev_ngel;               // gels of the prepared step
  // gradients (elastomer_deriv.c)
  int fixed;         // 1: the setup keeps its collider and body lists (poses are refreshed)
  int record;        // 1: the joint step records its tape and its rigid inputs
  double* tape;      // tape of the last recorded joint step
  size_t tape_size;  // doubles allocated for it
  mjtNum* rec_qpos;  // qpos and qvel the last recorded step's advance started from
  mjtNum* rec_qvel;
  mjtNum* rec_state1;  // implicit: the plugin states after the recorded step (npluginstate)
  int rec_given;       // 1: rec_state1 was handed by the tape before the recorded step, which
                       // then takes the gels' states from it instead of solving again
  mjtNum* wapp_rows;  // cotangent of the wrench the rigid step applied to each body (rows x
  int wapp_rows_cap;  // nbody x 6), from the reverse of the advance; rows allocated
  mjtNum* gscratch;   // scratch of the reverse pass (allocated when recording starts)
} dtac_world;

// ---- instances (elastomer.c)

// builds the instance from its def (site, mesh, geom table, scratch); the world and device are
// set up by dtac_elastomer_attach. NULL with a message in err on failure.
dtac_elastomer* dtac_elastomer_make(const mjModel* m, int instance, const char* name,
                                    const dtac_elastomer_def* def, char* err, int errlen);
void dtac_elastomer_free(dtac_elastomer* e);
// joins e to the world of d's first elastomer (lead: NULL if e is the first; it makes the world)
// and opens its device; nonzero with a message in err (an unusable explicit device, devices that
// differ between the gels of one model)
int dtac_elastomer_attach(const mjModel* m, mjData* d, dtac_elastomer* e, dtac_elastomer* lead,
                          char* err, int errlen);
// the elastomer of a plugin instance in d, or NULL if the instance is not one
dtac_elastomer* dtac_elastomer_get(const mjModel* m, const mjData* d, int instance);
// the first elastomer instance of d (the one that owns the world), or NULL
dtac_elastomer* dtac_elastomer_lead(const mjModel* m, const mjData* d);
// places the rest shape at the site if the state was reset; returns 0 (and places nothing) while
// the site has no pose yet (before the first kinematics pass), else 1
int dtac_elastomer_ensure_placed(const mjModel* m, mjData* d, dtac_elastomer* e);
// plugin_state was reset: the outputs of the last evaluation are cleared
void dtac_elastomer_reset(dtac_elastomer* e, mjtNum* state);
// mj_copyData: the outputs of the last evaluation and the run-time parameters of src
void dtac_elastomer_copy(dtac_elastomer* dst, const dtac_elastomer* src, const mjModel* m);
// sets run-time parameter k (dtac_gel_param); the substep follows. Nonzero (a warning given, the
// parameter unchanged) if the value is out of range or needs too many substeps.
int dtac_elastomer_param_set(const mjModel* m, dtac_elastomer* e, int k, double value);
// frees e's device copy (and the lead's block): e is stepped on the CPU from now on
void dtac_elastomer_device_off(dtac_elastomer* e);
// a non-finite gel state is reported, counted and restarted from rest at the site; 1 if it was
// the gel restarted from rest at its site, the blow-up counted and warned with `what`
void dtac_elastomer_restart(const mjModel* m, mjData* d, dtac_elastomer* e, const char* what);
int dtac_elastomer_check_finite(const mjModel* m, mjData* d, dtac_elastomer* e, const char* where);
// the site's pose (velocities zero)
void dtac_site_pose(const mjData* d, int site, dtac_frame* f);
// gravity as the model applies it
void dtac_gravity(const mjModel* m, double g[3]);

// ---- the force evaluation (passive.c, passive_adj.c)

// the gel's forces on the bodies from its state (a pure function of it): the back face's
// internal and damping forces on the site's body, contact reactions on the touched bodies;
// added to d->qfrc_passive and kept in e (qfrc, body_wrench, contact_force, wrench)
void dtac_elastomer_passive(const mjModel* m, mjData* d, dtac_elastomer* e);
// the colliders the force evaluation sees at d's kinematics: from cvel, or (fixed) the same list
void dtac_elastomer_colliders(const mjModel* m, mjData* d, dtac_elastomer* e, int fixed);

// VJP of the force evaluation: given the cotangents of the gel's share of qfrc_passive (qfrc_bar,
// nv), of the wrench it applies to each body (about the body's origin, wrench_bar: nbody x 6, may
// be NULL) and of its per-node contact forces (cf_bar: nnode x 3, may be NULL), accumulates the
// cotangent of the gel's state (state_bar) and of its parameters, with d's kinematics and
// velocities held fixed. d must hold the kinematics the evaluation ran at. Keeps the cotangents of
// the colliders' and the site's frames (e->col_bar, e->psite_bar) and the wrenches the evaluation
// applied, for dtac_elastomer_rigid_dot.
void dtac_elastomer_passive_adj(const mjModel* m, mjData* d, dtac_elastomer* e,
                                const mjtNum* qfrc_bar, const mjtNum* wrench_bar,
                                const double* cf_bar, double* state_bar, dtac_gel_param_bar* pb);
// the rigid dependencies of the force evaluation at d's current kinematics and velocities, after
// dtac_elastomer_passive_adj: the wrenches it applied (held) mapped to qfrc (dotted with qfrc_bar)
// and moved to the bodies' origins (dotted with wrench_bar), plus <cotangents, frames> of its
// colliders and site. Its derivative in the rigid state is the evaluation's, the gel state held.
mjtNum dtac_elastomer_rigid_dot(const mjModel* m, mjData* d, dtac_elastomer* e,
                                const mjtNum* qfrc_bar, const mjtNum* wrench_bar);
// the frames (pos 3, mat 9, vel 3, angvel 3 each) of the colliders the evaluation gathered,
// refreshed at d's current kinematics and velocities (the same list); returns their count
int dtac_elastomer_collider_frames(const mjModel* m, mjData* d, dtac_elastomer* e, double* frames);
// tangent of the per-node contact forces (df: nnode x 3) for tangents of the colliders' frames
// (dcol: ncol x 18, as dtac_elastomer_collider_frames lays them out), the gel state held; d must
// hold the evaluation's kinematics (after mj_forward). Uses the gel's step scratch.
void dtac_elastomer_contact_jvp(const mjModel* m, mjData* d, dtac_elastomer* e, const double* dcol,
                                double* df);

// ---- the joint step (world.c)

// the world of d's first elastomer, made for m; NULL when out of memory
dtac_world* dtac_world_make(const mjModel* m, dtac_elastomer* lead);
void dtac_world_free(dtac_world* w);
// sets up the joint step of all gels from d's kinematics (at the step start) and qvel: steps,
// sites, colliders, body slots. With w->fixed, the collider and body lists of the last setup are
// kept (poses, velocities and inverse masses are refreshed). Returns the number of gels.
int dtac_world_setup(const mjModel* m, mjData* d, dtac_world* w);
// the implicit step's parameters of w's gels (the lead's keys)
void dtac_world_implicit_params(const dtac_world* w, dtac_implicit_params* p);
// time integration of all gels over one MuJoCo step, after MuJoCo advanced qpos and qvel: on the
// lead's device (one launch for every substep; with w->defer only prepared, for dtac_batch), or on
// the CPU (always while the tape records)
void dtac_world_advance(const mjModel* m, mjData* d, dtac_world* w);
// the rest of advance after the gels' step: the rigid corrections and each gel's report
void dtac_world_advance_end(const mjModel* m, mjData* d, dtac_world* w, int ngel);
// the device step in parts (a batch launches many environments at once): begin prepares it
// (after dtac_world_setup) into w->dev_env, end downloads its results and finishes the step as
// advance does; both return nonzero after reporting an error (the CPU steps on from then on)
int dtac_world_device_begin(const mjModel* m, mjData* d, dtac_world* w, int ngel);
int dtac_world_device_end(const mjModel* m, mjData* d, dtac_world* w, int ngel);
// a prepared device step whose launch failed: reported, and the step taken on the CPU
void dtac_world_device_abort(const mjModel* m, mjData* d, dtac_world* w);
// device_end of a prepared and launched step, and on its failure the step on the CPU; returns
// nonzero if it fell back
int dtac_world_device_finish(const mjModel* m, mjData* d, dtac_world* w);

#endif  // DTAC_SRC_ELASTOMER_H_
