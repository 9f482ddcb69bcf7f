// tactile.c: the difftac.tactile sensor plugin (SENSOR, velocity stage): MuJoCo's callbacks,
// calling into the sensor core (src/tactile.h): the config parsed and checked at load
// (config.c), the sensor made per mjData, its output in `compute`, its markers drawn in
// `visualize`.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "tactile.h"

static int tactile_nstate(const mjModel* m, int instance) {
  return 0;
}

static int tactile_nsensordata(const mjModel* m, int instance, int sensor_id) {
  char err[DTAC_ERRLEN], name[DTAC_NAMELEN];
  dtac_tactile_def def;
  dtac_elastomer_def edef;
  int gel;
  if (dtac_tactile_parse(m, instance, &def, &gel, &edef, err, sizeof(err))) {
    dtac_sensor_name(m, sensor_id, name, sizeof(name));
    mju_error("%s sensor '%s': %s", DTAC_TACTILE_NAME, name, err);
    return 0;
  }
  return dtac_tactile_output_size(&def);
}

static int tactile_init(const mjModel* m, mjData* d, int instance) {
  char err[DTAC_ERRLEN], name[DTAC_NAMELEN];
  int sensor = dtac_sensor_of_instance(m, instance);
  dtac_sensor_name(m, sensor, name, sizeof(name));
  dtac_tactile_def def;
  dtac_elastomer_def edef;
  int gel;
  dtac_tactile* t = NULL;
  if (dtac_tactile_parse(m, instance, &def, &gel, &edef, err, sizeof(err)) == 0) {
    t = dtac_tactile_make(m, instance, sensor, name, &def, gel, &edef, err, sizeof(err));
  }
  if (!t) {
    char msg[DTAC_ERRLEN + 2 * DTAC_NAMELEN];
    snprintf(msg, sizeof(msg), "%s sensor '%s': %s", DTAC_TACTILE_NAME, name, err);
    dtac_init_abort(m, d, instance, msg);
    return -1;
  }
  d->plugin_data[instance] = (uintptr_t)t;
  return 0;
}

static void tactile_destroy(mjData* d, int instance) {
  dtac_tactile_free((dtac_tactile*)d->plugin_data[instance]);
  d->plugin_data[instance] = 0;
}

static void tactile_reset(const mjModel* m, mjtNum* plugin_state, void* plugin_data, int instance) {
  dtac_tactile* t = (dtac_tactile*)plugin_data;
  if (t) t->valid = 0;
}

static void tactile_copy(mjData* dest, const mjModel* m, const mjData* src, int instance) {
  dtac_tactile* td = (dtac_tactile*)dest->plugin_data[instance];
  const dtac_tactile* ts = (const dtac_tactile*)src->plugin_data[instance];
  if (td && ts) dtac_tactile_copy(td, ts);
}

static void tactile_compute(const mjModel* m, mjData* d, int instance, int capability_bit) {
  dtac_tactile* t = (dtac_tactile*)d->plugin_data[instance];
  if (!t || !(capability_bit & mjPLUGIN_SENSOR) || t->sensor < 0 || t->frozen) return;
  dtac_tactile_evaluate(m, d, t, d->sensordata + m->sensor_adr[t->sensor]);
}

// ---- visualize: the marker field ----------------------------------------------------------------

// arrows show a marker's in-plane displacement this many times enlarged (real displacements are
// tens to hundreds of micrometres, about a marker's size)
#define MARKER_ARROW_SCALE 10.0

// markers sensors draw each marker as a small sphere at its deformed position on the gel's top
// face (lifted a little off the surface so the gel's own drawing does not hide it) and an arrow
// from its rest position (in-plane; at the deformed surface's height) along its displacement,
// MARKER_ARROW_SCALE times as long: it runs through the marker, whose sphere would hide the
// head of an unscaled arrow; other outputs draw nothing
static void tactile_visualize(const mjModel* m, mjData* d, const mjvOption* opt, mjvScene* scn,
                              int instance) {
  dtac_tactile* t = (dtac_tactile*)d->plugin_data[instance];
  if (!t || t->def.output != DTAC_OUT_MARKERS || !t->nmarker) return;
  dtac_elastomer* e = dtac_elastomer_get(m, d, t->gel);
  if (!e || !dtac_elastomer_ensure_placed(m, d, e)) return;
  if (!t->ready) dtac_tactile_setup_markers(t, e);
  const double* x = d->plugin_state + m->plugin_stateadr[t->gel] + e->L.x + 3 * t->top0;
  const mjtNum* R = d->site_xmat + 9 * e->site;
  const double mp = t->def.marker_pitch;
  const double radius = 0.075 * mp, width = 0.05 * mp, lift = 0.1 * mp;
  const float rgba_dot[4] = {0.05f, 0.05f, 0.05f, 1.0f};
  const float rgba_arrow[4] = {1.0f, 0.85f, 0.1f, 1.0f};
  for (int k = 0; k < t->nmarker; k++) {
    if (t->mk_tri[k] < 0) continue;
    // deformed position (world), lifted along the site's +z (the top face's outward normal)
    double p[3];
    dtac_marker_interp(t, k, x, 3, 1, p);
    for (int c = 0; c < 3; c++) p[c] += lift * R[3 * c + 2];
    // in-plane displacement: site-frame xy of the deformed point minus the rest xy, in world
    double r[3], ps[3];
    dtac_sub3(r, p, d->site_xpos + 3 * e->site);
    dtac_mulmTv3(ps, R, r);
    double du = ps[0] - t->mk_rest[2 * k], dv = ps[1] - t->mk_rest[2 * k + 1];
    if (scn->ngeom >= scn->maxgeom) return;
    mjtNum size[3] = {radius, radius, radius}, pos[3] = {p[0], p[1], p[2]};
    mjvGeom* g = scn->geoms + scn->ngeom;
    mjv_initGeom(g, mjGEOM_SPHERE, size, pos, NULL, rgba_dot);
    g->category = mjCAT_DECOR;
    g->objtype = mjOBJ_PLUGIN;
    g->objid = instance;
    scn->ngeom++;
    double len = MARKER_ARROW_SCALE * sqrt(du * du + dv * dv);
    if (len < 1e-3 * mp) continue;  // moved less than 1e-4 marker pitches: no arrow
    if (scn->ngeom >= scn->maxgeom) return;
    mjtNum from[3], to[3];
    for (int c = 0; c < 3; c++) {
      double dc = R[3 * c] * du + R[3 * c + 1] * dv;  // world displacement
      from[c] = p[c] - dc;
      to[c] = from[c] + MARKER_ARROW_SCALE * dc;
    }
    g = scn->geoms + scn->ngeom;
    mjv_initGeom(g, mjGEOM_NONE, NULL, NULL, NULL, rgba_arrow);
    mjv_connector(g, mjGEOM_ARROW, width, from, to);
    g->category = mjCAT_DECOR;
    g->objtype = mjOBJ_PLUGIN;
    g->objid = instance;
    scn->ngeom++;
  }
}

void dtac_tactile_register(void) {
  mjpPlugin p;
  mjp_defaultPlugin(&p);
  p.name = DTAC_TACTILE_NAME;
  p.capabilityflags = mjPLUGIN_SENSOR;
  // the gel's contact forces come from the passive forces (velocity stage)
  p.needstage = mjSTAGE_VEL;
  p.nattribute = dtac_tactile_nattribute;
  p.attributes = dtac_tactile_attributes;
  p.nstate = tactile_nstate;
  p.nsensordata = tactile_nsensordata;
  p.init = tactile_init;
  p.destroy = tactile_destroy;
  p.reset = tactile_reset;
  p.copy = tactile_copy;
  p.compute = tactile_compute;
  p.visualize = tactile_visualize;
  mjp_registerPlugin(&p);
}
