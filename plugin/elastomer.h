// elastomer.h: the difftac.elastomer plugin instance: MuJoCo glue around the gel core.
#ifndef DTAC_PLUGIN_ELASTOMER_H_
#define DTAC_PLUGIN_ELASTOMER_H_

#include <mujoco/mujoco.h>

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
  // outputs of the last passive evaluation (compute)
  double* contact_force;  // contact force on each node, world (nnode x 3; 0 off the surface)
  mjtNum wrench[6];       // contact force/torque on the gel (world; torque about the site)
  int ncontact;
  int nwarning;
  double min_J;
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

#endif  // DTAC_PLUGIN_ELASTOMER_H_
