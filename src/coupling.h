// coupling.h: the rigid bodies a joint step of soft bodies moves inside its substeps (substep
// coupling, kernels/substep.h dtac_body): one slot per body with dofs that holds a soft body's
// kinematic face or touches one, its frame, velocity and inverse effective mass from MuJoCo
// (J M^-1 J^T), and after the step the corrections of qpos and qvel by the impulses the soft
// bodies gave it beyond what MuJoCo's step already applied.
#ifndef DTAC_SRC_COUPLING_H_
#define DTAC_SRC_COUPLING_H_

#include <mujoco/mujoco.h>

#include "gel.h"

typedef struct dtac_coupling_ {
  int maxslot;      // slots available (min(nbody, DTAC_MAX_BODY))
  int nslot;        // slots in use this step
  int* slot_body;   // body id of each slot (maxslot)
  int* body_slot;   // slot of each body this step, -1 none (nbody)
  dtac_body* slot;  // frames, inverse masses, impulses (maxslot)
  mjtNum* jac;      // each slot's Jacobian at its body origin (maxslot x 6 x nv)
  mjtNum* tmp;      // scratch: M^-1 J^T (6 x nv), then the corrections (4 x nv)
  // the mass matrix of MuJoCo's velocity update, H = M + h diag(dof_damping) where its integrator
  // takes the dof damping implicitly (Euler unless eulerdamp is disabled, implicit, implicitfast;
  // damper not disabled), else M: what "M^-1" means below. Factored H = L' D L in place in
  // MuJoCo's sparse layout of M (M_rowadr, M_colind; L in the strict lower part, 1/D in Hdinv)
  mjtNum* HLD;    // (nC)
  mjtNum* Hdinv;  // (nv)
  int tree;       // M's rows nest along the kinematic tree (checked at make): HLD is usable
  // the joint inverse effective mass of up to DTAC_COUPLING_CROSS slots (6 nslot square), and
  // the slots' M^-1 J^T it is made from
  double* Wfull;
  mjtNum* MJ;
  // with constrained = 1 (the implicit integrator), W and the corrections hold MuJoCo's equality
  // constraints (a mocap weld, coupled fingers) as the rigid step would: W = J (M^-1 - Xc^T S^-1
  // Xc) J^T with Xc = Jc M^-1, S = Jc M^-1 Jc^T + R over their nc rows at the step start
  int constrained;
  int nc;
  mjtNum* Jc;  // (DTAC_COUPLING_EQ x nv)
  mjtNum* Xc;  // (DTAC_COUPLING_EQ x nv)
  double* S;   // Cholesky factor of S (DTAC_COUPLING_EQ square, lower)
} dtac_coupling;

#define DTAC_COUPLING_EQ 64

#define DTAC_COUPLING_CROSS 8

// 0, or nonzero when out of memory
int dtac_coupling_make(dtac_coupling* cp, const mjModel* m);
void dtac_coupling_free(dtac_coupling* cp);
// H (above) from d's mass matrix d->M: before the slots are made or corrected
void dtac_coupling_factor(dtac_coupling* cp, const mjModel* m, const mjData* d);
// x = H^-1 y for n vectors of nv (x may be y)
void dtac_coupling_solve(const dtac_coupling* cp, const mjModel* m, mjData* d, mjtNum* x,
                         const mjtNum* y, int n);
// no slots in use (the start of a step's setup)
void dtac_coupling_clear(dtac_coupling* cp, const mjModel* m);
// the slot of body b, made from d (frame, velocity, inverse effective mass) on first use; -1 for
// bodies without dofs (welded to the world or a mocap body) or when slots run out
int dtac_coupling_slot(dtac_coupling* cp, const mjModel* m, mjData* d, int b);
// slot k's frame, velocity and inverse effective mass again from d
void dtac_coupling_refresh(dtac_coupling* cp, const mjModel* m, mjData* d, int k);
// the bodies' share after a joint step: qvel += H^-1 sum J^T dP, qpos moved by H^-1 sum J^T dQ
// (H of dtac_coupling_factor, the slots' Jacobians); nonzero, and d left
// as it was, if a correction is not finite
int dtac_coupling_correct(dtac_coupling* cp, const mjModel* m, mjData* d);
// with constrained: the equality constraints' rows from d (after mj_fwdPosition, H factored)
// that W and the corrections hold, as dtac_coupling_cross makes them
void dtac_coupling_constraints(dtac_coupling* cp, const mjModel* m, mjData* d);
// cp->Wfull = J M^-1 J^T over all slots (the cross terms of bodies sharing joints) from d's mass
// matrix and the slots' Jacobians; nonzero (nothing made) with more than DTAC_COUPLING_CROSS
int dtac_coupling_cross(dtac_coupling* cp, const mjModel* m, mjData* d);

// at most this many substeps per MuJoCo step are taken for a light site body (more than the gel
// itself needs; about 0.1 s a step for the default pad)
#define DTAC_MAX_BODY_SUBSTEPS 2000

// substeps a joint step needs for the gel gm's site body in slot B to stay stable on the back
// face's springs and mass damping (an upper bound on its frequency from its inverse mass and the
// gel's back_K, back_M): nsub (what the gel needs at rest) or more, at most the per-step caps of
// the load check (DTAC_MAX_SUBSTEPS, DTAC_MAX_STEP_WORK) and DTAC_MAX_BODY_SUBSTEPS. A body much
// lighter than its gel (a 1 g finger under a 5 kg pad) takes more.
int dtac_coupling_substeps(const dtac_gel_model* gm, const dtac_body* B, const dtac_frame* site,
                           double h, int nsub);

#endif  // DTAC_SRC_COUPLING_H_
