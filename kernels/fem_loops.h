// fem_loops.h: the element-force pass and the node gather, as CPU loops and CUDA launches
// over the per-element functions of fem.h.
#ifndef DTAC_KERNELS_FEM_LOOPS_H_
#define DTAC_KERNELS_FEM_LOOPS_H_

#include "fem.h"

#ifdef __cplusplus
extern "C" {
#endif

// per-tet node forces (ntet x 12) and det F (ntet) from positions and velocities (nnode x 3)
void dtac_fem_tet_forces_cpu(int ntet, const int* tet, const double* Dm_inv, const double* vol,
                             const dtac_material* mat, const double* x, const double* v,
                             double* tet_force, double* tet_J);

// per-node force (nnode x 3) = sum over incident tets, in a fixed order (deterministic)
void dtac_fem_gather_cpu(int nnode, const int* node_tetadr, const int* node_tet,
                         const double* tet_force, double* force);

// the same two passes on device arrays, launched on `stream` (a cudaStream_t; fem_cuda.cu, CUDA
// builds only); returns a cudaError_t
int dtac_fem_forces_cuda(int ntet, int nnode, const int* tet, const double* Dm_inv,
                         const double* vol, const dtac_material* mat, const int* node_tetadr,
                         const int* node_tet, const double* x, const double* v, double* tet_force,
                         double* tet_J, double* force, void* stream);

#ifdef __cplusplus
}
#endif

#endif  // DTAC_KERNELS_FEM_LOOPS_H_
