

// gel.c: creation of a gel model from its definition: the tetrahedral mesh of the pad, rest
// shapes, lumped masses, contact constants, and the stable explicit substep.
#include "gel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dtac_gel_def_default(dtac_gel_def* def) {
  memset(def, 0, sizeof(*def));
  def->shape = DTAC_SHAPE_BOX;
  // GelSight Mini gel pad
  def->size[0] = 0.02075;
  def->size[1] = 0.02525;
  def->size[2] = 0.004;
  def->resolution = 0.001;
  def->young = 3e5;
  def->poisson = 0.45;
  def->density = 1000;
  def->damping = -1;
  def->mass_damping = -1;
  def->friction = 1.0;
  def->contact_stiffness = -1;
  def->contact_damping = 0.3;
  def->friction_stiffness = -1;
  def->contact_width = -1;
}

static int bad(char* err, size_t errlen, const char* key, double value, const char* range) {
  snprintf(err, errlen, "key '%s' has value %g; valid range: %s", key, value, range);
  return 1;
}

int dtac_gel_def_check(const dtac_gel_def* def, char* err, size_t errlen) {
  for (int k = 0; k < 3; k++) {
    if (!isfinite(def->size[k]) || def->size[k] <= 0) {
      return bad(err, errlen, "size", def->size[k], "three finite extents > 0 (m)");
    }
  }
  if (!isfinite(def->resolution) || def->resolution <= 0) {
    return bad(err, errlen, "resolution", def->resolution, "finite > 0 (m)");
  }
  if (!isfinite(def->young) || def->young <= 0) {
    return bad(err, errlen, "young", def->young, "finite > 0 (Pa)");
  }
  if (!isfinite(def->poisson) || def->poisson <= -1 || def->poisson >= 0.5) {
    return bad(err, errlen, "poisson", def->poisson, "(-1, 0.5)");
  }
  if (!isfinite(def->density) || def->density <= 0) {
    return bad(err, errlen, "density", def->density, "finite > 0 (kg/m^3)");
  }
  if (!isfinite(def->damping) || (def->damping < 0 && def->damping != -1)) {
    return bad(err, errlen, "damping", def->damping, "finite >= 0 (s), or -1 for the default");
  }
  if (!isfinite(def->mass_damping) || (def->mass_damping < 0 && def->mass_damping != -1)) {
    return bad(err, errlen, "mass_damping", def->mass_damping,
               "finite >= 0 (1/s), or -1 for the default");
  }
  if (!isfinite(def->friction) || def->friction < 0) {
    return bad(err, errlen, "friction", def->friction, "finite >= 0");
  }
  if (!isfinite(def->contact_stiffness) ||
      (def->contact_stiffness <= 0 && def->contact_stiffness != -1)) {
    return bad(err, errlen, "contact_stiffness", def->contact_stiffness,
               "finite > 0 (Pa/m), or -1 for the default");
  }
  if (!isfinite(def->contact_damping) || def->contact_damping < 0) {
    return bad(err, errlen, "contact_damping", def->contact_damping, "finite >= 0 (ratio)");
  }
  if (!isfinite(def->friction_stiffness) ||
      (def->friction_stiffness <= 0 && def->friction_stiffness != -1)) {
    return bad(err, errlen, "friction_stiffness", def->friction_stiffness,
               "finite > 0 (Pa/m), or -1 for the default");
  }
  if (!isfinite(def->contact_width) || (def->contact_width <= 0 && def->contact_width != -1)) {
    return bad(err, errlen, "contact_width", def->contact_width,
               "finite > 0 (m), or -1 for the default");
  }
  // mesh size: computed in double so that absurd values cannot overflow
  double nn = 1;
  for (int k = 0; k < 3; k++) {
    double c = fmax(1, round(def->size[k] / def->resolution));
    nn *= c + 1;
  }
  if (nn > DTAC_MAX_NODES) {
    snprintf(err, errlen,
             "key 'resolution' has value %g: the mesh would have %.3g nodes, more than the "
             "limit of %d; use a coarser resolution",
             def->resolution, nn, DTAC_MAX_NODES);
    return 1;
  }
  return 0;
}

static void counts_of_cells(const int n[3], int* nnode, int* ntet, int* nsurf) {
  int layer = (n[0] + 1) * (n[1] + 1);
  int inner = (n[0] - 1) * (n[1] - 1);
  *nnode = layer * (n[2] + 1);
  *ntet = 6 * n[0] * n[1] * n[2];
  *nsurf = (n[2] - 1) * (layer - inner) + layer;
}

void dtac_gel_counts(const dtac_gel_def* def, int n[3], int* nnode, int* ntet, int* nsurf) {
  for (int k = 0; k < 3; k++) {
    n[k] = (int)fmax(1, round(def->size[k] / def->resolution));
  }
  counts_of_cells(n, nnode, ntet, nsurf);
}

dtac_state_layout dtac_gel_state_layout(const dtac_gel_model* gm) {
  dtac_state_layout L;
  L.x = 0;
  L.v = 3 * gm->nnode;
  L.anchor = 6 * gm->nnode;
  L.placed = 6 * gm->nnode + 4 * gm->nsurf;
  L.size = L.placed + 1;
  return L;
}

// ---- mesh
// ----------------------------------------------------------------------------------------

static int node_id(const int n[3], int i, int j, int k) {
  return i + (n[0] + 1) * (j + (n[1] + 1) * k);
}

// structured grid of the box, each cell split into the 6 tets of its Kuhn triangulation
// (paths 000 -> 111 along the axes in each order), which is conforming across cells
static void make_box_mesh(dtac_gel_model* gm) {
  const int* n = gm->n;
  for (int k = 0; k <= n[2]; k++) {
    for (int j = 0; j <= n[1]; j++) {
      for (int i = 0; i <= n[0]; i++) {
        double* X = gm->X + 3 * node_id(n, i, j, k);
        X[0] = gm->coord[0][i];
        X[1] = gm->coord[1][j];
        X[2] = gm->coord[2][k];
      }
    }
  }
  static const int perm[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  int t = 0;
  for (int k = 0; k < n[2]; k++) {
    for (int j = 0; j < n[1]; j++) {
      for (int i = 0; i < n[0]; i++) {
        for (int p = 0; p < 6; p++) {
          int c[3] = {0, 0, 0};
          int* tv = gm->tet + 4 * t;
          tv[0] = node_id(n, i, j, k);
          for (int s = 0; s < 3; s++) {
            c[perm[p][s]] = 1;
            tv[s + 1] = node_id(n, i + c[0], j + c[1], k + c[2]);
          }
          t++;
        }
      }
    }
  }
}

// contact nodes: every boundary node but the back face, with tributary areas (1/4 of each
// boundary quad they bound)
static void make_surface(dtac_gel_model* gm) {
  const int* n = gm->n;
  int* slot = (int*)malloc(sizeof(int) * gm->nnode);
  for (int a = 0; a < gm->nnode; a++) slot[a] = -1;
  int ns = 0;
  for (int k = 1; k <= n[2]; k++) {
    for (int j = 0; j <= n[1]; j++) {
      for (int i = 0; i <= n[0]; i++) {
        if (k == n[2] || i == 0 || i == n[0] || j == 0 || j == n[1]) {
          int id = node_id(n, i, j, k);
          slot[id] = ns;
          gm->surf[ns] = id;
          gm->surf_area[ns] = 0;
          ns++;
        }
      }
    }
  }
  // faces: axis a at index 0 or n[a] (the back face z = 0 excluded)
  for (int a = 0; a < 3; a++) {
    int b = (a + 1) % 3, c = (a + 2) % 3;
    for (int side = 0; side < 2; side++) {
      if (a == 2 && side == 0) continue;
      for (int ib = 0; ib < n[b]; ib++) {
        for (int ic = 0; ic < n[c]; ic++) {
          double quarter = 0.25 * (gm->coord[b][ib + 1] - gm->coord[b][ib]) *
                           (gm->coord[c][ic + 1] - gm->coord[c][ic]);
          for (int q = 0; q < 4; q++) {
            int idx[3];
            idx[a] = side ? n[a] : 0;
            idx[b] = ib + (q & 1);
            idx[c] = ic + (q >> 1);
            // a back-face corner is held by the body: its share goes to the node above it
            int s = slot[node_id(n, idx[0], idx[1], idx[2])];
            if (s < 0 && idx[2] == 0) s = slot[node_id(n, idx[0], idx[1], 1)];
            if (s >= 0) gm->surf_area[s] += quarter;
          }
        }
      }
    }
  }
  free(slot);
}

// node -> incident tets, for the gather that sums element forces without atomics
static void make_incidence(dtac_gel_model* gm) {
  int* cnt = gm->node_tetadr;
  memset(cnt, 0, sizeof(int) * (gm->nnode + 1));
  for (int t = 0; t < 4 * gm->ntet; t++) cnt[gm->tet[t] + 1]++;
  for (int a = 0; a < gm->nnode; a++) cnt[a + 1] += cnt[a];
  int* fill = (int*)malloc(sizeof(int) * gm->nnode);
  memcpy(fill, cnt, sizeof(int) * gm->nnode);
  for (int t = 0; t < 4 * gm->ntet; t++) gm->node_tet[fill[gm->tet[t]]++] = t;
  free(fill);
}

// ---- stability
// ---------------------------------------------------------------------------------------

// the largest stable substep from the mesh's highest frequency (omega_max), the stiffest
// friction spring and the damping: symplectic Euler on a damped oscillator is stable for
// dt < (2/w)(sqrt(1+z^2) - z) with w^2 = wK^2 + wt^2 (friction), 2 z w = beta wK^2 + alpha
// strain of the pad under its own weight at one standard gravity (whatever the model's gravity:
// a gel is accelerated by its finger too), rho g h / E
static double self_weight_strain(const dtac_gel_model* gm) {
  return gm->def.density * 9.81 * gm->def.size[2] / gm->def.young;
}

static void stable_step(dtac_gel_model* gm) {
  double wc2 = 0;
  for (int s = 0; s < gm->nsurf; s++) {
    wc2 = fmax(wc2, gm->surf_param[s].kt / gm->mass[gm->surf[s]]);
  }
  double wk2 = gm->omega_max * gm->omega_max;
  gm->omega_contact = sqrt(wc2);
  double w = sqrt(wk2 + wc2);
  double z = (gm->mat.beta * wk2 + gm->alpha) / (2 * w);
  // (sqrt(1+z^2) - z) written as 1 / (hypot(1, z) + z): no overflow nor cancellation at large z
  gm->dt_stable = 0.9 * 2 / (w * (hypot(1, z) + z));
}


// rigid mode j of the site's body at a point X of the gel frame: translation e_j (j < 3) or
// rotation e_(j-3) x X about the site origin
static void rigid_mode(int j, const double X[3], double u[3]) {
  u[0] = u[1] = u[2] = 0;
  if (j < 3) {
    u[j] = 1;
    return;
  }
  double e[3] = {0, 0, 0};
  e[j - 3] = 1;
  dtac_cross3(u, e, X);
}

// back_K and back_M (gel.h): the back tets' linear elastic stiffness and the free nodes' mass
// against the six rigid motions of the back face, by applying each mode once (back tets only)
static void back_rigid(dtac_gel_model* gm) {
  dtac_material lin = gm->mat;
  lin.beta = 1;
  const double I[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  memset(gm->back_K, 0, sizeof(gm->back_K));
  memset(gm->back_M, 0, sizeof(gm->back_M));
  for (int j = 0; j < 6; j++) {
    for (int b = 0; b < gm->nback_tet; b++) {
      int t = gm->back_tet[b];
      const int* tv = gm->tet + 4 * t;
      double u[12], Fd[9], P[9], tf[12];
      for (int q = 0; q < 4; q++) {
        if (gm->fixed[tv[q]]) {
          rigid_mode(j, gm->X + 3 * tv[q], u + 3 * q);
        } else {
          u[3 * q] = u[3 * q + 1] = u[3 * q + 2] = 0;
        }
      }
      dtac_tet_defgrad(u, u + 3, u + 6, u + 9, gm->Dm_inv + 9 * t, Fd);
      dtac_kv_stress(&lin, I, Fd, P);
      dtac_tet_scatter_stress(P, gm->Dm_inv + 9 * t, gm->vol[t], tf);
      // tf is the elastic force -K u on the tet's nodes: K_ij = sum over fixed nodes u_i . K u_j
      for (int q = 0; q < 4; q++) {
        if (!gm->fixed[tv[q]]) continue;
        for (int i = 0; i < 6; i++) {
          double ui[3];
          rigid_mode(i, gm->X + 3 * tv[q], ui);
          gm->back_K[6 * i + j] -= dtac_dot3(ui, tf + 3 * q);
        }
      }
    }
    for (int a = 0; a < gm->nnode; a++) {
      if (gm->fixed[a]) continue;
      double uj[3], ui[3];
      rigid_mode(j, gm->X + 3 * a, uj);
      for (int i = 0; i < 6; i++) {
        rigid_mode(i, gm->X + 3 * a, ui);
        gm->back_M[6 * i + j] += gm->mass[a] * dtac_dot3(ui, uj);
      }
    }
  }
}

int dtac_gel_substeps(const dtac_gel_model* gm, double timestep) {
  // in double, so that a stable substep of 0, a denormal or NaN cannot overflow the int
  double ns = ceil(timestep / gm->dt_stable);
  if (!(ns <= DTAC_MAX_SUBSTEPS)) return DTAC_MAX_SUBSTEPS + 1;
  return ns < 1 ? 1 : (int)ns;
}

// ---- creation
// ------------------------------------------------------------------------------------------

int dtac_gel_model_make(dtac_gel_model* gm, const dtac_gel_def* def, int nofixed, double timestep,
                        char* err, size_t errlen) {
  return dtac_gel_model_make_grid(gm, def, NULL, NULL, nofixed, timestep, err, errlen);
}

int dtac_gel_model_make_grid(dtac_gel_model* gm, const dtac_gel_def* def, const int ncell[3],
                             const double* const coords[3], int nofixed, double timestep, char* err,
                             size_t errlen) {
  memset(gm, 0, sizeof(*gm));
  if (dtac_gel_def_check(def, err, errlen)) return 1;
  gm->def = *def;
  if (coords) {
    for (int k = 0; k < 3; k++) gm->n[k] = ncell[k];
    counts_of_cells(gm->n, &gm->nnode, &gm->ntet, &gm->nsurf);
  } else {
    dtac_gel_counts(def, gm->n, &gm->nnode, &gm->ntet, &gm->nsurf);
  }
  int nn = gm->nnode, nt = gm->ntet, ns = gm->nsurf;
  // grid coordinates: uniform over the box (x, y centred, z from the back face) unless given
  for (int k = 0; k < 3; k++) {
    gm->coord[k] = (double*)malloc(sizeof(double) * (gm->n[k] + 1));
    if (!gm->coord[k]) {
      dtac_gel_model_free(gm);
      snprintf(err, errlen, "out of memory");
      return 1;
    }
    for (int i = 0; i <= gm->n[k]; i++) {
      gm->coord[k][i] =
          coords ? coords[k][i] : (k < 2 ? -0.5 * def->size[k] : 0) + def->size[k] * i / gm->n[k];
    }
  }
  gm->lock = (unsigned char*)calloc(nn, 1);
  gm->X = (double*)malloc(sizeof(double) * 3 * nn);
  gm->tet = (int*)malloc(sizeof(int) * 4 * nt);
  gm->Dm_inv = (double*)malloc(sizeof(double) * 9 * nt);
  gm->vol = (double*)malloc(sizeof(double) * nt);
  gm->mass = (double*)calloc(nn, sizeof(double));
  gm->inv_mass = (double*)calloc(nn, sizeof(double));
  gm->fixed = (unsigned char*)calloc(nn, 1);
  gm->fixed_id = (int*)malloc(sizeof(int) * nn);
  gm->back_tet = (int*)malloc(sizeof(int) * nt);
  gm->node_tetadr = (int*)malloc(sizeof(int) * (nn + 1));
  gm->node_tet = (int*)malloc(sizeof(int) * 4 * nt);
  gm->surf = (int*)malloc(sizeof(int) * ns);
  gm->node_surf = (int*)malloc(sizeof(int) * nn);
  gm->surf_area = (double*)malloc(sizeof(double) * ns);
  gm->surf_param = (dtac_contact_node_param*)malloc(sizeof(dtac_contact_node_param) * ns);
  if (!gm->lock || !gm->X || !gm->tet || !gm->Dm_inv || !gm->vol || !gm->mass || !gm->inv_mass ||
      !gm->fixed || !gm->fixed_id || !gm->back_tet || !gm->node_tetadr || !gm->node_tet ||
      !gm->surf || !gm->node_surf ||
      !gm->surf_area || !gm->surf_param) {
    dtac_gel_model_free(gm);
    snprintf(err, errlen, "out of memory for a mesh of %d nodes", nn);
    return 1;
  }
  make_box_mesh(gm);
  make_surface(gm);
  for (int a = 0; a < nn; a++) gm->node_surf[a] = -1;
  for (int s = 0; s < ns; s++) gm->node_surf[gm->surf[s]] = s;

  // rest shapes and lumped masses from element volumes
  for (int t = 0; t < nt; t++) {
    const int* tv = gm->tet + 4 * t;
    double v = dtac_tet_rest(gm->X + 3 * tv[0], gm->X + 3 * tv[1], gm->X + 3 * tv[2],
                             gm->X + 3 * tv[3], gm->Dm_inv + 9 * t);
    if (v < 0) {
      // orient positively: swap two vertices
      int tmp = gm->tet[4 * t + 2];
      gm->tet[4 * t + 2] = gm->tet[4 * t + 3];
      gm->tet[4 * t + 3] = tmp;
      v = dtac_tet_rest(gm->X + 3 * tv[0], gm->X + 3 * tv[1], gm->X + 3 * tv[2], gm->X + 3 * tv[3],
                        gm->Dm_inv + 9 * t);
    }
    gm->vol[t] = v;
    for (int q = 0; q < 4; q++) gm->mass[tv[q]] += 0.25 * def->density * v;
  }
  make_incidence(gm);  // after orientation fixed the local vertex slots
  for (int a = 0; a < nn; a++) {
    gm->total_mass += gm->mass[a];
    gm->fixed[a] = !nofixed && gm->X[3 * a + 2] == 0;
    if (gm->fixed[a]) {
      gm->fixed_id[gm->nfixed++] = a;
    } else {
      gm->inv_mass[a] = 1 / gm->mass[a];
    }
  }
  for (int t = 0; t < nt; t++) {
    const int* tv = gm->tet + 4 * t;
    if (gm->fixed[tv[0]] || gm->fixed[tv[1]] || gm->fixed[tv[2]] || gm->fixed[tv[3]])
      gm->back_tet[gm->nback_tet++] = t;
  }
  dtac_material_set(&gm->mat, def->young, def->poisson, 0);

  // highest mode of the mesh; stiffness-proportional damping defaults to a 10% damping ratio
  // there (it damps the mesh-scale modes), mass-proportional damping relative to the site's
  // body to 30% at the pad's first shear mode, w1 = (pi/2) c_s / thickness
  double wk2 = dtac_gel_max_eig(gm) * 1.05;
  gm->omega_max = sqrt(wk2);
  back_rigid(gm);
  double beta = def->damping >= 0 ? def->damping : 0.2 / gm->omega_max;
  gm->mat.beta = beta;
  double w1 = 0.5 * DTAC_PI * sqrt(gm->mat.mu / def->density) / def->size[2];
  gm->alpha = def->mass_damping >= 0 ? def->mass_damping : 2 * 0.3 * w1;

  // contact constants per node, from stiffness per area; the default puts the stiffest contact
  // spring at half the gel's highest frequency, so that contact does not shorten the substep
  double hmin = INFINITY;
  for (int k = 0; k < 3; k++) {
    for (int i = 0; i < gm->n[k]; i++) hmin = fmin(hmin, gm->coord[k][i + 1] - gm->coord[k][i]);
  }
  double m_per_area = INFINITY;
  for (int s = 0; s < ns; s++) {
    m_per_area = fmin(m_per_area, gm->mass[gm->surf[s]] / gm->surf_area[s]);
  }
  // normal contact is integrated implicitly per node, so its stiffness does not bound the
  // substep. Default: ten times the gel's own stiffness over one cell, 10 E / h, so the
  // penalty's penetration is about p h / (10 E) (1 % of a cell per 10 % of E in pressure).
  // Against light bodies the plugin scales it down (dtac_collider.kscale). Friction is
  // explicit: its stick spring defaults to half the gel's highest frequency on the lightest node.
  double kn = def->contact_stiffness > 0 ? def->contact_stiffness : 10 * def->young / hmin;
  double kt = def->friction_stiffness > 0 ? def->friction_stiffness : 0.25 * wk2 * m_per_area;
  double width = def->contact_width > 0 ? def->contact_width : 0.02 * hmin;
  for (int s = 0; s < ns; s++) {
    dtac_contact_node_param* p = gm->surf_param + s;
    double m = gm->mass[gm->surf[s]];
    p->kn = kn * gm->surf_area[s];
    p->kt = kt * gm->surf_area[s];
    p->cn = 2 * def->contact_damping * sqrt(p->kn * m);
    p->width = width;
  }
  gm->contact_stiffness = kn;
  gm->friction_stiffness = kt;
  stable_step(gm);
  // a gel its own weight would tear cannot be stepped to anything meaningful (a density of 1e300
  // gives forces beyond any bound on the bodies it hangs on)
  double sag = self_weight_strain(gm);
  if (!(sag <= DTAC_MAX_SELF_STRAIN)) {
    snprintf(err, errlen,
             "key 'density' has value %g: the gel's own weight at 1 g would strain it by %.3g "
             "(density x 9.81 m/s^2 x size[2] / young, young %g Pa, size[2] %g m), more than "
             "%g: the gel cannot hold its shape; use a lower 'density', a higher 'young' or a "
             "thinner pad",
             def->density, sag, def->young, def->size[2], DTAC_MAX_SELF_STRAIN);
    dtac_gel_model_free(gm);
    return 1;
  }
  if (timestep > 0 && dtac_gel_substeps(gm, timestep) > DTAC_MAX_SUBSTEPS) {
    snprintf(err, errlen,
             "the gel needs more than %d substeps per MuJoCo step (stable substep %.3g s for "
             "timestep %g s): use a coarser 'resolution' (now %g), a smaller 'damping' (now %g), "
             "'contact_stiffness' or 'friction_stiffness', or a smaller timestep",
             DTAC_MAX_SUBSTEPS, gm->dt_stable, timestep, def->resolution, beta);
    dtac_gel_model_free(gm);
    return 1;
  }
  // the work of one step is bounded: substeps times elements (about a nanosecond each on one core)
  double work = timestep > 0 ? (double)dtac_gel_substeps(gm, timestep) * gm->ntet : 0;
  if (work > DTAC_MAX_STEP_WORK) {
    snprintf(err, errlen,
             "one MuJoCo step of the gel would take %d substeps over %d tets (%.3g element "
             "updates, about %.1f s on one core), more than the limit of %.3g: use a coarser "
             "'resolution' (now %g), a smaller 'damping' (now %g) or a smaller timestep",
             dtac_gel_substeps(gm, timestep), gm->ntet, work, 1e-9 * work, DTAC_MAX_STEP_WORK,
             def->resolution, beta);
    dtac_gel_model_free(gm);
    return 1;
  }
  return 0;
}

void dtac_gel_model_free(dtac_gel_model* gm) {
  for (int k = 0; k < 3; k++) free(gm->coord[k]);
  free(gm->lock);
  free(gm->X);
  free(gm->tet);
  free(gm->Dm_inv);
  free(gm->vol);
  free(gm->mass);
  free(gm->inv_mass);
  free(gm->fixed);
  free(gm->fixed_id);
  free(gm->back_tet);
  free(gm->node_tetadr);
  free(gm->node_tet);
  free(gm->surf);
  free(gm->node_surf);
  free(gm->surf_area);
  free(gm->surf_param);
  memset(gm, 0, sizeof(*gm));
}

// ---- parameters
// -------------------------------------------------------------------------------------

const char* const dtac_gel_param_names[DTAC_NPARAM] = {
    "young",    "poisson",           "damping",         "mass_damping",
    "friction", "contact_stiffness", "contact_damping", "friction_stiffness"};

double dtac_gel_param_get(const dtac_gel_model* gm, int k) {
  switch (k) {
    case DTAC_PARAM_YOUNG:
      return gm->def.young;
    case DTAC_PARAM_POISSON:
      return gm->def.poisson;
    case DTAC_PARAM_DAMPING:
      return gm->mat.beta;
    case DTAC_PARAM_MASS_DAMPING:
      return gm->alpha;
    case DTAC_PARAM_FRICTION:
      return gm->def.friction;
    case DTAC_PARAM_CONTACT_STIFFNESS:
      return gm->contact_stiffness;
    case DTAC_PARAM_CONTACT_DAMPING:
      return gm->def.contact_damping;
    case DTAC_PARAM_FRICTION_STIFFNESS:
      return gm->friction_stiffness;
    default:
      return NAN;
  }
}

int dtac_gel_param_set(dtac_gel_model* gm, int k, double value, char* err, size_t errlen) {
  if (k < 0 || k >= DTAC_NPARAM) {
    snprintf(err, errlen, "no parameter number %d", k);
    return 1;
  }
  int ok = isfinite(value) && value >= 0;
  if (k == DTAC_PARAM_YOUNG || k == DTAC_PARAM_CONTACT_STIFFNESS) ok = ok && value > 0;
  if (k == DTAC_PARAM_POISSON) ok = isfinite(value) && value > -1 && value < 0.5;
  if (!ok) {
    snprintf(err, errlen, "parameter '%s' = %g is out of range", dtac_gel_param_names[k], value);
    return 1;
  }
  // the load's bound on the strain under the gel's own weight holds for a new young too
  if (k == DTAC_PARAM_YOUNG &&
      !(gm->def.density * 9.81 * gm->def.size[2] / value <= DTAC_MAX_SELF_STRAIN)) {
    snprintf(err, errlen,
             "parameter 'young' = %g: the gel's own weight would strain it by more than %g", value,
             DTAC_MAX_SELF_STRAIN);
    return 1;
  }
  double young0 = gm->def.young;
  switch (k) {
    case DTAC_PARAM_YOUNG:
      gm->def.young = value;
      break;
    case DTAC_PARAM_POISSON:
      gm->def.poisson = value;
      break;
    case DTAC_PARAM_DAMPING:
      gm->mat.beta = value;
      break;
    case DTAC_PARAM_MASS_DAMPING:
      gm->alpha = value;
      break;
    case DTAC_PARAM_FRICTION:
      gm->def.friction = value;
      break;
    case DTAC_PARAM_CONTACT_STIFFNESS:
      gm->contact_stiffness = value;
      break;
    case DTAC_PARAM_CONTACT_DAMPING:
      gm->def.contact_damping = value;
      break;
    case DTAC_PARAM_FRICTION_STIFFNESS:
      gm->friction_stiffness = value;
      break;
  }
  dtac_material_set(&gm->mat, gm->def.young, gm->def.poisson, gm->mat.beta);
  for (int s = 0; s < gm->nsurf; s++) {
    dtac_contact_node_param* p = gm->surf_param + s;
    double m = gm->mass[gm->surf[s]];
    p->kn = gm->contact_stiffness * gm->surf_area[s];
    p->kt = gm->friction_stiffness * gm->surf_area[s];
    p->cn = 2 * gm->def.contact_damping * sqrt(p->kn * m);
  }
  // the stable substep follows: the mesh's highest frequency scales with sqrt(young) at a fixed
  // poisson (the stiffness is linear in the Lame constants) and is recomputed for a new poisson
  if (k == DTAC_PARAM_YOUNG) gm->omega_max *= sqrt(value / young0);
  if (k == DTAC_PARAM_POISSON) gm->omega_max = sqrt(dtac_gel_max_eig(gm) * 1.05);
  if (k == DTAC_PARAM_YOUNG || k == DTAC_PARAM_POISSON) back_rigid(gm);
  stable_step(gm);
  return 0;
}

void dtac_gel_param_copy(dtac_gel_model* dst, const dtac_gel_model* src) {
  // the two were built from one def: the mesh is the same, the parameter block may differ
  dst->def = src->def;
  dst->mat = src->mat;
  dst->alpha = src->alpha;
  dst->contact_stiffness = src->contact_stiffness;
  dst->friction_stiffness = src->friction_stiffness;
  dst->omega_max = src->omega_max;
  dst->omega_contact = src->omega_contact;
  dst->dt_stable = src->dt_stable;
  memcpy(dst->back_K, src->back_K, sizeof(dst->back_K));
  memcpy(dst->back_M, src->back_M, sizeof(dst->back_M));
  memcpy(dst->surf_param, src->surf_param, sizeof(dtac_contact_node_param) * src->nsurf);
}
