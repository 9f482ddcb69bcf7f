// tactile.c: a tactile sensor's set-up (camera, marker embedding, scratch) and its forward:
// inputs gathered from the gel, cached, and the output formed (tactile.h).
#include "tactile.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "difftac/difftac.h"

_Static_assert(DTAC_TACTILE_NBASIS == DTAC_OPTICS_NBASIS, "lighting basis size mismatch");

void dtac_tactile_def_default(dtac_tactile_def* def) {
  memset(def, 0, sizeof(*def));
  def->output = -1;
  def->width = 0;  // fit the pad's face (dtac_tactile_def_fit)
  def->height = 0;
  def->pitch = 6.5e-5;  // GelSight Mini: 320 x 240 at 0.065 mm per pixel
  def->marker_cols = 9;  // 7 rows x 9 columns at about 2 mm
  def->marker_rows = 7;
  def->marker_pitch = 0.002;
  dtac_optics_default(def->bg, def->coef);
}

double dtac_tactile_def_fit(dtac_tactile_def* def, const double size_xy[2], int pitch_given) {
  double longer = fmax(size_xy[0], size_xy[1]);
  if (!pitch_given && longer > DTAC_TACTILE_FIT_MAXPX * def->pitch) {
    def->pitch = longer / DTAC_TACTILE_FIT_MAXPX;
  }
  double w = fmax(1, round(size_xy[0] / def->pitch)), h = fmax(1, round(size_xy[1] / def->pitch));
  if (w * h <= 4096.0 * 4096.0) {  // the caller rejects more; keep the ints in range
    def->width = (int)w;
    def->height = (int)h;
  }
  return w * h;
}

int dtac_tactile_output_size(const dtac_tactile_def* def) {
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

void dtac_tactile_free(dtac_tactile* t) {
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

dtac_tactile* dtac_tactile_make(const mjModel* m, int instance, int sensor, const char* name,
                                const dtac_tactile_def* tdef, int gel, const dtac_elastomer_def* ed,
                                char* err, int errlen) {
  dtac_tactile* t = (dtac_tactile*)calloc(1, sizeof(dtac_tactile));
  if (!t) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  t->instance = instance;
  t->sensor = sensor;
  snprintf(t->name, sizeof(t->name), "%s", name);
  t->def = *tdef;
  t->gel = gel;
  const dtac_elastomer_def edef = *ed;
  // the sensor's object, if any, must be the gel's site: the camera frame is that site
  if (t->sensor >= 0 && m->sensor_objtype[t->sensor] == mjOBJ_SITE) {
    int site = mj_name2id(m, mjOBJ_SITE, edef.site);
    if (site >= 0 && m->sensor_objid[t->sensor] != site) {
      snprintf(err, errlen,
               "objname is site '%s' but elastomer '%s' is attached to site '%s'; "
               "the sensor sees the gel from its own site",
               m->names + m->name_siteadr[m->sensor_objid[t->sensor]], t->def.elastomer, edef.site);
      dtac_tactile_free(t);
      return NULL;
    }
  }
  const dtac_tactile_def* def = &t->def;
  t->cam.width = def->width;
  t->cam.height = def->height;
  t->cam.pitch = def->pitch;
  t->cam.x0 = def->center[0] - 0.5 * def->width * def->pitch;
  t->cam.y0 = def->center[1] - 0.5 * def->height * def->pitch;
  // the pad's rest face, centred on the site: pixels there always show the gel
  t->cam.face[0] = -0.5 * edef.gel.size[0];
  t->cam.face[1] = 0.5 * edef.gel.size[0];
  t->cam.face[2] = -0.5 * edef.gel.size[1];
  t->cam.face[3] = 0.5 * edef.gel.size[1];
  int n[3], nnode, ntet, nsurf;
  dtac_gel_counts(&edef.gel, n, &nnode, &ntet, &nsurf);
  t->nvx = n[0] + 1;
  t->nvy = n[1] + 1;
  t->nv = t->nvx * t->nvy;
  t->top0 = t->nv * n[2];
  t->nout = dtac_tactile_output_size(def);
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
    dtac_tactile_free(t);
    return NULL;
  }
  return t;
}

void dtac_tactile_copy(dtac_tactile* dst, const dtac_tactile* src) {
  // the run-time parameters (the optics); the cache is rebuilt at the next evaluation
  memcpy(dst->def.bg, src->def.bg, sizeof(dst->def.bg));
  memcpy(dst->def.coef, src->def.coef, sizeof(dst->def.coef));
  dst->valid = 0;
}

dtac_tactile* dtac_tactile_get(const mjModel* m, const mjData* d, int instance) {
  if (!m || !d || instance < 0 || instance >= m->nplugin) return NULL;
  const mjpPlugin* p = mjp_getPluginAtSlot(m->plugin[instance]);
  if (!p || strcmp(p->name, DTAC_TACTILE_NAME) != 0) return NULL;
  return (dtac_tactile*)d->plugin_data[instance];
}

// marker rest positions on a grid about the image centre, embedded in the rest top face
// (once, from the gel's rest mesh: the gel may be initialised after this sensor)
void dtac_tactile_setup_markers(dtac_tactile* t, const dtac_elastomer* e) {
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

void dtac_marker_interp(const dtac_tactile* t, int k, const double* p, int ncomp, double div,
                        double* out) {
  for (int c = 0; c < ncomp; c++) out[c] = 0;
  int tri = t->mk_tri[k];
  if (tri < 0) return;
  int v[3];
  dtac_top_tri(t->nvx, tri, v);
  const double* w = t->mk_w + 3 * k;
  for (int q = 0; q < 3; q++) {
    for (int c = 0; c < ncomp; c++) out[c] += w[q] * p[3 * v[q] + c] / div;
  }
}

void dtac_marker_interp_adj(const dtac_tactile* t, int k, const double* out_bar, int ncomp,
                            double div, double* p_bar) {
  int tri = t->mk_tri[k];
  if (tri < 0) return;  // a marker off the face reads a constant 0
  int v[3];
  dtac_top_tri(t->nvx, tri, v);
  const double* w = t->mk_w + 3 * k;
  for (int q = 0; q < 3; q++) {
    for (int c = 0; c < ncomp; c++) p_bar[3 * v[q] + c] += w[q] * out_bar[c] / div;
  }
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

dtac_elastomer* dtac_tactile_inputs(const mjModel* m, mjData* d, dtac_tactile* t) {
  dtac_elastomer* e = dtac_elastomer_get(m, d, t->gel);
  if (!e) return NULL;
  dtac_elastomer_ensure_placed(m, d, e);
  if (!t->ready && t->nmarker) dtac_tactile_setup_markers(t, e);
  gather_key(m, d, t, e, t->keynew);
  return e;
}

// the top face in the site (camera) frame, p = R^T (x - pos), into t->p from the inputs in key
void dtac_tactile_site_points(dtac_tactile* t, const double* key) {
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
void dtac_tactile_site_forces(dtac_tactile* t, const double* key) {
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
  dtac_tactile_site_points(t, key);
  if (def->output == DTAC_OUT_MARKERS) {
    for (int k = 0; k < t->nmarker; k++) {
      double* o = t->out + 2 * k;
      dtac_marker_interp(t, k, t->p, 2, 1, o);
      if (t->mk_tri[k] < 0) continue;
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
      dtac_tactile_site_forces(t, key);
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

void dtac_tactile_evaluate(const mjModel* m, mjData* d, dtac_tactile* t, mjtNum* sd) {
  dtac_elastomer* e = dtac_tactile_inputs(m, d, t);
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
