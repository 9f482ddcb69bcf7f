// world.c: the joint step of all elastomers of one mjData (elastomer.h, dtac_world): the setup
// from MuJoCo's state at the step start (sites, colliders, coupled bodies), the step on the CPU
// (step.c) or on the lead's device (device.c), and what follows it (the coupled bodies'
// corrections, each gel's report, a blown-up gel restarted).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "elastomer.h"

dtac_world* dtac_world_make(const mjModel* m, dtac_elastomer* lead) {
  dtac_world* w = (dtac_world*)calloc(1, sizeof(dtac_world));
  if (!w) return NULL;
  int nv1 = m->nv > 0 ? m->nv : 1;
  w->lead = lead;
  w->maxgel = m->nplugin;
  w->gels = (dtac_elastomer**)calloc(w->maxgel, sizeof(dtac_elastomer*));
  w->steps = (dtac_gel_step*)calloc(w->maxgel, sizeof(dtac_gel_step));
  w->sites = (dtac_frame*)calloc(w->maxgel, sizeof(dtac_frame));
  w->jac = (mjtNum*)malloc(sizeof(mjtNum) * 6 * nv1);
  w->rec_qpos = (mjtNum*)calloc(m->nq > 0 ? m->nq : 1, sizeof(mjtNum));
  w->rec_qvel = (mjtNum*)calloc(nv1, sizeof(mjtNum));
  w->integrator = lead->def.integrator;
  if (w->integrator == DTAC_INTEGRATOR_IMPLICIT) {
    w->ij = dtac_implicit_joint_make();
    w->igels = (dtac_implicit_gel*)calloc(w->maxgel, sizeof(dtac_implicit_gel));
  }
  int imp_bad = w->integrator == DTAC_INTEGRATOR_IMPLICIT && (!w->ij || !w->igels);
  if (dtac_coupling_make(&w->cp, m) || !w->gels || !w->steps || !w->sites || !w->jac ||
      !w->rec_qpos || !w->rec_qvel || imp_bad) {
    dtac_world_free(w);
    return NULL;
  }
  w->cp.constrained = w->integrator == DTAC_INTEGRATOR_IMPLICIT;
  return w;
}

void dtac_world_free(dtac_world* w) {
  if (!w) return;
  dtac_coupling_free(&w->cp);
  free(w->gels);
  free(w->steps);
  free(w->sites);
  free(w->jac);
  free(w->tape);
  free(w->rec_qpos);
  free(w->rec_qvel);
  free(w->rec_state1);
  free(w->wapp_rows);
  free(w->gscratch);
  dtac_implicit_joint_free(w->ij);
  free(w->igels);
  free(w);
}

int dtac_world_setup(const mjModel* m, mjData* d, dtac_world* w) {
  // all gels are stepped together, so that a body touched by several gels (an object in a
  // two-pad grasp) feels all of them at the substep rate
  int ngel = 0;
  for (int i = 0; i < m->nplugin; i++) {
    dtac_elastomer* g = dtac_elastomer_get(m, d, i);
    if (g && ngel < w->maxgel) w->gels[ngel++] = g;
  }
  w->ngel = ngel;
  dtac_coupling* cp = &w->cp;
  int couple = m->nv > 0;
  if (couple) dtac_coupling_factor(cp, m, d);  // the mobility the slots and corrections use
  if (w->fixed) {
    for (int k = 0; k < cp->nslot; k++) dtac_coupling_refresh(cp, m, d, k);
  } else if (couple) {
    dtac_coupling_clear(cp, m);
  } else {
    cp->nslot = 0;
  }

  for (int i = 0; i < ngel; i++) {
    dtac_elastomer* g = w->gels[i];
    dtac_gel_step* st = w->steps + i;
    dtac_elastomer_ensure_placed(m, d, g);
    memset(st, 0, sizeof(*st));
    st->gm = &g->model;
    st->s = &g->scratch;
    st->state = d->plugin_state + m->plugin_stateadr[g->instance];
    st->nsub = g->nsub;

    // the site moves over the step with the velocity MuJoCo integrated qpos with
    dtac_frame* site = w->sites + i;
    dtac_site_pose(d, g->site, site);
    if (m->nv > 0) {
      mj_jacSite(m, d, w->jac, w->jac + 3 * m->nv, g->site);
      mju_mulMatVec(site->vel, w->jac, d->qvel, 3, m->nv);
      mju_mulMatVec(site->angvel, w->jac + 3 * m->nv, d->qvel, 3, m->nv);
    }
    st->site = site;
    const double* x = st->state + g->L.x;
    const double* v = st->state + g->L.v;
    const double* sz = g->def.gel.size;
    dtac_colliders_gather(&g->geoms, m, d, x, v, g->model.nnode, fmax(sz[0], fmax(sz[1], sz[2])),
                          g->model.def.friction, 1, w->fixed, g->col, &g->ncol, g->jac);
    st->col = g->col;
    st->ncol = g->ncol;

    // substep coupling: the site's body and every touched body with dofs get a shared slot
    st->site_slot = -1;
    st->col_slot = NULL;
    if (couple && g->def.coupling) {
      st->site_slot = dtac_coupling_slot(cp, m, d, g->body);
      // a body light against its gel needs a finer substep than the gel alone
      if (st->site_slot >= 0)
        st->nsub = dtac_coupling_substeps(&g->model, cp->slot + st->site_slot, site,
                                          m->opt.timestep, st->nsub);
      if (!w->fixed) {
        for (int c = 0; c < g->ncol; c++) {
          g->col_slot[c] = dtac_coupling_slot(cp, m, d, g->col[c].body);
        }
      }
      st->col_slot = g->col_slot;
    }
  }

  // what the rigid step already applied to each slot: every coupled gel's passive wrench
  for (int k = 0; k < cp->nslot; k++) {
    int b = cp->slot_body[k];
    mju_zero(cp->slot[k].wrench_app, 6);
    for (int i = 0; i < ngel; i++) {
      if (w->gels[i]->def.coupling)
        mju_addTo(cp->slot[k].wrench_app, w->gels[i]->body_wrench + 6 * b, 6);
    }
  }
  return ngel;
}

// a failed device call: reported, and the gels are stepped on the CPU from then on (the state in
// plugin_state is what MuJoCo holds, so nothing is lost)
static void device_failed(const mjModel* m, mjData* d, dtac_world* w, int ngel) {
  dtac_elastomer* lead = w->lead;
  dtac_warning(
      "%s instance '%s': %s device error: %s; its gels are stepped on the CPU from now on "
      "(time %g)",
      DTAC_ELASTOMER_NAME, lead->name, lead->dev.kind == DTAC_DEV_CUDA ? "cuda" : "emu",
      lead->dev.err, d->time);
  w->dev_env = NULL;
  for (int i = ngel - 1; i >= 0; i--) dtac_elastomer_device_off(w->gels[i]);  // the lead's last
}

int dtac_world_device_begin(const mjModel* m, mjData* d, dtac_world* w, int ngel) {
  double gravity[3];
  dtac_gravity(m, gravity);
  for (int i = 0; i < ngel; i++) w->mirrors[i] = &w->gels[i]->mirror;
  w->dev_ngel = ngel;
  w->dev_env = dtac_dev_prepare(&w->lead->dev, &w->block, w->steps, w->mirrors, ngel, w->cp.slot,
                                w->cp.nslot, gravity, m->opt.timestep);
  if (!w->dev_env) {
    device_failed(m, d, w, ngel);
    return 1;
  }
  return 0;
}

int dtac_world_device_end(const mjModel* m, mjData* d, dtac_world* w, int ngel) {
  w->dev_env = NULL;
  if (dtac_dev_finish(&w->lead->dev, &w->block, w->steps, w->mirrors, ngel, w->cp.slot,
                      w->cp.nslot)) {
    device_failed(m, d, w, ngel);
    return 1;
  }
  dtac_world_advance_end(m, d, w, ngel);
  return 0;
}

void dtac_world_advance_end(const mjModel* m, mjData* d, dtac_world* w, int ngel) {
  // a gel that blew up hands nothing to MuJoCo: with any gel non-finite the coupled bodies'
  // corrections (which hold every coupled gel's impulses) are left out of this step, as they are
  // when they are not finite themselves; the gels are restarted below
  int blown = 0;
  for (int i = 0; i < ngel; i++) blown |= w->steps[i].rep.nonfinite;
  if (w->cp.nslot && (blown || dtac_coupling_correct(&w->cp, m, d))) {
    for (int i = 0; i < ngel && !blown; i++) {
      // finite gels whose impulses are not: restarted too (they are what made them)
      if (w->gels[i]->def.coupling) w->steps[i].rep.nonfinite = 1;
    }
  }
  for (int i = 0; i < ngel; i++) {
    dtac_elastomer* g = w->gels[i];
    dtac_gel_step* st = w->steps + i;
    g->ncontact = st->rep.ncontact;
    g->nsub_last = st->rep.nsub;
    // a node inside more colliders than it can push on: said once per instance
    if (st->rep.nover > 0 && !g->nover_said) {
      g->nover_said = 1;
      dtac_warning(
          "%s instance '%s': a gel node was inside more than %d colliders at once (time %g); it "
          "pushes on the deepest and %d others only (said once)",
          DTAC_ELASTOMER_NAME, g->name, DTAC_NODE_MAXCOL, d->time, DTAC_NODE_MAXCOL - 1);
    }
    // a blown-up gel is reported and restarted from rest at the site's new pose
    if (st->rep.nonfinite) {
      g->nwarning++;
      dtac_warning(
          "%s instance '%s': the gel state became non-finite in the step (time %g); the "
          "gel was reset to its rest shape and its step left out (warning %d)",
          DTAC_ELASTOMER_NAME, g->name, d->time, g->nwarning);
      dtac_frame f = w->sites[i];
      dtac_frame_at(w->sites + i, m->opt.timestep, f.pos, f.mat);
      dtac_gel_state_rigid(&g->model, &f, st->state);
    }
  }
}

void dtac_world_implicit_params(const dtac_world* w, dtac_implicit_params* p) {
  const dtac_elastomer_def* ld = &w->lead->def;
  dtac_implicit_params_default(p);
  p->tolerance = ld->tolerance;
  p->iterations = ld->iterations;
  p->material = ld->material;
}

// an implicit step stopped above this relative residual is treated as a blow-up
#define DTAC_IMPLICIT_KEEP_RESIDUAL 1e-3

// the joint step by the implicit integrator: one backward-Euler solve of all gels and the bodies
// they touch over the step (implicit_joint.c), from the sites and colliders moved to the step end
// at the velocities MuJoCo integrated qpos with
static void implicit_advance(const mjModel* m, mjData* d, dtac_world* w, int ngel) {
  double gravity[3], h = m->opt.timestep;
  if (w->record && w->rec_given && w->cp.nslot == 0) {
    // the tape's reverse pass replays a step whose end states it already has (the same start,
    // the same deterministic solve): taken, not solved again; no body to correct
    for (int i = 0; i < ngel; i++) {
      dtac_elastomer* g = w->gels[i];
      mju_copy(w->steps[i].state, w->rec_state1 + m->plugin_stateadr[g->instance], g->L.size);
      w->steps[i].rep.nsub = 1;
    }
    dtac_world_advance_end(m, d, w, ngel);
    return;
  }
  dtac_gravity(m, gravity);
  const dtac_elastomer_def* ld = &w->lead->def;
  dtac_implicit_params p;
  dtac_world_implicit_params(w, &p);
  for (int i = 0; i < ngel; i++) {
    dtac_elastomer* g = w->gels[i];
    dtac_gel_step* st = w->steps + i;
    g->site1 = *st->site;
    dtac_frame_at(st->site, h, g->site1.pos, g->site1.mat);
    for (int c = 0; c < st->ncol; c++) dtac_collider_at(st->col + c, -1, NULL, NULL, h, g->col1 + c);
    dtac_implicit_gel* ig = w->igels + i;
    memset(ig, 0, sizeof(*ig));
    ig->im = g->imp;
    ig->gm = &g->model;
    ig->state = st->state;
    ig->site0 = st->site;
    ig->site1 = &g->site1;
    ig->col = g->col1;
    ig->ncol = st->ncol;
    ig->col_slot = st->col_slot;
    ig->site_slot = st->site_slot;
    ig->material = g->def.material;
  }
  const double* Wfull = dtac_coupling_cross(&w->cp, m, d) ? NULL : w->cp.Wfull;
  dtac_implicit_joint_step(w->igels, ngel, w->cp.slot, w->ij, w->cp.nslot, Wfull, gravity, h, &p);
  for (int i = 0; i < ngel; i++) {
    dtac_elastomer* g = w->gels[i];
    dtac_gel_step* st = w->steps + i;
    const dtac_implicit_report* r = &w->igels[i].rep;
    g->irep = *r;
    st->rep.nsub = 1;
    st->rep.ncontact = r->ncontact;
    st->rep.min_J = r->min_J;
    st->rep.nonfinite = r->status == DTAC_IMPLICIT_NONFINITE || r->status == DTAC_IMPLICIT_SOLVE;
    // a step stopped far from balance (a pad started deep inside a geom) is a blow-up: restarted
    // as one (its forces would be anything); one stopped near it keeps its finite iterate,
    // counted and said once
    int short_of = r->status == DTAC_IMPLICIT_MAXITER || r->status == DTAC_IMPLICIT_LINESEARCH;
    if (short_of && !(r->residual <= DTAC_IMPLICIT_KEEP_RESIDUAL)) st->rep.nonfinite = 1;
    if (short_of && !st->rep.nonfinite) {
      if (g->nnonconverged++ == 0) {
        dtac_warning(
            "%s instance '%s': an implicit step stopped at relative residual %.3g above the "
            "tolerance %g after %d iterations (time %g); its state is kept (said once; counted "
            "in dtac_gel_get_info)",
            DTAC_ELASTOMER_NAME, g->name, r->residual, ld->tolerance, r->iterations, d->time);
      }
    }
  }
  dtac_world_advance_end(m, d, w, ngel);
}

// the joint step on the CPU, from the setup of this step, and the rest of advance
static void cpu_advance(const mjModel* m, mjData* d, dtac_world* w, int ngel) {
  if (w->record) {
    mju_copy(w->rec_qpos, d->qpos, m->nq);
    mju_copy(w->rec_qvel, d->qvel, m->nv);
  }
  if (w->integrator == DTAC_INTEGRATOR_IMPLICIT) {
    implicit_advance(m, d, w, ngel);
    return;
  }
  double gravity[3];
  dtac_gravity(m, gravity);
  double* tape = NULL;
  if (w->record && w->tape) {
    if (dtac_gels_tape_size(w->steps, ngel, w->cp.nslot) <= w->tape_size) tape = w->tape;
  }
  dtac_gels_advance_tape(w->steps, ngel, w->cp.slot, w->cp.nslot, gravity, m->opt.timestep, tape);
  dtac_world_advance_end(m, d, w, ngel);
}

void dtac_world_device_abort(const mjModel* m, mjData* d, dtac_world* w) {
  device_failed(m, d, w, w->dev_ngel);
  cpu_advance(m, d, w, w->dev_ngel);
}

int dtac_world_device_finish(const mjModel* m, mjData* d, dtac_world* w) {
  if (dtac_world_device_end(m, d, w, w->dev_ngel) == 0) return 0;
  cpu_advance(m, d, w, w->dev_ngel);  // the failure was reported by device_end
  return 1;
}

void dtac_world_advance(const mjModel* m, mjData* d, dtac_world* w) {
  int ngel = dtac_world_setup(m, d, w);
  dtac_elastomer* lead = w->lead;
  if (lead->dev.kind != DTAC_DEV_CPU && !w->record) {
    if (!dtac_world_device_begin(m, d, w, ngel)) {
      if (w->defer) return;  // dtac_batch_step launches it with other environments
      if (dtac_dev_launch(&lead->dev, &w->dev_env, 1, w->block.work) == 0) {
        dtac_world_device_finish(m, d, w);
        return;
      }
      device_failed(m, d, w, ngel);
    }
  }
  cpu_advance(m, d, w, ngel);
}
