// tactile_deriv.c: the tactile sensor's derivative callbacks (derivative.h): its VJP into the
// gel's state and contact forces, its analytic rows of the transition's C, and its optics
// parameters (rgb sensors).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "derivative.h"
#include "tactile.h"

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

// the sensor's rows of C, analytically: the output's tangent (dtac_tactile_jvp) for the tangents
// of the site pose and of the gel's contact forces (dtac_elastomer_contact_jvp) that each rigid
// direction causes with the gel held; those come from the kinematics (the site's and the
// colliders' frames, differenced centrally). A tactile sensor reads no ctrl or act.
static int ta_sensor_rows(const mjModel* m, mjData* w, int instance, const mjtNum* s, int sig,
                          mjtNum eps, mjtNum* C) {
  dtac_tactile* t = dtac_tactile_get(m, w, instance);
  if (!t || t->sensor < 0) return 0;
  int nv = m->nv, na = m->na, ndx = 2 * nv + na;
  mj_setState(m, w, s, sig);
  mj_forward(m, w);  // the force evaluation's collider lists at this state
  dtac_elastomer* e = dtac_elastomer_get(m, w, t->gel);
  if (!e) return 0;
  int ncol = e->ncol, nout = m->sensor_dim[t->sensor], adr = m->sensor_adr[t->sensor];
  mjtNum* dsite = (mjtNum*)calloc(12 * (size_t)(2 * nv + 1), sizeof(mjtNum));
  double* dcol = (double*)calloc(18 * (size_t)(2 * nv) * (ncol + 1), sizeof(double));
  double* fr = (double*)malloc(sizeof(double) * 2 * 18 * (ncol + 1));
  mjtNum* sp = (mjtNum*)malloc(sizeof(mjtNum) * 2 * 12);
  mjtNum* dq = (mjtNum*)malloc(sizeof(mjtNum) * (nv + 1));
  double* df = (double*)malloc(sizeof(double) * 3 * e->model.nnode);
  mjtNum* dy = (mjtNum*)malloc(sizeof(mjtNum) * (nout + 1));
  int ok = dsite && dcol && fr && sp && dq && df && dy;
  // tangents of the site's pose and the colliders' frames along each qpos and qvel direction
  for (int j = 0; ok && j < 2 * nv; j++) {
    for (int sgn = 0; sgn < 2; sgn++) {
      mj_setState(m, w, s, sig);
      dtac_rigid_perturb(m, w, dq, j, sgn ? -eps : eps);
      mj_kinematics(m, w);
      mj_comPos(m, w);
      mj_comVel(m, w);
      mju_copy(sp + sgn * 12, w->site_xpos + 3 * e->site, 3);
      mju_copy(sp + sgn * 12 + 3, w->site_xmat + 9 * e->site, 9);
      dtac_elastomer_collider_frames(m, w, e, fr + sgn * 18 * (ncol + 1));
    }
    for (int k = 0; k < 12; k++) dsite[12 * j + k] = (sp[k] - sp[12 + k]) / (2 * eps);
    for (int k = 0; k < 18 * ncol; k++) {
      dcol[(size_t)j * 18 * (ncol + 1) + k] = (fr[k] - fr[18 * (ncol + 1) + k]) / (2 * eps);
    }
  }
  // back at the state itself: the output's tangents
  if (ok) {
    mj_setState(m, w, s, sig);
    mj_forward(m, w);
  }
  for (int j = 0; ok && j < ndx; j++) {
    if (j < 2 * nv) {
      dtac_elastomer_contact_jvp(m, w, e, dcol + (size_t)j * 18 * (ncol + 1), df);
      dtac_tactile_jvp(m, w, instance, dsite + 12 * j, df, dy);
    } else {
      mju_zero(dy, nout);
    }
    for (int k = 0; k < nout; k++) C[(size_t)(adr + k) * ndx + j] = dy[k];
  }
  free(dsite), free(dcol), free(fr), free(sp), free(dq), free(df), free(dy);
  return ok ? 0 : -1;
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

void dtac_tactile_register_derivative(int (*nparam)(const mjModel* m, int instance)) {
  dtac_derivative der;
  memset(&der, 0, sizeof(der));
  der.plugin = DTAC_TACTILE_NAME;
  der.freeze = ta_freeze;
  der.sensor_vjp = ta_sensor_vjp;
  der.sensor_rows = ta_sensor_rows;
  der.nparam = nparam;
  der.param_names = tactile_param_names;
  der.param_get = ta_param_get;
  der.param_set = ta_param_set;
  dtac_register_derivative(&der);
}
