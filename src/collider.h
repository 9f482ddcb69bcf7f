// collider.h: the scene's geoms as a soft body sees them. At load, which geoms may touch the body
// and with what stiffness scale, and the hull planes of mesh geoms (a table that is never written
// afterwards); at each evaluation, the broad phase: the geoms near the body, posed in the world
// as dtac_collider (kernels/contact.h), with their velocities.
#ifndef DTAC_SRC_COLLIDER_H_
#define DTAC_SRC_COLLIDER_H_

#include <mujoco/mujoco.h>

#include "contact.h"

// which geoms a soft body may touch; immutable after dtac_geom_table_make
typedef struct dtac_geom_table_ {
  int ngeom;
  unsigned char* ok;  // geom may touch the body (ngeom)
  double* kscale;     // contact stiffness scale against each geom's body (ngeom)
  int* planeadr;      // mesh geoms: first hull plane, -1 if none (ngeom)
  int* nplane;        // mesh geoms: hull plane count (ngeom)
  double* planes;     // hull planes of all mesh geoms, geom frame, outward (nplane_total x 4)
  int nplane_total;
} dtac_geom_table;

// the geom table of a soft body held by `body` (its own geoms are left out), filtered by MuJoCo's
// contype/conaffinity rule against (contype, conaffinity). A light free body (a grasped object)
// against a pad of area `area` (m^2) and normal stiffness `stiffness` (Pa/m) gets its stiffness
// scaled so that the total stays below its mass / dt^2. 0, or nonzero when out of memory.
int dtac_geom_table_make(dtac_geom_table* gt, const mjModel* m, int body, int contype,
                         int conaffinity, double area, double stiffness);
void dtac_geom_table_free(dtac_geom_table* gt);

// the broad phase: the geoms of gt that may reach the nodes x (nnode x 3, velocities v) within
// one step, written to col (*ncol of them) with friction mu. A geom is kept when its bounding
// sphere (a plane: the nodes' bounding box along its normal) comes within a margin of the nodes'
// bounding box: what the body and the geom may cover in one step plus a tenth of `extent` (m).
// Velocities from J qvel (use_jac, jac: 6 x nv scratch), else from MuJoCo's cvel. With fixed,
// the geoms already in col are refreshed (poses, velocities) and kept with their bounds.
void dtac_colliders_gather(const dtac_geom_table* gt, const mjModel* m, mjData* d, const double* x,
                           const double* v, int nnode, double extent, double mu, int use_jac,
                           int fixed, dtac_collider* col, int* ncol, mjtNum* jac);

#endif  // DTAC_SRC_COLLIDER_H_
