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
  return !cp->slot_body || !cp->body_slot || !cp->slot || !cp->jac || !cp->tmp;
}

void dtac_coupling_free(dtac_coupling* cp) {
  free(cp->slot_body);
  free(cp->body_slot);
  free(cp->slot);
  free(cp->jac);
  free(cp->tmp);
  memset(cp, 0, sizeof(*cp));
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
  mj_solveM(m, d, X, J, 6);
  for (int i = 0; i < 6; i++) {
    for (int j = 0; j < 6; j++) B->Winv[6 * i + j] = mju_dot(J + nv * i, X + nv * j, nv);
  }
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
  mj_solveM(m, d, dv, y, 1);
  mj_solveM(m, d, dq, z, 1);
  // a non-finite correction is never handed to MuJoCo
  for (int i = 0; i < nv; i++) {
    if (!isfinite(dv[i]) || !isfinite(dq[i])) return 1;
  }
  mju_addTo(d->qvel, dv, nv);
  mj_integratePos(m, d->qpos, dq, 1);
  return 0;
}
