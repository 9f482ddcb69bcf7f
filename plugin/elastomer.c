// elastomer.c: the difftac.elastomer plugin (PASSIVE). MuJoCo glue only: it builds the gel core
// from the config, gathers the scene's geoms as colliders, steps the gel in `advance`, applies
// the gel's forces to the bodies in `compute`, and draws the gel in `visualize`.
#include "elastomer.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>

#ifdef DTAC_HAVE_CUDA
#define DTAC_CUDA_BUILT 1
#else
#define DTAC_CUDA_BUILT 0
#endif

// ---- helpers
// ---------------------------------------------------------------------------------------

static void instance_name(const mjModel* m, int instance, char* out, int len) {
  const char* nm = m->names && m->name_pluginadr ? m->names + m->name_pluginadr[instance] : "";
  if (nm && nm[0]) {
    snprintf(out, len, "%s", nm);
  } else {
    snprintf(out, len, "#%d", instance);
  }
}

dtac_elastomer* dtac_elastomer_get(const mjModel* m, const mjData* d, int instance) {
  if (!m || !d || instance < 0 || instance >= m->nplugin) return NULL;
  const mjpPlugin* p = mjp_getPluginAtSlot(m->plugin[instance]);
  if (!p || strcmp(p->name, DTAC_ELASTOMER_NAME) != 0) return NULL;
  return (dtac_elastomer*)d->plugin_data[instance];
}

static void site_frame(const mjData* d, int site, dtac_frame* f) {
  memcpy(f->pos, d->site_xpos + 3 * site, sizeof(f->pos));
  memcpy(f->mat, d->site_xmat + 9 * site, sizeof(f->mat));
  memset(f->vel, 0, sizeof(f->vel));
  memset(f->angvel, 0, sizeof(f->angvel));
}

int dtac_elastomer_ensure_placed(const mjModel* m, mjData* d, dtac_elastomer* e) {
  mjtNum* state = d->plugin_state + m->plugin_stateadr[e->instance];
  if (state[e->L.placed] != 0) return 1;
  // before the first kinematics pass (a scene drawn before mj_forward) the site has no pose yet
  if (fabs(dtac_det33(d->site_xmat + 9 * e->site) - 1) > 1e-6) return 0;
  dtac_frame f;
  site_frame(d, e->site, &f);
  dtac_gel_state_rest(&e->model, &f, state);
  return 1;
}

// convex hull planes of a mesh from MuJoCo's convex graph:
// [numvert, numface, vert_edgeadr(nv), vert_globalid(nv), edge_localid(nv + 3 nf), face(3 nf)]
static int hull_planes(const mjModel* m, int mesh, double* planes) {
  int adr = m->mesh_graphadr[mesh];
  const float* vert = m->mesh_vert + 3 * m->mesh_vertadr[mesh];
  int nv = m->mesh_vertnum[mesh];
  const int* face;
  int nface;
  if (adr >= 0) {
    const int* g = m->mesh_graph + adr;
    int gnv = g[0];
    nface = g[1];
    face = g + 2 + gnv + gnv + (gnv + 3 * nface);
  } else {
    face = m->mesh_face + 3 * m->mesh_faceadr[mesh];
    nface = m->mesh_facenum[mesh];
  }
  if (!planes) return nface;
  double c[3] = {0, 0, 0};
  for (int i = 0; i < nv; i++) {
    for (int k = 0; k < 3; k++) c[k] += vert[3 * i + k] / nv;
  }
  int np = 0;
  for (int f = 0; f < nface; f++) {
    double a[3], b[3], q[3], n[3];
    const float* v0 = vert + 3 * face[3 * f];
    const float* v1 = vert + 3 * face[3 * f + 1];
    const float* v2 = vert + 3 * face[3 * f + 2];
    for (int k = 0; k < 3; k++) {
      a[k] = v1[k] - v0[k];
      b[k] = v2[k] - v0[k];
      q[k] = v0[k];
    }
    dtac_cross3(n, a, b);
    double len = dtac_norm3(n);
    if (len < 1e-18) continue;
    for (int k = 0; k < 3; k++) n[k] /= len;
    double off = dtac_dot3(n, q);
    // outward: the centroid lies inside
    if (dtac_dot3(n, c) > off) {
      for (int k = 0; k < 3; k++) n[k] = -n[k];
      off = -off;
    }
    double* p = planes + 4 * np++;
    p[0] = n[0];
    p[1] = n[1];
    p[2] = n[2];
    p[3] = off;
  }
  return np;
}

// ---- callbacks
// ---------------------------------------------------------------------------------------

static int check_version(char* err, int errlen) {
  if (mj_version() != mjVERSION_HEADER) {
    snprintf(err, errlen,
             "libdifftac was built against MuJoCo headers %d but is loaded into MuJoCo %d; "
             "rebuild difftac against this MuJoCo",
             mjVERSION_HEADER, mj_version());
    return 1;
  }
  return 0;
}

static int elastomer_nstate(const mjModel* m, int instance) {
  char err[DTAC_ERRLEN], name[DTAC_NAMELEN];
  dtac_elastomer_def def;
  instance_name(m, instance, name, sizeof(name));
  if (check_version(err, sizeof(err)) ||
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

static void device_free(dtac_elastomer* e);

static void elastomer_free(dtac_elastomer* e) {
  if (!e) return;
  device_free(e);
  dtac_gel_model_free(&e->model);
  dtac_gel_scratch_free(&e->scratch);
  free(e->geom_ok);
  free(e->geom_kscale);
  free(e->geom_planeadr);
  free(e->geom_nplane);
  free(e->planes);
  free(e->col);
  free(e->col_ft);
  free(e->jac);
  free(e->contact_force);
  free(e->slot_body);
  free(e->body_slot);
  free(e->col_slot);
  free(e->slot);
  free(e->slot_jac);
  free(e->slot_tmp);
  free(e->body_wrench);
  free(e->gels);
  free(e->steps);
  free(e->sites);
  free(e->qfrc);
  free(e->tape);
  free(e->rec_qpos);
  free(e->rec_qvel);
  free(e->wapp_rows);
  free(e->cf_bar);
  free(e->col_bar);
  free(e->gscratch);
  free(e);
}

// builds the instance; on failure returns NULL with a message in err
static dtac_elastomer* elastomer_make(const mjModel* m, int instance, char* err, int errlen) {
  dtac_elastomer* e = (dtac_elastomer*)calloc(1, sizeof(dtac_elastomer));
  if (!e) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  e->instance = instance;
  instance_name(m, instance, e->name, sizeof(e->name));
  if (check_version(err, errlen) || dtac_elastomer_parse(m, instance, &e->def, err, errlen)) {
    elastomer_free(e);
    return NULL;
  }
  e->site = mj_name2id(m, mjOBJ_SITE, e->def.site);
  if (e->site < 0) {
    snprintf(err, errlen, "key 'site' has value '%s': no site of that name in the model",
             e->def.site);
    elastomer_free(e);
    return NULL;
  }
  e->body = m->site_bodyid[e->site];
  if (dtac_gel_model_make(&e->model, &e->def.gel, 0, m->opt.timestep, err, errlen)) {
    elastomer_free(e);
    return NULL;
  }
  e->L = dtac_gel_state_layout(&e->model);
  e->nsub = dtac_gel_substeps(&e->model, m->opt.timestep);

  // which geoms may touch the gel: not its own body's, contype/conaffinity, supported shapes
  e->ngeom = m->ngeom;
  int ng = m->ngeom > 0 ? m->ngeom : 1;
  e->geom_ok = (unsigned char*)calloc(ng, 1);
  e->geom_kscale = (double*)malloc(sizeof(double) * ng);
  e->geom_planeadr = (int*)malloc(sizeof(int) * ng);
  e->geom_nplane = (int*)calloc(ng, sizeof(int));
  e->col = (dtac_collider*)malloc(sizeof(dtac_collider) * ng);
  e->col_ft = (double*)malloc(sizeof(double) * 6 * ng);
  e->jac = (mjtNum*)malloc(sizeof(mjtNum) * 6 * (m->nv > 0 ? m->nv : 1));
  e->contact_force = (double*)calloc(3 * e->model.nnode, sizeof(double));
  int nv1 = m->nv > 0 ? m->nv : 1;
  e->coupling = e->def.coupling;
  e->maxslot = m->nbody < 64 ? m->nbody : 64;
  e->slot_body = (int*)malloc(sizeof(int) * e->maxslot);
  e->body_slot = (int*)malloc(sizeof(int) * m->nbody);
  e->col_slot = (int*)malloc(sizeof(int) * ng);
  e->slot = (dtac_body*)calloc(e->maxslot, sizeof(dtac_body));
  e->slot_jac = (mjtNum*)malloc(sizeof(mjtNum) * 6 * nv1 * e->maxslot);
  e->slot_tmp = (mjtNum*)malloc(sizeof(mjtNum) * 8 * nv1);
  e->body_wrench = (mjtNum*)calloc(6 * m->nbody, sizeof(mjtNum));
  e->maxgel = m->nplugin;
  e->gels = (dtac_elastomer**)calloc(e->maxgel, sizeof(dtac_elastomer*));
  e->steps = (dtac_gel_step*)calloc(e->maxgel, sizeof(dtac_gel_step));
  e->sites = (dtac_frame*)calloc(e->maxgel, sizeof(dtac_frame));
  e->qfrc = (mjtNum*)calloc(nv1, sizeof(mjtNum));
  e->rec_qpos = (mjtNum*)calloc(m->nq > 0 ? m->nq : 1, sizeof(mjtNum));
  e->rec_qvel = (mjtNum*)calloc(nv1, sizeof(mjtNum));
  e->cf_bar = (double*)calloc(3 * e->model.nnode, sizeof(double));
  e->col_bar = (dtac_collider_bar*)calloc(ng, sizeof(dtac_collider_bar));
  if (!e->cf_bar || !e->col_bar || !e->qfrc || !e->rec_qpos || !e->rec_qvel || !e->gels ||
      !e->steps || !e->sites || !e->slot_body || !e->body_slot || !e->col_slot || !e->slot ||
      !e->slot_jac || !e->slot_tmp || !e->body_wrench || !e->contact_force || !e->geom_ok ||
      !e->geom_planeadr || !e->geom_nplane || !e->col || !e->col_ft || !e->jac ||
      dtac_gel_scratch_make(&e->scratch, &e->model, ng)) {
    snprintf(err, errlen, "out of memory");
    elastomer_free(e);
    return NULL;
  }
  // a light free body (a grasped object) against the full pad must stay stable at MuJoCo's step
  // even through the explicit parts of the coupling (MuJoCo's own constraints on it): the pad's
  // total normal stiffness against it is kept below m / dt^2, as MuJoCo's soft contacts scale
  // with mass. Articulated and static bodies get the full stiffness.
  double pad_area = e->def.gel.size[0] * e->def.gel.size[1];
  double dt = m->opt.timestep;
  int nplane = 0;
  for (int g = 0; g < m->ngeom; g++) {
    int wb = m->body_weldid[m->geom_bodyid[g]];
    int free = wb > 0 && m->body_jntnum[wb] > 0 && m->jnt_type[m->body_jntadr[wb]] == mjJNT_FREE;
    e->geom_kscale[g] = 1;
    if (free && dt > 0) {
      double kmax = m->body_subtreemass[wb] / (dt * dt * pad_area);
      if (kmax < e->model.contact_stiffness) e->geom_kscale[g] = kmax / e->model.contact_stiffness;
    }
    e->geom_planeadr[g] = -1;
    int type = m->geom_type[g];
    int filt =
        (e->def.contype & m->geom_conaffinity[g]) || (m->geom_contype[g] & e->def.conaffinity);
    e->geom_ok[g] = filt && m->geom_bodyid[g] != e->body && dtac_sdf_supported(type);
    if (e->geom_ok[g] && type == mjGEOM_MESH) {
      e->geom_planeadr[g] = nplane;
      nplane += hull_planes(m, m->geom_dataid[g], NULL);
    }
  }
  e->nplane = nplane;
  e->planes = (double*)malloc(sizeof(double) * 4 * (nplane > 0 ? nplane : 1));
  if (!e->planes) {
    snprintf(err, errlen, "out of memory");
    elastomer_free(e);
    return NULL;
  }
  for (int g = 0; g < m->ngeom; g++) {
    if (e->geom_planeadr[g] >= 0) {
      e->geom_nplane[g] = hull_planes(m, m->geom_dataid[g], e->planes + 4 * e->geom_planeadr[g]);
    }
  }
  return e;
}

static const char* device_name(int kind) {
  return kind == DTAC_DEV_CUDA ? "cuda" : (kind == DTAC_DEV_EMU ? "emu" : "cpu");
}

// the device copy of gel e (and for the lead the joint step's block) on the device e->dev names;
// nonzero with e->dev.err on failure
static int device_make(dtac_elastomer* e, int kind, int ordinal, int lead) {
  if (dtac_dev_open(&e->dev, kind, ordinal) ||
      dtac_gel_mirror_make(&e->dev, &e->mirror, &e->model, e->planes, e->nplane) ||
      (lead && (dtac_env_block_make(&e->dev, &e->block, e->maxgel, e->maxslot, e->ngeom) ||
                dtac_dev_reserve(&e->dev, 1))))
    return 1;
  if (lead) {
    e->mirrors = (dtac_gel_mirror**)calloc(e->maxgel, sizeof(dtac_gel_mirror*));
    if (!e->mirrors) {
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
  if (e->block.host) dtac_env_block_free(&e->dev, &e->block);
  dtac_dev_close(&e->dev);
  free(e->mirrors);
  e->mirrors = NULL;
  e->dev.kind = DTAC_DEV_CPU;
}

// one line per process when `auto` steps on the CPU: a static flag, written once, read by
// nothing else
void dtac_warning(const char* fmt, ...) {
  static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;  // MuJoCo's logger is process-wide
  char msg[1000];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&lock);
  mju_warning("%s", msg);
  pthread_mutex_unlock(&lock);
}

static void log_cpu_once(const char* why) {
  static atomic_flag logged = ATOMIC_FLAG_INIT;
  if (!atomic_flag_test_and_set(&logged)) {
    fprintf(stderr, "difftac: %s: gels are stepped on the CPU (device 'auto')\n", why);
  }
}

// the device the gel is stepped on: its context and device copy, and for the first instance
// (the lead, which steps all gels of d together) the joint step's block. The gels of one model
// share the lead's device: `auto` follows the lead, an explicit other device is an error. `auto`
// takes GPU 0 when it is there and can run the kernels, else the CPU. 0, or nonzero with a
// message in err.
static int device_setup(const mjModel* m, mjData* d, dtac_elastomer* e, char* err, int errlen) {
  // the lead: the first elastomer instance, initialised before this one (the plugin_data of
  // later instances is not set yet)
  dtac_elastomer* lead = NULL;
  for (int i = 0; i < e->instance && !lead; i++) lead = dtac_elastomer_get(m, d, i);
  int kind = e->def.device, ordinal = e->def.ordinal;
  int autodev = kind < 0;
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

static int elastomer_init(const mjModel* m, mjData* d, int instance) {
  char err[DTAC_ERRLEN];
  dtac_elastomer* e = elastomer_make(m, instance, err, sizeof(err));
  if (e && device_setup(m, d, e, err, sizeof(err))) {
    elastomer_free(e);
    e = NULL;
  }
  if (!e) {
    char name[DTAC_NAMELEN];
    instance_name(m, instance, name, sizeof(name));
    mju_error("%s instance '%s': %s", DTAC_ELASTOMER_NAME, name, err);
    return -1;
  }
  d->plugin_data[instance] = (uintptr_t)e;
  return 0;
}

static void elastomer_destroy(mjData* d, int instance) {
  elastomer_free((dtac_elastomer*)d->plugin_data[instance]);
  d->plugin_data[instance] = 0;
}

static void elastomer_reset(const mjModel* m, mjtNum* plugin_state, void* plugin_data,
                            int instance) {
  dtac_elastomer* e = (dtac_elastomer*)plugin_data;
  if (!plugin_state || !e) return;
  // the rest shape is placed at the site by the first evaluation that has kinematics
  memset(plugin_state, 0, sizeof(mjtNum) * e->L.size);
  plugin_state[e->L.placed] = 0;
  e->ncontact = 0;
  memset(e->wrench, 0, sizeof(e->wrench));
  memset(e->contact_force, 0, sizeof(double) * 3 * e->model.nnode);
}

static void elastomer_copy(mjData* dest, const mjModel* m, const mjData* src, int instance) {
  // plugin_state is copied by MuJoCo; keep only the outputs of the last evaluation
  dtac_elastomer* ed = (dtac_elastomer*)dest->plugin_data[instance];
  const dtac_elastomer* es = (const dtac_elastomer*)src->plugin_data[instance];
  if (!ed || !es) return;
  memcpy(ed->wrench, es->wrench, sizeof(ed->wrench));
  memcpy(ed->contact_force, es->contact_force, sizeof(double) * 3 * es->model.nnode);
  ed->ncontact = es->ncontact;
  ed->nwarning = es->nwarning;
}

// candidate colliders near the gel; velocities from jac * qvel when use_jac, else from cvel
// (fixed: the same geoms as the last call, with the same bounds)
static void gather_colliders(const mjModel* m, mjData* d, dtac_elastomer* e, int use_jac,
                             int fixed) {
  const double* x = d->plugin_state + m->plugin_stateadr[e->instance] + e->L.x;
  const double* v = d->plugin_state + m->plugin_stateadr[e->instance] + e->L.v;
  double lo[3] = {INFINITY, INFINITY, INFINITY}, hi[3] = {-INFINITY, -INFINITY, -INFINITY};
  double vmax = 0;
  for (int a = 0; a < e->model.nnode; a++) {
    for (int k = 0; k < 3; k++) {
      lo[k] = fmin(lo[k], x[3 * a + k]);
      hi[k] = fmax(hi[k], x[3 * a + k]);
    }
    vmax = fmax(vmax, dtac_dot3(v + 3 * a, v + 3 * a));
  }
  // margin: what the gel and a geom may cover within one step, and a tenth of the gel
  const double* sz = e->def.gel.size;
  double margin = sqrt(vmax) * m->opt.timestep + 0.1 * fmax(sz[0], fmax(sz[1], sz[2]));
  int nfixed = e->ncol;
  e->ncol = 0;
  for (int gi = 0; gi < (fixed ? nfixed : m->ngeom); gi++) {
    int g = fixed ? e->col[gi].geom : gi;
    if (!e->geom_ok[g]) continue;
    const mjtNum* gp = d->geom_xpos + 3 * g;
    const mjtNum* gm = d->geom_xmat + 9 * g;
    int type = m->geom_type[g];
    double rb = m->geom_rbound[g];
    if (type == mjGEOM_PLANE) {
      // the lowest AABB corner along the plane normal must come within margin
      double nz[3] = {gm[2], gm[5], gm[8]}, dmin = INFINITY;
      for (int c = 0; c < 8; c++) {
        double p[3] = {(c & 1) ? hi[0] : lo[0], (c & 2) ? hi[1] : lo[1], (c & 4) ? hi[2] : lo[2]};
        double r[3];
        dtac_sub3(r, p, gp);
        dmin = fmin(dmin, dtac_dot3(r, nz));
      }
      if (dmin > margin && !fixed) continue;
      rb = 0;
    } else {
      double d2 = 0;
      for (int k = 0; k < 3; k++) {
        double q = gp[k] < lo[k] ? lo[k] - gp[k] : (gp[k] > hi[k] ? gp[k] - hi[k] : 0);
        d2 += q * q;
      }
      if (d2 > (rb + margin) * (rb + margin) && !fixed) continue;
      rb = fixed ? e->col[gi].rbound : rb + margin;
    }
    dtac_collider* c = e->col + e->ncol++;
    c->type = type;
    c->geom = g;
    c->body = m->geom_bodyid[g];
    c->rbound = rb;
    c->nplane = e->geom_nplane[g];
    c->planes = e->geom_planeadr[g] >= 0 ? e->planes + 4 * e->geom_planeadr[g] : NULL;
    memcpy(c->size, m->geom_size + 3 * g, sizeof(c->size));
    memcpy(c->pos, gp, sizeof(c->pos));
    memcpy(c->mat, gm, sizeof(c->mat));
    c->mu = e->model.def.friction;
    c->kscale = e->geom_kscale[g];
    if (use_jac && m->nv > 0) {
      mjtNum* jp = e->jac;
      mjtNum* jr = e->jac + 3 * m->nv;
      mj_jac(m, d, jp, jr, gp, c->body);
      mju_mulMatVec(c->vel, jp, d->qvel, 3, m->nv);
      mju_mulMatVec(c->angvel, jr, d->qvel, 3, m->nv);
    } else {
      mjtNum res[6];
      mj_objectVelocity(m, d, mjOBJ_GEOM, g, res, 0);
      memcpy(c->angvel, res, sizeof(c->angvel));
      memcpy(c->vel, res + 3, sizeof(c->vel));
    }
  }
}

// a non-finite gel is reported and restarted from rest at the site, never passed on
static int recover_nonfinite(const mjModel* m, mjData* d, dtac_elastomer* e, const char* where) {
  mjtNum* state = d->plugin_state + m->plugin_stateadr[e->instance];
  for (int i = 0; i < 6 * e->model.nnode; i++) {
    if (!isfinite(state[i])) {
      e->nwarning++;
      dtac_warning(
          "%s instance '%s': the gel state became non-finite (%s, time %g); the gel was "
          "reset to its rest shape (warning %d)",
          DTAC_ELASTOMER_NAME, e->name, where, d->time, e->nwarning);
      state[e->L.placed] = 0;
      dtac_elastomer_ensure_placed(m, d, e);
      return 1;
    }
  }
  return 0;
}

// PASSIVE: forces of the gel on the bodies, from the current state (a pure function of it)
static void elastomer_compute(const mjModel* m, mjData* d, int instance, int capability_bit) {
  dtac_elastomer* e = (dtac_elastomer*)d->plugin_data[instance];
  if (!e || !(capability_bit & mjPLUGIN_PASSIVE) || e->frozen) return;
  dtac_elastomer_ensure_placed(m, d, e);
  recover_nonfinite(m, d, e, "found before the force evaluation");
  const double* state = d->plugin_state + m->plugin_stateadr[instance];
  const double* x = state + e->L.x;
  const double* v = state + e->L.v;
  dtac_gel_model* gm = &e->model;

  // back face: the elements pull on the nodes the site's body holds (only the elements touching
  // it are evaluated: the gel's step evaluates them all)
  dtac_gel_back_force(gm, &e->scratch, x, v);
  const mjtNum* sp = d->site_xpos + 3 * e->site;
  mjtNum F[3] = {0, 0, 0}, T[3] = {0, 0, 0};
  for (int i = 0; i < gm->nfixed; i++) {
    int a = gm->fixed_id[i];
    const double* f = e->scratch.force + 3 * a;
    double r[3], t[3];
    dtac_sub3(r, x + 3 * a, sp);
    dtac_cross3(t, r, f);
    for (int k = 0; k < 3; k++) {
      F[k] += f[k];
      T[k] += t[k];
    }
  }
  // damping relative to the body: its reaction acts on the body too
  dtac_frame site;
  site_frame(d, e->site, &site);
  if (gm->alpha > 0) {
    mjtNum vel[6];
    mj_objectVelocity(m, d, mjOBJ_SITE, e->site, vel, 0);
    memcpy(site.angvel, vel, sizeof(site.angvel));
    memcpy(site.vel, vel + 3, sizeof(site.vel));
    double wr[6] = {0, 0, 0, 0, 0, 0};
    dtac_gel_mass_damping(gm, x, v, sp, &site, NULL, wr);
    for (int k = 0; k < 3; k++) {
      F[k] += wr[k];
      T[k] += wr[3 + k];
    }
  }
  memset(e->body_wrench, 0, sizeof(mjtNum) * 6 * m->nbody);
  mju_zero(e->qfrc, m->nv);
  if (e->body > 0) {
    mj_applyFT(m, d, F, T, sp, e->body, e->qfrc);
    dtac_wrench_add(e->body_wrench + 6 * e->body, F, T, sp, d->xpos + 3 * e->body);
  }

  // contact: reactions on the touched bodies; the gel feels the opposite
  gather_colliders(m, d, e, 0, 0);
  memset(e->col_ft, 0, sizeof(double) * 6 * e->ncol);
  memset(e->contact_force, 0, sizeof(double) * 3 * gm->nnode);
  e->ncontact = dtac_gel_contact(gm, x, v, state + e->L.anchor, NULL, e->col, e->ncol,
                                 e->contact_force, e->col_ft);
  memset(e->wrench, 0, sizeof(e->wrench));
  for (int c = 0; c < e->ncol; c++) {
    const double* ft = e->col_ft + 6 * c;
    const dtac_collider* col = e->col + c;
    if (col->body > 0) {
      mj_applyFT(m, d, ft, ft + 3, col->pos, col->body, e->qfrc);
      dtac_wrench_add(e->body_wrench + 6 * col->body, ft, ft + 3, col->pos,
                      d->xpos + 3 * col->body);
    }
    // the gel's wrench about the site: minus the collider's, moved from its origin
    double r[3], t[3];
    dtac_sub3(r, col->pos, sp);
    dtac_cross3(t, r, ft);
    for (int k = 0; k < 3; k++) {
      e->wrench[k] -= ft[k];
      e->wrench[3 + k] -= ft[3 + k] + t[k];
    }
  }
  mju_addTo(d->qfrc_passive, e->qfrc, m->nv);
}

static void slot_refresh(const mjModel* m, mjData* d, dtac_elastomer* e, int k);

void dtac_elastomer_passive_adj(const mjModel* m, mjData* d, dtac_elastomer* e,
                                const mjtNum* qfrc_bar, const mjtNum* wrench_bar,
                                const double* cf_bar, double* state_bar, dtac_gel_param_bar* pb) {
  const double* state = d->plugin_state + m->plugin_stateadr[e->instance];
  const double* x = state + e->L.x;
  const double* v = state + e->L.v;
  double* xb = state_bar + e->L.x;
  double* vb = state_bar + e->L.v;
  double* ab = state_bar + e->L.anchor;
  dtac_gel_model* gm = &e->model;
  dtac_gel_scratch* s = &e->scratch;
  int nv = m->nv;
  mjtNum* jp = e->jac;
  mjtNum* jr = e->jac + 3 * nv;
  memset(&s->ma, 0, sizeof(s->ma));

  // contact: each collider's reaction wrench reaches qfrc through J^T at its origin (the
  // colliders as compute gathered them)
  gather_colliders(m, d, e, 0, 0);
  memset(s->col_ft_bar, 0, sizeof(double) * 6 * e->ncol);
  memset(s->col_bar, 0, sizeof(dtac_collider_bar) * e->ncol);
  for (int c = 0; c < e->ncol; c++) {
    const dtac_collider* col = e->col + c;
    if (col->body <= 0) continue;
    double* ftb = s->col_ft_bar + 6 * c;
    mj_jac(m, d, jp, jr, col->pos, col->body);
    for (int k = 0; k < 3; k++) {
      ftb[k] = mju_dot(jp + nv * k, qfrc_bar, nv);
      ftb[3 + k] = mju_dot(jr + nv * k, qfrc_bar, nv);
    }
    if (wrench_bar) {
      // body_wrench += (ft, t about col pos) moved to xpos: ft_bar += w_f + w_t x r, t_bar += w_t
      const mjtNum* wb = wrench_bar + 6 * col->body;
      double r[3], t[3];
      dtac_sub3(r, col->pos, d->xpos + 3 * col->body);
      dtac_cross3(t, wb + 3, r);
      for (int k = 0; k < 3; k++) {
        ftb[k] += wb[k] + t[k];
        ftb[3 + k] += wb[3 + k];
      }
    }
  }
  double* fbar = s->fbar;
  for (int i = 0; i < 3 * gm->nnode; i++) fbar[i] = cf_bar ? cf_bar[i] : 0;
  for (int sn = 0; sn < gm->nsurf; sn++) {
    dtac_gel_contact_node_adj(gm, sn, e->col, e->ncol, x, v, state + e->L.anchor, 0, 0, fbar,
                              s->col_ft_bar, NULL, xb, vb, ab, s->col_bar, pb);
  }
  memcpy(e->col_bar, s->col_bar, sizeof(dtac_collider_bar) * e->ncol);
  memset(&e->psite_bar, 0, sizeof(e->psite_bar));
  memset(e->pFT, 0, sizeof(e->pFT));

  // the back face and the damping relative to the body: (F, T about the site) on the body
  if (e->body > 0) {
    const mjtNum* sp = d->site_xpos + 3 * e->site;
    double Fb[3], Tb[3];
    mj_jac(m, d, jp, jr, sp, e->body);
    for (int k = 0; k < 3; k++) {
      Fb[k] = mju_dot(jp + nv * k, qfrc_bar, nv);
      Tb[k] = mju_dot(jr + nv * k, qfrc_bar, nv);
    }
    if (wrench_bar) {
      const mjtNum* wb = wrench_bar + 6 * e->body;
      double r[3], t[3];
      dtac_sub3(r, sp, d->xpos + 3 * e->body);
      dtac_cross3(t, wb + 3, r);
      for (int k = 0; k < 3; k++) {
        Fb[k] += wb[k] + t[k];
        Tb[k] += wb[3 + k];
      }
    }
    // F = sum of the back face's internal forces (+ damping), T = sum of r x f about the site
    dtac_gel_back_force(gm, s, x, v);
    memset(fbar, 0, sizeof(double) * 3 * gm->nnode);
    for (int i = 0; i < gm->nfixed; i++) {
      int a = gm->fixed_id[i];
      const double* f = s->force + 3 * a;
      double r[3], t1[3], t2[3], t3[3];
      dtac_sub3(r, x + 3 * a, sp);
      dtac_cross3(t1, Tb, r);
      dtac_cross3(t2, f, Tb);
      dtac_cross3(t3, r, f);
      for (int k = 0; k < 3; k++) {
        fbar[3 * a + k] = Fb[k] + t1[k];
        xb[3 * a + k] += t2[k];
        e->psite_bar.pos[k] -= t2[k];  // r = x - site
        e->pFT[k] += f[k];
        e->pFT[3 + k] += t3[k];
      }
    }
    dtac_gel_internal_force_adj(gm, x, v, fbar, xb, vb, &s->ma);
    if (gm->alpha > 0) {
      dtac_frame site, site_bar;
      site_frame(d, e->site, &site);
      mjtNum vel[6];
      mj_objectVelocity(m, d, mjOBJ_SITE, e->site, vel, 0);
      memcpy(site.angvel, vel, sizeof(site.angvel));
      memcpy(site.vel, vel + 3, sizeof(site.vel));
      memset(&site_bar, 0, sizeof(site_bar));
      double wbar[6] = {Fb[0], Fb[1], Fb[2], Tb[0], Tb[1], Tb[2]};
      dtac_gel_mass_damping_adj(gm, x, v, &site, NULL, wbar, xb, vb, &site_bar, &pb->mass_damping);
      for (int k = 0; k < 3; k++) {
        e->psite_bar.pos[k] += site_bar.pos[k];
        e->psite_bar.vel[k] += site_bar.vel[k];
        e->psite_bar.angvel[k] += site_bar.angvel[k];
      }
      double wr[6] = {0, 0, 0, 0, 0, 0};
      dtac_gel_mass_damping(gm, x, v, sp, &site, NULL, wr);
      for (int k = 0; k < 6; k++) e->pFT[k] += wr[k];
    }
  }
  dtac_material_set_adj(gm->def.young, gm->def.poisson, &s->ma, &pb->young, &pb->poisson,
                        &pb->damping);
}

mjtNum dtac_elastomer_rigid_dot(const mjModel* m, mjData* d, dtac_elastomer* e,
                                const mjtNum* qfrc_bar, const mjtNum* wrench_bar) {
  int nv = m->nv;
  mjtNum* q = e->slot_tmp;  // scratch: the held wrenches mapped to qfrc
  mju_zero(q, nv);
  mjtNum s = 0;
  // colliders as compute gathered them (the same list), at the current kinematics
  gather_colliders(m, d, e, 0, 1);
  for (int c = 0; c < e->ncol; c++) {
    const dtac_collider* col = e->col + c;
    const dtac_collider_bar* cb = e->col_bar + c;
    for (int k = 0; k < 3; k++) {
      s += col->pos[k] * cb->pos[k] + col->vel[k] * cb->vel[k] + col->angvel[k] * cb->angvel[k];
    }
    for (int k = 0; k < 9; k++) s += col->mat[k] * cb->mat[k];
    if (col->body <= 0) continue;
    const double* ft = e->col_ft + 6 * c;
    mj_applyFT(m, d, ft, ft + 3, col->pos, col->body, q);
    if (wrench_bar) {
      mjtNum w[6] = {0, 0, 0, 0, 0, 0};
      dtac_wrench_add(w, ft, ft + 3, col->pos, d->xpos + 3 * col->body);
      s += mju_dot(w, wrench_bar + 6 * col->body, 6);
    }
  }
  // the site: the back face's and the damping's wrench about it, its frame for the damping
  if (e->body > 0) {
    const mjtNum* sp = d->site_xpos + 3 * e->site;
    mjtNum vel[6];
    mj_objectVelocity(m, d, mjOBJ_SITE, e->site, vel, 0);
    for (int k = 0; k < 3; k++) {
      s += sp[k] * e->psite_bar.pos[k] + vel[3 + k] * e->psite_bar.vel[k] +
           vel[k] * e->psite_bar.angvel[k];
    }
    mj_applyFT(m, d, e->pFT, e->pFT + 3, sp, e->body, q);
    if (wrench_bar) {
      mjtNum w[6] = {0, 0, 0, 0, 0, 0};
      dtac_wrench_add(w, e->pFT, e->pFT + 3, sp, d->xpos + 3 * e->body);
      s += mju_dot(w, wrench_bar + 6 * e->body, 6);
    }
  }
  return s + mju_dot(q, qfrc_bar, nv);
}

int dtac_elastomer_collider_frames(const mjModel* m, mjData* d, dtac_elastomer* e, double* frames) {
  gather_colliders(m, d, e, 0, 1);
  for (int c = 0; c < e->ncol; c++) {
    const dtac_collider* col = e->col + c;
    double* f = frames + 18 * c;
    memcpy(f, col->pos, sizeof(double) * 3);
    memcpy(f + 3, col->mat, sizeof(double) * 9);
    memcpy(f + 12, col->vel, sizeof(double) * 3);
    memcpy(f + 15, col->angvel, sizeof(double) * 3);
  }
  return e->ncol;
}

void dtac_elastomer_contact_jvp(const mjModel* m, mjData* d, dtac_elastomer* e, const double* dcol,
                                double* df) {
  const double* state = d->plugin_state + m->plugin_stateadr[e->instance];
  const double* x = state + e->L.x;
  const double* v = state + e->L.v;
  dtac_gel_model* gm = &e->model;
  dtac_gel_scratch* s = &e->scratch;
  memset(df, 0, sizeof(double) * 3 * gm->nnode);
  memset(s->fbar, 0, sizeof(double) * 3 * gm->nnode);
  memset(s->col_ft_bar, 0, sizeof(double) * 6 * e->ncol);
  // the node's force row k against the colliders' frames, from the adjoint with a unit bar;
  // the cotangents of x, v and the anchors land in scratch that is not read
  for (int sn = 0; sn < gm->nsurf; sn++) {
    int a = gm->surf[sn];
    for (int k = 0; k < 3; k++) {
      dtac_gel_param_bar pb;
      memset(s->col_bar, 0, sizeof(dtac_collider_bar) * e->ncol);
      s->fbar[3 * a + k] = 1;
      dtac_gel_contact_node_adj(gm, sn, e->col, e->ncol, x, v, state + e->L.anchor, 0, 0, s->fbar,
                                s->col_ft_bar, NULL, s->fint, s->force, s->imp_bar, s->col_bar,
                                &pb);
      s->fbar[3 * a + k] = 0;
      double g = 0;
      for (int c = 0; c < e->ncol; c++) {
        const double* cb = (const double*)(s->col_bar + c);
        for (int q = 0; q < 18; q++) g += cb[q] * dcol[18 * c + q];
      }
      df[3 * a + k] = g;
    }
  }
}

// the slot of body b, creating it (frame, velocity, inverse effective mass, applied wrench);
// -1 for bodies without dofs or when slots run out
static int body_slot_get(const mjModel* m, mjData* d, dtac_elastomer* e, int b) {
  // welded to the world or to a mocap body: moved kinematically, nothing to couple
  if (b <= 0 || m->body_weldid[b] == 0 || m->body_mocapid[m->body_weldid[b]] >= 0) return -1;
  if (e->body_slot[b] >= 0) return e->body_slot[b];
  if (e->nslot >= e->maxslot) return -1;
  int k = e->nslot++;
  e->body_slot[b] = k;
  e->slot_body[k] = b;
  slot_refresh(m, d, e, k);
  return k;
}

// a slot's frame, velocity and inverse effective mass from d
static void slot_refresh(const mjModel* m, mjData* d, dtac_elastomer* e, int k) {
  int b = e->slot_body[k];
  int nv = m->nv;
  mjtNum* J = e->slot_jac + 6 * nv * k;
  mjtNum* X = e->slot_tmp;
  dtac_body* B = e->slot + k;
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

void dtac_elastomer_corrections(const mjModel* m, mjData* d, dtac_elastomer* e) {
  int nv = m->nv;
  mjtNum* y = e->slot_tmp;
  mjtNum* z = e->slot_tmp + nv;
  mjtNum* dq = e->slot_tmp + 2 * nv;
  mjtNum* dv = e->slot_tmp + 3 * nv;
  mju_zero(y, nv);
  mju_zero(z, nv);
  for (int k = 0; k < e->nslot; k++) {
    const mjtNum* J = e->slot_jac + 6 * nv * k;
    for (int r = 0; r < 6; r++) {
      mju_addToScl(y, J + nv * r, e->slot[k].dP[r], nv);
      mju_addToScl(z, J + nv * r, e->slot[k].dQ[r], nv);
    }
  }
  mj_solveM(m, d, dv, y, 1);
  mj_solveM(m, d, dq, z, 1);
  mju_addTo(d->qvel, dv, nv);
  mj_integratePos(m, d->qpos, dq, 1);
}

int dtac_blowup_count(const mjModel* m, const mjData* d) {
  int n = d->warning[mjWARN_BADQPOS].number + d->warning[mjWARN_BADQVEL].number +
          d->warning[mjWARN_BADQACC].number;
  for (int i = 0; i < m->nplugin; i++) {
    const dtac_elastomer* e = dtac_elastomer_get(m, d, i);
    if (e) n += e->nwarning;
  }
  return n;
}

dtac_elastomer* dtac_elastomer_lead(const mjModel* m, const mjData* d) {
  for (int i = 0; i < m->nplugin; i++) {
    dtac_elastomer* g = dtac_elastomer_get(m, d, i);
    if (g) return g;
  }
  return NULL;
}

int dtac_elastomer_setup(const mjModel* m, mjData* d, dtac_elastomer* e) {
  // the first elastomer instance steps all of them together, so that a body touched by
  // several gels (an object in a two-pad grasp) feels all of them at the substep rate
  int ngel = 0;
  for (int i = 0; i < m->nplugin; i++) {
    dtac_elastomer* g = dtac_elastomer_get(m, d, i);
    if (g && ngel < e->maxgel) e->gels[ngel++] = g;
  }
  int couple = m->nv > 0;
  if (e->fixed) {
    for (int k = 0; k < e->nslot; k++) slot_refresh(m, d, e, k);
  } else {
    if (couple) {
      for (int b = 0; b < m->nbody; b++) e->body_slot[b] = -1;
    }
    e->nslot = 0;
  }

  for (int i = 0; i < ngel; i++) {
    dtac_elastomer* g = e->gels[i];
    dtac_gel_step* st = e->steps + i;
    dtac_elastomer_ensure_placed(m, d, g);
    memset(st, 0, sizeof(*st));
    st->gm = &g->model;
    st->s = &g->scratch;
    st->state = d->plugin_state + m->plugin_stateadr[g->instance];
    st->nsub = g->nsub;

    // the site moves over the step with the velocity MuJoCo integrated qpos with
    dtac_frame* site = e->sites + i;
    site_frame(d, g->site, site);
    if (m->nv > 0) {
      mj_jacSite(m, d, e->jac, e->jac + 3 * m->nv, g->site);
      mju_mulMatVec(site->vel, e->jac, d->qvel, 3, m->nv);
      mju_mulMatVec(site->angvel, e->jac + 3 * m->nv, d->qvel, 3, m->nv);
    }
    st->site = site;
    gather_colliders(m, d, g, 1, e->fixed);
    st->col = g->col;
    st->ncol = g->ncol;

    // substep coupling: the site's body and every touched body with dofs get a shared slot
    st->site_slot = -1;
    st->col_slot = NULL;
    if (couple && g->coupling) {
      st->site_slot = body_slot_get(m, d, e, g->body);
      if (!e->fixed) {
        for (int c = 0; c < g->ncol; c++) g->col_slot[c] = body_slot_get(m, d, e, g->col[c].body);
      }
      st->col_slot = g->col_slot;
    }
  }

  // what the rigid step already applied to each slot: every coupled gel's passive wrench
  for (int k = 0; k < e->nslot; k++) {
    int b = e->slot_body[k];
    mju_zero(e->slot[k].wrench_app, 6);
    for (int i = 0; i < ngel; i++) {
      if (e->gels[i]->coupling)
        mju_addTo(e->slot[k].wrench_app, e->gels[i]->body_wrench + 6 * b, 6);
    }
  }
  return ngel;
}

static void gravity_of(const mjModel* m, double g[3]) {
  for (int k = 0; k < 3; k++) g[k] = (m->opt.disableflags & mjDSBL_GRAVITY) ? 0 : m->opt.gravity[k];
}

// a failed device call: reported, and the gels are stepped on the CPU from then on (the state in
// plugin_state is what MuJoCo holds, so nothing is lost)
static void device_failed(const mjModel* m, mjData* d, dtac_elastomer* lead, int ngel) {
  dtac_warning(
      "%s instance '%s': %s device error: %s; its gels are stepped on the CPU from now on "
      "(time %g)",
      DTAC_ELASTOMER_NAME, lead->name, device_name(lead->dev.kind), lead->dev.err, d->time);
  lead->dev_env = NULL;
  for (int i = ngel - 1; i >= 0; i--) device_free(lead->gels[i]);  // the lead's own last
}

int dtac_elastomer_device_begin(const mjModel* m, mjData* d, dtac_elastomer* lead, int ngel) {
  double gravity[3];
  gravity_of(m, gravity);
  for (int i = 0; i < ngel; i++) lead->mirrors[i] = &lead->gels[i]->mirror;
  lead->dev_ngel = ngel;
  lead->dev_env = dtac_dev_prepare(&lead->dev, &lead->block, lead->steps, lead->mirrors, ngel,
                                   lead->slot, lead->nslot, gravity, m->opt.timestep);
  if (!lead->dev_env) {
    device_failed(m, d, lead, ngel);
    return 1;
  }
  return 0;
}

int dtac_elastomer_device_end(const mjModel* m, mjData* d, dtac_elastomer* lead, int ngel) {
  lead->dev_env = NULL;
  if (dtac_dev_finish(&lead->dev, &lead->block, lead->steps, lead->mirrors, ngel, lead->slot,
                      lead->nslot)) {
    device_failed(m, d, lead, ngel);
    return 1;
  }
  dtac_elastomer_advance_end(m, d, lead, ngel);
  return 0;
}

void dtac_elastomer_advance_end(const mjModel* m, mjData* d, dtac_elastomer* e, int ngel) {
  if (e->nslot) dtac_elastomer_corrections(m, d, e);
  for (int i = 0; i < ngel; i++) {
    dtac_elastomer* g = e->gels[i];
    dtac_gel_step* st = e->steps + i;
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
          "gel was reset to its rest shape (warning %d)",
          DTAC_ELASTOMER_NAME, g->name, d->time, g->nwarning);
      dtac_frame f;
      dtac_frame_at(e->sites + i, m->opt.timestep, f.pos, f.mat);
      dtac_gel_state_rest(&g->model, &f, st->state);
    }
  }
}

// the joint step on the CPU, from the setup of this step, and the rest of advance
static void cpu_advance(const mjModel* m, mjData* d, dtac_elastomer* e, int ngel) {
  double gravity[3];
  gravity_of(m, gravity);
  double* tape = NULL;
  if (e->record && e->tape) {
    if (dtac_gels_tape_size(e->steps, ngel, e->nslot) <= e->tape_size) tape = e->tape;
    mju_copy(e->rec_qpos, d->qpos, m->nq);
    mju_copy(e->rec_qvel, d->qvel, m->nv);
  }
  dtac_gels_advance_tape(e->steps, ngel, e->slot, e->nslot, gravity, m->opt.timestep, tape);
  dtac_elastomer_advance_end(m, d, e, ngel);
}

void dtac_elastomer_device_abort(const mjModel* m, mjData* d, dtac_elastomer* lead) {
  device_failed(m, d, lead, lead->dev_ngel);
  cpu_advance(m, d, lead, lead->dev_ngel);
}

int dtac_elastomer_device_finish(const mjModel* m, mjData* d, dtac_elastomer* lead) {
  if (dtac_elastomer_device_end(m, d, lead, lead->dev_ngel) == 0) return 0;
  cpu_advance(m, d, lead, lead->dev_ngel);  // the failure was reported by device_end
  return 1;
}

// time integration of the gel over one MuJoCo step, after MuJoCo advanced qpos and qvel: the
// joint step of all gels on the lead's device (one launch for every substep), or on the CPU
// (always while the gradient tape records)
static void elastomer_advance(const mjModel* m, mjData* d, int instance) {
  dtac_elastomer* e = (dtac_elastomer*)d->plugin_data[instance];
  if (!e || e->frozen || dtac_elastomer_lead(m, d) != e) return;
  int ngel = dtac_elastomer_setup(m, d, e);
  if (e->dev.kind != DTAC_DEV_CPU && !e->record) {
    if (!dtac_elastomer_device_begin(m, d, e, ngel)) {
      if (e->defer) return;  // dtac_batch_step launches it with other environments
      if (dtac_dev_launch(&e->dev, &e->dev_env, 1, e->block.work) == 0) {
        dtac_elastomer_device_finish(m, d, e);
        return;
      }
      device_failed(m, d, e, ngel);
    }
  }
  cpu_advance(m, d, e, ngel);
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
