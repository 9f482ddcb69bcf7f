// elastomer.c: the difftac.elastomer plugin (PASSIVE): MuJoCo's callbacks, calling into the core
// (src/elastomer.h): the config parsed (config.c) and checked at load, the instance made per
// mjData, its forces in `compute`, the joint step of all gels in `advance`, the gel drawn in
// `visualize`.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "elastomer.h"

#ifdef DTAC_HAVE_CUDA
#define DTAC_CUDA_BUILT 1
#else
#define DTAC_CUDA_BUILT 0
#endif

static int elastomer_nstate(const mjModel* m, int instance) {
  char err[DTAC_ERRLEN], name[DTAC_NAMELEN];
  dtac_elastomer_def def;
  dtac_instance_name(m, instance, name, sizeof(name));
  if (dtac_check_version(err, sizeof(err)) ||
      dtac_elastomer_parse(m, instance, &def, err, sizeof(err))) {
    mju_error("%s instance '%s': %s", DTAC_ELASTOMER_NAME, name, err);
    return 0;
  }
  // names are compiled by now: a missing site is caught here, before any mjData exists
  if (m->names && mj_name2id(m, mjOBJ_SITE, def.site) < 0) {
    mju_error("%s instance '%s': key 'site' has value '%s': no site of that name in the model",
              DTAC_ELASTOMER_NAME, name, def.site);
    return 0;
  }
  // RK4 evaluates the passive forces at intermediate states and leaves d's kinematics at its last
  // one: the gel's step would start from the end of the step and move the back face twice
  if (m->opt.integrator == mjINT_RK4) {
    mju_error(
        "%s instance '%s': option 'integrator' has value 'RK4', which the gel's own step cannot "
        "follow (it evaluates forces at intermediate states of the rigid step); use 'Euler', "
        "'implicit' or 'implicitfast'",
        DTAC_ELASTOMER_NAME, name);
    return 0;
  }
  // an absent GPU is a load error too (mismatched devices of several gels: at mj_makeData)
  if (def.device == DTAC_DEV_CUDA && def.ordinal >= dtac_dev_cuda_count()) {
    mju_error(
        "%s instance '%s': key 'device' has value 'cuda:%d': %d CUDA devices present%s; use "
        "'auto' or 'cpu'",
        DTAC_ELASTOMER_NAME, name, def.ordinal, dtac_dev_cuda_count(),
        dtac_dev_cuda_count() == 0 && !DTAC_CUDA_BUILT ? " (this build has no CUDA backend)" : "");
    return 0;
  }
  // the environment's device settings, for a device that will read them
  if (def.device != DTAC_DEV_CPU &&
      dtac_dev_check_settings(def.device < 0 ? DTAC_DEV_CUDA : def.device, err, sizeof(err))) {
    mju_error("%s instance '%s': key 'device' has value '%s': %s", DTAC_ELASTOMER_NAME, name,
              def.device == DTAC_DEV_EMU ? "emu" : (def.device < 0 ? "auto" : "cuda"), err);
    return 0;
  }
  dtac_gel_model probe;
  memset(&probe, 0, sizeof(probe));
  dtac_gel_counts(&def.gel, probe.n, &probe.nnode, &probe.ntet, &probe.nsurf);
  return dtac_gel_state_layout(&probe).size;
}

static int elastomer_init(const mjModel* m, mjData* d, int instance) {
  char err[DTAC_ERRLEN], name[DTAC_NAMELEN];
  dtac_elastomer_def def;
  dtac_instance_name(m, instance, name, sizeof(name));
  dtac_elastomer* e = NULL;
  if (dtac_check_version(err, sizeof(err)) == 0 &&
      dtac_elastomer_parse(m, instance, &def, err, sizeof(err)) == 0) {
    e = dtac_elastomer_make(m, instance, name, &def, err, sizeof(err));
  }
  // the lead: the first elastomer instance, initialised before this one (the plugin_data of
  // later instances is not set yet)
  dtac_elastomer* lead = NULL;
  for (int i = 0; i < instance && !lead; i++) lead = dtac_elastomer_get(m, d, i);
  if (e && dtac_elastomer_attach(m, d, e, lead, err, sizeof(err))) {
    dtac_elastomer_free(e);
    e = NULL;
  }
  if (!e) {
    char msg[DTAC_ERRLEN + 2 * DTAC_NAMELEN];
    snprintf(msg, sizeof(msg), "%s instance '%s': %s", DTAC_ELASTOMER_NAME, name, err);
    dtac_init_abort(m, d, instance, msg);
    return -1;
  }
  d->plugin_data[instance] = (uintptr_t)e;
  return 0;
}

static void elastomer_destroy(mjData* d, int instance) {
  dtac_elastomer_free((dtac_elastomer*)d->plugin_data[instance]);
  d->plugin_data[instance] = 0;
}

static void elastomer_reset(const mjModel* m, mjtNum* plugin_state, void* plugin_data,
                            int instance) {
  dtac_elastomer* e = (dtac_elastomer*)plugin_data;
  if (plugin_state && e) dtac_elastomer_reset(e, plugin_state);
}

static void elastomer_copy(mjData* dest, const mjModel* m, const mjData* src, int instance) {
  dtac_elastomer* ed = (dtac_elastomer*)dest->plugin_data[instance];
  const dtac_elastomer* es = (const dtac_elastomer*)src->plugin_data[instance];
  if (ed && es) dtac_elastomer_copy(ed, es, m);
}

// PASSIVE: forces of the gel on the bodies, from the current state
static void elastomer_compute(const mjModel* m, mjData* d, int instance, int capability_bit) {
  dtac_elastomer* e = (dtac_elastomer*)d->plugin_data[instance];
  if (!e || !(capability_bit & mjPLUGIN_PASSIVE) || e->frozen) return;
  dtac_elastomer_passive(m, d, e);
}

// time integration of all gels of d over one MuJoCo step, run by the first instance
static void elastomer_advance(const mjModel* m, mjData* d, int instance) {
  dtac_elastomer* e = (dtac_elastomer*)d->plugin_data[instance];
  if (!e || e->frozen || !e->is_lead) return;
  dtac_world_advance(m, d, e->world);
}

// draws the deformed gel surface (top face), coloured by indentation
static void elastomer_visualize(const mjModel* m, mjData* d, const mjvOption* opt, mjvScene* scn,
                                int instance) {
  dtac_elastomer* e = (dtac_elastomer*)d->plugin_data[instance];
  if (!e || !dtac_elastomer_ensure_placed(m, d, e)) return;
  const double* x = d->plugin_state + m->plugin_stateadr[instance] + e->L.x;
  const dtac_gel_model* gm = &e->model;
  const mjtNum* sp = d->site_xpos + 3 * e->site;
  const mjtNum* sm = d->site_xmat + 9 * e->site;
  double nz[3] = {sm[2], sm[5], sm[8]};
  int nx = gm->n[0], ny = gm->n[1], nzc = gm->n[2];
  double scale = 0.25 * gm->def.size[2];  // full red at a quarter of the thickness
  for (int j = 0; j < ny; j++) {
    for (int i = 0; i < nx; i++) {
      int id[4];
      for (int q = 0; q < 4; q++) {
        id[q] = (i + (q & 1)) + (nx + 1) * ((j + (q >> 1)) + (ny + 1) * nzc);
      }
      static const int tri[2][3] = {{0, 1, 3}, {0, 3, 2}};
      for (int t = 0; t < 2; t++) {
        if (scn->ngeom >= scn->maxgeom) return;
        const double* A = x + 3 * id[tri[t][0]];
        const double* B = x + 3 * id[tri[t][1]];
        const double* C = x + 3 * id[tri[t][2]];
        // indentation: how far below the undeformed top face the triangle sits
        double ind = 0;
        for (int q = 0; q < 3; q++) {
          const double* P = x + 3 * id[tri[t][q]];
          double r[3];
          dtac_sub3(r, P, sp);
          ind += (gm->def.size[2] - dtac_dot3(r, nz)) / 3;
        }
        double s = fmin(1, fmax(0, ind / scale));
        double e1[3], e2[3], n[3];
        dtac_sub3(e1, B, A);
        dtac_sub3(e2, C, A);
        dtac_cross3(n, e1, e2);
        double l1 = dtac_norm3(e1), l2 = dtac_norm3(e2), ln = dtac_norm3(n);
        if (l1 <= 0 || l2 <= 0 || ln <= 0) continue;
        mjtNum size[3] = {l1, l2, 0};
        mjtNum mat[9];
        for (int k = 0; k < 3; k++) {
          mat[3 * k + 0] = e1[k] / l1;
          mat[3 * k + 1] = e2[k] / l2;
          mat[3 * k + 2] = n[k] / ln;
        }
        float rgba[4] = {(float)(0.55 + 0.45 * s), (float)(0.6 - 0.5 * s), (float)(0.7 - 0.6 * s),
                         1.0f};
        mjvGeom* g = scn->geoms + scn->ngeom;
        mjv_initGeom(g, mjGEOM_TRIANGLE, size, A, mat, rgba);
        g->category = mjCAT_DECOR;
        g->objtype = mjOBJ_PLUGIN;
        g->objid = instance;
        scn->ngeom++;
      }
    }
  }
}

void dtac_elastomer_register(void) {
  mjpPlugin p;
  mjp_defaultPlugin(&p);
  p.name = DTAC_ELASTOMER_NAME;
  p.capabilityflags = mjPLUGIN_PASSIVE;
  p.nattribute = dtac_elastomer_nattribute;
  p.attributes = dtac_elastomer_attributes;
  p.nstate = elastomer_nstate;
  p.init = elastomer_init;
  p.destroy = elastomer_destroy;
  p.reset = elastomer_reset;
  p.copy = elastomer_copy;
  p.compute = elastomer_compute;
  p.advance = elastomer_advance;
  p.visualize = elastomer_visualize;
  mjp_registerPlugin(&p);
}
