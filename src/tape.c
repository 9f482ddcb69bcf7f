// tape.c: the rollout tape with checkpointing, its reverse pass and the transition Jacobians.
// The tape records T MuJoCo steps of the user's mjData (a checkpoint of the full integration
// state every `every` steps), and runs the reverse pass on a private mjData: each segment is
// recomputed from its checkpoint, then each step is differentiated last to first as grad.h
// describes (derivative.h). Memory: (ceil(T / every) + every + 1) * mj_stateSize(m,
// mjSTATE_INTEGRATION) doubles for the states, plus one joint step's substep tape
// (docs/gradients.md).
#include "derivative.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "difftac/difftac.h"
#include "warning.h"

// with every = 0, a tape keeps every step's state when they fit in this many bytes
#define DTAC_TAPE_KEEP_ALL (64.0 * 1024 * 1024)

// ---- tape
// -----------------------------------------------------------------------------------------------

struct dtac_tape_ {
  const mjModel* m;
  mjData* d;  // the user's: recorded
  mjData* w;  // private: recomputed and differentiated
  int T, n, every, sig, nstate, nuser, nx, nparam;
  mjtNum eps;
  mjtNum* ckpt;                 // checkpoints (ceil(T / every) x nstate)
  mjtNum* last;                 // the state after the last recorded step (nstate)
  mjtNum* user;                 // every step's inputs: ctrl, applied forces, mocap, ... (T x nuser)
  mjtNum* seg;                  // a segment's states in the reverse pass (every x nstate)
  int* param_adr;               // (nplugin)
  unsigned char* sensor_rigid;  // 1: sensordata value from a non-plugin sensor (nsensordata)
  mjtNum* buf;                  // scratch below
  mjtNum *xbar, *fg, *dq, *q1b, *v1b, *a1b, *y1b;
  mjtNum* outp;  // the rigid step's outputs in the differences (2 x (2 nv + na + nsensordata))
  mjtNum *q0, *v0, *site_bar;
  mjtNum* rows;  // per-row buffers of the reverse pass (ensure_rows)
  int rowcap;
  int broken;  // first recorded step in which a gel was reset (non-finite), -1: none
};

static size_t row_size(const mjModel* m);

int dtac_grad_state_size(const mjModel* m) {
  return 2 * m->nv + m->na + m->npluginstate;
}

dtac_tape* dtac_tape_make(const mjModel* m, mjData* d, int nstep, int every) {
  if (nstep < 1) {
    dtac_warning("dtac_tape_make: nstep = %d must be at least 1", nstep);
    return NULL;
  }
  if (m->opt.integrator != mjINT_EULER && m->opt.integrator != mjINT_IMPLICITFAST) {
    dtac_warning("dtac_tape_make: the integrator must be Euler or implicitfast");
    return NULL;
  }
  dtac_tape* tp = (dtac_tape*)calloc(1, sizeof(dtac_tape));
  if (!tp) return NULL;
  tp->m = m;
  tp->d = d;
  tp->T = nstep;
  tp->sig = mjSTATE_INTEGRATION;
  tp->nstate = mj_stateSize(m, tp->sig);
  // every step's state kept when that fits DTAC_TAPE_KEEP_ALL bytes (no segment is recomputed in
  // the reverse pass), else a checkpoint every ceil(sqrt(nstep)) steps
  double all = 8.0 * ((double)nstep + 1) * tp->nstate;
  tp->every = every > 0 ? every : (all <= DTAC_TAPE_KEEP_ALL ? 1 : (int)ceil(sqrt((double)nstep)));
  if (tp->every > nstep) tp->every = nstep;
  tp->nuser = mj_stateSize(m, mjSTATE_USER);
  tp->nx = dtac_grad_state_size(m);
  tp->eps = 1e-6;
  tp->broken = -1;
  tp->nparam = dtac_param_layout(m, NULL);
  int nckpt = (nstep + tp->every - 1) / tp->every;
  int nv = m->nv, nq = m->nq, nsd = m->nsensordata;
  size_t nbuf = (size_t)tp->nx + 12 * (size_t)(nv + nq + 1) + 2 * (size_t)(m->na + nsd + 1) +
                12 * (size_t)m->nsite;
  tp->ckpt = (mjtNum*)malloc(sizeof(mjtNum) * nckpt * tp->nstate);
  tp->last = (mjtNum*)malloc(sizeof(mjtNum) * (tp->nstate > 0 ? tp->nstate : 1));
  tp->seg = (mjtNum*)malloc(sizeof(mjtNum) * tp->every * tp->nstate);
  tp->user = (mjtNum*)malloc(sizeof(mjtNum) * nstep * (tp->nuser > 0 ? tp->nuser : 1));
  tp->param_adr = (int*)malloc(sizeof(int) * (m->nplugin > 0 ? m->nplugin : 1));
  tp->sensor_rigid = (unsigned char*)malloc(nsd > 0 ? nsd : 1);
  tp->buf = (mjtNum*)calloc(nbuf, sizeof(mjtNum));
  tp->outp = (mjtNum*)malloc(sizeof(mjtNum) * 2 * (2 * (size_t)nv + m->na + nsd + 1));
  tp->w = mj_makeData(m);
  if (!tp->ckpt || !tp->last || !tp->seg || !tp->user || !tp->outp || !tp->param_adr || !tp->sensor_rigid ||
      !tp->buf || !tp->w) {
    dtac_warning("dtac_tape_make: out of memory (%d steps, checkpoint every %d)", nstep, tp->every);
    dtac_tape_free(tp);
    return NULL;
  }
  dtac_param_layout(m, tp->param_adr);
  for (int s = 0; s < m->nsensor; s++) {
    for (int k = 0; k < m->sensor_dim[s]; k++) {
      tp->sensor_rigid[m->sensor_adr[s] + k] = m->sensor_type[s] != mjSENS_PLUGIN;
    }
  }
  mjtNum* b = tp->buf;
  tp->xbar = b;
  b += tp->nx;
  tp->fg = b, b += nv;
  tp->dq = b, b += nv;
  tp->q1b = b, b += nq;  // base values of the rigid step's outputs
  tp->v1b = b, b += nv;
  tp->a1b = b, b += m->na + 1;
  tp->q0 = b, b += nq;
  tp->v0 = b, b += nv;
  tp->site_bar = b, b += 12 * m->nsite;
  tp->y1b = b;
  // states need a forward pass to be complete (the gel placed at its site)
  mj_forward(m, d);
  return tp;
}

void dtac_tape_free(dtac_tape* tp) {
  if (!tp) return;
  if (tp->w) mj_deleteData(tp->w);
  free(tp->ckpt);
  free(tp->last);
  free(tp->seg);
  free(tp->user);
  free(tp->param_adr);
  free(tp->sensor_rigid);
  free(tp->buf);
  free(tp->rows);
  free(tp->outp);
  free(tp);
}

size_t dtac_tape_memory(const dtac_tape* tp) {
  const mjModel* m = tp->m;
  int nckpt = (tp->T + tp->every - 1) / tp->every;
  size_t n =
      sizeof(mjtNum) * (((size_t)nckpt + tp->every + 1) * tp->nstate + (size_t)tp->T * tp->nuser);
  // the rigid step's outputs in the differences, and the reverse pass's row buffers
  n += sizeof(mjtNum) * 2 * (2 * (size_t)m->nv + m->na + m->nsensordata + 1);
  n += sizeof(mjtNum) * row_size(m) * tp->rowcap;
  // what the plugins allocated for the reverse pass (after the first backward)
  for (int i = 0; i < m->nplugin; i++) {
    const dtac_derivative* der = dtac_derivative_of(m, i);
    if (der && der->memory) n += der->memory(m, tp->w, i);
  }
  return n;
}

int dtac_tape_nstep(const dtac_tape* tp) {
  return tp->n;
}

void dtac_tape_reset(dtac_tape* tp) {
  tp->n = 0;
  tp->broken = -1;
}

int dtac_tape_step(dtac_tape* tp) {
  if (tp->n >= tp->T) {
    dtac_warning("dtac_tape_step: the tape is full (%d steps)", tp->T);
    return -1;
  }
  if (tp->n % tp->every == 0) {
    mj_getState(tp->m, tp->d, tp->ckpt + (size_t)(tp->n / tp->every) * tp->nstate, tp->sig);
  }
  mj_getState(tp->m, tp->d, tp->user + (size_t)tp->n * tp->nuser, mjSTATE_USER);
  int nwarn = dtac_blowup_count(tp->m, tp->d);
  mj_step(tp->m, tp->d);
  mj_getState(tp->m, tp->d, tp->last, tp->sig);
  if (tp->broken < 0 && dtac_blowup_count(tp->m, tp->d) != nwarn) tp->broken = tp->n;
  return tp->n++;
}

// every plugin instance frozen (the rigid step alone) or not
static void freeze_all(const mjModel* m, mjData* d, int on) {
  for (int i = 0; i < m->nplugin; i++) {
    const dtac_derivative* der = dtac_derivative_of(m, i);
    if (der && der->freeze) der->freeze(m, d, i, on);
  }
}

// sensor plugins with analytic derivatives frozen or not: their outputs are not needed where the
// reverse pass only replays states or reads forces (their VJPs recompute what they need)
static void freeze_sensors(const mjModel* m, mjData* d, int on) {
  for (int i = 0; i < m->nplugin; i++) {
    const dtac_derivative* der = dtac_derivative_of(m, i);
    if (der && der->sensor_vjp && der->freeze) der->freeze(m, d, i, on);
  }
}

// the passive plugins' share of qfrc_passive after a forward pass
static void passive_qfrc(const mjModel* m, const mjData* d, mjtNum* qfrc) {
  mju_zero(qfrc, m->nv);
  for (int i = 0; i < m->nplugin; i++) {
    const dtac_derivative* der = dtac_derivative_of(m, i);
    if (der && der->qfrc) der->qfrc(m, d, i, qfrc);
  }
}

// at d's kinematics (qpos, qvel set): <site bars, site poses> plus the plugins' rigid_dot
static mjtNum rigid_dot(const dtac_tape* tp, mjData* d, const dtac_grad_ctx* ctx) {
  const mjModel* m = tp->m;
  mj_kinematics(m, d);
  mj_comPos(m, d);
  mj_comVel(m, d);
  mjtNum s = 0;
  for (int i = 0; i < m->nsite; i++) {
    s += mju_dot(ctx->site_bar + 12 * i, d->site_xpos + 3 * i, 3);
    s += mju_dot(ctx->site_bar + 12 * i + 3, d->site_xmat + 9 * i, 9);
  }
  for (int i = 0; i < m->nplugin; i++) {
    const dtac_derivative* der = dtac_derivative_of(m, i);
    if (der && der->rigid_dot) s += der->rigid_dot(m, d, i, ctx);
  }
  return s;
}

// per-row buffers of the reverse pass for up to nrow rows (allocated outside the step): the
// cotangents of q*, v*, the start qpos, qvel, the plugins' qfrc (nv each), act (na + 1), and the
// rows' q1, v1 (nv each) and plugin-state (npluginstate) cotangents, packed
static size_t row_size(const mjModel* m) {
  return 7 * (size_t)m->nv + m->na + 1 + m->npluginstate;
}

static int ensure_rows(dtac_tape* tp, int nrow) {
  if (tp->rowcap >= nrow) return 0;
  free(tp->rows);
  tp->rows = (mjtNum*)malloc(sizeof(mjtNum) * row_size(tp->m) * nrow);
  tp->rowcap = tp->rows ? nrow : 0;
  return tp->rows ? 0 : -1;
}

// the reverse of one step from state s (s1: the state after it as the segment's recomputation made
// it, or NULL) for nrow cotangents at once: xbar (nrow x nx) holds the
// cotangents of the state after the step and leaves with those before it; ybar (nrow x
// nsensordata, may be NULL): of the sensordata the step's forward pass computed; ubar (nrow x nu)
// and pbar (nrow x nparam) are accumulated when not NULL
static int backward_rows(dtac_tape* tp, const mjtNum* s, const mjtNum* s1, int nrow, mjtNum* xbar,
                         const mjtNum* ybar, mjtNum* ubar, mjtNum* pbar) {
  const mjModel* m = tp->m;
  mjData* w = tp->w;
  int nv = m->nv, na = m->na, nu = m->nu, nq = m->nq, nx = tp->nx, nsd = m->nsensordata;
  mjtNum eps = tp->eps;
  mjtNum* dq = tp->dq;
  if (ensure_rows(tp, nrow)) return -1;
  // row buffers (ensure_rows)
  mjtNum* qsb = tp->rows;
  mjtNum* vsb = qsb + (size_t)nrow * nv;
  mjtNum* q0b = vsb + (size_t)nrow * nv;
  mjtNum* v0b = q0b + (size_t)nrow * nv;
  mjtNum* fgb = v0b + (size_t)nrow * nv;
  mjtNum* a0b = fgb + (size_t)nrow * nv;
  mjtNum* q1bar = a0b + (size_t)nrow * (na + 1);
  mjtNum* sbar = q1bar + 2 * (size_t)nrow * nv;
  mjtNum* site_bar = tp->site_bar;
  mjtNum* v1bar = q1bar + (size_t)nrow * nv;
  for (int r = 0; r < nrow; r++) {
    mju_copy(q1bar + r * nv, xbar + (size_t)r * nx, nv);
    mju_copy(v1bar + r * nv, xbar + (size_t)r * nx + nv, nv);
    mju_copy(sbar + (size_t)r * m->npluginstate, xbar + (size_t)r * nx + 2 * nv + na,
             m->npluginstate);
  }

  // 1. the step again, recording what the plugins' reverse passes need
  mj_setState(m, w, s, tp->sig);
  for (int i = 0; i < m->nplugin; i++) {
    const dtac_derivative* der = dtac_derivative_of(m, i);
    int rec = der && der->record ? der->record(m, w, i, 1) : 0;
    if (rec) {
      dtac_warning("dtac_tape_backward: plugin instance %d cannot record (out of memory)", i);
      return -1;
    }
    if (s1 && der && der->record_state1) der->record_state1(m, w, i, s1, tp->sig);
  }
  freeze_sensors(m, w, 1);
  mj_step(m, w);
  for (int i = 0; i < m->nplugin; i++) {
    const dtac_derivative* der = dtac_derivative_of(m, i);
    if (der && der->record) der->record(m, w, i, 0);
  }

  // 2. the plugins' advance: cotangents of the rigid step's result and of the start qpos
  dtac_grad_ctx ctx;
  memset(&ctx, 0, sizeof(ctx));
  ctx.nrow = nrow;
  ctx.nparam = tp->nparam;
  ctx.state0 = s;
  ctx.sig = tp->sig;
  ctx.eps = eps;
  ctx.q1_bar = q1bar;
  ctx.v1_bar = v1bar;
  ctx.qstar_bar = qsb;
  ctx.vstar_bar = vsb;
  ctx.qpos0_bar = q0b;
  ctx.state_bar = sbar;
  ctx.param_bar = pbar;
  ctx.param_adr = tp->param_adr;
  mju_copy(qsb, q1bar, (size_t)nrow * nv);
  mju_copy(vsb, v1bar, (size_t)nrow * nv);
  mju_zero(q0b, (size_t)nrow * nv);
  mju_zero(v0b, (size_t)nrow * nv);
  for (int i = 0; i < m->nplugin; i++) {
    const dtac_derivative* der = dtac_derivative_of(m, i);
    if (der && der->advance_vjp && der->advance_vjp(m, w, i, &ctx)) {
      freeze_sensors(m, w, 0);
      return -1;
    }
  }

  // 3. the rigid step, plugins frozen and their forces given: central differences over
  // (qpos tangent, qvel, act, ctrl, plugin qfrc) of <bars, (qpos*, qvel*, act*, rigid sensors)>
  mj_setState(m, w, s, tp->sig);
  mj_forward(m, w);  // (sensors still frozen: only the forces are read)
  passive_qfrc(m, w, tp->fg);
  mju_zero(fgb, (size_t)nrow * nv);
  freeze_all(m, w, 1);
  mj_setState(m, w, s, tp->sig);
  mju_addTo(w->qfrc_applied, tp->fg, nv);
  mj_step(m, w);
  mju_copy(tp->q1b, w->qpos, nq);
  mju_copy(tp->v1b, w->qvel, nv);
  mju_copy(tp->a1b, w->act, na);
  mju_copy(tp->y1b, w->sensordata, nsd);
  int nout = 2 * nv + na + nsd;
  mjtNum* outp = tp->outp;  // the rigid step's outputs at +eps and -eps
  int nin = 3 * nv + na + nu;
  for (int j = 0; j < nin; j++) {
    for (int sgn = 0; sgn < 2; sgn++) {
      mj_setState(m, w, s, tp->sig);
      mju_addTo(w->qfrc_applied, tp->fg, nv);
      dtac_rigid_perturb(m, w, dq, j, sgn ? -eps : eps);
      mj_step(m, w);
      mjtNum* o = outp + (size_t)sgn * nout;
      mj_differentiatePos(m, o, 1, tp->q1b, w->qpos);
      for (int k = 0; k < nv; k++) o[nv + k] = w->qvel[k] - tp->v1b[k];
      for (int k = 0; k < na; k++) o[2 * nv + k] = w->act[k] - tp->a1b[k];
      for (int k = 0; k < nsd; k++) o[2 * nv + na + k] = w->sensordata[k] - tp->y1b[k];
    }
    for (int r = 0; r < nrow; r++) {
      const mjtNum* abar = xbar + (size_t)r * nx + 2 * nv;  // act after = act*
      const mjtNum* yb = ybar ? ybar + (size_t)r * nsd : NULL;
      mjtNum v = 0;
      for (int k = 0; k < nv; k++) {
        v += qsb[r * nv + k] * (outp[k] - outp[nout + k]);
        v += vsb[r * nv + k] * (outp[nv + k] - outp[nout + nv + k]);
      }
      for (int k = 0; k < na; k++) v += abar[k] * (outp[2 * nv + k] - outp[nout + 2 * nv + k]);
      for (int k = 0; yb && k < nsd; k++) {
        if (tp->sensor_rigid[k])
          v += yb[k] * (outp[2 * nv + na + k] - outp[nout + 2 * nv + na + k]);
      }
      mjtNum g = v / (2 * eps);
      if (j < nv) {
        q0b[r * nv + j] += g;
      } else if (j < 2 * nv) {
        v0b[r * nv + j - nv] += g;
      } else if (j < 2 * nv + na) {
        a0b[r * (na + 1) + j - 2 * nv] = g;
      } else if (j < 2 * nv + na + nu) {
        if (ubar) ubar[(size_t)r * nu + j - 2 * nv - na] += g;
      } else {
        fgb[r * nv + j - 2 * nv - na - nu] = g;
      }
    }
  }
  freeze_all(m, w, 0);
  freeze_sensors(m, w, 1);

  // 4. the plugins' forces and sensors at the start state, row by row: their own state
  // analytically (sensors first: they hand cotangents of the gel's contact forces to its force
  // evaluation); their rigid dependencies through smooth kinematic maps with the wrenches they
  // applied held, and the frames of the colliders and sites they read
  mj_setState(m, w, s, tp->sig);
  mj_forward(m, w);
  mju_copy(tp->q0, w->qpos, nq);
  mju_copy(tp->v0, w->qvel, nv);
  for (int r = 0; r < nrow; r++) {
    const mjtNum* yb = ybar ? ybar + (size_t)r * nsd : NULL;
    ctx.nrow = 1;
    ctx.row = r;
    ctx.qfrc_bar = fgb + r * nv;
    ctx.sensor_bar = yb;
    ctx.state_bar = sbar + (size_t)r * m->npluginstate;
    ctx.param_bar = pbar ? pbar + (size_t)r * tp->nparam : NULL;
    ctx.site_bar = site_bar;
    mju_zero(site_bar, 12 * m->nsite);
    for (int sn = 0; yb && sn < m->nsensor; sn++) {
      if (m->sensor_type[sn] != mjSENS_PLUGIN) continue;
      int inst = m->sensor_plugin[sn];
      const dtac_derivative* der = dtac_derivative_of(m, inst);
      const mjtNum* ys = yb + m->sensor_adr[sn];
      int nz = 0;
      for (int k = 0; k < m->sensor_dim[sn]; k++) nz |= ys[k] != 0;
      if (!nz) continue;
      if (!der || !der->sensor_vjp || der->sensor_vjp(m, w, inst, ys, &ctx)) {
        dtac_warning("dtac_tape_backward: sensor %d has no derivative", sn);
        freeze_sensors(m, w, 0);
        return -1;
      }
    }
    for (int i = 0; i < m->nplugin; i++) {
      const dtac_derivative* der = dtac_derivative_of(m, i);
      if (der && der->passive_vjp && der->passive_vjp(m, w, i, &ctx)) {
        freeze_sensors(m, w, 0);
        return -1;
      }
    }
    for (int j = 0; j < 2 * nv; j++) {
      mjtNum val[2];
      for (int sgn = 0; sgn < 2; sgn++) {
        mju_copy(w->qpos, tp->q0, nq);
        mju_copy(w->qvel, tp->v0, nv);
        dtac_rigid_perturb(m, w, dq, j, sgn ? -eps : eps);
        val[sgn] = rigid_dot(tp, w, &ctx);
      }
      mjtNum g = (val[0] - val[1]) / (2 * eps);
      if (j < nv) {
        q0b[r * nv + j] += g;
      } else {
        v0b[r * nv + j - nv] += g;
      }
    }
  }

  freeze_sensors(m, w, 0);

  // the cotangents of the state before the step
  for (int r = 0; r < nrow; r++) {
    mjtNum* x = xbar + (size_t)r * nx;
    mju_copy(x, q0b + r * nv, nv);
    mju_copy(x + nv, v0b + r * nv, nv);
    mju_copy(x + 2 * nv, a0b + r * (na + 1), na);
    mju_copy(x + 2 * nv + na, sbar + (size_t)r * m->npluginstate, m->npluginstate);
  }
  return 0;
}

int dtac_tape_backward(dtac_tape* tp, const mjtNum* sensor_bar, const mjtNum* state_bar,
                       mjtNum* state0_bar, mjtNum* ctrl_bar, mjtNum* param_bar) {
  const mjModel* m = tp->m;
  int nu = m->nu, nsd = m->nsensordata;
  if (tp->n == 0) return -1;
  if (tp->broken >= 0) {
    dtac_warning(
        "dtac_tape_backward: the state blew up and was reset in recorded step %d (a "
        "non-finite gel or an unstable MuJoCo state); the rollout has no gradient",
        tp->broken);
    return -1;
  }
  // the private data steps with the user's parameters
  for (int i = 0; i < tp->nparam; i++) {
    dtac_param_set(m, tp->w, i, dtac_param_get(m, tp->d, i));
  }
  if (state_bar) {
    mju_copy(tp->xbar, state_bar, tp->nx);
  } else {
    mju_zero(tp->xbar, tp->nx);
  }
  if (ctrl_bar) mju_zero(ctrl_bar, (size_t)tp->n * nu);
  if (param_bar) mju_zero(param_bar, tp->nparam);
  int nseg = (tp->n + tp->every - 1) / tp->every;
  for (int sg = nseg - 1; sg >= 0; sg--) {
    int start = sg * tp->every;
    int len = tp->n - start < tp->every ? tp->n - start : tp->every;
    // the segment's states, recomputed from its checkpoint
    mj_setState(m, tp->w, tp->ckpt + (size_t)sg * tp->nstate, tp->sig);
    freeze_sensors(m, tp->w, 1);  // the states only: sensors would render for nothing
    for (int i = 0; i < len; i++) {
      mj_setState(m, tp->w, tp->user + (size_t)(start + i) * tp->nuser, mjSTATE_USER);
      mj_getState(m, tp->w, tp->seg + (size_t)i * tp->nstate, tp->sig);
      if (i < len - 1) mj_step(m, tp->w);
    }
    freeze_sensors(m, tp->w, 0);
    for (int i = len - 1; i >= 0; i--) {
      int t = start + i;
      for (int k = 0; k < tp->nx; k++) {
        if (!isfinite(tp->xbar[k])) {
          dtac_warning("dtac_tape_backward: non-finite cotangent entering step %d (entry %d)", t,
                       k);
          return -1;
        }
      }
      const mjtNum* yb = sensor_bar ? sensor_bar + (size_t)t * nsd : NULL;
      // the state after the step, where the segment's recomputation made it (the next
      // checkpoint, or the state after the last step, for the segment's last)
      const mjtNum* s1 = i < len - 1 ? tp->seg + (size_t)(i + 1) * tp->nstate
                         : sg < nseg - 1 ? tp->ckpt + (size_t)(sg + 1) * tp->nstate
                                         : tp->last;
      if (backward_rows(tp, tp->seg + (size_t)i * tp->nstate, s1, 1, tp->xbar, yb,
                        ctrl_bar ? ctrl_bar + (size_t)t * nu : NULL, param_bar)) {
        return -1;
      }
    }
  }
  if (state0_bar) mju_copy(state0_bar, tp->xbar, tp->nx);
  return 0;
}

// ---- transition Jacobians
// ------------------------------------------------------------------------------

int dtac_tape_transition(dtac_tape* tp, mjtNum* A, mjtNum* B, mjtNum* C, mjtNum* D) {
  const mjModel* m = tp->m;
  mjData* w = tp->w;
  int nv = m->nv, na = m->na, nu = m->nu, nx = tp->nx, nsd = m->nsensordata;
  int ndx = 2 * nv + na;
  for (int i = 0; i < tp->nparam; i++) dtac_param_set(m, w, i, dtac_param_get(m, tp->d, i));
  mjtNum* s = tp->seg;  // the state linearised at
  mj_getState(m, tp->d, s, tp->sig);

  // A and B: one row per output of the next rigid state, all rows in one reverse pass
  if (A || B) {
    mjtNum* xb = (mjtNum*)calloc((size_t)ndx * nx, sizeof(mjtNum));
    mjtNum* ub = (mjtNum*)calloc((size_t)ndx * (nu > 0 ? nu : 1), sizeof(mjtNum));
    if (!xb || !ub) {
      free(xb), free(ub);
      return -1;
    }
    for (int r = 0; r < ndx; r++) xb[(size_t)r * nx + r] = 1;
    int rc = backward_rows(tp, s, NULL, ndx, xb, NULL, ub, NULL);
    for (int r = 0; !rc && r < ndx; r++) {
      if (A) mju_copy(A + (size_t)r * ndx, xb + (size_t)r * nx, ndx);
      if (B) mju_copy(B + (size_t)r * nu, ub + (size_t)r * nu, nu);
    }
    free(xb), free(ub);
    if (rc) return -1;
  }

  // C and D: the sensors of this state, with the plugins' state held, by central differences
  // of the forward pass (no gel step) over the rigid state and the controls
  if (C || D) {
    mjtNum* yp = (mjtNum*)malloc(sizeof(mjtNum) * 2 * (nsd + 1));
    if (!yp) return -1;
    // sensor plugins with analytic rows are left out here (their sensor_rows below)
    for (int i = 0; i < m->nplugin; i++) {
      const dtac_derivative* der = dtac_derivative_of(m, i);
      if (der && der->sensor_rows && der->freeze) der->freeze(m, w, i, 1);
    }
    for (int j = 0; j < ndx + nu; j++) {
      for (int sgn = 0; sgn < 2; sgn++) {
        mj_setState(m, w, s, tp->sig);
        dtac_rigid_perturb(m, w, tp->dq, j, sgn ? -tp->eps : tp->eps);
        mj_forward(m, w);
        mju_copy(yp + (size_t)sgn * nsd, w->sensordata, nsd);
      }
      for (int k = 0; k < nsd; k++) {
        mjtNum g = (yp[k] - yp[nsd + k]) / (2 * tp->eps);
        if (j < ndx) {
          if (C) C[(size_t)k * ndx + j] = g;
        } else if (D) {
          D[(size_t)k * nu + j - ndx] = g;
        }
      }
    }
    free(yp);
    for (int i = 0; i < m->nplugin; i++) {
      const dtac_derivative* der = dtac_derivative_of(m, i);
      if (der && der->sensor_rows && der->freeze) der->freeze(m, w, i, 0);
    }
    // the analytic rows: the instances read no ctrl (their rows of D are zero)
    int rc = 0, any = 0;
    for (int i = 0; i < m->nplugin && C; i++) {
      const dtac_derivative* der = dtac_derivative_of(m, i);
      if (!der || !der->sensor_rows) continue;
      any = 1;
      rc |= der->sensor_rows(m, w, i, s, tp->sig, tp->eps, C);
    }
    for (int sn = 0; sn < m->nsensor && D; sn++) {
      if (m->sensor_type[sn] != mjSENS_PLUGIN) continue;
      const dtac_derivative* der = dtac_derivative_of(m, m->sensor_plugin[sn]);
      if (!der || !der->sensor_rows) continue;
      for (int k = 0; k < m->sensor_dim[sn]; k++) {
        mju_zero(D + (size_t)(m->sensor_adr[sn] + k) * nu, nu);
      }
    }
    // the instances' rows used the plugins' scratch: a forward pass leaves d consistent again
    if (any) {
      mj_setState(m, w, s, tp->sig);
      mj_forward(m, w);
    }
    if (rc) return -1;
  }
  return 0;
}

int dtac_transition(const mjModel* m, mjData* d, mjtNum* A, mjtNum* B, mjtNum* C, mjtNum* D) {
  dtac_tape* tp = dtac_tape_make(m, d, 1, 1);
  if (!tp) return -1;
  int rc = dtac_tape_transition(tp, A, B, C, D);
  dtac_tape_free(tp);
  return rc;
}
