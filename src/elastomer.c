// elastomer.c: a gel pad's instance in one mjData (elastomer.h): made from its def, joined to
// the world of its mjData and to its device, looked up, placed, reset, copied, reparameterised.
#include "elastomer.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void dtac_elastomer_def_default(dtac_elastomer_def* def) {
  memset(def, 0, sizeof(*def));
  dtac_gel_def_default(&def->gel);
  def->contype = 1;
  def->conaffinity = 1;
  def->coupling = 1;
  def->device = -1;  // auto
  def->ordinal = 0;
  def->integrator = DTAC_INTEGRATOR_EXPLICIT;
  def->tolerance = 1e-6;
  def->iterations = 20;
  def->material = DTAC_MAT_NEOHOOKEAN;
}

dtac_elastomer* dtac_elastomer_get(const mjModel* m, const mjData* d, int instance) {
  if (!m || !d || instance < 0 || instance >= m->nplugin) return NULL;
  const mjpPlugin* p = mjp_getPluginAtSlot(m->plugin[instance]);
  if (!p || strcmp(p->name, DTAC_ELASTOMER_NAME) != 0) return NULL;
  return (dtac_elastomer*)d->plugin_data[instance];
}

dtac_elastomer* dtac_elastomer_lead(const mjModel* m, const mjData* d) {
  for (int i = 0; i < m->nplugin; i++) {
    dtac_elastomer* g = dtac_elastomer_get(m, d, i);
    if (g) return g;
  }
  return NULL;
}

void dtac_site_pose(const mjData* d, int site, dtac_frame* f) {
  memcpy(f->pos, d->site_xpos + 3 * site, sizeof(f->pos));
  memcpy(f->mat, d->site_xmat + 9 * site, sizeof(f->mat));
  memset(f->vel, 0, sizeof(f->vel));
  memset(f->angvel, 0, sizeof(f->angvel));
}

void dtac_gravity(const mjModel* m, double g[3]) {
  for (int k = 0; k < 3; k++) g[k] = (m->opt.disableflags & mjDSBL_GRAVITY) ? 0 : m->opt.gravity[k];
}

int dtac_elastomer_ensure_placed(const mjModel* m, mjData* d, dtac_elastomer* e) {
  mjtNum* state = d->plugin_state + m->plugin_stateadr[e->instance];
  // placed is exactly 1 (a state written from outside may hold anything there: it is placed anew)
  if (state[e->L.placed] == 1) return 1;
  // before the first kinematics pass (a scene drawn before mj_forward) the site has no pose yet
  if (fabs(dtac_det33(d->site_xmat + 9 * e->site) - 1) > 1e-6) return 0;
  dtac_frame f;
  dtac_site_pose(d, e->site, &f);
  dtac_gel_state_rest(&e->model, &f, state);
  return 1;
}

// ---- making and freeing
// ----------------------------------------------------------------------------

static void device_free(dtac_elastomer* e);

void dtac_elastomer_free(dtac_elastomer* e) {
  if (!e) return;
  device_free(e);
  if (e->is_lead) dtac_world_free(e->world);
  dtac_gel_model_free(&e->model);
  dtac_gel_scratch_free(&e->scratch);
  dtac_geom_table_free(&e->geoms);
  free(e->col);
  free(e->col_ft);
  free(e->col_slot);
  free(e->jac);
  free(e->qtmp);
  free(e->contact_force);
  free(e->body_wrench);
  free(e->qfrc);
  free(e->cf_bar);
  free(e->col_bar);
  free(e->col1);
  dtac_implicit_free(e->imp);
  free(e);
}

// what a gel of this def will cost in memory per mjData, bytes: per tet its nodes, rest shape,
// volume, incidences and force scratch (216 B); per node its rest position, masses, incidences,
// forces, contact forces and their cotangents, and its share of plugin_state as MuJoCo keeps it
// (about 200 B)
static double gel_bytes(int nnode, int ntet) {
  return 216.0 * ntet + 200.0 * nnode;
}

// a gel too big for this machine is a load error, not a stall; a big one says what it builds,
// since its load (the mesh, the highest frequency's power iteration, MuJoCo's compile-time step)
// takes seconds to minutes
static int load_check(const dtac_elastomer* e, char* err, int errlen) {
  int n[3], nnode, ntet, nsurf;
  dtac_gel_counts(&e->def.gel, n, &nnode, &ntet, &nsurf);
  double bytes = gel_bytes(nnode, ntet);
  double phys = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
  if (phys > 0 && bytes > 0.5 * phys) {
    snprintf(err, errlen,
             "key 'resolution' has value %g: the gel would have %d nodes and %d tets, about "
             "%.3g GB per mjData, more than half of this machine's %.3g GB; use a coarser "
             "resolution",
             e->def.gel.resolution, nnode, ntet, bytes / 1e9, phys / 1e9);
    return 1;
  }
  if (ntet > DTAC_LOAD_NOTE_TETS) {
    fprintf(stderr,
            "difftac: instance '%s': building a gel of %d nodes and %d tets (about %.0f MB per "
            "mjData); its load takes a while (docs/mjcf.md, resolution)\n",
            e->name, nnode, ntet, bytes / 1e6);
  }
  return 0;
}

// the implicit step's Hessian is M/h^2 + (1 + beta/h) K + the contact and stick springs: its
// scale over the inertia's, h^2 k/m at the stiffest element and node, must stay well inside what
// a double-precision solve resolves (the explicit step bounds the same through its substeps)
#define DTAC_IMPLICIT_MAX_STIFFNESS_RATIO 1e14

static int implicit_check(const dtac_elastomer* e, double h, char* err, int errlen) {
  const dtac_gel_model* gm = &e->model;
  double wn2 = 0;
  for (int s = 0; s < gm->nsurf; s++) {
    wn2 = fmax(wn2, gm->surf_param[s].kn / gm->mass[gm->surf[s]]);
  }
  double beta = gm->mat.beta > 0 ? gm->mat.beta : 0;
  double wk = h * h * gm->omega_max * gm->omega_max;
  double terms[4] = {wk, beta > 0 ? wk * beta / h : 0,
                     h * h * gm->omega_contact * gm->omega_contact, h * h * wn2};
  const char* keys[4] = {"young", "damping", "friction_stiffness", "contact_stiffness"};
  double values[4] = {gm->def.young, gm->def.damping, gm->def.friction_stiffness,
                      gm->def.contact_stiffness};
  int worst = 0;
  double total = 0;
  for (int k = 0; k < 4; k++) {
    total += terms[k];
    if (!(terms[k] <= terms[worst])) worst = k;
  }
  if (total <= DTAC_IMPLICIT_MAX_STIFFNESS_RATIO) return 0;
  if (!(total == total)) total = INFINITY;
  // a term whose key was left at its default (-1) is derived from young: young is to blame
  if (values[worst] == -1) worst = 0;
  snprintf(err, errlen,
           "key '%s' has value %g: with integrator 'implicit' the gel's stiffness would be %.3g "
           "times its inertia over a MuJoCo step (h^2 k / m at the stiffest element or node, h "
           "%g s), more than %g, beyond what its double-precision solve resolves; use a smaller "
           "'%s' or a coarser 'resolution' (now %g)",
           keys[worst], values[worst], total, h, DTAC_IMPLICIT_MAX_STIFFNESS_RATIO, keys[worst],
           gm->def.resolution);
  return 1;
}

dtac_elastomer* dtac_elastomer_make(const mjModel* m, int instance, const char* name,
                                    const dtac_elastomer_def* def, char* err, int errlen) {
  dtac_elastomer* e = (dtac_elastomer*)calloc(1, sizeof(dtac_elastomer));
  if (!e) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  e->instance = instance;
  snprintf(e->name, sizeof(e->name), "%s", name);
  e->def = *def;
  e->site = mj_name2id(m, mjOBJ_SITE, e->def.site);
  if (e->site < 0) {
    snprintf(err, errlen, "key 'site' has value '%s': no site of that name in the model",
             e->def.site);
    dtac_elastomer_free(e);
    return NULL;
  }
  e->body = m->site_bodyid[e->site];
  // the explicit step's substep limits are checked against the model's timestep; the implicit
  // step has none
  int implicit = def->integrator == DTAC_INTEGRATOR_IMPLICIT;
  if (load_check(e, err, errlen) ||
      dtac_gel_model_make(&e->model, &e->def.gel, 0, implicit ? 0 : m->opt.timestep, err,
                          errlen)) {
    dtac_elastomer_free(e);
    return NULL;
  }
  if (implicit && implicit_check(e, m->opt.timestep, err, errlen)) {
    dtac_elastomer_free(e);
    return NULL;
  }
  e->L = dtac_gel_state_layout(&e->model);
  e->nsub = dtac_gel_substeps(&e->model, m->opt.timestep);

  int ng = m->ngeom > 0 ? m->ngeom : 1;
  int nv1 = m->nv > 0 ? m->nv : 1;
  e->col = (dtac_collider*)malloc(sizeof(dtac_collider) * ng);
  e->col_ft = (double*)malloc(sizeof(double) * 6 * ng);
  e->col_slot = (int*)malloc(sizeof(int) * ng);
  e->jac = (mjtNum*)malloc(sizeof(mjtNum) * 6 * nv1);
  e->qtmp = (mjtNum*)malloc(sizeof(mjtNum) * nv1);
  e->contact_force = (double*)calloc(3 * e->model.nnode, sizeof(double));
  e->body_wrench = (mjtNum*)calloc(6 * m->nbody, sizeof(mjtNum));
  e->qfrc = (mjtNum*)calloc(nv1, sizeof(mjtNum));
  e->cf_bar = (double*)calloc(3 * e->model.nnode, sizeof(double));
  e->col_bar = (dtac_collider_bar*)calloc(ng, sizeof(dtac_collider_bar));
  double pad_area = e->def.gel.size[0] * e->def.gel.size[1];
  if (!e->col || !e->col_ft || !e->col_slot || !e->jac || !e->qtmp || !e->contact_force ||
      !e->body_wrench || !e->qfrc || !e->cf_bar || !e->col_bar ||
      dtac_geom_table_make(&e->geoms, m, e->body, e->def.contype, e->def.conaffinity, pad_area,
                           e->model.contact_stiffness) ||
      dtac_gel_scratch_make(&e->scratch, &e->model, ng)) {
    snprintf(err, errlen, "out of memory");
    dtac_elastomer_free(e);
    return NULL;
  }
  if (implicit) {
    char ierr[DTAC_ERRLEN];
    e->col1 = (dtac_collider*)malloc(sizeof(dtac_collider) * ng);
    e->imp = e->col1 ? dtac_implicit_make(&e->model, ng, ierr, sizeof(ierr)) : NULL;
    if (!e->imp) {
      snprintf(err, errlen, "key 'integrator' has value 'implicit': the solver could not be made: %s",
               e->col1 ? ierr : "out of memory");
      dtac_elastomer_free(e);
      return NULL;
    }
  }
  return e;
}

// ---- device
// ----------------------------------------------------------------------------------------

static const char* device_name(int kind) {
  return kind == DTAC_DEV_CUDA ? "cuda" : (kind == DTAC_DEV_EMU ? "emu" : "cpu");
}

// the device copy of gel e (and for the lead the joint step's block) on the device e->dev names;
// nonzero with e->dev.err on failure
static int device_make(dtac_elastomer* e, int kind, int ordinal, int lead) {
  dtac_world* w = e->world;
  if (dtac_dev_open(&e->dev, kind, ordinal) ||
      dtac_gel_mirror_make(&e->dev, &e->mirror, &e->model, e->geoms.planes,
                           e->geoms.nplane_total) ||
      (lead && (dtac_env_block_make(&e->dev, &w->block, w->maxgel, w->cp.maxslot, e->geoms.ngeom) ||
                dtac_dev_reserve(&e->dev, 1))))
    return 1;
  if (lead) {
    w->mirrors = (dtac_gel_mirror**)calloc(w->maxgel, sizeof(dtac_gel_mirror*));
    if (!w->mirrors) {
      snprintf(e->dev.err, sizeof(e->dev.err), "out of memory");
      return 1;
    }
  }
  return 0;
}

// frees what device_make made: e is stepped on the CPU
static void device_free(dtac_elastomer* e) {
  if (e->dev.kind == DTAC_DEV_CPU) return;
  dtac_gel_mirror_free(&e->dev, &e->mirror);
  dtac_world* w = e->world;
  if (e->is_lead) {
    if (w->block.host) dtac_env_block_free(&e->dev, &w->block);
    free(w->mirrors);
    w->mirrors = NULL;
  }
  dtac_dev_close(&e->dev);
  e->dev.kind = DTAC_DEV_CPU;
}

void dtac_elastomer_device_off(dtac_elastomer* e) {
  device_free(e);
}

// one line per process when `auto` steps on the CPU: a static flag, written once, read by
// nothing else
static void log_cpu_once(const char* why) {
  static atomic_flag logged = ATOMIC_FLAG_INIT;
  if (!atomic_flag_test_and_set(&logged)) {
    fprintf(stderr, "difftac: %s: gels are stepped on the CPU (device 'auto')\n", why);
  }
}

// the device the gel is stepped on: its context and device copy, and for the lead the joint
// step's block. The gels of one model share the lead's device: `auto` follows the lead, an
// explicit other device is an error. `auto` takes GPU 0 when it is there and can run the
// kernels, else the CPU. 0, or nonzero with a message in err.
static int device_setup(dtac_elastomer* e, dtac_elastomer* lead, char* err, int errlen) {
  int kind = e->def.device, ordinal = e->def.ordinal;
  int autodev = kind < 0;
  // the implicit step runs on the CPU (no device solver yet)
  if (e->def.integrator == DTAC_INTEGRATOR_IMPLICIT) {
    if (!autodev && kind != DTAC_DEV_CPU) {
      snprintf(err, errlen,
               "key 'device' has value '%s': integrator 'implicit' runs on the CPU only; use "
               "device 'cpu' or 'auto', or integrator 'explicit' on the device",
               device_name(kind));
      return 1;
    }
    if (autodev && !lead) log_cpu_once("integrator 'implicit'");
    return 0;
  }
  if (autodev && lead) {
    kind = lead->dev.kind;
    ordinal = lead->dev.ordinal;
  } else if (autodev) {
    kind = dtac_dev_cuda_count() > 0 ? DTAC_DEV_CUDA : DTAC_DEV_CPU;
    ordinal = 0;
    if (kind == DTAC_DEV_CPU) log_cpu_once("no CUDA device");
  }
  if (lead && (lead->dev.kind != kind || (kind == DTAC_DEV_CUDA && lead->dev.ordinal != ordinal))) {
    snprintf(err, errlen,
             "key 'device' is '%s:%d' here but '%s:%d' for instance '%s': the gels of one model "
             "are stepped together, on one device",
             device_name(kind), ordinal, device_name(lead->dev.kind), lead->dev.ordinal,
             lead->name);
    return 1;
  }
  if (kind == DTAC_DEV_CPU) return 0;
  if (device_make(e, kind, ordinal, !lead) == 0) return 0;
  if (autodev && !lead) {
    char why[DTAC_ERRLEN + 32];
    snprintf(why, sizeof(why), "CUDA device unusable (%.400s)", e->dev.err);
    device_free(e);
    log_cpu_once(why);
    return 0;
  }
  snprintf(err, errlen, "key 'device' has value '%s:%d': %.300s", device_name(kind), ordinal,
           e->dev.err);
  return 1;
}

int dtac_elastomer_attach(const mjModel* m, mjData* d, dtac_elastomer* e, dtac_elastomer* lead,
                          char* err, int errlen) {
  if (lead && lead->def.integrator != e->def.integrator) {
    snprintf(err, errlen,
             "key 'integrator' is '%s' here but '%s' for instance '%s': the gels of one model "
             "are stepped together, by one integrator",
             e->def.integrator ? "implicit" : "explicit",
             lead->def.integrator ? "implicit" : "explicit", lead->name);
    return 1;
  }
  if (lead) {
    e->world = lead->world;
  } else {
    e->world = dtac_world_make(m, e);
    e->is_lead = e->world != NULL;
    if (!e->world) {
      snprintf(err, errlen, "out of memory");
      return 1;
    }
  }
  return device_setup(e, lead, err, errlen);
}

// ---- state, copies, parameters
// ---------------------------------------------------------------------

void dtac_elastomer_reset(dtac_elastomer* e, mjtNum* state) {
  // the rest shape is placed at the site by the first evaluation that has kinematics
  memset(state, 0, sizeof(mjtNum) * e->L.size);
  state[e->L.placed] = 0;
  e->ncontact = 0;
  memset(e->wrench, 0, sizeof(e->wrench));
  memset(e->contact_force, 0, sizeof(double) * 3 * e->model.nnode);
}

void dtac_elastomer_copy(dtac_elastomer* dst, const dtac_elastomer* src, const mjModel* m) {
  // plugin_state is copied by MuJoCo; the outputs of the last evaluation and the parameters here
  memcpy(dst->wrench, src->wrench, sizeof(dst->wrench));
  memcpy(dst->contact_force, src->contact_force, sizeof(double) * 3 * src->model.nnode);
  dst->ncontact = src->ncontact;
  dst->nwarning = src->nwarning;
  dtac_gel_param_copy(&dst->model, &src->model);
  dst->nsub = src->nsub;
}

int dtac_elastomer_param_set(const mjModel* m, dtac_elastomer* e, int k, double value) {
  char err[DTAC_ERRLEN];
  double old = dtac_gel_param_get(&e->model, k);
  if (dtac_gel_param_set(&e->model, k, value, err, sizeof(err))) {
    dtac_warning("%s instance '%s': %s", DTAC_ELASTOMER_NAME, e->name, err);
    return -1;
  }
  // the substep follows the new stable limit (a stiffer gel takes more substeps); the implicit
  // step is stable at any value in range
  int nsub = dtac_gel_substeps(&e->model, m->opt.timestep);
  if (e->def.integrator == DTAC_INTEGRATOR_EXPLICIT && (nsub > DTAC_MAX_SUBSTEPS || (double)nsub * e->model.ntet > DTAC_MAX_STEP_WORK)) {
    dtac_warning(
        "%s instance '%s': parameter '%s' = %g needs %d substeps per step over %d tets, more "
        "than the limits of %d substeps and %.3g element updates; the parameter is unchanged",
        DTAC_ELASTOMER_NAME, e->name, dtac_gel_param_names[k], value, nsub, e->model.ntet,
        DTAC_MAX_SUBSTEPS, DTAC_MAX_STEP_WORK);
    dtac_gel_param_set(&e->model, k, old, err, sizeof(err));
    return -1;
  }
  e->nsub = nsub;
  return 0;
}

int dtac_elastomer_check_finite(const mjModel* m, mjData* d, dtac_elastomer* e, const char* where) {
  mjtNum* state = d->plugin_state + m->plugin_stateadr[e->instance];
  // positions, velocities, and per contact node its anchor: a geom id (-1 none) and a point
  // (a node farther from the site than 100 gel extents plus 1 m, or faster than 1e4 m/s, has
  // blown up without overflowing yet)
  const double* sz = e->def.gel.size;
  const double* sp = d->site_xpos + 3 * e->site;
  double far = 100 * fmax(sz[0], fmax(sz[1], sz[2])) + 1;
  int bad = 0;
  for (int i = 0; i < 3 * e->model.nnode && !bad; i++) {
    bad = !(fabs(state[e->L.x + i] - sp[i % 3]) < far) || !(fabs(state[e->L.v + i]) < 1e4);
  }
  const mjtNum* an = state + e->L.anchor;
  for (int s = 0; s < e->model.nsurf && !bad; s++) {
    double id = an[4 * s];
    bad = !(id == -1 || (id >= 0 && id < m->ngeom && id == floor(id))) ||
          !isfinite(an[4 * s + 1]) || !isfinite(an[4 * s + 2]) || !isfinite(an[4 * s + 3]);
  }
  if (!bad) return 0;
  char what[200];
  snprintf(what, sizeof(what), "the gel state became non-finite or blew up, %s", where);
  dtac_elastomer_restart(m, d, e, what);
  return 1;
}

void dtac_elastomer_restart(const mjModel* m, mjData* d, dtac_elastomer* e, const char* what) {
  e->nwarning++;
  dtac_warning("%s instance '%s': %s (time %g); the gel was reset to its rest shape (warning %d)",
               DTAC_ELASTOMER_NAME, e->name, what, d->time, e->nwarning);
  mjtNum* state = d->plugin_state + m->plugin_stateadr[e->instance];
  state[e->L.placed] = 0;
  dtac_elastomer_ensure_placed(m, d, e);
}
