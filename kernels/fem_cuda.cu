// fem_cuda.cu: CUDA launches over the per-element functions of fem.h (same source as the CPU
// loops in fem_cpu.c): the element-force pass alone, for the roofline benchmark. The step's
// kernel is gel_cuda.cu.
#include <cuda_runtime.h>

#include "fem.h"
#include "fem_loops.h"

#define DTAC_EXPORT extern "C" __attribute__((visibility("default")))

__global__ void dtac_fem_tet_forces_kernel(int ntet, const int* tet, const double* Dm_inv,
                                           const double* vol, dtac_material mat, const double* x,
                                           const double* v, double* tet_force, double* tet_J) {
  int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= ntet) return;
  const int* tv = tet + 4 * t;
  tet_J[t] = dtac_tet_force(&mat, x + 3 * tv[0], x + 3 * tv[1], x + 3 * tv[2], x + 3 * tv[3],
                            v + 3 * tv[0], v + 3 * tv[1], v + 3 * tv[2], v + 3 * tv[3],
                            Dm_inv + 9 * t, vol[t], tet_force + 12 * t);
}

__global__ void dtac_fem_gather_kernel(int nnode, const int* node_tetadr, const int* node_tet,
                                       const double* tet_force, double* force) {
  int a = blockIdx.x * blockDim.x + threadIdx.x;
  if (a >= nnode) return;
  dtac_node_gather(a, node_tetadr, node_tet, tet_force, force);
}

// element forces and gather on device arrays, on `stream`; returns a cudaError_t
DTAC_EXPORT int dtac_fem_forces_cuda(int ntet, int nnode, const int* tet, const double* Dm_inv,
                                     const double* vol, const dtac_material* mat,
                                     const int* node_tetadr, const int* node_tet, const double* x,
                                     const double* v, double* tet_force, double* tet_J,
                                     double* force, void* stream_) {
  cudaStream_t stream = (cudaStream_t)stream_;
  const int bs = 128;
  dtac_fem_tet_forces_kernel<<<(ntet + bs - 1) / bs, bs, 0, stream>>>(ntet, tet, Dm_inv, vol, *mat,
                                                                     x, v, tet_force, tet_J);
  cudaError_t err = cudaPeekAtLastError();
  if (err != cudaSuccess) return (int)err;
  dtac_fem_gather_kernel<<<(nnode + bs - 1) / bs, bs, 0, stream>>>(nnode, node_tetadr, node_tet,
                                                                  tet_force, force);
  return (int)cudaPeekAtLastError();
}
