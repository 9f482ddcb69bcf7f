// gel_cuda.cu: the joint step of many environments' gels on a CUDA GPU (the kernel body of
// gel_dev.h, one thread block per environment, every substep of a MuJoCo step in one launch),
// and the CUDA runtime calls of src/device.h. Every call is checked; an error comes back as a
// message, never an abort.
#include <cuda_runtime.h>
#include <stdio.h>

#include "gel_dev.h"

#define DTAC_EXPORT extern "C"

// writes the error of a failed CUDA call into err; returns nonzero if it failed
static int check(cudaError_t e, const char* what, char* err, size_t errlen) {
  if (e == cudaSuccess) return 0;
  snprintf(err, errlen, "CUDA %s failed: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
  return 1;
}

__global__ void __launch_bounds__(DTAC_DEV_THREADS)
    dtac_gels_advance_kernel(dtac_dev_env* const* envs, int n) {
  __shared__ double red[DTAC_DEV_SHARED];
  if (blockIdx.x >= n) return;
  dtac_dev_advance(envs[blockIdx.x], threadIdx.x, blockDim.x, red);
}

DTAC_EXPORT int dtac_cuda_count(void) {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

DTAC_EXPORT int dtac_cuda_open(int ordinal, void** stream, char* err, size_t errlen) {
  int n = dtac_cuda_count();
  if (ordinal < 0 || ordinal >= n) {
    snprintf(err, errlen, "CUDA device %d requested, %d present", ordinal, n);
    return 1;
  }
  cudaStream_t s;
  if (check(cudaSetDevice(ordinal), "cudaSetDevice", err, errlen) ||
      check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate", err, errlen))
    return 1;
  *stream = (void*)s;
  return 0;
}

DTAC_EXPORT void dtac_cuda_close(int ordinal, void* stream) {
  if (!stream) return;
  cudaSetDevice(ordinal);
  cudaStreamSynchronize((cudaStream_t)stream);
  cudaStreamDestroy((cudaStream_t)stream);
}

DTAC_EXPORT void* dtac_cuda_alloc(int ordinal, size_t n, char* err, size_t errlen) {
  void* p = NULL;
  if (check(cudaSetDevice(ordinal), "cudaSetDevice", err, errlen) ||
      check(cudaMalloc(&p, n), "cudaMalloc", err, errlen))
    return NULL;
  if (check(cudaMemset(p, 0, n), "cudaMemset", err, errlen)) {
    cudaFree(p);
    return NULL;
  }
  return p;
}

DTAC_EXPORT void dtac_cuda_free(int ordinal, void* p) {
  cudaSetDevice(ordinal);
  cudaFree(p);
}

DTAC_EXPORT int dtac_cuda_put(int ordinal, void* stream, void* dst, const void* src, size_t n,
                              char* err, size_t errlen) {
  // synchronous on the stream: src is pageable host memory that may change right after
  cudaStream_t s = (cudaStream_t)stream;
  return check(cudaSetDevice(ordinal), "cudaSetDevice", err, errlen) ||
         check(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, s), "cudaMemcpy to device",
               err, errlen) ||
         check(cudaStreamSynchronize(s), "cudaStreamSynchronize", err, errlen);
}

DTAC_EXPORT int dtac_cuda_get(int ordinal, void* stream, void* dst, const void* src, size_t n,
                              char* err, size_t errlen) {
  cudaStream_t s = (cudaStream_t)stream;
  return check(cudaSetDevice(ordinal), "cudaSetDevice", err, errlen) ||
         check(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, s), "cudaMemcpy to host", err,
               errlen) ||
         check(cudaStreamSynchronize(s), "cudaStreamSynchronize", err, errlen);
}

DTAC_EXPORT int dtac_cuda_advance(int ordinal, void* stream, dtac_dev_env* const* envs, int n,
                                  char* err, size_t errlen) {
  cudaStream_t s = (cudaStream_t)stream;
  if (check(cudaSetDevice(ordinal), "cudaSetDevice", err, errlen)) return 1;
  dtac_gels_advance_kernel<<<n, DTAC_DEV_THREADS, 0, s>>>(envs, n);
  return check(cudaPeekAtLastError(), "kernel launch", err, errlen) ||
         check(cudaStreamSynchronize(s), "gel step kernel", err, errlen);
}
