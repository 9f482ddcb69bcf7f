// implicit.h: one backward-Euler step of a gel over a whole MuJoCo step h, on the incremental
// potential (inertia, elastic energy, Kelvin-Voigt damping, gravity, penalty contact, lagged
// friction), solved by Newton with per-element SPD projection and a line search; linear solves by
// CHOLMOD (SuiteSparse). Its vector-Jacobian product by the implicit function theorem.
// Self-contained: reads a dtac_gel_model, keeps the state layout of the explicit step.
#ifndef DTAC_SRC_IMPLICIT_H_
#define DTAC_SRC_IMPLICIT_H_

#include "fem_hess.h"  // DTAC_MAT_*
#include "gel.h"

// how the Newton systems are solved (docs/design.md, "Implicit step: linear solves measured")
typedef enum dtac_implicit_solver_ {
  DTAC_SOLVE_FACTOR = 0,  // assemble and factor (CHOLMOD) at every Newton iteration
  DTAC_SOLVE_PCG,         // assemble; CG preconditioned by a kept factor, refactored on a stall
  DTAC_SOLVE_MATFREE,  // no assembly: element Hessian products, the kept factor as preconditioner
} dtac_implicit_solver;

// step parameters (dtac_implicit_params_default)
typedef struct dtac_implicit_params_ {
  double tolerance;     // relative residual |grad E| / |forces in balance| to stop at (1e-6)
  int iterations;       // Newton iteration cap (20)
  int solver;           // dtac_implicit_solver (DTAC_SOLVE_PCG)
  int material;         // DTAC_MAT_NEOHOOKEAN (0) or DTAC_MAT_LINEAR (1)
  double cg_tolerance;  // inner CG's relative residual (1e-3; the Newton residual if less)
  int cg_iterations;    // CG iterations before the factor is renewed (25)
  int project;          // 1: every element Hessian projected; 0 (default): the true Hessian, the
                        // projected one for an iteration that finds it indefinite (negative
                        // curvature in CG, a failed factorization, or no descent direction)
  int contact_update;  // 1: the kept factor follows the contact patch by rank-one updates (default)
  double adj_tolerance;  // relative residual of the VJP's CG solve (1e-8)
  int adj_projected;     // VJP with the projected Hessian instead of the true one (0 default; 1
                         // only to measure the error that makes, tests/kernels/test_implicit.cc)
  int fresh_factor;  // 1 (default): each step's preconditioner starts from the first factor, so
                     // that a step is a function of its inputs alone; 0: the factor is kept
                     // from step to step (fewer CG iterations on a long hold)
} dtac_implicit_params;

// step status
#define DTAC_IMPLICIT_OK 0          // converged to tolerance
#define DTAC_IMPLICIT_MAXITER 1     // iteration cap reached; the last iterate is kept (finite)
#define DTAC_IMPLICIT_LINESEARCH 2  // no descent found; the last iterate is kept (finite)
#define DTAC_IMPLICIT_NONFINITE 3   // a non-finite value: the state is left as it was
#define DTAC_IMPLICIT_SOLVE 4       // the linear solver failed: the state is left as it was

typedef struct dtac_implicit_report_ {
  int status;       // DTAC_IMPLICIT_*
  int iterations;   // Newton iterations taken
  double residual;  // final relative residual
  double energy;    // incremental potential at the end, J
  int ncg;          // CG iterations, all Newton iterations together
  int nfactor;      // numeric factorizations
  int nupdate;      // rank-one updates and downdates of the kept factor
  int ncontact;     // contact nodes touching a collider at the end
  int nproject;     // element blocks changed by the SPD projection (last assembly)
  double min_J;     // smallest det F at the end
  // seconds spent (wall clock, CLOCK_MONOTONIC): gradient and energy passes, Hessian assembly (or
  // element blocks), factorization, solves (triangular solves and CG products), contact terms
  double t_grad, t_assemble, t_factor, t_solve, t_contact;
} dtac_implicit_report;

typedef struct dtac_implicit_ dtac_implicit;

void dtac_implicit_params_default(dtac_implicit_params* p);

// everything the step and its VJP need, for gel gm and up to maxcol colliders: the sparsity of
// the free DOFs' Hessian, CHOLMOD's symbolic analysis and a first numeric factor (of the rest
// Hessian at h = 2 ms), all work arrays. NULL on failure (err filled).
dtac_implicit* dtac_implicit_make(const dtac_gel_model* gm, int maxcol, char* err, size_t errlen);
void dtac_implicit_free(dtac_implicit* im);
// free (unknown) degrees of freedom: 3 per node less the back face and locked components
int dtac_implicit_ndof(const dtac_implicit* im);

// one backward-Euler step of h seconds of the state (dtac_state_layout, in place): site1 is the
// site frame at the step end (pose places the back face; velocity gives its nodes' velocities);
// site0 at the step start (may be NULL: then site1) places the rest shape when the state was
// never placed; col are the colliders posed at the step end (beyond maxcol of them are ignored,
// as the explicit step does). Gravity in m/s^2. Allocates nothing, except where the factor is
// renewed (every iteration with DTAC_SOLVE_FACTOR, on a CG stall otherwise): CHOLMOD's simplicial
// copy of the new factor. Returns rep->status.
int dtac_implicit_step(dtac_implicit* im, const dtac_gel_model* gm, double* state,
                       const dtac_frame* site0, const dtac_frame* site1, const dtac_collider* col,
                       int ncol, const double gravity[3], double h, const dtac_implicit_params* p,
                       dtac_implicit_report* rep);

// cotangents a step's VJP returns (accumulated into; zero them first)
typedef struct dtac_implicit_bar_ {
  double* x0;        // of the start positions (nnode x 3)
  double* v0;        // of the start velocities (nnode x 3)
  dtac_frame site1;  // of the step-end site frame: pos, mat, vel, angvel
  double* col_pos;   // of each collider's position (ncol x 3; may be NULL)
  double* col_mu;    // of each collider's friction coefficient (ncol; may be NULL)
  // in: of state1's friction anchors (nsurf x 4, entries 1..3 of each; may be NULL); out
  // (accumulated): of state0's (may be NULL). A kept anchor passes its cotangent on, one made where
  // the node ended passes it to the end position; a slipping node's dragged anchor to the end
  // position, the lag and the friction stiffness.
  const double* anchor1;
  double* anchor0;
  double young, poisson, damping, contact_stiffness;  // Pa, -, s, Pa/m
  double density;  // kg/m^3, through the lumped masses (all proportional to it)
  double friction_stiffness;  // Pa/m, through the dragged anchors (the stick potential's share:
                              // dtac_implicit_gel_adj)
} dtac_implicit_bar;

// VJP of one step (state0 -> state1, as dtac_implicit_step made it, converged): xb, vb are the
// cotangents of state1's positions and velocities (nnode x 3 each); one linear solve with the
// converged, unprojected Hessian (CG preconditioned by the kept factor, to adj_tolerance): the
// implicit function theorem needs the true Hessian; the projected one gives an approximate
// gradient. The friction lag (normal load and normal from the start positions against the
// colliders) and the anchors (out->anchor1, anchor0) are differentiated. Returns 0, or nonzero if
// the solve failed.
int dtac_implicit_step_adj(dtac_implicit* im, const dtac_gel_model* gm, const double* state0,
                           const double* state1, const dtac_frame* site1, const dtac_collider* col,
                           int ncol, const double gravity[3], double h,
                           const dtac_implicit_params* p, const double* xb, const double* vb,
                           dtac_implicit_bar* out);

// the reverse of one step as the plugin makes it (world.c: the site and colliders moved from their
// step-start frames at constant velocity over h), in the explicit reverse pass's terms: sbar
// (dtac_state_layout) holds the cotangent of state1 and leaves with that of state0; the
// cotangents of the step-start site frame (pos, mat, vel, angvel), colliders and gel parameters
// are accumulated. state1 must be the converged step from state0. The colliders' poses are
// differenced (implicit_adj.c); the rest is analytic. Allocates its scratch (a reverse pass).
// For a gel solved alone (dtac_implicit_joint_adj for those solved together with coupled bodies).
// Returns 0, or nonzero if the solve failed.
int dtac_implicit_gel_adj(dtac_implicit* im, const dtac_gel_model* gm, const double* state0,
                          const double* state1, const dtac_frame* site0,
                          const dtac_collider* col0, int ncol, const double gravity[3], double h,
                          const dtac_implicit_params* p, double* sbar, dtac_frame* site0_bar,
                          dtac_collider_bar* col0_bar, dtac_gel_param_bar* pb);

// the wrenches the gel applied over the step (state0 -> state1, as dtac_implicit_step made it),
// evaluated at the converged state: on each collider (col_ft, ncol x 6: force, torque about the
// collider's position; may be NULL) from the penalty and the lagged friction, and on the site's
// body (site_ft, 6: force, torque about site1->pos; may be NULL) from the back-face nodes'
// internal forces. N and N m; what the plugin applies to MuJoCo's bodies for the step taken.
void dtac_implicit_reactions(dtac_implicit* im, const dtac_gel_model* gm, const double* state0,
                             const double* state1, const dtac_frame* site1,
                             const dtac_collider* col, int ncol, const double gravity[3], double h,
                             int material, double* col_ft, double site_ft[6]);

// the incremental potential of the step at positions x (nnode x 3; back face and locked
// components as the step places them), and its gradient over all nodes (g: nnode x 3, may be
// NULL): what the step minimises (tests, diagnostics). The lagged terms come from state0.
double dtac_implicit_energy(dtac_implicit* im, const dtac_gel_model* gm, const double* state0,
                            const dtac_collider* col, int ncol, const double gravity[3], double h,
                            int material, const double* x, double* g);

// ---- joint step of several gels and the rigid bodies they touch (implicit_joint.c)

// a gel of a joint step: as dtac_implicit_step's arguments, with each collider's body slot
typedef struct dtac_implicit_gel_ {
  dtac_implicit* im;
  const dtac_gel_model* gm;
  double* state;
  const dtac_frame* site0;
  const dtac_frame* site1;
  const dtac_collider* col;  // posed at the step end as MuJoCo's step moves them
  int ncol;
  const int* col_slot;       // body slot of each collider (NULL, -1: moves as given)
  int site_slot;             // body slot holding the back face (-1: none)
  int material;              // DTAC_MAT_* of this gel
  dtac_implicit_report rep;  // out
} dtac_implicit_gel;

// work of a joint step with up to DTAC_MAX_BODY coupled bodies (dtac_implicit_joint_make)
typedef struct dtac_implicit_joint_ dtac_implicit_joint;
dtac_implicit_joint* dtac_implicit_joint_make(void);
void dtac_implicit_joint_free(dtac_implicit_joint* J);
// gels of the last joint step that were solved together with coupled bodies
int dtac_implicit_joint_ncoupled(const dtac_implicit_joint* J);

// one backward-Euler step of gels g over h with the rigid bodies of slots (dtac_body: frame and
// velocity at the step start, inverse effective mass W, the wrench the rigid step already
// applied) as unknowns of the same potential: each body's correction delta (displacement of its
// point, rotation) from where MuJoCo's step moves it adds delta' W^-1 delta / (2 h^2) + delta .
// wrench_app (W's null space held), and its colliders move with it. Out: each gel's state and
// report, each slot's dP = h (gel wrench at the end - wrench_app) and dQ = h dP (about the slot's
// step-start point), what dtac_coupling_correct hands to MuJoCo. With nslot = 0 (J may be NULL)
// the gels are stepped one by one. Returns the worst status.
int dtac_implicit_joint_step(dtac_implicit_gel* g, int ngel, dtac_body* slots,
                             dtac_implicit_joint* J, int nslot, const double* Wfull,
                             const double gravity[3], double h, const dtac_implicit_params* p);

// the reverse of the last dtac_implicit_joint_step for the gels it solved together with the bodies
// (J still holds its solution: call it before another step of J): g as the forward pass had them
// (state: the state after the step; col at the step end), with gbar[i] each one's start state,
// step-start colliders and cotangents (in sbar: of the state after the step; out: before it,
// site0_bar, col0_bar, pb accumulated); slots as the forward step had them (bb: in dP, dQ; out,
// accumulated: frame pos and vel, wrench_app, Winv, or with Wfull (nslot <= 8) the joint W's
// cotangent into Wfull_bar, 6 nslot square). One CG solve with the joint true Hessian. Allocates its
// work (a reverse pass). Returns 0, or nonzero if the solve failed.
typedef struct dtac_implicit_gel_bar_ {
  const double* state0;       // the gel's state at the step start
  const dtac_collider* col0;  // its colliders at the step start (what col was moved from over h)
  double* sbar;
  dtac_frame* site0_bar;
  dtac_collider_bar* col0_bar;
  dtac_gel_param_bar* pb;
} dtac_implicit_gel_bar;
int dtac_implicit_joint_adj(dtac_implicit_gel* g, int ngel, const dtac_implicit_gel_bar* gbar,
                            const dtac_body* slots, int nslot, dtac_implicit_joint* J,
                            const double* Wfull, const double gravity[3], double h,
                            const dtac_implicit_params* p, dtac_body_bar* bb, double* Wfull_bar);
// the place in the last joint step's list of the i-th gel it solved together with the bodies (-1
// for i beyond dtac_implicit_joint_ncoupled)
int dtac_implicit_joint_coupled(const dtac_implicit_joint* J, int i);

#endif  // DTAC_SRC_IMPLICIT_H_
