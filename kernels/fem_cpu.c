// fem_cpu.c: CPU loops over the element functions of fem.h.
#include "fem_loops.h"

void dtac_fem_tet_forces_cpu(int ntet, const int* tet, const double* Dm_inv, const double* vol,
                             const dtac_material* mat, const double* x, const double* v,
                             double* tet_force, double* tet_J) {
  for (int t = 0; t < ntet; t++) {
    const int* tv = tet + 4 * t;
    tet_J[t] = dtac_tet_force(mat, x + 3 * tv[0], x + 3 * tv[1], x + 3 * tv[2], x + 3 * tv[3],
                              v + 3 * tv[0], v + 3 * tv[1], v + 3 * tv[2], v + 3 * tv[3],
                              Dm_inv + 9 * t, vol[t], tet_force + 12 * t);
  }
}

void dtac_fem_gather_cpu(int nnode, const int* node_tetadr, const int* node_tet,
                         const double* tet_force, double* force) {
  for (int a = 0; a < nnode; a++) dtac_node_gather(a, node_tetadr, node_tet, tet_force, force);
}
