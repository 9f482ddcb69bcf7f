// api.c: the public C API over elastomer instances (include/difftac/difftac.h).
#include <string.h>

#include "difftac/difftac.h"
#include "elastomer.h"

const char* dtac_version(void) {
  return DTAC_VERSION_STRING;
}

int dtac_mujoco_header_version(void) {
  return mjVERSION_HEADER;
}

int dtac_gel_find(const mjModel* m, const char* name) {
  int id = mj_name2id(m, mjOBJ_PLUGIN, name);
  if (id < 0) return -1;
  const mjpPlugin* p = mjp_getPluginAtSlot(m->plugin[id]);
  return p && strcmp(p->name, DTAC_ELASTOMER_NAME) == 0 ? id : -1;
}

int dtac_gel_get_info(const mjModel* m, const mjData* d, int instance, dtac_gel_info* info) {
  const dtac_elastomer* e = dtac_elastomer_get(m, d, instance);
  if (!e) return -1;
  const dtac_gel_model* gm = &e->model;
  memset(info, 0, sizeof(*info));
  info->nnode = gm->nnode;
  info->ntet = gm->ntet;
  info->nsurf = gm->nsurf;
  for (int k = 0; k < 3; k++) info->ncell[k] = gm->n[k];
  info->nsub = e->nsub;
  info->dt_sub = m->opt.timestep / e->nsub;
  info->dt_stable = gm->dt_stable;
  info->omega_max = gm->omega_max;
  info->mass = gm->total_mass;
  info->site = e->site;
  info->body = e->body;
  info->ncontact = e->ncontact;
  info->nwarning = e->nwarning;
  info->nsub_last = e->nsub_last;
  info->integrator = e->def.integrator;
  info->iterations = e->irep.iterations;
  info->residual = e->irep.residual;
  info->nnonconverged = e->nnonconverged;
  return 0;
}

const mjtNum* dtac_gel_positions(const mjModel* m, const mjData* d, int instance) {
  const dtac_elastomer* e = dtac_elastomer_get(m, d, instance);
  return e ? d->plugin_state + m->plugin_stateadr[instance] + e->L.x : NULL;
}

const mjtNum* dtac_gel_rest_positions(const mjModel* m, const mjData* d, int instance) {
  const dtac_elastomer* e = dtac_elastomer_get(m, d, instance);
  return e ? e->model.X : NULL;
}

int dtac_gel_contact_wrench(const mjModel* m, const mjData* d, int instance, mjtNum wrench[6]) {
  const dtac_elastomer* e = dtac_elastomer_get(m, d, instance);
  if (!e) return -1;
  memcpy(wrench, e->wrench, sizeof(mjtNum) * 6);
  return 0;
}

int dtac_gel_contact_forces(const mjModel* m, const mjData* d, int instance, mjtNum* f) {
  const dtac_elastomer* e = dtac_elastomer_get(m, d, instance);
  if (!e) return -1;
  memcpy(f, e->contact_force, sizeof(mjtNum) * 3 * e->model.nnode);
  return e->model.nnode;
}

mjtNum dtac_gel_elastic_energy(const mjModel* m, const mjData* d, int instance) {
  const dtac_elastomer* e = dtac_elastomer_get(m, d, instance);
  if (!e) return 0;
  return dtac_gel_strain_energy(&e->model, d->plugin_state + m->plugin_stateadr[instance]);
}

mjtNum dtac_gel_kinetic_energy(const mjModel* m, const mjData* d, int instance) {
  const dtac_elastomer* e = dtac_elastomer_get(m, d, instance);
  if (!e) return 0;
  return dtac_gel_kinetic(&e->model, d->plugin_state + m->plugin_stateadr[instance] + e->L.v);
}

int dtac_cuda_available(void) {
  return dtac_dev_cuda_count();
}
