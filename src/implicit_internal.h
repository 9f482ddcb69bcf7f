// implicit_internal.h: what the implicit step's files share (implicit.c: the step and its VJP;
// implicit_energy.c: the incremental potential, its gradient and Hessian; implicit_solve.c: the
// linear solves and creation): the solver's struct and its internal functions.
#ifndef DTAC_SRC_IMPLICIT_INTERNAL_H_
#define DTAC_SRC_IMPLICIT_INTERNAL_H_

#include "cholmod.h"
#include "contact_energy.h"
#include "fem_hess.h"
#include "implicit.h"

// a contact node's stiffness in the kept factor is renewed when it is off by more than this
// fraction (rank-one updates cost little against a CG iteration)
#ifndef DTAC_UPDATE_REL
#define DTAC_UPDATE_REL 0.1
#endif

// the step h the first factor (made at creation) is of
#define DTAC_IMPLICIT_H0 0.002

// per contact node: the friction terms lagged from the step start
typedef struct lag_ {
  int c;        // collider index of the stuck contact, -1: no friction this step
  double L;     // normal load, N
  double n[3];  // normal
  double a[3];  // anchor, world (on the collider at the step end)
} lag;

struct dtac_implicit_ {
  int nnode, ntet, nsurf, ndof, maxcol;
  int* dof;       // dof index of each node component (3 nnode), -1: placed (back face, locked)
  int* dof_node;  // node component of each dof (ndof)
  // Hessian of the free dofs, upper triangle in compressed columns (CHOLMOD stype 1)
  cholmod_common cc;
  cholmod_sparse* A;
  cholmod_factor* Ls;  // supernodal LL' of A: what a (re)factorization computes
  cholmod_factor* L;   // simplicial LDL' copy of Ls, then modified by contact updates: the solves
  // contact updates of L: the normal stiffness k n n^T of each contact node that L holds, and
  // the update and downdate matrices (free dofs in L's permutation)
  double* app_k;  // (nsurf)
  double* app_n;  // (3 nsurf)
  int* iperm;     // dof -> its row in L's permutation (ndof)
  cholmod_sparse *Cup, *Cdown;
  cholmod_dense *B, *X, *Y, *E;
  int factor_ok;      // L holds a numeric factor (of some earlier Hessian)
  double* Hx_true;    // values of the unprojected Hessian (VJP), same pattern
  double* Hx_lin;     // the linear material's constant part (inertia, elastic, damping)
  double lin_key[13];  // what Hx_lin was made for: h, mu, lambda, beta, the frame's rotation
  int lin_ok;
  int* tet_map;   // each tet's 12x12 entries in A->x (-1: lower or placed) (144 ntet)
  int* node_map;  // each node's 3x3 diagonal block in A->x (9 nnode)
  int* diag;      // position of each dof's diagonal in A->x (ndof)
  double* tetA;   // matrix-free: each tet's projected 9x9 dP/dF with damping (81 ntet)
  double* surfH;  // matrix-free: each contact node's contact and friction 3x3 (9 nsurf)
  double* F0;     // each tet's F at the step start (9 ntet)
  int nptet;      // tets with a placed node component ...
  int* ptet;      // ... (nptet): all the placed components' coupling to the free ones
  lag* lag;       // (nsurf)
  // coupled bodies (implicit_joint.c): the body slot of each collider (maxcol, -1: it moves as
  // given), and for the step in progress each slot's correction delta (6: displacement of its
  // point slot_pos, rotation) and the gradient of E in it (gbody, 6 per slot, accumulated by
  // the gradient pass); delta NULL: no coupled body
  int* cslot;
  const double* delta;
  const double* slot_pos;
  double* gbody;
  // contact Hessian blocks between a node and a coupled slot (node id, slot, 3x3, lever)
  int maxpair, npair;
  int* pair_a;
  int* pair_k;
  double* pair_H;
  double* pair_r;
  // the site's body as an unknown: its slot (-1 none), the back face placed at the predicted
  // site (3 nnode, at the back-face nodes), each tet with a placed component's index among them (ntet, -1) and its
  // 12x12 Hessian of the last assembly (144 nptet)
  int site_k;
  double* xback;
  // H_(x, back) B_b of the last bodies' block (implicit_body.c): each free dof sharing an element
  // with the back face (nback_row of them, back_row; back_of: dof -> its index, -1) and its 6
  // entries in the back face's body correction (backC, 6 per row)
  int nback_row;
  int *back_row, *back_of;
  double* backC;
  int* ptet_of;
  double* ptetH;
  cholmod_factor* L0;  // the first factor, kept: each step's preconditioner starts from it
  int L_dirty;         // L was changed since it was copied from L0
  // L0 is of the pad at rest in its own frame; the pad in the world is rotated by the site's R,
  // so its Hessian is about Rb K0 Rb^T (Rb: R on each node): the solves with L rotate into the
  // gel frame and back while L descends from L0 (L_gel), not after a refactorization
  double frame_R[9];
  int L_gel;
  int rot_ok;  // every node has all three components free or none (locked nodes: no rotation)
  // step context
  const double* x0;
  const double* v0;
  const dtac_collider* col;
  int ncol;
  double h, grav[3];
  int material;
  // work, 3 nnode each
  double *x, *xt, *g, *gt, *gel, *gc, *gi, *nv, *ny;
  // work, ndof each
  double *b, *dx, *r, *z, *p, *q;
  double scale;  // |forces in balance| of the last gradient pass
  int nproject;
};

// ---- internal functions

double dtac_imp_now_s(void);
void dtac_imp_tet_F(const dtac_gel_model* gm, int t, const double* x, double F[9]);
const double* dtac_imp_lag_F(const dtac_implicit* im, int t);
double dtac_imp_elastic(const dtac_implicit* im, const dtac_gel_model* gm, const double F[9],
                        double P[9], double A[81]);
void dtac_imp_make_lag(dtac_implicit* im, const dtac_gel_model* gm, const double* state0);
double dtac_imp_node_contact(const dtac_implicit* im, const dtac_gel_model* gm, int s,
                             const double* xa, double g3[3], double* H3, int project, double* gb);
int dtac_imp_rel_pos(const dtac_implicit* im, int c, int a, const double* xa, double y[3],
                     double r[3]);
void dtac_imp_pairs(dtac_implicit* im, const dtac_gel_model* gm, const double* x, int project);
int dtac_imp_restore_factor(dtac_implicit* im);
int dtac_imp_deepest(const dtac_implicit* im, int a, const double* xa, double y[3]);
// the step in parts (implicit.c): begin sets the context and the warm start (im->x), or returns
// a failed status; finish writes the state (positions, velocities, anchors) from im->x
int dtac_imp_begin(dtac_implicit* im, const dtac_gel_model* gm, double* state,
                   const dtac_frame* site0, const dtac_frame* site1, const dtac_collider* col,
                   int ncol, const double gravity[3], double h, const dtac_implicit_params* p,
                   dtac_implicit_report* rep);
// the anchor of contact node s (stuck to its lag collider) for the node at xa: the lagged one
// (returns 0), or dragged along with a slipping node (returns 1)
int dtac_imp_stuck_anchor(const dtac_implicit* im, const dtac_gel_model* gm, int s,
                          const double* xa, double aw[3]);
int dtac_imp_finish(dtac_implicit* im, const dtac_gel_model* gm, double* state,
                    const dtac_frame* site1, double h, dtac_implicit_report* rep);
double dtac_imp_energy_grad(dtac_implicit* im, const dtac_gel_model* gm, const double* x,
                            double* g);
int dtac_imp_tet_block(const dtac_implicit* im, const dtac_gel_model* gm, int t, const double* x,
                       int project, double A[81]);
void dtac_imp_assemble(dtac_implicit* im, const dtac_gel_model* gm, const double* x, int project,
                       double* Hx, int matfree);
void dtac_imp_spmv(const dtac_implicit* im, const double* Hx, const double* p, double* y);
void dtac_imp_hvp_matfree(dtac_implicit* im, const dtac_gel_model* gm, const double* p, double* y);
void dtac_imp_hvp_full_true(dtac_implicit* im, const dtac_gel_model* gm, const double* x,
                            const double* lam, double* y);
double dtac_imp_contact_k(const dtac_implicit* im, const dtac_gel_model* gm, int s,
                          const double* xa, double n[3]);
int dtac_imp_factorize_at(dtac_implicit* im, const dtac_gel_model* gm, const double* x,
                          double* t_factor, int* nfactor);
int dtac_imp_contact_update(dtac_implicit* im, const dtac_gel_model* gm, const double* x);
int dtac_imp_prec(dtac_implicit* im, const double* r, double* z);
int dtac_imp_pcg(dtac_implicit* im, const dtac_gel_model* gm, const double* Hx, const double* b,
                 double* x, double tol, int maxit);
int dtac_imp_newton_dir(dtac_implicit* im, const dtac_gel_model* gm, const double* x,
                        const dtac_implicit_params* p, double rel, dtac_implicit_report* rep);
int dtac_imp_cmp_int(const void* a, const void* b);
int dtac_imp_find_entry(const int* Ap, const int* Ai, int i, int j);
dtac_implicit* dtac_imp_fail(dtac_implicit* im, char* err, size_t errlen, const char* msg);
void dtac_imp_set_context(dtac_implicit* im, const dtac_gel_model* gm, const double* state0,
                          const dtac_collider* col, int ncol, const double gravity[3], double h,
                          int material);
void dtac_imp_place(dtac_implicit* im, const dtac_gel_model* gm, const dtac_frame* site1, double* x,
                    double* v);
int dtac_imp_all_finite(const double* a, int n);

// ---- the joint step's bodies (implicit_body.c, used by implicit_joint.c)

#define NB DTAC_MAX_BODY
#define NZ (6 * NB)
// slots whose cross inverse masses (through shared joints: two fingers of one hand) enter the
// solve; with more, each slot's own block only
#define NB_JOINT 8

struct dtac_implicit_joint_ {
  int nslot, nz;
  int ncoupled;  // gels of the last step solved together with the bodies
  double U[NZ * NZ];  // range of W (6 nslot rows, nz columns; row 6k+i is slot k's component i)
  double lam[NZ];     // its eigenvalues
  int has[NB];        // slot k has a range (a nonzero row of U)
  double pos[NB][3];  // each slot's point at the step end (MuJoCo's prediction)
  double app[NB][6];  // the wrench the rigid step applied, about that point
  double Kc[NZ * NZ];  // Cholesky factor of the bodies' block (nz x nz, lower)
  double A[NZ * NZ], V[NZ * NZ];  // scratch of the eigen-decomposition
  double delta[NB][6], delta_t[NB][6];  // corrections of the iterate and of the trial
  double gb[NB][6], gb_t[NB][6];        // gradients of the gels' energy in them
  double z[NZ], zt[NZ], gz[NZ], gzt[NZ];
  double zb[NZ], zdx[NZ], zr[NZ], zs[NZ], zp[NZ], zq[NZ];
  double scale;  // |forces in balance| of the bodies' gradient
  double K6[NB][36];  // each slot's 6x6 gel Hessian in its correction (the last assembly)
  int blown;          // the last step handed no corrections (a gel did not converge)
  dtac_implicit_gel cg[NB];  // the gels solved together with the bodies ...
  int cg_of[NB];             // ... and their places in the caller's list
};

void dtac_imp_range_add(dtac_implicit_joint* J, int n, int r0, const double* W);
void dtac_imp_bodies_setup(dtac_implicit_joint* J, const dtac_body* slots, int nslot, const double* Wfull, double h);
void dtac_imp_bodies_delta(const dtac_implicit_joint* J, const double* z, double delta[][6]);
void dtac_imp_reduce_add(const dtac_implicit_joint* J, int k, const double w[6], double* out);
void dtac_imp_back_place(const dtac_implicit_joint* J, const dtac_implicit* im, const dtac_gel_model* gm, double* x, double delta[][6]);
void dtac_imp_back_grad(const dtac_implicit_joint* J, const dtac_implicit* im, const dtac_gel_model* gm, const double* g, double gb[][6]);
double dtac_imp_bodies_energy(dtac_implicit_joint* J, const double* z, double delta[][6], double gb[][6], double* gz, double h);
int dtac_imp_bodies_block(dtac_implicit_joint* J, dtac_implicit_gel* g, int ngel, double h);
// the joint system's coupling blocks (implicit_joint.c), from the last assembly and pairs:
// qx[i] += H_(x, delta) dl over gel i's free dofs; out[k] += H_(delta_k, x) px
void dtac_imp_cross_x(const dtac_implicit_joint* J, const dtac_implicit_gel* g, int ngel,
                      const double dl[][6], double* const* qx);
void dtac_imp_cross_d(const dtac_implicit_joint* J, const dtac_implicit_gel* g, int ngel,
                      const double* const* px, double out[][6]);
// H [dx; dz] = [b; zb] (each gel's im->b into its im->dx, J->zb into J->zdx) by CG preconditioned
// by the gels' kept factors and J->Kc; iterations, -1 unconverged or failed, -2 negative curvature
int dtac_imp_joint_pcg(dtac_implicit_joint* J, dtac_implicit_gel* g, int ngel, double tol,
                       int maxit);

// ---- the reverse pass's pieces (implicit_adj.c), for a gel alone (im->delta NULL) or solved
// with coupled bodies (im->delta, slot_pos, cslot and site_k as the joint step set them)
typedef struct dtac_imp_adj_ {
  double* xbe;        // (3 nnode) the end positions' cotangent with the new anchors' added
  double* lag_bar;    // (8 nsurf) of each contact node's lag (L, n, anchor) from dragged anchors
  double* dbar;       // coupled: of the slots' corrections, direct (6 per slot; may be NULL)
  double* posb;       // coupled: of the slots' step-end points (3 per slot)
  const double* nut;  // coupled: the corrections' multiplier less the cotangent of the gels'
                      // gradient in them (6 per slot)
} dtac_imp_adj;
// the cotangents that bypass the solve's left side from the new anchors (xbe, lag_bar, dbar,
// out->anchor0, col_pos, x0, friction_stiffness); the context (dtac_imp_set_context) set
int dtac_imp_adj_rhs(dtac_implicit* im, const dtac_gel_model* gm, const double* state1,
                     const double* xb, dtac_implicit_bar* out, dtac_imp_adj* w);
// -lam . d(grad E)/d theta and the direct terms (everything of dtac_implicit_bar but the colliders'
// rotations), lam the solve's multiplier at every node (back-face nodes: B_b nut when they
// move with a slot; gfull: the energy's gradient at every node then)
void dtac_imp_adj_theta(dtac_implicit* im, const dtac_gel_model* gm, const double* x,
                        const dtac_frame* site1, const double* xb, const double* vb,
                        const double* lam, const double* gfull, const dtac_imp_adj* w,
                        dtac_implicit_bar* out);
// the rest in the explicit reverse pass's terms: friction stiffness, the colliders' poses
// (differences of their Lagrangian terms, chained to the step-start frames col0; col1 at the step
// end), the site (out->site1 chained to site0), the parameters
int dtac_imp_adj_rest(dtac_implicit* im, const dtac_gel_model* gm, const double* state0,
                      const double* x1, const dtac_frame* site0, const dtac_collider* col0,
                      const dtac_collider* col1, int ncol, double h, const double* lam,
                      const double* nut, const double* ab1, const double* mub,
                      const dtac_implicit_bar* out, dtac_frame* site0_bar,
                      dtac_collider_bar* col0_bar, dtac_gel_param_bar* pb);

#endif  // DTAC_SRC_IMPLICIT_INTERNAL_H_
