// tactile_adj.c: the reverse (VJP) and tangent (JVP) of a tactile sensor's output, beside its
// forward (tactile.c): markers, force, and the images through the rasteriser's adjoints.
#include <math.h>
#include <string.h>

#include "tactile.h"

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
  dtac_tactile_site_points(t, key);
  if (def->output == DTAC_OUT_MARKERS) {
    for (int k = 0; k < t->nmarker; k++) {
      dtac_marker_interp_adj(t, k, y_bar + 2 * k, 2, def->pitch, p_bar);
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
        dtac_tactile_site_forces(t, key);
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
  dtac_elastomer* e = t->sensor < 0 ? NULL : dtac_tactile_inputs(m, d, t);
  if (!e) return 0;  // tactile_compute writes zeros or nothing: no gradient
  const double* x = d->plugin_state + m->plugin_stateadr[t->gel] + e->L.x;
  evaluate_adj(t, e, t->keynew, x, e->contact_force, y_bar, x_bar, f_bar, param_bar, site_bar);
  return 0;
}

int dtac_tactile_jvp(const mjModel* m, mjData* d, int instance, const double dsite[12],
                     const double* df, mjtNum* dy) {
  dtac_tactile* t = dtac_tactile_get(m, d, instance);
  if (!t) return -1;
  dtac_elastomer* e = t->sensor < 0 ? NULL : dtac_tactile_inputs(m, d, t);
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
  dtac_tactile_site_points(t, key);
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
      dtac_marker_interp(t, k, dp, 2, def->pitch, o);
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
      dtac_tactile_site_forces(t, key);
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
