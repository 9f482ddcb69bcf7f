// gel_cuda.h: the CUDA runtime calls of the device backend (src/device.h), defined in
// kernels/gel_cuda.cu (which includes this header, so that the signatures are checked) and, in a
// build without CUDA, in src/cuda_stub/cuda_stub.c. Each returns 0 or writes the CUDA error into
// err.
#ifndef DTAC_KERNELS_GEL_CUDA_H_
#define DTAC_KERNELS_GEL_CUDA_H_

#include <stddef.h>

#include "gel_dev.h"

#ifdef __cplusplus
extern "C" {
#endif

int dtac_cuda_count(void);
int dtac_cuda_open(int ordinal, void** stream, int* maxblocks, char* err, size_t errlen);
void dtac_cuda_close(int ordinal, void* stream);
// (each makes `ordinal` the calling thread's current device first: a batch's worker threads
// call them too)
void* dtac_cuda_alloc(int ordinal, void* stream, size_t n, char* err, size_t errlen);
void dtac_cuda_free(int ordinal, void* p);
int dtac_cuda_put(int ordinal, void* stream, void* dst, const void* src, size_t n, char* err,
                  size_t errlen);
int dtac_cuda_get(int ordinal, void* stream, void* dst, const void* src, size_t n, char* err,
                  size_t errlen);
// n environments, a team of bpe blocks each (bpe > 1: a cooperative launch; part and bar as
// dtac_dev's); a refused cooperative launch runs one block per environment and sets
// *coop_refused
int dtac_cuda_advance(int ordinal, void* stream, dtac_dev_env* const* envs, int n, int bpe,
                      double* part, unsigned* bar, int* coop_refused, char* err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif  // DTAC_KERNELS_GEL_CUDA_H_
