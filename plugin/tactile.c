// tactile.c: the difftac.tactile sensor plugin (SENSOR, velocity stage). MuJoCo glue around the
// optics kernels (kernels/optics.h) and the top-face rasteriser (src/raster.c): config keys and
// their checks, the camera set-up, and per evaluation: gel state -> site frame -> output. The
// config keys are named in this file only; docs/tactile.md documents each.
#include "tactile.h"
#include "grad.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "difftac/difftac.h"

_Static_assert(DTAC_TACTILE_NBASIS == DTAC_OPTICS_NBASIS, "lighting basis size mismatch");

static const char* const output_names[DTAC_OUT_COUNT] = {"rgb",   "depth",   "pressure",
                                                         "shear", "markers", "force"};

static const char* const tactile_attributes[] = {
    "elastomer",  "output",   "size",        "pitch",   "center",
    "background", "lighting", "optics_file", "markers", "marker_pitch"};
static const int tactile_nattribute = sizeof(tactile_attributes) / sizeof(tactile_attributes[0]);

#define MAX_PIXELS (4096 * 4096)
#define MAX_MARKERS 100000

// ---- config
// --------------------------------------------------------------------------------------

static void sensor_name(const mjModel* m, int sensor, char* out, int len) {
  const char* nm =
      (sensor >= 0 && m->names && m->name_sensoradr) ? m->names + m->name_sensoradr[sensor] : "";
  if (nm && nm[0]) {
    snprintf(out, len, "%s", nm);
  } else {
    snprintf(out, len, "#%d", sensor);
  }
}

// the sensor that holds plugin instance `instance`, or -1
static int sensor_of_instance(const mjModel* m, int instance) {
  for (int i = 0; i < m->nsensor; i++) {
    if (m->sensor_type[i] == mjSENS_PLUGIN && m->sensor_plugin[i] == instance) return i;
  }
  return -1;
}

// parses up to n numbers (exactly n when exact) from s; returns how many, -1 on junk
static int parse_numbers(const char* s, double* out, int n) {
  const char* p = s;
  int k = 0;
  while (1) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    if (!*p) break;
    if (k == n) return -1;
    char* end;
    errno = 0;
    double v = strtod(p, &end);
    if (end == p || errno == ERANGE) return -1;
    out[k++] = v;
    p = end;
  }
  return k;
}

static int read_numbers(const char* key, const char* s, double* out, int n, char* err, int errlen) {
  if (!s || !s[0]) return 0;
  double tmp[3 * DTAC_OPTICS_NBASIS] = {0};
  if (parse_numbers(s, tmp, n) != n) {
    snprintf(err, errlen, "key '%s' has value '%s': expected %d number%s", key, s, n,
             n > 1 ? "s" : "");
    return 1;
  }
  for (int k = 0; k < n; k++) {
    if (!isfinite(tmp[k])) {
      snprintf(err, errlen, "key '%s' has value '%s': numbers must be finite", key, s);
      return 1;
    }
    out[k] = tmp[k];
  }
  return 0;
}

static int read_int_pair(const char* key, const char* s, int* a, int* b, int lo, long hi, char* err,
                         int errlen) {
  if (!s || !s[0]) return 0;
  double v[2];
  if (parse_numbers(s, v, 2) != 2 || v[0] != floor(v[0]) || v[1] != floor(v[1]) || v[0] < lo ||
      v[1] < lo || v[0] * v[1] > (double)hi) {
    snprintf(err, errlen,
             "key '%s' has value '%s': expected two integers >= %d with product <= %ld", key, s, lo,
             hi);
    return 1;
  }
  *a = (int)v[0];
  *b = (int)v[1];
  return 0;
}

// an optics parameter file: whitespace-separated `background r g b` and `lighting c...`
// (3 x NBASIS numbers, red row first); '#' starts a comment
static int read_optics_file(const char* path, dtac_tactile_def* def, char* err, int errlen) {
  FILE* f = fopen(path, "r");
  if (!f) {
    snprintf(err, errlen, "key 'optics_file' has value '%s': cannot open the file", path);
    return 1;
  }
  char tok[256];
  int bad = 0;
  while (!bad && fscanf(f, "%255s", tok) == 1) {
    if (tok[0] == '#') {
      int ch;
      while ((ch = fgetc(f)) != EOF && ch != '\n') {
      }
      continue;
    }
    double* dst;
    int n;
    if (!strcmp(tok, "background")) {
      dst = def->bg;
      n = 3;
    } else if (!strcmp(tok, "lighting")) {
      dst = def->coef;
      n = 3 * DTAC_OPTICS_NBASIS;
    } else {
      snprintf(err, errlen,
               "key 'optics_file' has value '%s': unknown entry '%s' (valid: "
               "background, lighting)",
               path, tok);
      bad = 1;
      break;
    }
    for (int k = 0; k < n; k++) {
      if (fscanf(f, "%lf", dst + k) != 1 || !isfinite(dst[k])) {
        snprintf(err, errlen,
                 "key 'optics_file' has value '%s': entry '%s' needs %d finite "
                 "numbers",
                 path, tok, n);
        bad = 1;
        break;
      }
    }
  }
  fclose(f);
  return bad;
}

// parses the sensor's config with defaults; the elastomer is looked up by name in the model
static int tactile_parse(const mjModel* m, int instance, dtac_tactile_def* def, char* err,
                         int errlen) {
  memset(def, 0, sizeof(*def));
  def->output = -1;
  def->width = 320;  // GelSight Mini: 320 x 240 at 0.065 mm per pixel
  def->height = 240;
  def->pitch = 6.5e-5;
  def->marker_cols = 9;  // 7 rows x 9 columns at about 2 mm
  def->marker_rows = 7;
  def->marker_pitch = 0.002;
  dtac_optics_default(def->bg, def->coef);

  const char* el = mj_getPluginConfig(m, instance, "elastomer");
  if (!el || !el[0]) {
    snprintf(err, errlen, "key 'elastomer' is required: the name of a difftac.elastomer instance");
    return 1;
  }
  if (strlen(el) >= DTAC_NAMELEN) {
    snprintf(err, errlen, "key 'elastomer' has value '%s': name too long", el);
    return 1;
  }
  strcpy(def->elastomer, el);

  const char* out = mj_getPluginConfig(m, instance, "output");
  char valid[128] = "";
  for (int k = 0; k < DTAC_OUT_COUNT; k++) {
    strcat(valid, k ? " " : "");
    strcat(valid, output_names[k]);
    if (out && !strcmp(out, output_names[k])) def->output = k;
  }
  if (!out || !out[0]) {
    snprintf(err, errlen, "key 'output' is required; valid: %s", valid);
    return 1;
  }
  if (def->output < 0) {
    snprintf(err, errlen, "key 'output' has value '%s'; valid: %s", out, valid);
    return 1;
  }

  const char* file = mj_getPluginConfig(m, instance, "optics_file");
  if (file && file[0] && read_optics_file(file, def, err, errlen)) return 1;

  if (read_int_pair("size", mj_getPluginConfig(m, instance, "size"), &def->width, &def->height, 1,
                    MAX_PIXELS, err, errlen) ||
      read_numbers("pitch", mj_getPluginConfig(m, instance, "pitch"), &def->pitch, 1, err,
                   errlen) ||
      read_numbers("center", mj_getPluginConfig(m, instance, "center"), def->center, 2, err,
                   errlen) ||
      read_numbers("background", mj_getPluginConfig(m, instance, "background"), def->bg, 3, err,
                   errlen) ||
      read_numbers("lighting", mj_getPluginConfig(m, instance, "lighting"), def->coef,
                   3 * DTAC_OPTICS_NBASIS, err, errlen) ||
      read_int_pair("markers", mj_getPluginConfig(m, instance, "markers"), &def->marker_cols,
                    &def->marker_rows, 1, MAX_MARKERS, err, errlen) ||
      read_numbers("marker_pitch", mj_getPluginConfig(m, instance, "marker_pitch"),
                   &def->marker_pitch, 1, err, errlen)) {
    return 1;
  }
  if (!(def->pitch > 0)) {
    snprintf(err, errlen, "key 'pitch' has value '%s'; valid: > 0 (m per pixel)",
             mj_getPluginConfig(m, instance, "pitch"));
    return 1;
  }
  if (!(def->marker_pitch > 0)) {
    snprintf(err, errlen, "key 'marker_pitch' has value '%s'; valid: > 0 (m)",
             mj_getPluginConfig(m, instance, "marker_pitch"));
    return 1;
  }
  return 0;
}

// the elastomer instance named in def, checked; -1 with err filled if there is none
static int find_elastomer(const mjModel* m, const dtac_tactile_def* def, char* err, int errlen) {
  int id = mj_name2id(m, mjOBJ_PLUGIN, def->elastomer);
  const mjpPlugin* p = id >= 0 ? mjp_getPluginAtSlot(m->plugin[id]) : NULL;
  if (!p || strcmp(p->name, DTAC_ELASTOMER_NAME) != 0) {
    snprintf(err, errlen, "key 'elastomer' has value '%s': no %s instance of that name",
             def->elastomer, DTAC_ELASTOMER_NAME);
    return -1;
  }
  return id;
}

static int output_size(const dtac_tactile_def* def) {
  int npix = def->width * def->height;
  switch (def->output) {
    case DTAC_OUT_RGB:
      return 3 * npix;
    case DTAC_OUT_DEPTH:
      return npix;
    case DTAC_OUT_PRESSURE:
      return npix;
    case DTAC_OUT_SHEAR:
      return 2 * npix;
    case DTAC_OUT_MARKERS:
      return 2 * def->marker_cols * def->marker_rows;
    default:
      return 6;
  }
}

// the whole check: config, the elastomer, the marker grid on the gel; fills the gel's def
static int tactile_check(const mjModel* m, int instance, dtac_tactile_def* def, int* gel,
                         dtac_elastomer_def* edef, char* err, int errlen) {
  if (tactile_parse(m, instance, def, err, errlen)) return 1;
  *gel = find_elastomer(m, def, err, errlen);
  if (*gel < 0) return 1;
  char eerr[DTAC_ERRLEN];
  if (dtac_elastomer_parse(m, *gel, edef, eerr, sizeof(eerr))) {
    snprintf(err, errlen, "key 'elastomer' has value '%s': that instance's config is bad: %.300s",
             def->elastomer, eerr);
    return 1;
  }
  if (def->output == DTAC_OUT_MARKERS) {
    const double* sz = edef->gel.size;
    double hx = 0.5 * (def->marker_cols - 1) * def->marker_pitch;
    double hy = 0.5 * (def->marker_rows - 1) * def->marker_pitch;
    if (fabs(def->center[0]) + hx >= 0.5 * sz[0] || fabs(def->center[1]) + hy >= 0.5 * sz[1]) {
      snprintf(err, errlen,
               "key 'markers' has value '%d %d' (marker_pitch %g m): the marker grid, %g x %g mm "
               "about the image centre, does not fit inside the top face of gel '%s' (%g x %g mm)",
               def->marker_cols, def->marker_rows, def->marker_pitch, 2e3 * hx, 2e3 * hy,
               def->elastomer, 1e3 * sz[0], 1e3 * sz[1]);
      return 1;
    }
  }
  return 0;
}

// ---- callbacks
// -------------------------------------------------------------------------------------

static int tactile_nstate(const mjModel* m, int instance) {
  return 0;
}

static int tactile_nsensordata(const mjModel* m, int instance, int sensor_id) {
  char err[DTAC_ERRLEN], name[DTAC_NAMELEN];
  dtac_tactile_def def;
  dtac_elastomer_def edef;
  int gel;
  if (tactile_check(m, instance, &def, &gel, &edef, err, sizeof(err))) {
    sensor_name(m, sensor_id, name, sizeof(name));
    mju_error("%s sensor '%s': %s", DTAC_TACTILE_NAME, name, err);
    return 0;
  }
  return output_size(&def);
}

static void tactile_free(dtac_tactile* t) {
  if (!t) return;
  free(t->p);
  free(t->attr);
  free(t->fsite);
  free(t->vis.zbuf);
  free(t->vis.tri);
  free(t->vis.bary);
  free(t->pix);
  free(t->bar);
  free(t->mk_tri);
  free(t->mk_w);
  free(t->mk_rest);
  free(t->key);
  free(t->keynew);
  free(t->out);
  free(t);
}

static dtac_tactile* tactile_make(const mjModel* m, int instance, char* err, int errlen) {
  dtac_tactile* t = (dtac_tactile*)calloc(1, sizeof(dtac_tactile));
  if (!t) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  t->instance = instance;
  t->sensor = sensor_of_instance(m, instance);
  sensor_name(m, t->sensor, t->name, sizeof(t->name));
  dtac_elastomer_def edef;
  if (tactile_check(m, instance, &t->def, &t->gel, &edef, err, errlen)) {
    tactile_free(t);
    return NULL;
  }
  // the sensor's object, if any, must be the gel's site: the camera frame is that site
  if (t->sensor >= 0 && m->sensor_objtype[t->sensor] == mjOBJ_SITE) {
    int site = mj_name2id(m, mjOBJ_SITE, edef.site);
    if (site >= 0 && m->sensor_objid[t->sensor] != site) {
      snprintf(err, errlen,
               "objname is site '%s' but elastomer '%s' is attached to site '%s'; "
               "the sensor sees the gel from its own site",
               m->names + m->name_siteadr[m->sensor_objid[t->sensor]], t->def.elastomer, edef.site);
      tactile_free(t);
      return NULL;
    }
  }
  const dtac_tactile_def* def = &t->def;
  t->cam.width = def->width;
  t->cam.height = def->height;
  t->cam.pitch = def->pitch;
  t->cam.x0 = def->center[0] - 0.5 * def->width * def->pitch;
  t->cam.y0 = def->center[1] - 0.5 * def->height * def->pitch;
  int n[3], nnode, ntet, nsurf;
  dtac_gel_counts(&edef.gel, n, &nnode, &ntet, &nsurf);
  t->nvx = n[0] + 1;
  t->nvy = n[1] + 1;
  t->nv = t->nvx * t->nvy;
  t->top0 = t->nv * n[2];
  t->nout = output_size(def);
  t->nmarker = def->output == DTAC_OUT_MARKERS ? def->marker_cols * def->marker_rows : 0;
  size_t npix = (size_t)def->width * def->height;
  int image = def->output <= DTAC_OUT_SHEAR;
  // cache key: site pose, top-face positions, their contact forces, the gel's wrench
  t->nkey = 12 + 6 * t->nv + 6;
  t->p = (double*)malloc(sizeof(double) * 3 * t->nv);
  t->attr = (double*)malloc(sizeof(double) * DTAC_RASTER_WORK(t->nv));  // image work
  t->fsite = (double*)malloc(sizeof(double) * 3 * t->nv);
  t->bar = (double*)malloc(sizeof(double) * 6 * t->nv);
  t->key = (double*)malloc(sizeof(double) * t->nkey);
  t->keynew = (double*)malloc(sizeof(double) * t->nkey);
  t->out = (double*)calloc(t->nout, sizeof(double));
  int bad = !t->p || !t->attr || !t->fsite || !t->bar || !t->key || !t->keynew || !t->out;
  if (image) {
    t->vis.zbuf = (double*)malloc(sizeof(double) * npix);
    t->vis.tri = (int*)malloc(sizeof(int) * npix);
    t->vis.bary = (double*)malloc(sizeof(double) * 2 * npix);
    bad = bad || !t->vis.zbuf || !t->vis.tri || !t->vis.bary;
  }
  if (def->output == DTAC_OUT_RGB) {
    t->pix = (double*)malloc(sizeof(double) * 4 * npix);
    bad = bad || !t->pix;
  }
  if (t->nmarker) {
    t->mk_tri = (int*)malloc(sizeof(int) * t->nmarker);
    t->mk_w = (double*)malloc(sizeof(double) * 3 * t->nmarker);
    t->mk_rest = (double*)malloc(sizeof(double) * 2 * t->nmarker);
    bad = bad || !t->mk_tri || !t->mk_w || !t->mk_rest;
  }
  if (bad) {
    snprintf(err, errlen, "out of memory (image %d x %d)", def->width, def->height);
    tactile_free(t);
    return NULL;
  }
  return t;
}

static int tactile_init(const mjModel* m, mjData* d, int instance) {
  char err[DTAC_ERRLEN];
  dtac_tactile* t = tactile_make(m, instance, err, sizeof(err));
  if (!t) {
    char name[DTAC_NAMELEN];
    sensor_name(m, sensor_of_instance(m, instance), name, sizeof(name));
    mju_error("%s sensor '%s': %s", DTAC_TACTILE_NAME, name, err);
    return -1;
  }
  d->plugin_data[instance] = (uintptr_t)t;
  return 0;
}

static void tactile_destroy(mjData* d, int instance) {
  tactile_free((dtac_tactile*)d->plugin_data[instance]);
  d->plugin_data[instance] = 0;
}

static void tactile_reset(const mjModel* m, mjtNum* plugin_state, void* plugin_data, int instance) {
  dtac_tactile* t = (dtac_tactile*)plugin_data;
  if (t) t->valid = 0;
}

dtac_tactile* dtac_tactile_get(const mjModel* m, const mjData* d, int instance) {
  if (!m || !d || instance < 0 || instance >= m->nplugin) return NULL;
  const mjpPlugin* p = mjp_getPluginAtSlot(m->plugin[instance]);
  if (!p || strcmp(p->name, DTAC_TACTILE_NAME) != 0) return NULL;
  return (dtac_tactile*)d->plugin_data[instance];
}

// marker rest positions on a grid about the image centre, embedded in the rest top face
// (once, from the gel's rest mesh: the gel may be initialised after this sensor)
static void setup_markers(dtac_tactile* t, const dtac_elastomer* e) {
  const double* X = e->model.X + 3 * t->top0;
  const dtac_tactile_def* def = &t->def;
  for (int r = 0; r < def->marker_rows; r++) {
    for (int c = 0; c < def->marker_cols; c++) {
      int k = r * def->marker_cols + c;
      double x = def->center[0] + (c - 0.5 * (def->marker_cols - 1)) * def->marker_pitch;
      double y = def->center[1] + (r - 0.5 * (def->marker_rows - 1)) * def->marker_pitch;
      t->mk_tri[k] = dtac_top_locate(t->nvx, t->nvy, X, x, y, t->mk_w + 3 * k);
      t->mk_rest[2 * k] = x;
      t->mk_rest[2 * k + 1] = y;
    }
  }
  t->ready = 1;
}

// the sensor's inputs in one array, to tell whether anything changed since the last evaluation
static void gather_key(const mjModel* m, const mjData* d, const dtac_tactile* t,
                       const dtac_elastomer* e, double* key) {
  const double* x = d->plugin_state + m->plugin_stateadr[t->gel] + e->L.x + 3 * t->top0;
  const double* f = e->contact_force + 3 * t->top0;
  memcpy(key, d->site_xpos + 3 * e->site, sizeof(double) * 3);
  memcpy(key + 3, d->site_xmat + 9 * e->site, sizeof(double) * 9);
  memcpy(key + 12, x, sizeof(double) * 3 * t->nv);
  memcpy(key + 12 + 3 * t->nv, f, sizeof(double) * 3 * t->nv);
  memcpy(key + 12 + 6 * t->nv, e->wrench, sizeof(double) * 6);
}

// the sensor's gel with its inputs gathered into t->keynew, as compute, the VJP and the JVP read
// them (the gel placed, the markers embedded); NULL if the gel has no data
static dtac_elastomer* gather_inputs(const mjModel* m, mjData* d, dtac_tactile* t) {
  dtac_elastomer* e = dtac_elastomer_get(m, d, t->gel);
  if (!e) return NULL;
  dtac_elastomer_ensure_placed(m, d, e);
  if (!t->ready && t->nmarker) setup_markers(t, e);
  gather_key(m, d, t, e, t->keynew);
  return e;
}

// the top face in the site (camera) frame, p = R^T (x - pos), into t->p from the inputs in key
static void site_points(dtac_tactile* t, const double* key) {
  const double* pos = key;
  const double* R = key + 3;
  const double* x = key + 12;
  for (int a = 0; a < t->nv; a++) {
    double r[3];
    dtac_sub3(r, x + 3 * a, pos);
    dtac_mulmTv3(t->p + 3 * a, R, r);
  }
}

// the top face's contact forces in the site frame, f_site = R^T f, into t->fsite
static void site_forces(dtac_tactile* t, const double* key) {
  const double* R = key + 3;
  const double* f = key + 12 + 3 * t->nv;
  for (int a = 0; a < t->nv; a++) dtac_mulmTv3(t->fsite + 3 * a, R, f + 3 * a);
}

// evaluates the output into t->out from the inputs in key
static void evaluate(dtac_tactile* t, const dtac_elastomer* e, const double* key) {
  const double* R = key + 3;
  const double* wrench = key + 12 + 6 * t->nv;
  const double* X = e->model.X + 3 * t->top0;
  const dtac_tactile_def* def = &t->def;

  if (def->output == DTAC_OUT_FORCE) {
    dtac_mulmTv3(t->out, R, wrench);
    dtac_mulmTv3(t->out + 3, R, wrench + 3);
    return;
  }
  site_points(t, key);
  if (def->output == DTAC_OUT_MARKERS) {
    for (int k = 0; k < t->nmarker; k++) {
      double* o = t->out + 2 * k;
      o[0] = o[1] = 0;
      int tri = t->mk_tri[k];
      if (tri < 0) continue;
      int v[3];
      dtac_top_tri(t->nvx, tri, v);
      const double* w = t->mk_w + 3 * k;
      for (int q = 0; q < 3; q++) {
        for (int c = 0; c < 2; c++) o[c] += w[q] * t->p[3 * v[q] + c];
      }
      for (int c = 0; c < 2; c++) o[c] = (o[c] - t->mk_rest[2 * k + c]) / def->pitch;
    }
    return;
  }

  // images: the rasteriser's forward functions (src/raster_adj.c), whose adjoints sit beside them
  switch (def->output) {
    case DTAC_OUT_DEPTH:
      dtac_raster_depth(&t->cam, t->nvx, t->nvy, t->p, X, &t->vis, t->attr, t->out);
      break;
    case DTAC_OUT_PRESSURE:
    case DTAC_OUT_SHEAR:
      // traction = nodal force / lumped projected area: its pixel integral is the total force
      site_forces(t, key);
      dtac_raster_traction(&t->cam, t->nvx, t->nvy, t->p, t->fsite,
                           def->output == DTAC_OUT_PRESSURE ? 1 : 2, &t->vis, t->attr, t->out);
      break;
    case DTAC_OUT_RGB:
      // normals and indentation interpolated per pixel, then the lighting model
      dtac_raster_rgb(&t->cam, t->nvx, t->nvy, t->p, X, def->bg, def->coef, &t->vis, t->attr,
                      t->pix, t->out);
      break;
    default:
      break;
  }
}

static void tactile_compute(const mjModel* m, mjData* d, int instance, int capability_bit) {
  dtac_tactile* t = (dtac_tactile*)d->plugin_data[instance];
  if (!t || !(capability_bit & mjPLUGIN_SENSOR) || t->sensor < 0 || t->frozen) return;
  mjtNum* sd = d->sensordata + m->sensor_adr[t->sensor];
  dtac_elastomer* e = gather_inputs(m, d, t);
  if (!e) {
    memset(sd, 0, sizeof(mjtNum) * t->nout);
    return;
  }
  if (!t->valid || memcmp(t->key, t->keynew, sizeof(double) * t->nkey) != 0) {
    double* swap = t->key;
    t->key = t->keynew;
    t->keynew = swap;
    evaluate(t, e, t->key);
    t->valid = 1;
    t->ncompute++;
  }
  memcpy(sd, t->out, sizeof(mjtNum) * t->nout);
}

// ---- VJP: the output's cotangent back to the gel's state ----------------------------------------

// VJP of evaluate at the inputs in key, site pose fixed: accumulates x_bar and f_bar (the gel's
// nnode x 3 world positions x and contact forces f, of which key holds the top face) and
// param_bar (may be null). Rebuilds t->p, t->fsite and t->vis from key as evaluate does.
static void evaluate_adj(dtac_tactile* t, const dtac_elastomer* e, const double* key,
                         const double* x, const double* f, const mjtNum* y_bar, double* x_bar,
                         double* f_bar, double* param_bar, double* site_bar) {
  const double* pos = key;
  const double* R = key + 3;
  const double* X = e->model.X + 3 * t->top0;
  const dtac_tactile_def* def = &t->def;
  const int nv = t->nv;

  // force: the gel's wrench as elastomer_compute sums it over the colliders equals, node by node,
  // (sum_a f_a, sum_a (x_a - pos) x f_a); out = R^T wrench
  if (def->output == DTAC_OUT_FORCE) {
    double F_bar[3], T_bar[3];
    dtac_mulmv3(F_bar, R, y_bar);
    dtac_mulmv3(T_bar, R, y_bar + 3);
    double F[3] = {0, 0, 0}, T[3] = {0, 0, 0};
    for (int a = 0; a < e->model.nnode; a++) {
      double r[3], rb[3], fb[3], t1[3];
      dtac_sub3(r, x + 3 * a, pos);
      dtac_cross3(fb, T_bar, r);  // T_bar . (r x f) = f . (T_bar x r) = r . (f x T_bar)
      dtac_cross3(rb, f + 3 * a, T_bar);
      dtac_cross3(t1, r, f + 3 * a);
      for (int k = 0; k < 3; k++) {
        f_bar[3 * a + k] += F_bar[k] + fb[k];
        x_bar[3 * a + k] += rb[k];
        F[k] += f[3 * a + k];
        T[k] += t1[k];
        if (site_bar) site_bar[k] -= rb[k];  // r = x - pos
      }
    }
    // out = R^T (F, T): R_bar[i][j] += F_i y_j + T_i y_{3+j}
    if (site_bar) {
      for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++)
          site_bar[3 + 3 * i + j] += F[i] * y_bar[j] + T[i] * y_bar[3 + j];
      }
    }
    return;
  }

  // cotangents of the site-frame top face p and forces fsite
  double* p_bar = t->bar;
  double* fs_bar = t->bar + 3 * nv;
  memset(t->bar, 0, sizeof(double) * 6 * nv);
  site_points(t, key);
  if (def->output == DTAC_OUT_MARKERS) {
    for (int k = 0; k < t->nmarker; k++) {
      int tri = t->mk_tri[k];
      if (tri < 0) continue;  // a marker off the face reads a constant 0
      int v[3];
      dtac_top_tri(t->nvx, tri, v);
      const double* w = t->mk_w + 3 * k;
      for (int q = 0; q < 3; q++) {
        for (int c = 0; c < 2; c++) p_bar[3 * v[q] + c] += w[q] * y_bar[2 * k + c] / def->pitch;
      }
    }
  } else {
    // images: the forward pass's visibility at these inputs, then the rasteriser's adjoints
    dtac_raster_visibility(&t->cam, t->nvx, t->nvy, t->p, &t->vis);
    switch (def->output) {
      case DTAC_OUT_DEPTH:
        dtac_raster_depth_adj(&t->cam, t->nvx, t->nvy, t->p, X, &t->vis, y_bar, p_bar, t->attr);
        break;
      case DTAC_OUT_PRESSURE:
      case DTAC_OUT_SHEAR:
        site_forces(t, key);
        dtac_raster_traction_adj(&t->cam, t->nvx, t->nvy, t->p, t->fsite,
                                 def->output == DTAC_OUT_PRESSURE ? 1 : 2, &t->vis, y_bar, p_bar,
                                 fs_bar, t->attr);
        break;
      case DTAC_OUT_RGB:
        dtac_raster_rgb_adj(&t->cam, t->nvx, t->nvy, t->p, X, def->bg, def->coef, &t->vis, y_bar,
                            p_bar, param_bar, param_bar ? param_bar + 3 : NULL, t->attr);
        break;
      default:
        break;
    }
  }
  // back to the world: p = R^T (x - pos) gives x_bar = R p_bar, f_site = R^T f gives R fs_bar
  double* xb = x_bar + 3 * t->top0;
  double* fb = f_bar + 3 * t->top0;
  if (site_bar) {
    // and the site's pose: pos_bar = -R p_bar, R_bar[i][j] += (x - pos)_i p_bar_j + f_i fs_bar_j
    const double* xs = key + 12;
    const double* fw = key + 12 + 3 * nv;
    for (int a = 0; a < nv; a++) {
      double r[3], w[3];
      dtac_sub3(r, xs + 3 * a, pos);
      dtac_mulmv3(w, R, p_bar + 3 * a);
      for (int i = 0; i < 3; i++) {
        site_bar[i] -= w[i];
        for (int j = 0; j < 3; j++) {
          site_bar[3 + 3 * i + j] += r[i] * p_bar[3 * a + j] + fw[3 * a + i] * fs_bar[3 * a + j];
        }
      }
    }
  }
  for (int a = 0; a < nv; a++) {
    double w[3];
    dtac_mulmv3(w, R, p_bar + 3 * a);
    for (int k = 0; k < 3; k++) xb[3 * a + k] += w[k];
    dtac_mulmv3(w, R, fs_bar + 3 * a);
    for (int k = 0; k < 3; k++) fb[3 * a + k] += w[k];
  }
}

int dtac_tactile_vjp(const mjModel* m, mjData* d, int instance, const mjtNum* y_bar, double* x_bar,
                     double* f_bar, double* param_bar, double* site_bar) {
  dtac_tactile* t = dtac_tactile_get(m, d, instance);
  if (!t) return -1;
  // the inputs exactly as tactile_compute gathers them; keynew is scratch between evaluations
  dtac_elastomer* e = t->sensor < 0 ? NULL : gather_inputs(m, d, t);
  if (!e) return 0;  // tactile_compute writes zeros or nothing: no gradient
  const double* x = d->plugin_state + m->plugin_stateadr[t->gel] + e->L.x;
  evaluate_adj(t, e, t->keynew, x, e->contact_force, y_bar, x_bar, f_bar, param_bar, site_bar);
  return 0;
}

int dtac_tactile_jvp(const mjModel* m, mjData* d, int instance, const double dsite[12],
                     const double* df, mjtNum* dy) {
  dtac_tactile* t = dtac_tactile_get(m, d, instance);
  if (!t) return -1;
  dtac_elastomer* e = t->sensor < 0 ? NULL : gather_inputs(m, d, t);
  if (!e) {
    memset(dy, 0, sizeof(mjtNum) * t->nout);
    return 0;
  }
  const double* key = t->keynew;
  const double* pos = key;
  const double* R = key + 3;
  const double* dpos = dsite;
  const double* dR = dsite + 3;
  const double* xw = key + 12;
  const double* fw = key + 12 + 3 * t->nv;
  const double* X = e->model.X + 3 * t->top0;
  const dtac_tactile_def* def = &t->def;
  int nv = t->nv;

  if (def->output == DTAC_OUT_FORCE) {
    // out = R^T (F, T), F = sum f, T = sum (x - pos) x f over all nodes
    const double* w = key + 12 + 6 * nv;
    const double* x = d->plugin_state + m->plugin_stateadr[t->gel] + e->L.x;
    const double* f = e->contact_force;
    double dw[6] = {0, 0, 0, 0, 0, 0};
    for (int a = 0; a < e->model.nnode; a++) {
      double r[3], t1[3] = {0, 0, 0}, t2[3];
      dtac_sub3(r, x + 3 * a, pos);
      if (df) dtac_cross3(t1, r, df + 3 * a);
      dtac_cross3(t2, dpos, f + 3 * a);
      for (int k = 0; k < 3; k++) {
        dw[k] += df ? df[3 * a + k] : 0;
        dw[3 + k] += t1[k] - t2[k];
      }
    }
    for (int h = 0; h < 2; h++) {
      double a1[3], a2[3];
      dtac_mulmTv3(a1, dR, w + 3 * h);
      dtac_mulmTv3(a2, R, dw + 3 * h);
      for (int k = 0; k < 3; k++) dy[3 * h + k] = a1[k] + a2[k];
    }
    return 0;
  }

  // tangents of the site-frame top face p = R^T (x - pos) and forces f_site = R^T f
  site_points(t, key);
  double* dp = t->bar;
  double* dfs = t->bar + 3 * nv;
  for (int a = 0; a < nv; a++) {
    double r[3], a1[3], a2[3];
    dtac_sub3(r, xw + 3 * a, pos);
    dtac_mulmTv3(a1, dR, r);
    dtac_mulmTv3(a2, R, dpos);
    for (int k = 0; k < 3; k++) dp[3 * a + k] = a1[k] - a2[k];
    dtac_mulmTv3(a1, dR, fw + 3 * a);
    double dfa[3] = {0, 0, 0};
    if (df) memcpy(dfa, df + 3 * (t->top0 + a), sizeof(dfa));
    dtac_mulmTv3(a2, R, dfa);
    for (int k = 0; k < 3; k++) dfs[3 * a + k] = a1[k] + a2[k];
  }
  if (def->output == DTAC_OUT_MARKERS) {
    for (int k = 0; k < t->nmarker; k++) {
      mjtNum* o = dy + 2 * k;
      o[0] = o[1] = 0;
      int tri = t->mk_tri[k];
      if (tri < 0) continue;
      int v[3];
      dtac_top_tri(t->nvx, tri, v);
      const double* w = t->mk_w + 3 * k;
      for (int q = 0; q < 3; q++) {
        for (int c = 0; c < 2; c++) o[c] += w[q] * dp[3 * v[q] + c] / def->pitch;
      }
    }
    return 0;
  }
  dtac_raster_visibility(&t->cam, t->nvx, t->nvy, t->p, &t->vis);
  switch (def->output) {
    case DTAC_OUT_DEPTH:
      dtac_raster_depth_jvp(&t->cam, t->nvx, t->nvy, t->p, X, &t->vis, dp, dy, t->attr);
      break;
    case DTAC_OUT_PRESSURE:
    case DTAC_OUT_SHEAR:
      site_forces(t, key);
      dtac_raster_traction_jvp(&t->cam, t->nvx, t->nvy, t->p, t->fsite,
                               def->output == DTAC_OUT_PRESSURE ? 1 : 2, &t->vis, dp, dfs, dy,
                               t->attr);
      break;
    case DTAC_OUT_RGB:
      dtac_raster_rgb_jvp(&t->cam, t->nvx, t->nvy, t->p, X, def->bg, def->coef, &t->vis, dp, dy,
                          t->attr);
      break;
    default:
      break;
  }
  return 0;
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
  if (!t->ready) setup_markers(t, e);
  const double* x = d->plugin_state + m->plugin_stateadr[t->gel] + e->L.x + 3 * t->top0;
  const mjtNum* R = d->site_xmat + 9 * e->site;
  const double mp = t->def.marker_pitch;
  const double radius = 0.075 * mp, width = 0.05 * mp, lift = 0.1 * mp;
  const float rgba_dot[4] = {0.05f, 0.05f, 0.05f, 1.0f};
  const float rgba_arrow[4] = {1.0f, 0.85f, 0.1f, 1.0f};
  for (int k = 0; k < t->nmarker; k++) {
    int tri = t->mk_tri[k];
    if (tri < 0) continue;
    int v[3];
    dtac_top_tri(t->nvx, tri, v);
    const double* w = t->mk_w + 3 * k;
    // deformed position (world), lifted along the site's +z (the top face's outward normal)
    double p[3] = {0, 0, 0};
    for (int q = 0; q < 3; q++) {
      for (int c = 0; c < 3; c++) p[c] += w[q] * x[3 * v[q] + c];
    }
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

// ---- public API
// ----------------------------------------------------------------------------------------

int dtac_tactile_find(const mjModel* m, const char* name) {
  int s = mj_name2id(m, mjOBJ_SENSOR, name);
  if (s < 0 || m->sensor_type[s] != mjSENS_PLUGIN) return -1;
  const mjpPlugin* p = mjp_getPluginAtSlot(m->plugin[m->sensor_plugin[s]]);
  return p && strcmp(p->name, DTAC_TACTILE_NAME) == 0 ? s : -1;
}

int dtac_tactile_get_info(const mjModel* m, const mjData* d, int sensor, dtac_tactile_info* info) {
  if (!m || sensor < 0 || sensor >= m->nsensor || m->sensor_type[sensor] != mjSENS_PLUGIN)
    return -1;
  const dtac_tactile* t = dtac_tactile_get(m, d, m->sensor_plugin[sensor]);
  if (!t) return -1;
  memset(info, 0, sizeof(*info));
  info->output = t->def.output;
  info->width = t->def.width;
  info->height = t->def.height;
  info->pitch = t->def.pitch;
  info->x0 = t->cam.x0;
  info->y0 = t->cam.y0;
  info->gel = t->gel;
  info->nmarker = t->def.marker_cols * t->def.marker_rows;
  info->marker_cols = t->def.marker_cols;
  info->marker_rows = t->def.marker_rows;
  info->marker_pitch = t->def.marker_pitch;
  info->nout = t->nout;
  info->nevaluation = t->ncompute;
  memcpy(info->background, t->def.bg, sizeof(info->background));
  memcpy(info->lighting, t->def.coef, sizeof(info->lighting));
  return 0;
}

int dtac_tactile_marker_rest(const mjModel* m, const mjData* d, int sensor, mjtNum* uv) {
  if (!m || sensor < 0 || sensor >= m->nsensor || m->sensor_type[sensor] != mjSENS_PLUGIN)
    return -1;
  const dtac_tactile* t = dtac_tactile_get(m, d, m->sensor_plugin[sensor]);
  if (!t) return -1;
  const dtac_tactile_def* def = &t->def;
  for (int r = 0; r < def->marker_rows; r++) {
    for (int c = 0; c < def->marker_cols; c++) {
      int k = r * def->marker_cols + c;
      uv[2 * k] =
          (def->center[0] + (c - 0.5 * (def->marker_cols - 1)) * def->marker_pitch - t->cam.x0) /
          def->pitch;
      uv[2 * k + 1] =
          (def->center[1] + (r - 0.5 * (def->marker_rows - 1)) * def->marker_pitch - t->cam.y0) /
          def->pitch;
    }
  }
  return def->marker_cols * def->marker_rows;
}

void dtac_optics_default_params(double background[3], double lighting[3 * DTAC_TACTILE_NBASIS]) {
  dtac_optics_default(background, lighting);
}

void dtac_optics_basis_eval(const double normal[3], double depth, double phi[DTAC_TACTILE_NBASIS]) {
  dtac_optics_basis(normal, depth, phi);
}

void dtac_optics_render(int width, int height, double pitch, const double* depth,
                        const double background[3], const double* lighting, double* rgb) {
  dtac_optics_render_depth(width, height, pitch, depth, background, lighting, rgb);
}

double dtac_optics_fit(int nimage, int width, int height, double pitch, const double* depth,
                       const double* rgb, double background[3], double* lighting, char* err,
                       int errlen) {
  char tmp[DTAC_ERRLEN];
  if (!err || errlen <= 0) {
    err = tmp;
    errlen = sizeof(tmp);
  }
  err[0] = 0;
  if (nimage < 1 || width < 1 || height < 1 || !(pitch > 0) || !depth || !rgb) {
    snprintf(err, errlen, "bad arguments: nimage %d, size %d x %d, pitch %g", nimage, width, height,
             pitch);
    return -1;
  }
  return dtac_optics_fit_depth(nimage, width, height, pitch, depth, rgb, background, lighting, err,
                               errlen);
}

void dtac_tactile_register(void) {
  mjpPlugin p;
  mjp_defaultPlugin(&p);
  p.name = DTAC_TACTILE_NAME;
  p.capabilityflags = mjPLUGIN_SENSOR;
  // the gel's contact forces come from the passive forces (velocity stage)
  p.needstage = mjSTAGE_VEL;
  p.nattribute = tactile_nattribute;
  p.attributes = tactile_attributes;
  p.nstate = tactile_nstate;
  p.nsensordata = tactile_nsensordata;
  p.init = tactile_init;
  p.destroy = tactile_destroy;
  p.reset = tactile_reset;
  p.compute = tactile_compute;
  p.visualize = tactile_visualize;
  mjp_registerPlugin(&p);
}

// ---- derivative callbacks (grad.h)
// -----------------------------------------------------------------------------

#define DTAC_TACTILE_NPARAM (3 + 3 * DTAC_OPTICS_NBASIS)

// optics parameters: background r g b, then the lighting coefficients per channel and basis
static const char* const tactile_param_names[DTAC_TACTILE_NPARAM] = {
    "background_r", "background_g", "background_b", "light_r0", "light_r1", "light_r2", "light_r3",
    "light_r4",     "light_r5",     "light_r6",     "light_r7", "light_r8", "light_r9", "light_g0",
    "light_g1",     "light_g2",     "light_g3",     "light_g4", "light_g5", "light_g6", "light_g7",
    "light_g8",     "light_g9",     "light_b0",     "light_b1", "light_b2", "light_b3", "light_b4",
    "light_b5",     "light_b6",     "light_b7",     "light_b8", "light_b9"};

static void ta_freeze(const mjModel* m, mjData* d, int instance, int on) {
  dtac_tactile* t = dtac_tactile_get(m, d, instance);
  if (t) t->frozen = on;
}

static int ta_sensor_vjp(const mjModel* m, mjData* d, int instance, const mjtNum* y_bar,
                         dtac_grad_ctx* ctx) {
  dtac_tactile* t = dtac_tactile_get(m, d, instance);
  dtac_elastomer* e = t ? dtac_elastomer_get(m, d, t->gel) : NULL;
  if (!t || !e) return -1;
  double* x_bar = ctx->state_bar + m->plugin_stateadr[t->gel] + e->L.x;
  int adr = ctx->param_adr ? ctx->param_adr[instance] : -1;
  double* pb = adr >= 0 && ctx->param_bar ? ctx->param_bar + adr : NULL;
  // the gel's contact-force cotangent is consumed by its force evaluation's reverse pass
  return dtac_tactile_vjp(m, d, instance, y_bar, x_bar, e->cf_bar, pb,
                          ctx->site_bar + 12 * e->site);
}

static mjtNum ta_param_get(const mjModel* m, const mjData* d, int instance, int k) {
  const dtac_tactile* t = dtac_tactile_get(m, d, instance);
  if (!t || k < 0 || k >= DTAC_TACTILE_NPARAM) return NAN;
  return k < 3 ? t->def.bg[k] : t->def.coef[k - 3];
}

static int ta_param_set(const mjModel* m, mjData* d, int instance, int k, mjtNum value) {
  dtac_tactile* t = dtac_tactile_get(m, d, instance);
  if (!t || k < 0 || k >= DTAC_TACTILE_NPARAM) return -1;
  if (!isfinite(value)) {
    dtac_warning("%s sensor '%s': parameter '%s' = %g is not finite", DTAC_TACTILE_NAME, t->name,
                 tactile_param_names[k], value);
    return -1;
  }
  if (k < 3) {
    t->def.bg[k] = value;
  } else {
    t->def.coef[k - 3] = value;
  }
  t->valid = 0;  // the cached image was rendered with the old value
  return 0;
}

// only rgb sensors have optics parameters
static int ta_nparam(const mjModel* m, int instance) {
  const char* out = mj_getPluginConfig(m, instance, "output");
  return out && strcmp(out, "rgb") == 0 ? DTAC_TACTILE_NPARAM : 0;
}

void dtac_tactile_register_derivative(void) {
  dtac_derivative der;
  memset(&der, 0, sizeof(der));
  der.plugin = DTAC_TACTILE_NAME;
  der.freeze = ta_freeze;
  der.sensor_vjp = ta_sensor_vjp;
  der.nparam = ta_nparam;
  der.param_names = tactile_param_names;
  der.param_get = ta_param_get;
  der.param_set = ta_param_set;
  dtac_register_derivative(&der);
}
