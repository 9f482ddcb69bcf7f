// derivative.c: the derivative registry, the parameters it exposes (dtac_param_*), and the
// helpers every plugin's derivative and the tape share (derivative.h).
#include "derivative.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "difftac/difftac.h"

// ---- registry
// -------------------------------------------------------------------------------------------

// written only while the library loads (plugin/register.c), read-only afterwards
static dtac_derivative registry[DTAC_MAX_DERIVATIVE];
static int nregistry = 0;

int dtac_register_derivative(const dtac_derivative* der) {
  if (nregistry >= DTAC_MAX_DERIVATIVE) return -1;
  registry[nregistry++] = *der;
  return 0;
}

const dtac_derivative* dtac_derivative_of(const mjModel* m, int instance) {
  if (instance < 0 || instance >= m->nplugin) return NULL;
  const mjpPlugin* p = mjp_getPluginAtSlot(m->plugin[instance]);
  if (!p) return NULL;
  for (int i = 0; i < nregistry; i++) {
    if (strcmp(registry[i].plugin, p->name) == 0) return registry + i;
  }
  return NULL;
}

// ---- parameters
// -----------------------------------------------------------------------------------------

// first parameter of instance i (adr, nplugin; -1: none); returns the count
int dtac_param_layout(const mjModel* m, int* adr) {
  int n = 0;
  for (int i = 0; i < m->nplugin; i++) {
    const dtac_derivative* der = dtac_derivative_of(m, i);
    int k = der && der->nparam ? der->nparam(m, i) : 0;
    if (adr) adr[i] = k > 0 ? n : -1;
    n += k;
  }
  return n;
}

// the instance and local index of parameter i
static int param_locate(const mjModel* m, int i, int* instance) {
  if (i < 0) return -1;
  for (int p = 0; p < m->nplugin; p++) {
    const dtac_derivative* der = dtac_derivative_of(m, p);
    int k = der && der->nparam ? der->nparam(m, p) : 0;
    if (i < k) {
      *instance = p;
      return i;
    }
    i -= k;
  }
  return -1;
}

int dtac_param_count(const mjModel* m) {
  return dtac_param_layout(m, NULL);
}

int dtac_param_name(const mjModel* m, int i, char* name, int len) {
  int inst, k = param_locate(m, i, &inst);
  if (k < 0) return -1;
  const char* nm = m->names + m->name_pluginadr[inst];
  // a sensor plugin declared inside <sensor> has no instance name: use the sensor's
  for (int s = 0; !nm[0] && s < m->nsensor; s++) {
    if (m->sensor_type[s] == mjSENS_PLUGIN && m->sensor_plugin[s] == inst) {
      nm = m->names + m->name_sensoradr[s];
    }
  }
  if (nm[0]) {
    snprintf(name, len, "%s/%s", nm, dtac_derivative_of(m, inst)->param_names[k]);
  } else {
    snprintf(name, len, "#%d/%s", inst, dtac_derivative_of(m, inst)->param_names[k]);
  }
  return 0;
}

int dtac_param_find(const mjModel* m, const char* name) {
  char buf[256];
  int n = dtac_param_count(m);
  for (int i = 0; i < n; i++) {
    if (dtac_param_name(m, i, buf, sizeof(buf)) == 0 && strcmp(buf, name) == 0) return i;
  }
  return -1;
}

mjtNum dtac_param_get(const mjModel* m, const mjData* d, int i) {
  int inst, k = param_locate(m, i, &inst);
  if (k < 0) return NAN;
  return dtac_derivative_of(m, inst)->param_get(m, d, inst, k);
}

int dtac_param_set(const mjModel* m, mjData* d, int i, mjtNum value) {
  int inst, k = param_locate(m, i, &inst);
  if (k < 0) return -1;
  return dtac_derivative_of(m, inst)->param_set(m, d, inst, k, value);
}

// ---- shared helpers
// ------------------------------------------------------------------------------------

int dtac_blowup_count(const mjModel* m, const mjData* d) {
  int n = d->warning[mjWARN_BADQPOS].number + d->warning[mjWARN_BADQVEL].number +
          d->warning[mjWARN_BADQACC].number;
  for (int i = 0; i < m->nplugin; i++) {
    const dtac_derivative* der = dtac_derivative_of(m, i);
    if (der && der->nwarning) n += der->nwarning(m, d, i);
  }
  return n;
}

// perturbs input j of the rigid step at d (qpos tangent, qvel, act, ctrl, qfrc) by e
void dtac_rigid_perturb(const mjModel* m, mjData* d, mjtNum* dq, int j, mjtNum e) {
  int nv = m->nv, na = m->na, nu = m->nu;
  if (j < nv) {
    mju_zero(dq, nv);
    dq[j] = e;
    mj_integratePos(m, d->qpos, dq, 1);
  } else if (j < 2 * nv) {
    d->qvel[j - nv] += e;
  } else if (j < 2 * nv + na) {
    d->act[j - 2 * nv] += e;
  } else if (j < 2 * nv + na + nu) {
    d->ctrl[j - 2 * nv - na] += e;
  } else {
    d->qfrc_applied[j - 2 * nv - na - nu] += e;
  }
}
