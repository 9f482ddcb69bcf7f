// elastomer_deriv.c: the elastomer's derivative callbacks (derivative.h). The gel's state is
// differentiated analytically (src/step_adj.c for the step, dtac_elastomer_passive_adj for the
// forces it puts on the bodies, passive_adj.c); the small rigid maps around the joint step (the frames,
// velocities and inverse masses it starts from, and the corrections it makes to qpos and qvel)
// by central finite differences over qpos (tangent), qvel and the coupling impulses.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "derivative.h"
#include "elastomer.h"

// ---- rigid maps around the joint step
// ---------------------------------------------------------------------

// kinematics, mass matrix and its factor at d->qpos
static void rigid_position(const mjModel* m, mjData* d) {
  mj_kinematics(m, d);
  mj_comPos(m, d);
  mj_crb(m, d);
  mj_factorM(m, d);
}

// the corrections: (q1, v1) from the start qpos q0 (where M and J are taken), the rigid step's
// result (qs, vs) and the slots' impulses dPQ (nslot x 12: dP, dQ)
static void k_eval(const mjModel* m, mjData* d, dtac_world* w, const mjtNum* q0,
                   const mjtNum* qs, const mjtNum* vs, const mjtNum* dPQ) {
  int nv = m->nv;
  dtac_coupling* cp = &w->cp;
  mju_copy(d->qpos, q0, m->nq);
  // the implicit step's corrections hold the equality constraints at q0: their rows anew
  if (cp->constrained) {
    mj_fwdPosition(m, d);
    dtac_coupling_factor(cp, m, d);
    dtac_coupling_constraints(cp, m, d);
  } else {
    rigid_position(m, d);
    dtac_coupling_factor(cp, m, d);
  }
  for (int k = 0; k < cp->nslot; k++) {
    int b = cp->slot_body[k];
    mjtNum* J = cp->jac + 6 * nv * k;
    mj_jac(m, d, J, J + 3 * nv, d->xpos + 3 * b, b);
    memcpy(cp->slot[k].dP, dPQ + 12 * k, sizeof(double) * 6);
    memcpy(cp->slot[k].dQ, dPQ + 12 * k + 6, sizeof(double) * 6);
  }
  mju_copy(d->qpos, qs, m->nq);
  mju_copy(d->qvel, vs, nv);
  dtac_coupling_correct(cp, m, d);
}

static mjtNum dot18(const double* a, const double* b) {
  mjtNum s = 0;
  for (int k = 0; k < 18; k++) s += a[k] * b[k];
  return s;
}

// the joint step's rigid inputs at d's qpos (the start qpos) and qvel (the rigid step's result):
// kinematics, mass matrix, and the setup of the recorded step's lists
static void xi_eval(const mjModel* m, mjData* d, dtac_world* w, int full) {
  // the implicit step's inverse masses hold the equality constraints: their rows anew
  if (w->cp.constrained) {
    mj_fwdPosition(m, d);
  } else {
    rigid_position(m, d);
  }
  w->fixed = 1;
  dtac_world_setup(m, d, w);
  w->fixed = 0;
  if (full) dtac_coupling_cross(&w->cp, m, d);
}

// those inputs (after xi_eval) dotted with one row's cotangents from the reverse pass (Wfb: of
// the joint inverse effective mass of an implicit step that used it, or NULL)
static mjtNum xi_dot(const dtac_world* w, int ngel, const dtac_gel_step_bar* gb,
                     const dtac_body_bar* bb, const double* Wfb) {
  mjtNum s = 0;
  for (int i = 0; i < ngel; i++) {
    const dtac_gel_step* st = w->steps + i;
    s += dot18((const double*)st->site, (const double*)&gb[i].site);
    for (int c = 0; c < st->ncol; c++) {
      const dtac_collider* col = st->col + c;
      const dtac_collider_bar* cb = gb[i].col + c;
      for (int k = 0; k < 3; k++) {
        s += col->pos[k] * cb->pos[k] + col->vel[k] * cb->vel[k] + col->angvel[k] * cb->angvel[k];
      }
      for (int k = 0; k < 9; k++) s += col->mat[k] * cb->mat[k];
    }
  }
  for (int k = 0; k < w->cp.nslot; k++) {
    s += dot18((const double*)&w->cp.slot[k].frame, (const double*)&bb[k].frame);
    for (int j = 0; j < 36; j++) s += w->cp.slot[k].Winv[j] * bb[k].Winv[j];
  }
  int n6 = 6 * w->cp.nslot;
  for (int j = 0; Wfb && j < n6 * n6; j++) s += w->cp.Wfull[j] * Wfb[j];
  return s;
}

// ---- callbacks
// -------------------------------------------------------------------------------------------

static void el_freeze(const mjModel* m, mjData* d, int instance, int on) {
  dtac_elastomer* e = dtac_elastomer_get(m, d, instance);
  if (e) e->frozen = on;
}

static void el_qfrc(const mjModel* m, const mjData* d, int instance, mjtNum* qfrc) {
  const dtac_elastomer* e = dtac_elastomer_get(m, d, instance);
  if (e) mju_addTo(qfrc, e->qfrc, m->nv);
}

static mjtNum el_rigid_dot(const mjModel* m, mjData* d, int instance, const dtac_grad_ctx* ctx) {
  dtac_elastomer* e = dtac_elastomer_get(m, d, instance);
  if (!e) return 0;
  dtac_world* w = e->world;
  const mjtNum* wa = w->wapp_rows ? w->wapp_rows + (size_t)ctx->row * 6 * m->nbody : NULL;
  return dtac_elastomer_rigid_dot(m, d, e, ctx->qfrc_bar, e->def.coupling && wa ? wa : NULL);
}

// doubles of the reverse pass's scratch: q0, qs, vs, q1 base, a perturbed qpos, v1 base, dq, and
// the slots' impulses dP, dQ
static size_t scratch_size(const mjModel* m, const dtac_world* w) {
  return 4 * (size_t)m->nq + 3 * (size_t)m->nv + 12 * (size_t)w->cp.maxslot;
}

static int el_record(const mjModel* m, mjData* d, int instance, int on) {
  dtac_elastomer* e = dtac_elastomer_get(m, d, instance);
  if (!e || !e->is_lead) return 0;
  dtac_world* w = e->world;
  w->record = on;
  w->rec_given = 0;
  if (!on) return 0;
  if (w->integrator == DTAC_INTEGRATOR_IMPLICIT) {
    // the implicit step's reverse needs the states after it (the solve is not taped)
    if (!w->rec_state1 && m->npluginstate > 0)
      w->rec_state1 = (mjtNum*)malloc(sizeof(mjtNum) * m->npluginstate);
    if (!w->gscratch) w->gscratch = (mjtNum*)malloc(sizeof(mjtNum) * scratch_size(m, w));
    return w->gscratch && (w->rec_state1 || m->npluginstate == 0) ? 0 : -1;
  }
  // the tape of the largest joint step: every gel at 3x its substeps, all slots coupled
  size_t state_total = 0;
  int nsub = 1;
  for (int i = 0; i < m->nplugin; i++) {
    dtac_elastomer* g = dtac_elastomer_get(m, d, i);
    if (!g) continue;
    state_total += g->L.size;
    if (g->nsub > nsub) nsub = g->nsub;
  }
  size_t need = dtac_tape_size(nsub, state_total, w->cp.maxslot);
  if (w->tape_size < need) {
    free(w->tape);
    w->tape = (double*)malloc(sizeof(double) * need);
    w->tape_size = w->tape ? need : 0;
  }
  if (!w->gscratch) w->gscratch = (mjtNum*)malloc(sizeof(mjtNum) * scratch_size(m, w));
  return w->tape && w->gscratch ? 0 : -1;
}

// the implicit step's end states, from the state after the step the tape already has: the
// recorded step then takes them instead of solving again (implicit_advance)
static void el_record_state1(const mjModel* m, mjData* d, int instance, const mjtNum* state1,
                             int sig) {
  dtac_elastomer* e = dtac_elastomer_get(m, d, instance);
  if (!e || !e->is_lead) return;
  dtac_world* w = e->world;
  if (!w->record || w->integrator != DTAC_INTEGRATOR_IMPLICIT || !w->rec_state1) return;
  if (!(sig & mjSTATE_PLUGIN) || m->npluginstate == 0) return;
  mj_extractState(m, state1, sig, w->rec_state1, mjSTATE_PLUGIN);
  w->rec_given = 1;
}

// the reverse of the recorded joint step for ctx->nrow cotangents at once: the rigid maps'
// columns are differenced once and dotted with every row
static int el_advance_vjp(const mjModel* m, mjData* d, int instance, dtac_grad_ctx* ctx) {
  dtac_elastomer* e = dtac_elastomer_get(m, d, instance);
  if (!e || !e->is_lead) return 0;
  dtac_world* w = e->world;
  dtac_coupling* cp = &w->cp;
  int nq = m->nq, nv = m->nv, ns = cp->nslot, nrow = ctx->nrow > 0 ? ctx->nrow : 1;
  int nps = m->npluginstate, nb = m->nbody;
  mjtNum eps = ctx->eps;
  mjtNum* q0 = w->gscratch;
  mjtNum* qs = q0 + nq;
  mjtNum* vs = qs + nq;
  mjtNum* q1b = vs + nv;
  mjtNum* qp = q1b + nq;
  mjtNum* v1b = qp + nq;
  mjtNum* dq = v1b + nv;
  mjtNum* dPQ = dq + nv;

  int ngel = 0;
  for (int i = 0; i < m->nplugin; i++) ngel += dtac_elastomer_get(m, d, i) != NULL;
  if (ngel > w->maxgel) ngel = w->maxgel;
  int ncoltot = 0;
  for (int i = 0; i < ngel; i++) ncoltot += w->gels[i]->ncol;

  // per-row scratch of this call (the reverse pass, not the step: it may allocate)
  mjtNum* dPQb = (mjtNum*)calloc((size_t)nrow * 12 * (ns > 0 ? ns : 1), sizeof(mjtNum));
  dtac_gel_step_bar* gb = (dtac_gel_step_bar*)calloc((size_t)nrow * ngel, sizeof(*gb));
  dtac_body_bar* bb = (dtac_body_bar*)calloc((size_t)nrow * (ns > 0 ? ns : 1), sizeof(*bb));
  dtac_collider_bar* cbar =
      (dtac_collider_bar*)calloc((size_t)nrow * (ncoltot > 0 ? ncoltot : 1), sizeof(*cbar));
  double* work =
      (double*)malloc(sizeof(double) * (dtac_gels_adj_work_size(w->steps, ngel, ns, nrow) + 1));
  if (w->wapp_rows_cap < nrow) {
    free(w->wapp_rows);
    w->wapp_rows = (mjtNum*)malloc(sizeof(mjtNum) * 6 * nb * nrow);
    w->wapp_rows_cap = w->wapp_rows ? nrow : 0;
  }
  if (!dPQb || !gb || !bb || !cbar || !work || !w->wapp_rows) {
    free(dPQb), free(gb), free(bb), free(cbar), free(work);
    return -1;
  }

  int implicit = w->integrator == DTAC_INTEGRATOR_IMPLICIT;
  // an implicit step that solved gels together with the bodies: its joint inverse effective mass
  // (the cross terms of slots sharing joints) when it used one, and that W's cotangent per row
  int ncp = implicit ? dtac_implicit_joint_ncoupled(w->ij) : 0;
  int full = ncp > 0 && ns <= DTAC_COUPLING_CROSS;
  size_t nW = full ? (size_t)36 * ns * ns : 0;
  mjtNum* Wfb = full ? (mjtNum*)calloc((size_t)nrow * nW, sizeof(mjtNum)) : NULL;
  if (full && !Wfb) {
    free(dPQb), free(gb), free(bb), free(cbar), free(work);
    return -1;
  }
  // the implicit step's end states, before d is set to the start state
  if (implicit) mju_copy(w->rec_state1, d->plugin_state, nps);

  // the recorded step's rigid inputs and coupling impulses
  mju_copy(qs, w->rec_qpos, nq);
  mju_copy(vs, w->rec_qvel, nv);
  for (int k = 0; k < ns; k++) {
    memcpy(dPQ + 12 * k, cp->slot[k].dP, sizeof(double) * 6);
    memcpy(dPQ + 12 * k + 6, cp->slot[k].dQ, sizeof(double) * 6);
  }
  mj_setState(m, d, ctx->state0, ctx->sig);
  mju_copy(q0, d->qpos, nq);

  // corrections (q1, v1) = K(q0, qs, vs, dPQ): central differences of <q1_bar, q1> + <v1_bar, v1>
  for (int r = 0; r < nrow; r++) {
    mju_zero(ctx->qstar_bar + r * nv, nv);
    mju_zero(ctx->vstar_bar + r * nv, nv);
  }
  if (ns > 0) {
    k_eval(m, d, w, q0, qs, vs, dPQ);
    mju_copy(q1b, d->qpos, nq);
    mju_copy(v1b, d->qvel, nv);
    int ncol = 3 * nv + 12 * ns;
    mjtNum* outp = (mjtNum*)malloc(sizeof(mjtNum) * 4 * nv);  // (dq, dv) at +e and -e
    if (!outp) {
      free(dPQb), free(gb), free(bb), free(cbar), free(work), free(Wfb);
      return -1;
    }
    for (int j = 0; j < ncol; j++) {
      for (int sgn = 0; sgn < 2; sgn++) {
        mjtNum e = sgn ? -eps : eps;
        const mjtNum *a0 = q0, *as = qs;
        if (j < nv) {
          mju_copy(qp, q0, nq);
          mju_zero(dq, nv);
          dq[j] = e;
          mj_integratePos(m, qp, dq, 1);
          a0 = qp;
        } else if (j < 2 * nv) {
          mju_copy(qp, qs, nq);
          mju_zero(dq, nv);
          dq[j - nv] = e;
          mj_integratePos(m, qp, dq, 1);
          as = qp;
        } else if (j < 3 * nv) {
          vs[j - 2 * nv] += e;
        } else {
          dPQ[j - 3 * nv] += e;
        }
        k_eval(m, d, w, a0, as, vs, dPQ);
        if (j >= 2 * nv && j < 3 * nv) vs[j - 2 * nv] -= e;
        if (j >= 3 * nv) dPQ[j - 3 * nv] -= e;
        mjtNum* o = outp + 2 * nv * sgn;
        mj_differentiatePos(m, o, 1, q1b, d->qpos);
        for (int k = 0; k < nv; k++) o[nv + k] = d->qvel[k] - v1b[k];
      }
      for (int r = 0; r < nrow; r++) {
        mjtNum g = 0;
        for (int k = 0; k < nv; k++) {
          g += ctx->q1_bar[r * nv + k] * (outp[k] - outp[2 * nv + k]);
          g += ctx->v1_bar[r * nv + k] * (outp[nv + k] - outp[3 * nv + k]);
        }
        g /= 2 * eps;
        if (j < nv) {
          ctx->qpos0_bar[r * nv + j] += g;
        } else if (j < 2 * nv) {
          ctx->qstar_bar[r * nv + j - nv] = g;
        } else if (j < 3 * nv) {
          ctx->vstar_bar[r * nv + j - 2 * nv] = g;
        } else {
          dPQb[r * 12 * ns + j - 3 * nv] = g;
        }
      }
    }
    free(outp);
  } else {
    for (int r = 0; r < nrow; r++) {
      mju_copy(ctx->qstar_bar + r * nv, ctx->q1_bar + r * nv, nv);
      mju_copy(ctx->vstar_bar + r * nv, ctx->v1_bar + r * nv, nv);
    }
  }

  // the joint step, analytically (the steps, slots and colliders are still those recorded)
  for (int r = 0; r < nrow; r++) {
    dtac_collider_bar* cb = cbar + (size_t)r * ncoltot;
    for (int i = 0; i < ngel; i++) {
      dtac_elastomer* g = w->gels[i];
      gb[r * ngel + i].state = ctx->state_bar + (size_t)r * nps + m->plugin_stateadr[g->instance];
      gb[r * ngel + i].col = cb;
      cb += g->ncol;
    }
    for (int k = 0; k < ns; k++) {
      memcpy(bb[r * ns + k].dP, dPQb + r * 12 * ns + 12 * k, sizeof(double) * 6);
      memcpy(bb[r * ns + k].dQ, dPQb + r * 12 * ns + 12 * k + 6, sizeof(double) * 6);
    }
  }
  double gravity[3] = {m->opt.gravity[0], m->opt.gravity[1], m->opt.gravity[2]};
  if (m->opt.disableflags & mjDSBL_GRAVITY) gravity[0] = gravity[1] = gravity[2] = 0;
  if (implicit) {
    // by the implicit function theorem: the gels solved with the bodies together, the others
    // each alone
    dtac_implicit_params ip;
    dtac_world_implicit_params(w, &ip);
    int coupled[DTAC_MAX_BODY];
    dtac_implicit_gel cg[DTAC_MAX_BODY];
    dtac_implicit_gel_bar cgb[DTAC_MAX_BODY];
    int nc = ncp < DTAC_MAX_BODY ? ncp : DTAC_MAX_BODY;
    for (int q = 0; q < nc; q++) coupled[q] = dtac_implicit_joint_coupled(w->ij, q);
    for (int r = 0; r < nrow; r++) {
      for (int q = 0; q < nc; q++) {
        int i = coupled[q];
        dtac_elastomer* g = w->gels[i];
        const dtac_gel_step* st = w->steps + i;
        dtac_gel_step_bar* b = gb + r * ngel + i;
        int adr = m->plugin_stateadr[g->instance];
        // as the recorded step set it up (implicit_advance), from the state after it
        cg[q] = w->igels[i];
        cg[q].state = w->rec_state1 + adr;
        cgb[q].state0 = d->plugin_state + adr;  // d holds the start state (mj_setState above)
        cgb[q].col0 = st->col;
        cgb[q].sbar = b->state;
        cgb[q].site0_bar = &b->site;
        cgb[q].col0_bar = b->col;
        cgb[q].pb = &b->param;
      }
      if (nc > 0 && dtac_implicit_joint_adj(cg, nc, cgb, cp->slot, ns, w->ij,
                                            full ? cp->Wfull : NULL, gravity, m->opt.timestep,
                                            &ip, bb + r * ns, full ? Wfb + r * nW : NULL)) {
        free(dPQb), free(gb), free(bb), free(cbar), free(work), free(Wfb);
        return -1;
      }
      for (int i = 0; i < ngel; i++) {
        int is_coupled = 0;
        for (int q = 0; q < nc; q++) is_coupled |= coupled[q] == i;
        if (is_coupled) continue;
        dtac_elastomer* g = w->gels[i];
        const dtac_gel_step* st = w->steps + i;
        dtac_gel_step_bar* b = gb + r * ngel + i;
        int adr = m->plugin_stateadr[g->instance];
        ip.material = g->def.material;
        // d holds the start state (mj_setState above)
        if (dtac_implicit_gel_adj(g->imp, &g->model, d->plugin_state + adr, w->rec_state1 + adr, st->site, st->col, st->ncol, gravity,
                                  m->opt.timestep, &ip, b->state, &b->site, b->col, &b->param)) {
          free(dPQb), free(gb), free(bb), free(cbar), free(work), free(Wfb);
          return -1;
        }
      }
    }
  } else {
    dtac_gels_advance_adj_rows(w->steps, ngel, cp->slot, ns, gravity, m->opt.timestep,
                               w->tape, nrow, gb, bb, work);
  }
  for (int r = 0; r < nrow; r++) {
    for (int i = 0; i < ngel; i++) {
      int adr = ctx->param_adr ? ctx->param_adr[w->gels[i]->instance] : -1;
      if (adr < 0 || !ctx->param_bar) continue;
      const double* pb = (const double*)&gb[r * ngel + i].param;
      for (int k = 0; k < DTAC_NPARAM; k++)
        ctx->param_bar[(size_t)r * ctx->nparam + adr + k] += pb[k];
    }
    mjtNum* wa = w->wapp_rows + (size_t)r * 6 * nb;
    mju_zero(wa, 6 * nb);
    for (int k = 0; k < ns; k++)
      mju_copy(wa + 6 * cp->slot_body[k], bb[r * ns + k].wrench_app, 6);
  }

  // the joint step's rigid inputs: central differences over q0 (tangent) and vs
  mjtNum* val = (mjtNum*)malloc(sizeof(mjtNum) * 2 * nrow);
  for (int j = 0; val && j < 2 * nv; j++) {
    for (int sgn = 0; sgn < 2; sgn++) {
      mjtNum e = sgn ? -eps : eps;
      mju_copy(d->qpos, q0, nq);
      mju_copy(d->qvel, vs, nv);
      if (j < nv) {
        mju_zero(dq, nv);
        dq[j] = e;
        mj_integratePos(m, d->qpos, dq, 1);
      } else {
        d->qvel[j - nv] += e;
      }
      xi_eval(m, d, w, full);
      for (int r = 0; r < nrow; r++) {
        val[2 * r + sgn] = xi_dot(w, ngel, gb + r * ngel, bb + r * ns, full ? Wfb + r * nW : NULL);
      }
    }
    for (int r = 0; r < nrow; r++) {
      mjtNum g = (val[2 * r] - val[2 * r + 1]) / (2 * eps);
      if (j < nv) {
        ctx->qpos0_bar[r * nv + j] += g;
      } else {
        ctx->vstar_bar[r * nv + j - nv] += g;
      }
    }
  }
  int ok = val != NULL;
  free(val), free(dPQb), free(gb), free(bb), free(cbar), free(work), free(Wfb);
  return ok ? 0 : -1;
}

static int el_passive_vjp(const mjModel* m, mjData* d, int instance, dtac_grad_ctx* ctx) {
  dtac_elastomer* e = dtac_elastomer_get(m, d, instance);
  if (!e) return -1;
  dtac_world* w = e->world;
  dtac_gel_param_bar pb;
  memset(&pb, 0, sizeof(pb));
  const mjtNum* wa =
      w->wapp_rows ? w->wapp_rows + (size_t)ctx->row * 6 * m->nbody : NULL;
  dtac_elastomer_passive_adj(m, d, e, ctx->qfrc_bar, e->def.coupling && wa ? wa : NULL, e->cf_bar,
                             ctx->state_bar + m->plugin_stateadr[instance], &pb);
  memset(e->cf_bar, 0, sizeof(double) * 3 * e->model.nnode);
  int adr = ctx->param_adr ? ctx->param_adr[instance] : -1;
  if (adr >= 0 && ctx->param_bar) {
    const double* p = (const double*)&pb;
    for (int k = 0; k < DTAC_NPARAM; k++) ctx->param_bar[adr + k] += p[k];
  }
  return 0;
}

static mjtNum el_param_get(const mjModel* m, const mjData* d, int instance, int k) {
  const dtac_elastomer* e = dtac_elastomer_get(m, d, instance);
  return e ? dtac_gel_param_get(&e->model, k) : 0;
}

static int el_param_set(const mjModel* m, mjData* d, int instance, int k, mjtNum value) {
  dtac_elastomer* e = dtac_elastomer_get(m, d, instance);
  return e ? dtac_elastomer_param_set(m, e, k, value) : -1;
}

static int el_nwarning(const mjModel* m, const mjData* d, int instance) {
  const dtac_elastomer* e = dtac_elastomer_get(m, d, instance);
  return e ? e->nwarning : 0;
}

static size_t el_memory(const mjModel* m, const mjData* d, int instance) {
  const dtac_elastomer* e = dtac_elastomer_get(m, d, instance);
  if (!e || !e->is_lead || !e->world->gscratch) return 0;
  size_t n = sizeof(double) * e->world->tape_size + sizeof(mjtNum) * scratch_size(m, e->world);
  if (e->world->rec_state1) n += sizeof(mjtNum) * m->npluginstate;  // implicit: the end states
  return n;
}

static int el_nparam(const mjModel* m, int instance) {
  (void)m;
  (void)instance;
  return DTAC_NPARAM;
}

void dtac_elastomer_register_derivative(void) {
  dtac_derivative der;
  memset(&der, 0, sizeof(der));
  der.plugin = DTAC_ELASTOMER_NAME;
  der.freeze = el_freeze;
  der.qfrc = el_qfrc;
  der.rigid_dot = el_rigid_dot;
  der.memory = el_memory;
  der.record = el_record;
  der.record_state1 = el_record_state1;
  der.advance_vjp = el_advance_vjp;
  der.passive_vjp = el_passive_vjp;
  der.nparam = el_nparam;
  der.param_names = dtac_gel_param_names;
  der.param_get = el_param_get;
  der.param_set = el_param_set;
  der.nwarning = el_nwarning;
  dtac_register_derivative(&der);
}
