// elastomer.h: the difftac.elastomer plugin instance: MuJoCo glue around the gel core.
#ifndef DTAC_PLUGIN_ELASTOMER_H_
#define DTAC_PLUGIN_ELASTOMER_H_

#include <mujoco/mujoco.h>

#include "device.h"
#include "gel.h"

#define DTAC_ELASTOMER_NAME "difftac.elastomer"
#define DTAC_NAMELEN 128

// per-instance settings that are MuJoCo-specific (the rest is dtac_gel_def)
typedef struct dtac_elastomer_def_ {
  dtac_gel_def gel;
  char site[DTAC_NAMELEN];  // name of the site whose frame holds the back face
  int contype;              // contact bits of the gel, MuJoCo semantics
  int conaffinity;
  int coupling;  // 1: substep coupling of touched bodies, 0: explicit
  int device;    // dtac_dev_kind the gel is stepped on (auto resolved at creation: -1)
  int ordinal;   // CUDA device number
} dtac_elastomer_def;

// plugin_data of one instance in one mjData: immutable model + scratch; no state here
typedef struct dtac_elastomer_ {
  char name[DTAC_NAMELEN];  // instance name, for messages
  int instance;
  int site, body;  // site id, its body id
  dtac_elastomer_def def;
  dtac_gel_model model;
  dtac_gel_scratch scratch;
  dtac_state_layout L;
  int nsub;  // substeps per MuJoCo step
  // colliders
  int ngeom;
  unsigned char* geom_ok;  // geom may touch the gel (ngeom)
  double* geom_kscale;     // contact stiffness scale against each geom's body (ngeom)
  int* geom_planeadr;      // mesh geoms: first hull plane, -1 if none (ngeom)
  int* geom_nplane;        // mesh geoms: hull plane count (ngeom)
  double* planes;          // hull planes of all mesh geoms (nplane x 4)
  int nplane;
  dtac_collider* col;      // candidate colliders this step (ngeom)
  int ncol;
  double* col_ft;  // reaction wrench on each collider (ngeom x 6)
  mjtNum* jac;     // Jacobian scratch (6 x nv)
  // substep coupling: the site's body and touched bodies, moved inside the gel's substeps
  int coupling;  // 1: substep coupling on (config 'coupling')
  int maxslot;   // slots available
  int nslot;
  int* slot_body;       // body id of each slot (maxslot)
  int* body_slot;       // slot of each body this step, -1 none (nbody)
  int* col_slot;        // slot of each candidate collider (ngeom)
  dtac_body* slot;      // body frames, inverse masses, corrections (maxslot)
  mjtNum* slot_jac;     // their Jacobians at the body origin (maxslot x 6 x nv)
  mjtNum* slot_tmp;     // M^-1 J^T scratch (6 x nv), joint-space correction (2 x nv)
  mjtNum* body_wrench;  // gel wrench applied by compute on each body, about xpos (nbody x 6)
  // joint step of all elastomers, run by the first instance (used in that one only)
  int maxgel;
  struct dtac_elastomer_** gels;  // the elastomer instances of this mjData (maxgel)
  dtac_gel_step* steps;           // their parts of the joint step (maxgel)
  dtac_frame* sites;              // their sites at the step start (maxgel)
  int nsub_last;                  // substeps taken in the last step
  // device (src/device.h): a context and the gel's device copy; the lead also steps on it
  dtac_dev dev;             // kind DTAC_DEV_CPU: stepped on the CPU
  dtac_gel_mirror mirror;   // this gel's mesh, state and scratch on the device
  dtac_env_block block;     // lead: the joint step's inputs on the device
  dtac_gel_mirror** mirrors;  // lead: the mirrors of the gels of the joint step (maxgel)
  int defer;                // lead: advance prepares the device step only (dtac_batch runs it)
  dtac_dev_env* dev_env;    // lead: the prepared step's device address (NULL: none pending)
  int dev_ngel;             // lead: gels of the prepared step
  // gradients (plugin/grad.c)
  int frozen;        // 1: compute and advance do nothing (the rigid step alone)
  int fixed;         // 1: the joint step's setup keeps its collider and body lists (lead)
  mjtNum* qfrc;      // the gel's share of qfrc_passive in the last compute (nv)
  int record;        // lead: the joint step records its tape and its rigid inputs
  double* tape;      // lead: tape of the last recorded joint step
  size_t tape_size;  // doubles allocated for it
  mjtNum* rec_qpos;  // lead: qpos and qvel the last recorded step's advance started from
  mjtNum* rec_qvel;
  mjtNum* wapp_rows;           // lead: cotangent of the wrench the rigid step applied to each body
                               // (rows x nbody x 6), from the reverse of the advance
  int wapp_rows_cap;           // rows allocated
  double* cf_bar;              // cotangent of the node contact forces (nnode x 3), from sensors
  dtac_collider_bar* col_bar;  // cotangents of the step-start colliders (ngeom)
  mjtNum* gscratch;  // lead: scratch of the reverse pass (allocated when recording starts)
  // reverse of compute: what the forces' rigid dependencies are differenced with
  dtac_frame psite_bar;  // cotangent of the site frame (pos, vel, angvel) compute used
  double pFT[6];         // the back face's force and torque about the site compute applied
  // outputs of the last passive evaluation (compute)
  double* contact_force;  // contact force on each node, world (nnode x 3; 0 off the surface)
  mjtNum wrench[6];       // contact force/torque on the gel (world; torque about the site)
  int ncontact;
  int nwarning;
  int nover_said;  // the warning of a node inside too many colliders was given
} dtac_elastomer;

// config parsing (config.c): the only place the config keys are named
extern const char* const dtac_elastomer_attributes[];
extern const int dtac_elastomer_nattribute;
// parses the config of `instance`; on error returns nonzero with a message in err
int dtac_elastomer_parse(const mjModel* m, int instance, dtac_elastomer_def* def, char* err,
                         int errlen);

// the elastomer of a plugin instance in d, or NULL if the instance is not one
dtac_elastomer* dtac_elastomer_get(const mjModel* m, const mjData* d, int instance);

// places the rest shape at the site if the state was reset; returns 0 (and places nothing) while
// the site has no pose yet (before the first kinematics pass), else 1
int dtac_elastomer_ensure_placed(const mjModel* m, mjData* d, dtac_elastomer* e);

void dtac_elastomer_register(void);

// ---- for the gradient tape (plugin/grad.c)

// the device step of the lead, in parts (a batch launches many environments at once): begin
// prepares it (after dtac_elastomer_setup) into lead->dev_env, end downloads its results and
// finishes the step as advance does; both return nonzero after reporting an error
int dtac_elastomer_device_begin(const mjModel* m, mjData* d, dtac_elastomer* lead, int ngel);
int dtac_elastomer_device_end(const mjModel* m, mjData* d, dtac_elastomer* lead, int ngel);
// the rest of advance after the gels' step: the rigid corrections and each gel's report
void dtac_elastomer_advance_end(const mjModel* m, mjData* d, dtac_elastomer* lead, int ngel);
// a prepared device step whose launch failed: reported, and the step taken on the CPU (the
// device is off for this mjData from then on)
void dtac_elastomer_device_abort(const mjModel* m, mjData* d, dtac_elastomer* lead);
// device_end of a prepared and launched step, and on its failure (reported) the step on the CPU;
// returns nonzero if it fell back
int dtac_elastomer_device_finish(const mjModel* m, mjData* d, dtac_elastomer* lead);

// blow-ups d has counted: the gels' warnings (a gel that became non-finite is reset to rest and
// counted) and MuJoCo's bad qpos/qvel/qacc warnings (MuJoCo resets the state); a step whose
// count rose blew up
int dtac_blowup_count(const mjModel* m, const mjData* d);

// the first elastomer instance of d (the one that steps all gels jointly), or NULL
dtac_elastomer* dtac_elastomer_lead(const mjModel* m, const mjData* d);

// sets up the joint step of all gels from d's kinematics (at the step start) and qvel, as
// advance does, without stepping: lead->steps, sites, colliders, body slots. With
// lead->fixed, the collider and body lists of the last setup are kept (poses, velocities and
// inverse masses are refreshed). Returns the number of gels.
int dtac_elastomer_setup(const mjModel* m, mjData* d, dtac_elastomer* lead);

// the rigid bodies' share of the coupling after a joint step: qvel += M^-1 sum J^T dP, qpos moved
// by M^-1 sum J^T dQ (M and J of d's current kinematics and mass matrix)
void dtac_elastomer_corrections(const mjModel* m, mjData* d, dtac_elastomer* lead);

// VJP of compute (the gel's forces on the bodies from its state): given the cotangents of the
// gel's share of qfrc_passive (qfrc_bar, nv), of the wrench it applies to each body (about the
// body's origin, wrench_bar: nbody x 6, may be NULL) and of its per-node contact forces
// (cf_bar: nnode x 3, may be NULL), accumulates the cotangent of the gel's state (state_bar)
// and of its parameters, with d's kinematics and velocities held fixed. d must hold the
// kinematics compute ran at (after mj_forward or a step's forward pass on this state). Keeps
// the cotangents of the colliders' and the site's frames (e->col_bar, e->psite_bar) and the
// wrenches compute applied, for dtac_elastomer_rigid_dot.
void dtac_elastomer_passive_adj(const mjModel* m, mjData* d, dtac_elastomer* e,
                                const mjtNum* qfrc_bar, const mjtNum* wrench_bar,
                                const double* cf_bar, double* state_bar, dtac_gel_param_bar* pb);

// the rigid dependencies of compute at d's current kinematics and velocities (mj_kinematics,
// mj_comPos, mj_comVel), after dtac_elastomer_passive_adj: the wrenches compute applied (held)
// mapped to qfrc (dotted with qfrc_bar) and moved to the bodies' origins (dotted with
// wrench_bar), plus <cotangents, frames> of its colliders and site. Its derivative in the rigid
// state is compute's, with the gel's state held.
mjtNum dtac_elastomer_rigid_dot(const mjModel* m, mjData* d, dtac_elastomer* e,
                                const mjtNum* qfrc_bar, const mjtNum* wrench_bar);

// the frames (pos 3, mat 9, vel 3, angvel 3 each) of the colliders compute gathered, refreshed
// at d's current kinematics and velocities (the same list); returns their count
int dtac_elastomer_collider_frames(const mjModel* m, mjData* d, dtac_elastomer* e, double* frames);

// tangent of compute's per-node contact forces (df: nnode x 3) for tangents of its colliders'
// frames (dcol: ncol x 18, as dtac_elastomer_collider_frames lays them out), the gel's state
// held; d must hold compute's kinematics (after mj_forward). Uses the gel's step scratch.
void dtac_elastomer_contact_jvp(const mjModel* m, mjData* d, dtac_elastomer* e, const double* dcol,
                                double* df);

// mju_warning with the message formatted first, one call at a time in the process: MuJoCo's
// default log handler is not safe to enter from several threads at once, and a batch's threads
// warn together (a device failure reaches every environment in the same phase)
void dtac_warning(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

#endif  // DTAC_PLUGIN_ELASTOMER_H_
