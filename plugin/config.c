// config.c: every MJCF config key of difftac.elastomer and difftac.tactile, named here only,
// parsed by one parser over the defaults of the defs (dtac_elastomer_def_default,
// dtac_tactile_def_default). Numbers are decimal (an optional sign, digits with an optional
// point, an optional exponent; inf and nan are read so that the range check names them),
// separated by whitespace, with nothing before the first or after the last.
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char* const dtac_elastomer_attributes[] = {"site",
                                                 "shape",
                                                 "size",
                                                 "resolution",
                                                 "young",
                                                 "poisson",
                                                 "density",
                                                 "damping",
                                                 "mass_damping",
                                                 "friction",
                                                 "contact_stiffness",
                                                 "contact_damping",
                                                 "friction_stiffness",
                                                 "contact_width",
                                                 "contype",
                                                 "conaffinity",
                                                 "device",
                                                 "coupling",
                                                 "integrator",
                                                 "tolerance",
                                                 "iterations",
                                                 "material"};
const int dtac_elastomer_nattribute =
    sizeof(dtac_elastomer_attributes) / sizeof(dtac_elastomer_attributes[0]);

const char* const dtac_tactile_attributes[] = {
    "elastomer",  "output",   "size",        "pitch",   "center",
    "background", "lighting", "optics_file", "markers", "marker_pitch"};
const int dtac_tactile_nattribute =
    sizeof(dtac_tactile_attributes) / sizeof(dtac_tactile_attributes[0]);

static const char* const output_names[DTAC_OUT_COUNT] = {"rgb",   "depth",   "pressure",
                                                         "shear", "markers", "force"};

#define MAX_PIXELS (4096 * 4096)
#define MAX_MARKERS 100000

// ---- names and version
// ------------------------------------------------------------------------------

void dtac_instance_name(const mjModel* m, int instance, char* out, int len) {
  const char* nm = m->names && m->name_pluginadr ? m->names + m->name_pluginadr[instance] : "";
  if (nm && nm[0]) {
    snprintf(out, len, "%s", nm);
  } else {
    snprintf(out, len, "#%d", instance);
  }
}

void dtac_sensor_name(const mjModel* m, int sensor, char* out, int len) {
  const char* nm =
      (sensor >= 0 && m->names && m->name_sensoradr) ? m->names + m->name_sensoradr[sensor] : "";
  if (nm && nm[0]) {
    snprintf(out, len, "%s", nm);
  } else {
    snprintf(out, len, "#%d", sensor);
  }
}

int dtac_sensor_of_instance(const mjModel* m, int instance) {
  for (int i = 0; i < m->nsensor; i++) {
    if (m->sensor_type[i] == mjSENS_PLUGIN && m->sensor_plugin[i] == instance) return i;
  }
  return -1;
}

int dtac_check_version(char* err, int errlen) {
  if (mj_version() != mjVERSION_HEADER) {
    snprintf(err, errlen,
             "libdifftac was built against MuJoCo headers %d but is loaded into MuJoCo %d; "
             "rebuild difftac against this MuJoCo",
             mjVERSION_HEADER, mj_version());
    return 1;
  }
  return 0;
}

void dtac_init_abort(const mjModel* m, mjData* d, int instance, const char* msg) {
  // MuJoCo 4.0 frees the mjData of a failed init with a message of its own ("plugin->init
  // failed") and leaves the instances initialised before it allocated: here they are destroyed
  // and d freed as mj_initPlugin frees it (d was just made by mj_makeRawData, in mj_makeData or
  // mj_copyData), so that the error can carry our message and nothing leaks
  for (int j = 0; j < instance; j++) {
    const mjpPlugin* p = mjp_getPluginAtSlot(m->plugin[j]);
    if (p && p->destroy) p->destroy(d, j);
  }
  mju_free(d->buffer);
  mju_free(d->arena);
  mju_free(d);
  mju_error("%s", msg);
}

// ---- the parser
// ---------------------------------------------------------------------------------------

// length of the decimal number at p (0 if there is none): [+-] (digits [. digits] | . digits)
// [(e|E) [+-] digits], or [+-] inf / nan
static int number_len(const char* p) {
  const char* q = p;
  if (*q == '+' || *q == '-') q++;
  if (!strncmp(q, "inf", 3) || !strncmp(q, "nan", 3)) return (int)(q + 3 - p);
  int nd = 0;
  while (isdigit((unsigned char)*q)) q++, nd++;
  if (*q == '.') {
    q++;
    while (isdigit((unsigned char)*q)) q++, nd++;
  }
  if (nd == 0) return 0;
  if (*q == 'e' || *q == 'E') {
    const char* e = q + 1;
    if (*e == '+' || *e == '-') e++;
    if (!isdigit((unsigned char)*e)) return 0;
    while (isdigit((unsigned char)*e)) e++;
    q = e;
  }
  return (int)(q - p);
}

// the numbers of s: up to max of them into out; returns how many, or -1 if s is not a list of
// decimal numbers (whitespace between them only) or has more than max
static int parse_numbers(const char* s, double* out, int max) {
  const char* p = s;
  int k = 0;
  if (isspace((unsigned char)*p)) return -1;
  while (*p) {
    int len = number_len(p);
    if (len == 0 || k == max) return -1;
    if (p[len] && !isspace((unsigned char)p[len])) return -1;
    errno = 0;
    out[k++] = strtod(p, NULL);
    if (errno == ERANGE && isfinite(out[k - 1]) && out[k - 1] != 0) return -1;
    p += len;
    if (*p) {
      while (isspace((unsigned char)*p)) p++;
      if (!*p) return -1;  // trailing whitespace
    }
  }
  return k;
}

// key's n numbers into out (left as they were if the key is not given); finite: each must be
static int read_numbers(const mjModel* m, int instance, const char* key, double* out, int n,
                        int finite, char* err, int errlen) {
  const char* s = mj_getPluginConfig(m, instance, key);
  if (!s || !s[0]) return 0;  // not given: keep the default
  double tmp[64];
  if (n > 64 || parse_numbers(s, tmp, n) != n) {
    snprintf(err, errlen, "key '%s' has value '%s': expected %d number%s", key, s, n,
             n > 1 ? "s" : "");
    return 1;
  }
  for (int k = 0; k < n; k++) {
    if (finite && !isfinite(tmp[k])) {
      snprintf(err, errlen, "key '%s' has value '%s': numbers must be finite", key, s);
      return 1;
    }
    out[k] = tmp[k];
  }
  return 0;
}

// key's n integers in [lo, hi] (and their product at most maxprod when n = 2)
static int read_ints(const mjModel* m, int instance, const char* key, int* out, int n, long lo,
                     long hi, double maxprod, char* err, int errlen) {
  const char* s = mj_getPluginConfig(m, instance, key);
  if (!s || !s[0]) return 0;
  double v[2];
  int bad = parse_numbers(s, v, n) != n;
  for (int k = 0; !bad && k < n; k++) {
    bad = !isfinite(v[k]) || v[k] != floor(v[k]) || v[k] < lo || v[k] > hi || strchr(s, '.') ||
          strchr(s, 'e') || strchr(s, 'E');
  }
  if (!bad && n == 2 && v[0] * v[1] > maxprod) bad = 1;
  if (bad) {
    if (n == 1) {
      snprintf(err, errlen, "key '%s' has value '%s': expected a non-negative integer", key, s);
    } else {
      snprintf(err, errlen,
               "key '%s' has value '%s': expected two integers >= %ld with product <= %.0f", key, s,
               lo, maxprod);
    }
    return 1;
  }
  for (int k = 0; k < n; k++) out[k] = (int)v[k];
  return 0;
}

// ---- difftac.elastomer
// -------------------------------------------------------------------------------

int dtac_elastomer_parse(const mjModel* m, int instance, dtac_elastomer_def* def, char* err,
                         int errlen) {
  dtac_elastomer_def_default(def);
  dtac_gel_def* g = &def->gel;

  const char* site = mj_getPluginConfig(m, instance, "site");
  if (!site || !site[0]) {
    snprintf(err, errlen, "key 'site' is required: the name of the site holding the gel");
    return 1;
  }
  if (strlen(site) >= DTAC_NAMELEN) {
    snprintf(err, errlen, "key 'site' has value '%s': name too long", site);
    return 1;
  }
  strcpy(def->site, site);

  const char* shape = mj_getPluginConfig(m, instance, "shape");
  if (shape && shape[0] && strcmp(shape, "box") != 0) {
    snprintf(err, errlen, "key 'shape' has value '%s': supported shapes: box", shape);
    return 1;
  }
  const char* device = mj_getPluginConfig(m, instance, "device");
  if (device && device[0] && strcmp(device, "auto") != 0) {
    char* end = NULL;
    long ord = -1;
    if (strcmp(device, "cpu") == 0) {
      def->device = DTAC_DEV_CPU;
    } else if (strcmp(device, "emu") == 0) {
      def->device = DTAC_DEV_EMU;
    } else if (strcmp(device, "cuda") == 0) {
      def->device = DTAC_DEV_CUDA;
    } else if (strncmp(device, "cuda:", 5) == 0 && device[5] >= '0' && device[5] <= '9' &&
               (errno = 0, ord = strtol(device + 5, &end, 10), *end == 0) && errno == 0 &&
               ord <= 1000000) {
      def->device = DTAC_DEV_CUDA;
      def->ordinal = (int)ord;
    } else {
      snprintf(err, errlen, "key 'device' has value '%s': valid: auto, cpu, cuda, cuda:N, emu",
               device);
      return 1;
    }
  }

  const char* coupling = mj_getPluginConfig(m, instance, "coupling");
  if (coupling && coupling[0]) {
    if (strcmp(coupling, "substep") == 0) {
      def->coupling = 1;
    } else if (strcmp(coupling, "explicit") == 0) {
      def->coupling = 0;
    } else {
      snprintf(err, errlen, "key 'coupling' has value '%s': valid: substep, explicit", coupling);
      return 1;
    }
  }

  const char* integrator = mj_getPluginConfig(m, instance, "integrator");
  if (integrator && integrator[0]) {
    if (strcmp(integrator, "explicit") == 0) {
      def->integrator = DTAC_INTEGRATOR_EXPLICIT;
    } else if (strcmp(integrator, "implicit") == 0) {
      def->integrator = DTAC_INTEGRATOR_IMPLICIT;
    } else {
      snprintf(err, errlen, "key 'integrator' has value '%s': valid: explicit, implicit",
               integrator);
      return 1;
    }
  }
  const char* material = mj_getPluginConfig(m, instance, "material");
  if (material && material[0]) {
    if (strcmp(material, "neohookean") == 0) {
      def->material = DTAC_MAT_NEOHOOKEAN;
    } else if (strcmp(material, "linear") == 0) {
      def->material = DTAC_MAT_LINEAR;
    } else {
      snprintf(err, errlen, "key 'material' has value '%s': valid: neohookean, linear", material);
      return 1;
    }
    if (def->material == DTAC_MAT_LINEAR && def->integrator != DTAC_INTEGRATOR_IMPLICIT) {
      snprintf(err, errlen,
               "key 'material' has value 'linear': the linear material needs integrator "
               "'implicit' (the explicit step is Neo-Hookean)");
      return 1;
    }
  }
  if (read_numbers(m, instance, "tolerance", &def->tolerance, 1, 1, err, errlen) ||
      read_ints(m, instance, "iterations", &def->iterations, 1, 1, 1000, 0, err, errlen)) {
    return 1;
  }
  if (!(def->tolerance > 0 && def->tolerance < 1)) {
    snprintf(err, errlen, "key 'tolerance' has value '%s': expected a number in (0, 1)",
             mj_getPluginConfig(m, instance, "tolerance"));
    return 1;
  }

  if (read_numbers(m, instance, "size", g->size, 3, 0, err, errlen) ||
      read_numbers(m, instance, "resolution", &g->resolution, 1, 0, err, errlen) ||
      read_numbers(m, instance, "young", &g->young, 1, 0, err, errlen) ||
      read_numbers(m, instance, "poisson", &g->poisson, 1, 0, err, errlen) ||
      read_numbers(m, instance, "density", &g->density, 1, 0, err, errlen) ||
      read_numbers(m, instance, "damping", &g->damping, 1, 0, err, errlen) ||
      read_numbers(m, instance, "mass_damping", &g->mass_damping, 1, 0, err, errlen) ||
      read_numbers(m, instance, "friction", &g->friction, 1, 0, err, errlen) ||
      read_numbers(m, instance, "contact_stiffness", &g->contact_stiffness, 1, 0, err, errlen) ||
      read_numbers(m, instance, "contact_damping", &g->contact_damping, 1, 0, err, errlen) ||
      read_numbers(m, instance, "friction_stiffness", &g->friction_stiffness, 1, 0, err, errlen) ||
      read_numbers(m, instance, "contact_width", &g->contact_width, 1, 0, err, errlen) ||
      read_ints(m, instance, "contype", &def->contype, 1, 0, 0x7fffffff, 0, err, errlen) ||
      read_ints(m, instance, "conaffinity", &def->conaffinity, 1, 0, 0x7fffffff, 0, err, errlen)) {
    return 1;
  }
  return dtac_gel_def_check(g, err, errlen);
}

// ---- difftac.tactile
// ---------------------------------------------------------------------------------

// an optics parameter file: whitespace-separated `background r g b` and `lighting c...`
// (3 x NBASIS numbers, red row first); '#' starts a comment
static int read_optics_file(const char* path, dtac_tactile_def* def, char* err, int errlen) {
  // a regular file only: a FIFO or a device would block the load or never end
  struct stat sb;
  if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
    snprintf(err, errlen, "key 'optics_file' has value '%s': not a regular file", path);
    return 1;
  }
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
static int tactile_config(const mjModel* m, int instance, dtac_tactile_def* def, char* err,
                          int errlen) {
  dtac_tactile_def_default(def);

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

  int wh[2] = {def->width, def->height}, mk[2] = {def->marker_cols, def->marker_rows};
  if (read_ints(m, instance, "size", wh, 2, 1, MAX_PIXELS, MAX_PIXELS, err, errlen) ||
      read_numbers(m, instance, "pitch", &def->pitch, 1, 1, err, errlen) ||
      read_numbers(m, instance, "center", def->center, 2, 1, err, errlen) ||
      read_numbers(m, instance, "background", def->bg, 3, 1, err, errlen) ||
      read_numbers(m, instance, "lighting", def->coef, 3 * DTAC_OPTICS_NBASIS, 1, err, errlen) ||
      read_ints(m, instance, "markers", mk, 2, 1, MAX_MARKERS, MAX_MARKERS, err, errlen) ||
      read_numbers(m, instance, "marker_pitch", &def->marker_pitch, 1, 1, err, errlen)) {
    return 1;
  }
  def->width = wh[0];
  def->height = wh[1];
  def->marker_cols = mk[0];
  def->marker_rows = mk[1];
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

// the whole check: config, the elastomer, the marker grid on the gel; fills the gel's def
int dtac_tactile_parse(const mjModel* m, int instance, dtac_tactile_def* def, int* gel,
                       dtac_elastomer_def* edef, char* err, int errlen) {
  if (tactile_config(m, instance, def, err, errlen)) return 1;
  *gel = find_elastomer(m, def, err, errlen);
  if (*gel < 0) return 1;
  char eerr[DTAC_ERRLEN];
  if (dtac_elastomer_parse(m, *gel, edef, eerr, sizeof(eerr))) {
    snprintf(err, errlen, "key 'elastomer' has value '%s': that instance's config is bad: %.300s",
             def->elastomer, eerr);
    return 1;
  }
  // no size key: the image covers the pad's face (docs/tactile.md)
  if (def->width == 0) {
    const char* pk = mj_getPluginConfig(m, instance, "pitch");
    double npix = dtac_tactile_def_fit(def, edef->gel.size, pk && pk[0]);
    if (npix > MAX_PIXELS) {
      snprintf(err, errlen,
               "key 'pitch' has value '%s': the image that covers the %g x %g mm face of gel "
               "'%s' would need %.0f pixels (at most 4096 x 4096); give a larger pitch or a size",
               pk, 1e3 * edef->gel.size[0], 1e3 * edef->gel.size[1], def->elastomer, npix);
      return 1;
    }
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

int dtac_tactile_nparam(const mjModel* m, int instance) {
  const char* out = mj_getPluginConfig(m, instance, "output");
  return out && strcmp(out, "rgb") == 0 ? DTAC_TACTILE_NPARAM : 0;
}
