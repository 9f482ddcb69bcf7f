// coupling.c: body slots of the substep coupling and the rigid corrections (coupling.h).
#include "coupling.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int dtac_coupling_make(dtac_coupling* cp, const mjModel* m) {
  memset(cp, 0, sizeof(*cp));
  int nv1 = m->nv > 0 ? m->nv : 1;
  cp->maxslot = m->nbody < DTAC_MAX_BODY ? m->nbody : DTAC_MAX_BODY;
  cp->slot_body = (int*)malloc(sizeof(int) * (cp->maxslot > 0 ? cp->maxslot : 1));
  cp->body_slot = (int*)malloc(sizeof(int) * (m->nbody > 0 ? m->nbody : 1));
  cp->slot = (dtac_body*)calloc(cp->maxslot > 0 ? cp->maxslot : 1, sizeof(dtac_body));
  cp->jac = (mjtNum*)malloc(sizeof(mjtNum) * 6 * nv1 * (cp->maxslot > 0 ? cp->maxslot : 1));
  cp->tmp = (mjtNum*)malloc(sizeof(mjtNum) * 8 * nv1);
  int nc = 6 * DTAC_COUPLING_CROSS;
  cp->Wfull = (double*)malloc(sizeof(double) * nc * nc);
  cp->MJ = (mjtNum*)malloc(sizeof(mjtNum) * nc * nv1);
  cp->Jc = (mjtNum*)malloc(sizeof(mjtNum) * DTAC_COUPLING_EQ * nv1);
  cp->Xc = (mjtNum*)malloc(sizeof(mjtNum) * DTAC_COUPLING_EQ * nv1);
  cp->S = (double*)malloc(sizeof(double) * DTAC_COUPLING_EQ * DTAC_COUPLING_EQ);
  cp->HLD = (mjtNum*)malloc(sizeof(mjtNum) * (m->nC > 0 ? m->nC : 1));
  cp->Hdinv = (mjtNum*)malloc(sizeof(mjtNum) * nv1);
  // row k of M holds k's ancestors in the tree, then k: each ancestor's row is a prefix of it
  cp->tree = 1;
  for (int k = 0; k < m->nv && cp->tree; k++) {
    int ak = m->M_rowadr[k], nk = m->M_rownnz[k];
    if (nk < 1 || m->M_colind[ak + nk - 1] != k) cp->tree = 0;
    for (int p = 0; p + 1 < nk && cp->tree; p++) {
      int i = m->M_colind[ak + p], ai = m->M_rowadr[i];
      if (m->M_rownnz[i] != p + 1) cp->tree = 0;
      for (int q = 0; q <= p && cp->tree; q++) cp->tree = m->M_colind[ai + q] == m->M_colind[ak + q];
    }
  }
  return !cp->HLD || !cp->Hdinv || !cp->slot_body || !cp->body_slot || !cp->slot || !cp->jac || !cp->tmp || !cp->Wfull ||
         !cp->MJ || !cp->Jc || !cp->Xc || !cp->S;
}

void dtac_coupling_free(dtac_coupling* cp) {
  free(cp->slot_body);
  free(cp->body_slot);
  free(cp->slot);
  free(cp->jac);
  free(cp->tmp);
  free(cp->Wfull);
  free(cp->MJ);
  free(cp->Jc);
  free(cp->Xc);
  free(cp->S);
  free(cp->HLD);
  free(cp->Hdinv);
  memset(cp, 0, sizeof(*cp));
}

// MuJoCo's velocity update takes the dof damping implicitly (mj_EulerSkip, mj_implicit)
static int damping_implicit(const mjModel* m) {
  if (m->opt.disableflags & mjDSBL_DAMPER) return 0;
  if (m->opt.integrator == mjINT_EULER) return !(m->opt.disableflags & mjDSBL_EULERDAMP);
  return m->opt.integrator == mjINT_IMPLICIT || m->opt.integrator == mjINT_IMPLICITFAST;
}

void dtac_coupling_factor(dtac_coupling* cp, const mjModel* m, const mjData* d) {
  int nv = m->nv;
  const int *rowadr = m->M_rowadr, *rownnz = m->M_rownnz, *colind = m->M_colind;
  if (!cp->tree || nv == 0) return;
  mjtNum* H = cp->HLD;
  mju_copy(H, d->M, m->nC);
  if (damping_implicit(m)) {
    for (int i = 0; i < nv; i++) H[rowadr[i] + rownnz[i] - 1] += m->opt.timestep * m->dof_damping[i];
  }
  // H = L' D L from the last dof up: eliminating k changes only its ancestors' rows
  for (int k = nv - 1; k >= 0; k--) {
    int ak = rowadr[k], nk = rownnz[k];
    mjtNum dk = H[ak + nk - 1];
    cp->Hdinv[k] = 1 / dk;
    for (int p = nk - 2; p >= 0; p--) {
      mjtNum t = H[ak + p] / dk;
      mjtNum* Hi = H + rowadr[colind[ak + p]];
      for (int q = 0; q <= p; q++) Hi[q] -= t * H[ak + q];
    }
    for (int p = 0; p + 1 < nk; p++) H[ak + p] /= dk;
  }
}

void dtac_coupling_solve(const dtac_coupling* cp, const mjModel* m, mjData* d, mjtNum* x,
                         const mjtNum* y, int n) {
  int nv = m->nv;
  if (!cp->tree) {
    mj_solveM(m, d, x, y, n);
    return;
  }
  const int *rowadr = m->M_rowadr, *rownnz = m->M_rownnz, *colind = m->M_colind;
  const mjtNum* H = cp->HLD;
  if (x != y) mju_copy(x, y, n * nv);
  for (int c = 0; c < n; c++, x += nv) {
    for (int k = nv - 1; k >= 0; k--) {
      for (int p = 0; p + 1 < rownnz[k]; p++) x[colind[rowadr[k] + p]] -= H[rowadr[k] + p] * x[k];
    }
    for (int k = 0; k < nv; k++) x[k] *= cp->Hdinv[k];
    for (int k = 0; k < nv; k++) {
      for (int p = 0; p + 1 < rownnz[k]; p++) x[k] -= H[rowadr[k] + p] * x[colind[rowadr[k] + p]];
    }
  }
}

void dtac_coupling_clear(dtac_coupling* cp, const mjModel* m) {
  for (int b = 0; b < m->nbody; b++) cp->body_slot[b] = -1;
  cp->nslot = 0;
}

int dtac_coupling_slot(dtac_coupling* cp, const mjModel* m, mjData* d, int b) {
  // welded to the world or to a mocap body: moved kinematically, nothing to couple
  if (b <= 0 || m->body_weldid[b] == 0 || m->body_mocapid[m->body_weldid[b]] >= 0) return -1;
  if (cp->body_slot[b] >= 0) return cp->body_slot[b];
  if (cp->nslot >= cp->maxslot) return -1;
  int k = cp->nslot++;
  cp->body_slot[b] = k;
  cp->slot_body[k] = b;
  dtac_coupling_refresh(cp, m, d, k);
  return k;
}

void dtac_coupling_refresh(dtac_coupling* cp, const mjModel* m, mjData* d, int k) {
  int b = cp->slot_body[k];
  int nv = m->nv;
  mjtNum* J = cp->jac + 6 * nv * k;
  mjtNum* X = cp->tmp;
  dtac_body* B = cp->slot + k;
  memcpy(B->frame.pos, d->xpos + 3 * b, sizeof(B->frame.pos));
  memcpy(B->frame.mat, d->xmat + 9 * b, sizeof(B->frame.mat));
  mj_jac(m, d, J, J + 3 * nv, d->xpos + 3 * b, b);
  mju_mulMatVec(B->frame.vel, J, d->qvel, 3, nv);
  mju_mulMatVec(B->frame.angvel, J + 3 * nv, d->qvel, 3, nv);
  // W = J M^-1 J^T (6 x 6): velocity response at the body origin to an impulse there
  dtac_coupling_solve(cp, m, d, X, J, 6);
  for (int i = 0; i < 6; i++) {
    for (int j = 0; j < 6; j++) B->Winv[6 * i + j] = mju_dot(J + nv * i, X + nv * j, nv);
  }
}

// v -= Xc^T S^-1 Jc v: a response M^-1 y made to respect the equality constraints
static void constrain(const dtac_coupling* cp, int nv, mjtNum* v) {
  int nc = cp->nc;
  double w[DTAC_COUPLING_EQ];
  for (int r = 0; r < nc; r++) w[r] = mju_dot(cp->Jc + nv * r, v, nv);
  const double* L = cp->S;
  for (int a = 0; a < nc; a++) {
    for (int b = 0; b < a; b++) w[a] -= L[DTAC_COUPLING_EQ * a + b] * w[b];
    w[a] /= L[DTAC_COUPLING_EQ * a + a];
  }
  for (int a = nc - 1; a >= 0; a--) {
    for (int b = a + 1; b < nc; b++) w[a] -= L[DTAC_COUPLING_EQ * b + a] * w[b];
    w[a] /= L[DTAC_COUPLING_EQ * a + a];
  }
  for (int r = 0; r < nc; r++) mju_addToScl(v, cp->Xc + nv * r, -w[r], nv);
}

// the equality constraints' rows of d (dense, into Jc), Xc = M^-1 Jc^T and S's factor; nc = 0
// if there are none, more than DTAC_COUPLING_EQ, or S is not positive definite
static void constraint_rows(dtac_coupling* cp, const mjModel* m, mjData* d) {
  int nv = m->nv, nc = 0, sparse = mj_isSparse(m);
  cp->nc = 0;
  for (int i = 0; i < d->nefc; i++) {
    if (d->efc_type[i] != mjCNSTR_EQUALITY) continue;
    if (nc >= DTAC_COUPLING_EQ) return;
    mjtNum* row = cp->Jc + nv * nc;
    if (sparse) {
      mju_zero(row, nv);
      int adr = d->efc_J_rowadr[i];
      for (int k = 0; k < d->efc_J_rownnz[i]; k++) row[d->efc_J_colind[adr + k]] = d->efc_J[adr + k];
    } else {
      mju_copy(row, d->efc_J + (size_t)nv * i, nv);
    }
    cp->S[DTAC_COUPLING_EQ * nc + nc] = d->efc_R[i];  // kept until S is made
    nc++;
  }
  if (nc == 0) return;
  double R[DTAC_COUPLING_EQ];
  for (int a = 0; a < nc; a++) R[a] = cp->S[DTAC_COUPLING_EQ * a + a];
  dtac_coupling_solve(cp, m, d, cp->Xc, cp->Jc, nc);
  double* L = cp->S;
  for (int a = 0; a < nc; a++) {
    for (int b = 0; b <= a; b++) {
      L[DTAC_COUPLING_EQ * a + b] = mju_dot(cp->Jc + nv * a, cp->Xc + nv * b, nv) + (a == b ? R[a] : 0);
    }
  }
  for (int j = 0; j < nc; j++) {
    double dd = L[DTAC_COUPLING_EQ * j + j];
    for (int k = 0; k < j; k++) dd -= L[DTAC_COUPLING_EQ * j + k] * L[DTAC_COUPLING_EQ * j + k];
    if (!(dd > 0)) return;
    L[DTAC_COUPLING_EQ * j + j] = sqrt(dd);
    for (int i = j + 1; i < nc; i++) {
      double s = L[DTAC_COUPLING_EQ * i + j];
      for (int k = 0; k < j; k++) s -= L[DTAC_COUPLING_EQ * i + k] * L[DTAC_COUPLING_EQ * j + k];
      L[DTAC_COUPLING_EQ * i + j] = s / L[DTAC_COUPLING_EQ * j + j];
    }
  }
  cp->nc = nc;
}

int dtac_coupling_correct(dtac_coupling* cp, const mjModel* m, mjData* d) {
  int nv = m->nv;
  mjtNum* y = cp->tmp;
  mjtNum* z = cp->tmp + nv;
  mjtNum* dq = cp->tmp + 2 * nv;
  mjtNum* dv = cp->tmp + 3 * nv;
  mju_zero(y, nv);
  mju_zero(z, nv);
  for (int k = 0; k < cp->nslot; k++) {
    const mjtNum* J = cp->jac + 6 * nv * k;
    for (int r = 0; r < 6; r++) {
      mju_addToScl(y, J + nv * r, cp->slot[k].dP[r], nv);
      mju_addToScl(z, J + nv * r, cp->slot[k].dQ[r], nv);
    }
  }
  dtac_coupling_solve(cp, m, d, dv, y, 1);
  dtac_coupling_solve(cp, m, d, dq, z, 1);
  if (cp->constrained && cp->nc > 0) {
    constrain(cp, nv, dv);
    constrain(cp, nv, dq);
  }
  // a non-finite correction is never handed to MuJoCo
  for (int i = 0; i < nv; i++) {
    if (!isfinite(dv[i]) || !isfinite(dq[i])) return 1;
  }
  mju_addTo(d->qvel, dv, nv);
  mj_integratePos(m, d->qpos, dq, 1);
  return 0;
}

int dtac_coupling_substeps(const dtac_gel_model* gm, const dtac_body* B, const dtac_frame* site,
                           double h, int nsub) {
  // T maps the body's twist (world, about its origin) to the site's (gel frame, about the site):
  // d_l = R^T (d - r x th), th_l = R^T th, r from the body origin to the site
  double r[3], T[36];
  dtac_sub3(r, site->pos, B->frame.pos);
  const double rx[9] = {0, -r[2], r[1], r[2], 0, -r[0], -r[1], r[0], 0};
  memset(T, 0, sizeof(T));
  for (int i = 0; i < 3; i++) {
    for (int k = 0; k < 3; k++) {
      double Rt = site->mat[3 * k + i];
      T[6 * i + k] = Rt;
      T[6 * (i + 3) + k + 3] = Rt;
      double s = 0;
      for (int l = 0; l < 3; l++) s -= site->mat[3 * l + i] * rx[3 * l + k];
      T[6 * i + k + 3] = s;
    }
  }
  // A = T W T^T: the body's inverse mass seen at the gel frame; the highest frequency of the body
  // on the back face's springs is at most sqrt(tr(A K)) (A K is similar to a PSD matrix, so its
  // largest eigenvalue is at most its trace), and the mass damping's rate on it tr(A M) alpha
  double TW[36], A[36];
  for (int i = 0; i < 6; i++) {
    for (int j = 0; j < 6; j++) {
      double s = 0;
      for (int k = 0; k < 6; k++) s += T[6 * i + k] * B->Winv[6 * k + j];
      TW[6 * i + j] = s;
    }
  }
  for (int i = 0; i < 6; i++) {
    for (int j = 0; j < 6; j++) {
      double s = 0;
      for (int k = 0; k < 6; k++) s += TW[6 * i + k] * T[6 * j + k];
      A[6 * i + j] = s;
    }
  }
  double tr = 0, cm = 0;
  for (int i = 0; i < 6; i++) {
    for (int j = 0; j < 6; j++) {
      tr += A[6 * i + j] * gm->back_K[6 * j + i];
      cm += A[6 * i + j] * gm->back_M[6 * j + i];
    }
  }
  // the trace can be 6 times the largest eigenvalue: a power iteration on A K (self-adjoint in the
  // K inner product) estimates it from below, so 1.2 times its estimate, never above the trace
  double x[6] = {1, 1, 1, 1, 1, 1}, lam = 0;
  for (int it = 0; it < 40; it++) {
    double Kx[6], y[6], xKx = 0, yKx = 0, ny = 0;
    for (int i = 0; i < 6; i++) {
      Kx[i] = 0;
      for (int j = 0; j < 6; j++) Kx[i] += gm->back_K[6 * i + j] * x[j];
      xKx += x[i] * Kx[i];
    }
    for (int i = 0; i < 6; i++) {
      y[i] = 0;
      for (int j = 0; j < 6; j++) y[i] += A[6 * i + j] * Kx[j];
      yKx += y[i] * Kx[i];
      ny += y[i] * y[i];
    }
    if (!(xKx > 0) || !(ny > 0)) break;
    lam = yKx / xKx;
    for (int i = 0; i < 6; i++) x[i] = y[i] / sqrt(ny);
  }
  double wb2 = isfinite(lam) && lam > 0 ? fmin(tr, 1.2 * lam) : tr;
  // the gel's own bound (gel.c stable_step) with the body's frequency and damping added
  double wk2 = gm->omega_max * gm->omega_max;
  double w = sqrt(wk2 + gm->omega_contact * gm->omega_contact + fmax(wb2, 0));
  double z = (gm->mat.beta * (wk2 + fmax(wb2, 0)) + gm->alpha * (1 + fmax(cm, 0))) / (2 * w);
  double dt = 0.9 * 2 / (w * (hypot(1, z) + z));
  double ns = ceil(h / dt);
  // bounded as at load, and to DTAC_MAX_BODY_SUBSTEPS (a finger a million times lighter than its
  // gel would otherwise take the whole cap every step): beyond, the step's own blow-up check is
  // what remains (the gel restarted, a warning)
  double cap = fmin(DTAC_MAX_SUBSTEPS, DTAC_MAX_BODY_SUBSTEPS);
  if (gm->ntet > 0) cap = fmin(cap, floor(DTAC_MAX_STEP_WORK / gm->ntet));
  if (!(ns > nsub)) return nsub;  // also a NaN from a degenerate inverse mass
  return ns > cap ? (cap > nsub ? (int)cap : nsub) : (int)ns;
}

void dtac_coupling_constraints(dtac_coupling* cp, const mjModel* m, mjData* d) {
  cp->nc = 0;
  if (cp->constrained) constraint_rows(cp, m, d);
}

int dtac_coupling_cross(dtac_coupling* cp, const mjModel* m, mjData* d) {
  int ns = cp->nslot, nv = m->nv, n6 = 6 * cp->nslot;
  cp->nc = 0;
  if (ns > DTAC_COUPLING_CROSS || ns == 0 || nv == 0) return 1;
  dtac_coupling_solve(cp, m, d, cp->MJ, cp->jac, n6);  // each slot's Jacobian rows, contiguous
  if (cp->constrained) {
    constraint_rows(cp, m, d);
    for (int j = 0; j < n6; j++) constrain(cp, nv, cp->MJ + nv * j);
  }
  for (int i = 0; i < n6; i++) {
    for (int j = 0; j < n6; j++) {
      cp->Wfull[n6 * i + j] = mju_dot(cp->jac + nv * i, cp->MJ + nv * j, nv);
    }
  }
  // symmetric to rounding
  for (int i = 0; i < n6; i++) {
    for (int j = i + 1; j < n6; j++) {
      double a = 0.5 * (cp->Wfull[n6 * i + j] + cp->Wfull[n6 * j + i]);
      cp->Wfull[n6 * i + j] = cp->Wfull[n6 * j + i] = a;
    }
  }
  return 0;
}
