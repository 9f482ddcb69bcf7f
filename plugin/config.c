// config.c: the MJCF config keys of difftac.elastomer, their defaults and parsing. The keys are
// named here only; docs/mjcf.md documents each.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elastomer.h"

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
                                                 "coupling"};
const int dtac_elastomer_nattribute =
    sizeof(dtac_elastomer_attributes) / sizeof(dtac_elastomer_attributes[0]);

// parses exactly n whitespace-separated finite-or-not numbers; 0 on success
static int parse_numbers(const char* s, double* out, int n) {
  const char* p = s;
  for (int i = 0; i < n; i++) {
    char* end;
    errno = 0;
    out[i] = strtod(p, &end);
    if (end == p || errno == ERANGE) return 1;
    p = end;
  }
  while (*p == ' ' || *p == '\t' || *p == '\n') p++;
  return *p != 0;
}

static int read_numbers(const mjModel* m, int instance, const char* key, double* out, int n,
                        char* err, int errlen) {
  const char* s = mj_getPluginConfig(m, instance, key);
  if (!s || !s[0]) return 0;  // not given: keep the default
  if (parse_numbers(s, out, n)) {
    snprintf(err, errlen, "key '%s' has value '%s': expected %d number%s", key, s, n,
             n > 1 ? "s" : "");
    return 1;
  }
  return 0;
}

static int read_int(const mjModel* m, int instance, const char* key, int* out, char* err,
                    int errlen) {
  const char* s = mj_getPluginConfig(m, instance, key);
  if (!s || !s[0]) return 0;
  char* end;
  long v = strtol(s, &end, 10);
  while (*end == ' ') end++;
  if (end == s || *end || v < 0 || v > 0x7fffffff) {
    snprintf(err, errlen, "key '%s' has value '%s': expected a non-negative integer", key, s);
    return 1;
  }
  *out = (int)v;
  return 0;
}

int dtac_elastomer_parse(const mjModel* m, int instance, dtac_elastomer_def* def, char* err,
                         int errlen) {
  memset(def, 0, sizeof(*def));
  dtac_gel_def_default(&def->gel);
  def->contype = 1;
  def->conaffinity = 1;
  def->coupling = 1;
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
  def->device = -1;  // auto
  def->ordinal = 0;
  if (device && device[0] && strcmp(device, "auto") != 0) {
    char* end = NULL;
    if (strcmp(device, "cpu") == 0) {
      def->device = DTAC_DEV_CPU;
    } else if (strcmp(device, "emu") == 0) {
      def->device = DTAC_DEV_EMU;
    } else if (strcmp(device, "cuda") == 0) {
      def->device = DTAC_DEV_CUDA;
    } else if (strncmp(device, "cuda:", 5) == 0 && device[5] >= '0' && device[5] <= '9' &&
               (def->ordinal = (int)strtol(device + 5, &end, 10), *end == 0)) {
      def->device = DTAC_DEV_CUDA;
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

  if (read_numbers(m, instance, "size", g->size, 3, err, errlen) ||
      read_numbers(m, instance, "resolution", &g->resolution, 1, err, errlen) ||
      read_numbers(m, instance, "young", &g->young, 1, err, errlen) ||
      read_numbers(m, instance, "poisson", &g->poisson, 1, err, errlen) ||
      read_numbers(m, instance, "density", &g->density, 1, err, errlen) ||
      read_numbers(m, instance, "damping", &g->damping, 1, err, errlen) ||
      read_numbers(m, instance, "mass_damping", &g->mass_damping, 1, err, errlen) ||
      read_numbers(m, instance, "friction", &g->friction, 1, err, errlen) ||
      read_numbers(m, instance, "contact_stiffness", &g->contact_stiffness, 1, err, errlen) ||
      read_numbers(m, instance, "contact_damping", &g->contact_damping, 1, err, errlen) ||
      read_numbers(m, instance, "friction_stiffness", &g->friction_stiffness, 1, err, errlen) ||
      read_numbers(m, instance, "contact_width", &g->contact_width, 1, err, errlen) ||
      read_int(m, instance, "contype", &def->contype, err, errlen) ||
      read_int(m, instance, "conaffinity", &def->conaffinity, err, errlen)) {
    return 1;
  }
  return dtac_gel_def_check(g, err, errlen);
}
