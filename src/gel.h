// gel.h: the library core's view of one elastomer: its definition (config with defaults), its
// immutable model (mesh, material, contact constants, substep), and the scratch it steps with.
// MuJoCo-free: the plugin layer turns mjModel/mjData into these and back.
#ifndef DTAC_SRC_GEL_H_
#define DTAC_SRC_GEL_H_

#include <stddef.h>

#include "contact.h"
#include "fem.h"
#include "substep.h"

#define DTAC_MAX_NODES 2000000   // mesh size limit: a finer resolution is a load error
#define DTAC_MAX_SUBSTEPS 20000  // substeps per MuJoCo step limit: more is a load error
#define DTAC_MAX_STEP_WORK 1e9   // substeps x tets per MuJoCo step limit (about 1 s on one core)
// strain of a pad under its own weight at 1 g (density g size[2] / young) limit: more is a load
// error (a typical gel: 1e-4)
#define DTAC_MAX_SELF_STRAIN 0.1
#define DTAC_ERRLEN 512

typedef enum dtac_shape_ { DTAC_SHAPE_BOX = 0 } dtac_shape;

// everything the user can set, with defaults (dtac_gel_def_default); negative = derived
typedef struct dtac_gel_def_ {
  dtac_shape shape;
  double size[3];       // full extents x y z, m
  double resolution;    // target element edge length, m
  double young;         // Pa
  double poisson;       // (-1, 0.5)
  double density;       // kg/m^3
  double damping;       // stiffness-proportional damping time, s (<0: derived)
  double mass_damping;  // mass-proportional damping relative to the site's body, 1/s (<0: derived)
  double friction;      // Coulomb coefficient against every geom
  double contact_stiffness;   // normal penalty per unit area, Pa/m (<0: derived)
  double contact_damping;     // normal contact damping ratio, dimensionless
  double friction_stiffness;  // tangential stick stiffness per area, Pa/m (<0: = contact)
  double contact_width;       // penetration over which the normal force ramps in, m (<0: derived)
} dtac_gel_def;

// immutable after creation
typedef struct dtac_gel_model_ {
  dtac_gel_def def;
  int n[3];  // cells along x y z
  int nnode, ntet, nsurf, nfixed;
  double* coord[3];      // grid coordinates along x y z, gel frame (n[k] + 1 each)
  double* X;             // rest positions in the gel frame (nnode x 3)
  unsigned char* lock;   // bit k set: velocity component k held at zero (nnode; tests)
  int* tet;              // node ids of each tet (ntet x 4)
  double* Dm_inv;        // rest shape inverse (ntet x 9)
  double* vol;           // rest volume (ntet)
  double* mass;          // lumped mass (nnode)
  double* inv_mass;      // 1/mass of free nodes, 0 of fixed (nnode)
  unsigned char* fixed;  // 1: back-face node moved with the site (nnode)
  int* fixed_id;         // the fixed nodes (nfixed)
  int nback_tet;         // the tets with a node on the back face ...
  int* back_tet;         // ... (nback_tet): all the back face's internal forces depend on
  int* node_tetadr;      // node -> first incidence in node_tet (nnode + 1)
  int* node_tet;         // incidences: 4*tet + local vertex (4 ntet)
  int* surf;             // contact (surface, non-back) node ids (nsurf)
  int* node_surf;        // each node's index in surf, -1 if none (nnode)
  double* surf_area;     // tributary surface area of each contact node, m^2 (nsurf)
  dtac_contact_node_param* surf_param;  // contact constants per contact node (nsurf)
  dtac_material mat;
  double total_mass;          // kg
  double omega_max;           // highest angular frequency of the free gel at rest, rad/s
  double omega_contact;       // highest contact spring frequency, rad/s
  double dt_stable;           // largest stable explicit step, s
  double alpha;               // mass-proportional damping rate actually used, 1/s
  double contact_stiffness;   // normal penalty per area actually used, Pa/m
  double friction_stiffness;  // tangential stick stiffness per area actually used, Pa/m
  // the back face against a rigid motion (translation; rotation about the site origin) of the
  // site's body, the free nodes held, in the gel frame (6 x 6 each): the elastic stiffness of
  // the back tets (N/m, N, N m) and the rigid-motion mass of the free nodes (kg, kg m, kg m^2),
  // with which a coupled body's own frequency enters the substep (dtac_coupling_substeps)
  double back_K[36];
  double back_M[36];
} dtac_gel_model;

// state layout inside one flat array (MuJoCo's plugin_state)
typedef struct dtac_state_layout_ {
  int x;       // node positions, world (nnode x 3)
  int v;       // node velocities, world (nnode x 3)
  int anchor;  // per contact node: geom id (-1 none), anchor in the geom frame (nsurf x 4)
  int placed;  // 1 once the rest shape was placed at the site (0 after a reset)
  int size;
} dtac_state_layout;

// mutable scratch for stepping, sized at creation (no allocation in the step)
typedef struct dtac_gel_scratch_ {
  double* tet_force;     // per-tet node forces (ntet x 12)
  double* force;         // per-node force (nnode x 3)
  double* tet_J;         // det F per tet (ntet)
  dtac_collider* col_t;  // colliders at the current substep time
  double* col_local;     // collider pose in its body's frame: pos 3, mat 9 (maxcol x 12)
  double* col_ft;        // reaction wrench on each collider in a substep (maxcol x 6)
  double* imp;           // implicit contact terms per contact node (nsurf x DTAC_IMP_SIZE)
  dtac_node_react* react;  // each contact node's forces on its colliders in a substep (nsurf)
  double* react_t;         // their torques about the colliders (nsurf x DTAC_NODE_MAXCOL x 3)
  int maxcol;
  // reverse pass (step_adj.c): a substep recomputed with rec = 1 keeps its intermediates
  int rec;
  double* fint;                // internal forces at the substep start (nnode x 3)
  double* vimp;                // node velocity before each implicit contact update (nsurf x 6)
  dtac_frame st;               // the site's frame in the substep
  double wsite[6];             // the gel's wrench on the site's body in the substep
  double* state_tmp;           // a state to recompute in (state size)
  double* fbar;                // cotangent of the node forces (nnode x 3)
  double* imp_bar;             // cotangents of imp (nsurf x DTAC_IMP_SIZE)
  double* col_ft_bar;          // cotangents of col_ft (maxcol x 6)
  dtac_collider_bar* col_bar;  // cotangents of col_t (maxcol)
  dtac_material_adj ma;        // cotangents of the material constants
} dtac_gel_scratch;

// what a step or force evaluation reports back
typedef struct dtac_step_report_ {
  double min_J;   // smallest det F seen
  int nonfinite;  // 1 if a non-finite value appeared
  int ncontact;   // contact nodes in contact at the end
  int nsub;       // substeps taken (more than asked when elements were compressed or inverted)
  int nover;      // node-collider contacts left out (a node inside more than DTAC_NODE_MAXCOL)
} dtac_step_report;

// ---- model
// ---------------------------------------------------------------------------------------

void dtac_gel_def_default(dtac_gel_def* def);
// checks a def; on error returns nonzero with a message naming key and value in err
int dtac_gel_def_check(const dtac_gel_def* def, char* err, size_t errlen);
// mesh sizes of a def without building anything (for plugin_state sizing)
void dtac_gel_counts(const dtac_gel_def* def, int n[3], int* nnode, int* ntet, int* nsurf);
// builds the model; nofixed = 1 builds a free gel (tests); 0 on success, else err is filled
int dtac_gel_model_make(dtac_gel_model* gm, const dtac_gel_def* def, int nofixed, double timestep,
                        char* err, size_t errlen);
// the same on a graded rectilinear grid of ncell[k] cells along axis k whose node coordinates are
// coords[k] (ncell[k] + 1 increasing values; z from 0 at the back face); def->size and
// def->resolution are then ignored for the mesh
int dtac_gel_model_make_grid(dtac_gel_model* gm, const dtac_gel_def* def, const int ncell[3],
                             const double* const coords[3], int nofixed, double timestep, char* err,
                             size_t errlen);
void dtac_gel_model_free(dtac_gel_model* gm);
dtac_state_layout dtac_gel_state_layout(const dtac_gel_model* gm);
int dtac_gel_substeps(const dtac_gel_model* gm, double timestep);

// the gel's differentiable parameters, in the order of dtac_gel_param_bar's fields
typedef enum dtac_gel_param_ {
  DTAC_PARAM_YOUNG = 0,
  DTAC_PARAM_POISSON,
  DTAC_PARAM_DAMPING,
  DTAC_PARAM_MASS_DAMPING,
  DTAC_PARAM_FRICTION,
  DTAC_PARAM_CONTACT_STIFFNESS,
  DTAC_PARAM_CONTACT_DAMPING,
  DTAC_PARAM_FRICTION_STIFFNESS,
  DTAC_NPARAM
} dtac_gel_param;
extern const char* const dtac_gel_param_names[DTAC_NPARAM];
// a parameter's value as the step uses it (derived defaults resolved)
double dtac_gel_param_get(const dtac_gel_model* gm, int k);
// sets a parameter, updating what derives from it (material constants, per-node contact
// constants, the stable substep dt_stable); derived defaults (damping, contact stiffness) stay
// as they were. Returns nonzero with a message if the value is out of range.
int dtac_gel_param_set(dtac_gel_model* gm, int k, double value, char* err, size_t errlen);
// the run-time parameters of src (and all that derives from them) into dst, a model built from the
// same def (mj_copyData of an mjData whose parameters were set)
void dtac_gel_param_copy(dtac_gel_model* dst, const dtac_gel_model* src);

int dtac_gel_scratch_make(dtac_gel_scratch* s, const dtac_gel_model* gm, int maxcol);
void dtac_gel_scratch_free(dtac_gel_scratch* s);

// ---- state and stepping (step.c)
// --------------------------------------------------------------------

// rest shape placed at the site frame, zero velocity, no anchors
void dtac_gel_state_rest(const dtac_gel_model* gm, const dtac_frame* site, double* state);
// the rest shape moving rigidly with the site (its vel and angvel), no anchors: a gel restarted
// on a moving body, so that the restart does not jolt the body through the gel's damping
void dtac_gel_state_rigid(const dtac_gel_model* gm, const dtac_frame* site, double* state);

// internal forces on the back face's nodes only, into s->force at fixed_id (other nodes' entries
// are left as they were): the elements touching the back face (gm->back_tet), the same values
// dtac_gel_internal_force gives them, at a fraction of its cost (what the plugin's force
// evaluation needs for the reaction on the site's body)
void dtac_gel_back_force(const dtac_gel_model* gm, dtac_gel_scratch* s, const double* x,
                         const double* v);

// element forces (s->tet_force, s->tet_J) of all tets; returns min det F (the step gathers them
// node by node, dtac_node_substep)
double dtac_gel_tet_forces(const dtac_gel_model* gm, dtac_gel_scratch* s, const double* x,
                           const double* v);

// internal (elastic + damping) forces of all nodes into s->force; returns min det F
double dtac_gel_internal_force(const dtac_gel_model* gm, dtac_gel_scratch* s, const double* x,
                               const double* v);

// the highest eigenvalue of M^-1 K0 (K0: linear elasticity at rest, the back face and locked
// components held): omega_max^2 without the load's margin (gel_eig.c, Lanczos)
double dtac_gel_max_eig(const dtac_gel_model* gm);

// contact forces of contact nodes with colliders, added to node_force (nnode x 3) when not null;
// reaction force/torque about each collider's frame origin accumulated into col_ft (ncol x 6)
// when not null; anchors updated when anchor_out is not null. Returns contact node count.
int dtac_gel_contact(const dtac_gel_model* gm, const double* x, const double* v,
                     const double* anchor, double* anchor_out, const dtac_collider* col, int ncol,
                     double* node_force, double* col_ft);

// mass-proportional damping relative to the rigid motion of `frame` (pos, vel, angvel at the
// current time): adds -alpha m (v - v_rigid) to force of free nodes; the reaction on the frame's
// body (force, torque about frame->pos) is accumulated into wrench when not null
void dtac_gel_mass_damping(const dtac_gel_model* gm, const double* x, const double* v,
                           const double pos[3], const dtac_frame* frame, double* force,
                           double wrench[6]);

// the same, leaving the deepest collider's normal damping out of the forces and reporting, per
// contact node, what the implicit update needs in imp (nsurf x DTAC_IMP_SIZE), for the deepest
// and one more penetrated collider (dtac_imp_record); nover (may be NULL) accumulates the
// node-collider contacts left out (a node inside more than DTAC_NODE_MAXCOL colliders)
int dtac_gel_contact_ex(const dtac_gel_model* gm, const double* x, const double* v,
                        const double* anchor, double* anchor_out, const dtac_collider* col,
                        int ncol, double* node_force, double* col_ft, double* imp, int* nover);

// advances the state by h seconds in nsub explicit substeps, the site and colliders moving
// with constant velocity over the step
void dtac_gel_advance(const dtac_gel_model* gm, dtac_gel_scratch* s, double* state,
                      const dtac_frame* site, const dtac_collider* col, int ncol,
                      const double gravity[3], double h, int nsub, dtac_step_report* rep);

#define DTAC_MAX_BODY 64  // bodies coupled in one step

// one gel's part of a joint step of several gels (dtac_gels_advance)
typedef struct dtac_gel_step_ {
  const dtac_gel_model* gm;
  dtac_gel_scratch* s;
  double* state;
  const dtac_frame* site;    // the site at the step start (pose, velocity)
  int site_slot;             // body slot carrying the site, -1: constant velocity
  const dtac_collider* col;  // colliders at the step start
  const int* col_slot;       // body slot of each collider, -1 (or NULL): constant velocity
  int ncol;
  int nsub;              // substeps this gel needs
  dtac_frame site_b;     // internal: the site in its body's frame
  int fresh;             // internal: s->tet_force holds the element forces of the current state
  dtac_step_report rep;  // out
} dtac_gel_step;

// steps several gels together over h, with the bodies they touch moving inside the substeps
// (substep coupling shared by all gels: a body squeezed between two gels feels both at the
// substep rate); the finest substep any gel needs is used for all
void dtac_gels_advance(dtac_gel_step* gels, int ngel, dtac_body* bodies, int nbody,
                       const double gravity[3], double h);

// the same, recording on tape (NULL: none; dtac_gels_tape_size doubles) what the reverse pass
// (dtac_gels_advance_adj) needs: the substep count and every gel's state and every body's frame
// at the start of each substep
void dtac_gels_advance_tape(dtac_gel_step* gels, int ngel, dtac_body* bodies, int nbody,
                            const double gravity[3], double h, double* tape);
size_t dtac_gels_tape_size(const dtac_gel_step* gels, int ngel, int nbody);

// internals shared with the reverse pass (step_adj.c)
// the site of gel g at substep time t: on its body's current frame, or moved at constant
// velocity from the step start
void dtac_site_frame(const dtac_gel_step* g, const dtac_frame* cur, double t, dtac_frame* st);
// the colliders and the site of gel g at substep time t
void dtac_substep_frames(const dtac_gel_step* g, const dtac_frame* cur, double t,
                         dtac_collider* col_t, dtac_frame* st);
// the back face placed rigidly with the site at time t
void dtac_gel_place_back(dtac_gel_step* g, const dtac_frame* cur, double t);
// one gel's substep at time t: forces, implicit contact, integration of free nodes; the gel's
// wrench on each body slot is added to wb (about the slots' current origins)
void dtac_gel_substep(dtac_gel_step* g, const dtac_frame* cur, double t, double dt,
                      const double gravity[3], double* wb);
// sites' and colliders' poses in their bodies' frames, from the step-start frames
void dtac_gels_locals(dtac_gel_step* gels, int ngel, const dtac_body* bodies);

// the same with substep coupling: collider c moves with body col_slot[c] (>= 0) or at its own
// constant velocity (-1, or col_slot NULL); the site moves with body site_slot or, if -1, at the
// constant velocity of `site`. Bodies' dP and dQ are written.
void dtac_gel_advance_coupled(const dtac_gel_model* gm, dtac_gel_scratch* s, double* state,
                              const dtac_frame* site, int site_slot, dtac_body* bodies, int nbody,
                              const dtac_collider* col, const int* col_slot, int ncol,
                              const double gravity[3], double h, int nsub, dtac_step_report* rep);

// ---- reverse pass of the step (step_adj.c)
// ----------------------------------------------------------

// cotangents of a gel's parameters (accumulated): young, poisson, damping (stiffness-
// proportional time, s), mass_damping (1/s), friction, contact_stiffness (per area),
// contact_damping (ratio), friction_stiffness (per area); derived values are held fixed
typedef struct dtac_gel_param_bar_ {
  double young, poisson, damping, mass_damping, friction, contact_stiffness, contact_damping,
      friction_stiffness;
} dtac_gel_param_bar;

// one gel's cotangents in the reverse pass of a joint step
typedef struct dtac_gel_step_bar_ {
  double* state;             // in: of the state after the step; out: before (anchor ids ignored)
  dtac_frame site;           // out (accumulated): of the step-start site frame (g->site)
  dtac_collider_bar* col;    // out (accumulated): of the step-start colliders g->col (ncol)
  dtac_gel_param_bar param;  // out (accumulated)
} dtac_gel_step_bar;

// the reverse pass of dtac_gels_advance_tape (the same gels, bodies as they were before it, and
// its tape): vector-Jacobian product of the step's outputs (states, dP, dQ) with respect to all
// of its inputs (states, step-start frames of sites, colliders and bodies, Winv, wrench_app,
// parameters). Gravity is a constant. No allocation.
void dtac_gels_advance_adj(dtac_gel_step* gels, int ngel, const dtac_body* bodies, int nbody,
                           const double gravity[3], double h, const double* tape,
                           dtac_gel_step_bar* gb, dtac_body_bar* bb);
// the same for nrow cotangents at once (each substep recomputed once for all): gb (nrow x ngel)
// and bb (nrow x nbody) row by row; work: dtac_gels_adj_work_size doubles (no allocation; the
// single-row form above allocates its work)
void dtac_gels_advance_adj_rows(dtac_gel_step* gels, int ngel, const dtac_body* bodies, int nbody,
                                const double gravity[3], double h, const double* tape, int nrow,
                                dtac_gel_step_bar* gb, dtac_body_bar* bb, double* work);
size_t dtac_gels_adj_work_size(const dtac_gel_step* gels, int ngel, int nbody, int nrow);

// pieces of the reverse pass, shared with the plugin's reverse of its force evaluation
// VJP of dtac_gel_internal_force: node force cotangents fbar -> x, v, material (accumulated)
void dtac_gel_internal_force_adj(const dtac_gel_model* gm, const double* x, const double* v,
                                 const double* fbar, double* xb, double* vb, dtac_material_adj* ma);
// VJP of dtac_gel_mass_damping relative to frame st (about st->pos): cotangents of the node
// forces (fbar, may be NULL) and of the wrench (may be NULL) -> x, v, st (pos, vel, angvel), alpha
void dtac_gel_mass_damping_adj(const dtac_gel_model* gm, const double* x, const double* v,
                               const dtac_frame* st, const double* fbar, const double* wrench_bar,
                               double* xb, double* vb, dtac_frame* st_bar, double* alpha_bar);
// VJP of dtac_gel_contact_ex for surface node s: imp = 1 if the forward recorded implicit terms
// (imp_bar their cotangents), anchor_out = 1 if it wrote anchors (ab holds their cotangents on
// entry; on exit, and always, ab accumulates the input anchors' cotangents); fbar: node forces,
// col_ft_bar: the colliders' reaction wrenches
void dtac_gel_contact_node_adj(const dtac_gel_model* gm, int s, const dtac_collider* col, int ncol,
                               const double* x, const double* v, const double* anchor, int imp,
                               int anchor_out, const double* fbar, const double* col_ft_bar,
                               const double* imp_bar, double* xb, double* vb, double* ab,
                               dtac_collider_bar* col_bar, dtac_gel_param_bar* pb);

// kinetic energy and elastic energy of a state (tests, diagnostics)
double dtac_gel_kinetic(const dtac_gel_model* gm, const double* v);
double dtac_gel_strain_energy(const dtac_gel_model* gm, const double* x);


#endif  // DTAC_SRC_GEL_H_
