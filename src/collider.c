// collider.c: the geom table of a soft body and the broad phase (collider.h).
#include "collider.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// the signed-distance kernels name geom types by MuJoCo's numbers
_Static_assert((int)DTAC_GEOM_PLANE == (int)mjGEOM_PLANE &&
                   (int)DTAC_GEOM_HFIELD == (int)mjGEOM_HFIELD &&
                   (int)DTAC_GEOM_SPHERE == (int)mjGEOM_SPHERE &&
                   (int)DTAC_GEOM_CAPSULE == (int)mjGEOM_CAPSULE &&
                   (int)DTAC_GEOM_ELLIPSOID == (int)mjGEOM_ELLIPSOID &&
                   (int)DTAC_GEOM_CYLINDER == (int)mjGEOM_CYLINDER &&
                   (int)DTAC_GEOM_BOX == (int)mjGEOM_BOX && (int)DTAC_GEOM_MESH == (int)mjGEOM_MESH,
               "kernels/sdf.h geom types differ from mjtGeom");

// convex hull planes of a mesh from MuJoCo's convex graph:
// [numvert, numface, vert_edgeadr(nv), vert_globalid(nv), edge_localid(nv + 3 nf), face(3 nf)];
// with planes NULL, the number of faces (an upper bound of the planes written)
static int hull_planes(const mjModel* m, int mesh, double* planes) {
  int adr = m->mesh_graphadr[mesh];
  const float* vert = m->mesh_vert + 3 * m->mesh_vertadr[mesh];
  int nv = m->mesh_vertnum[mesh];
  const int* face;
  int nface;
  if (adr >= 0) {
    const int* g = m->mesh_graph + adr;
    int gnv = g[0];
    nface = g[1];
    face = g + 2 + gnv + gnv + (gnv + 3 * nface);
  } else {
    face = m->mesh_face + 3 * m->mesh_faceadr[mesh];
    nface = m->mesh_facenum[mesh];
  }
  if (!planes) return nface;
  double c[3] = {0, 0, 0};
  for (int i = 0; i < nv; i++) {
    for (int k = 0; k < 3; k++) c[k] += vert[3 * i + k] / nv;
  }
  int np = 0;
  for (int f = 0; f < nface; f++) {
    double a[3], b[3], q[3], n[3];
    const float* v0 = vert + 3 * face[3 * f];
    const float* v1 = vert + 3 * face[3 * f + 1];
    const float* v2 = vert + 3 * face[3 * f + 2];
    for (int k = 0; k < 3; k++) {
      a[k] = v1[k] - v0[k];
      b[k] = v2[k] - v0[k];
      q[k] = v0[k];
    }
    dtac_cross3(n, a, b);
    double len = dtac_norm3(n);
    if (len < 1e-18) continue;
    for (int k = 0; k < 3; k++) n[k] /= len;
    double off = dtac_dot3(n, q);
    // outward: the centroid lies inside
    if (dtac_dot3(n, c) > off) {
      for (int k = 0; k < 3; k++) n[k] = -n[k];
      off = -off;
    }
    double* p = planes + 4 * np++;
    p[0] = n[0];
    p[1] = n[1];
    p[2] = n[2];
    p[3] = off;
  }
  return np;
}

// ---- callbacks
// ---------------------------------------------------------------------------------------

int dtac_geom_table_make(dtac_geom_table* gt, const mjModel* m, int body, int contype,
                         int conaffinity, double area, double stiffness) {
  memset(gt, 0, sizeof(*gt));
  int ng = m->ngeom > 0 ? m->ngeom : 1;
  gt->ngeom = m->ngeom;
  gt->ok = (unsigned char*)calloc(ng, 1);
  gt->kscale = (double*)malloc(sizeof(double) * ng);
  gt->planeadr = (int*)malloc(sizeof(int) * ng);
  gt->nplane = (int*)calloc(ng, sizeof(int));
  if (!gt->ok || !gt->kscale || !gt->planeadr || !gt->nplane) return 1;
  // a light free body (a grasped object) against the full pad must stay stable at MuJoCo's step
  // even through the explicit parts of the coupling (MuJoCo's own constraints on it): the pad's
  // total normal stiffness against it is kept below m / dt^2, as MuJoCo's soft contacts scale
  // with mass. Articulated and static bodies get the full stiffness.
  double dt = m->opt.timestep;
  int nplane = 0;
  for (int g = 0; g < m->ngeom; g++) {
    int wb = m->body_weldid[m->geom_bodyid[g]];
    int free = wb > 0 && m->body_jntnum[wb] > 0 && m->jnt_type[m->body_jntadr[wb]] == mjJNT_FREE;
    gt->kscale[g] = 1;
    if (free && dt > 0) {
      double kmax = m->body_subtreemass[wb] / (dt * dt * area);
      if (kmax < stiffness) gt->kscale[g] = kmax / stiffness;
    }
    gt->planeadr[g] = -1;
    int type = m->geom_type[g];
    int filt = (contype & m->geom_conaffinity[g]) || (m->geom_contype[g] & conaffinity);
    gt->ok[g] = filt && m->geom_bodyid[g] != body && dtac_sdf_supported(type);
    if (gt->ok[g] && type == mjGEOM_MESH) {
      gt->planeadr[g] = nplane;
      nplane += hull_planes(m, m->geom_dataid[g], NULL);
    }
  }
  gt->nplane_total = nplane;
  gt->planes = (double*)malloc(sizeof(double) * 4 * (nplane > 0 ? nplane : 1));
  if (!gt->planes) return 1;
  for (int g = 0; g < m->ngeom; g++) {
    if (gt->planeadr[g] >= 0) {
      gt->nplane[g] = hull_planes(m, m->geom_dataid[g], gt->planes + 4 * gt->planeadr[g]);
    }
  }
  return 0;
}

void dtac_geom_table_free(dtac_geom_table* gt) {
  free(gt->ok);
  free(gt->kscale);
  free(gt->planeadr);
  free(gt->nplane);
  free(gt->planes);
  memset(gt, 0, sizeof(*gt));
}

void dtac_colliders_gather(const dtac_geom_table* gt, const mjModel* m, mjData* d, const double* x,
                           const double* v, int nnode, double extent, double mu, int use_jac,
                           int fixed, dtac_collider* col, int* ncol, mjtNum* jac) {
  double lo[3] = {INFINITY, INFINITY, INFINITY}, hi[3] = {-INFINITY, -INFINITY, -INFINITY};
  double vmax = 0;
  for (int a = 0; a < nnode; a++) {
    for (int k = 0; k < 3; k++) {
      lo[k] = fmin(lo[k], x[3 * a + k]);
      hi[k] = fmax(hi[k], x[3 * a + k]);
    }
    vmax = fmax(vmax, dtac_dot3(v + 3 * a, v + 3 * a));
  }
  // margin: what the body and a geom may cover within one step, and a tenth of the body
  double margin = sqrt(vmax) * m->opt.timestep + 0.1 * extent;
  int nfixed = *ncol;
  int n = 0;
  for (int gi = 0; gi < (fixed ? nfixed : m->ngeom); gi++) {
    int g = fixed ? col[gi].geom : gi;
    if (!gt->ok[g]) continue;
    const mjtNum* gp = d->geom_xpos + 3 * g;
    const mjtNum* gm = d->geom_xmat + 9 * g;
    int type = m->geom_type[g];
    double rb = m->geom_rbound[g];
    if (type == mjGEOM_PLANE) {
      // the lowest AABB corner along the plane normal must come within margin
      double nz[3] = {gm[2], gm[5], gm[8]}, dmin = INFINITY;
      for (int c = 0; c < 8; c++) {
        double p[3] = {(c & 1) ? hi[0] : lo[0], (c & 2) ? hi[1] : lo[1], (c & 4) ? hi[2] : lo[2]};
        double r[3];
        dtac_sub3(r, p, gp);
        dmin = fmin(dmin, dtac_dot3(r, nz));
      }
      if (dmin > margin && !fixed) continue;
      rb = 0;
    } else {
      double d2 = 0;
      for (int k = 0; k < 3; k++) {
        double q = gp[k] < lo[k] ? lo[k] - gp[k] : (gp[k] > hi[k] ? gp[k] - hi[k] : 0);
        d2 += q * q;
      }
      if (d2 > (rb + margin) * (rb + margin) && !fixed) continue;
      rb = fixed ? col[gi].rbound : rb + margin;
    }
    dtac_collider* c = col + n++;
    c->type = type;
    c->geom = g;
    c->body = m->geom_bodyid[g];
    c->rbound = rb;
    c->nplane = gt->nplane[g];
    c->planes = gt->planeadr[g] >= 0 ? gt->planes + 4 * gt->planeadr[g] : NULL;
    memcpy(c->size, m->geom_size + 3 * g, sizeof(c->size));
    memcpy(c->pos, gp, sizeof(c->pos));
    memcpy(c->mat, gm, sizeof(c->mat));
    c->mu = mu;
    c->kscale = gt->kscale[g];
    if (use_jac && m->nv > 0) {
      mjtNum* jp = jac;
      mjtNum* jr = jac + 3 * m->nv;
      mj_jac(m, d, jp, jr, gp, c->body);
      mju_mulMatVec(c->vel, jp, d->qvel, 3, m->nv);
      mju_mulMatVec(c->angvel, jr, d->qvel, 3, m->nv);
    } else {
      mjtNum res[6];
      mj_objectVelocity(m, d, mjOBJ_GEOM, g, res, 0);
      memcpy(c->angvel, res, sizeof(c->angvel));
      memcpy(c->vel, res + 3, sizeof(c->vel));
    }
  }
  *ncol = n;
}
