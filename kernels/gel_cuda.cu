// gel_cuda.cu: the joint step of many environments' gels on a CUDA GPU (the kernel body of
// gel_dev.h, a team of bpe thread blocks per environment, every substep of a MuJoCo step in one
// launch),
// and the CUDA runtime calls of src/device.h. Every call is checked; an error comes back as a
// message, never an abort.
#include <cuda_runtime.h>
#include <stdio.h>

#include "gel_cuda.h"
#include "gel_dev.h"

#define DTAC_EXPORT extern "C"

// writes the error of a failed CUDA call into err; returns nonzero if it failed
static int check(cudaError_t e, const char* what, char* err, size_t errlen) {
  if (e == cudaSuccess) return 0;
  cudaGetLastError();  // handled here: not left for the next call to find
  snprintf(err, errlen, "CUDA %s failed: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
  return 1;
}

// environment blockIdx / bpe, block blockIdx % bpe of its team; part: bpe x 8 doubles and bar:
// 2 counters per environment (bpe > 1)
__global__ void __launch_bounds__(DTAC_DEV_THREADS)
    dtac_gels_advance_kernel(dtac_dev_env* const* envs, int n, int bpe, double* part,
                             unsigned* bar) {
  __shared__ double red[DTAC_DEV_SHARED];
  int e = blockIdx.x / bpe;
  if (e >= n) return;
  dtac_dev_team T;
  T.blk = blockIdx.x % bpe;
  T.nblk = bpe;
  T.btid = threadIdx.x;
  T.bthr = blockDim.x;
  T.tid = T.blk * T.bthr + T.btid;
  T.nthr = T.nblk * T.bthr;
  T.red = red;
  T.part = part + (size_t)8 * bpe * e;
  T.bar = bar + 2 * e;
  T.sync = NULL;
  T.sync_arg = NULL;
  dtac_dev_advance(envs[e], &T);
}

// makes GPU `ordinal` current for the scope and gives the caller's current GPU back after it (the
// current device is shared with the user's own CUDA code in the same thread)
struct DeviceScope {
  int prev = -1;
  cudaError_t err;
  explicit DeviceScope(int ordinal) {
    if (cudaGetDevice(&prev) != cudaSuccess) prev = -1;
    err = cudaSetDevice(ordinal);
  }
  ~DeviceScope() {
    if (prev >= 0) cudaSetDevice(prev);
  }
};

DTAC_EXPORT int dtac_cuda_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // a failed query is not left behind for the next call
    return 0;
  }
  return n;
}

DTAC_EXPORT int dtac_cuda_open(int ordinal, void** stream, int* maxblocks, char* err,
                               size_t errlen) {
  int n = dtac_cuda_count();
  if (ordinal < 0 || ordinal >= n) {
    snprintf(err, errlen, "CUDA device %d requested, %d present", ordinal, n);
    return 1;
  }
  DeviceScope scope(ordinal);
  if (check(scope.err, "cudaSetDevice", err, errlen)) return 1;
  // the kernel must have an image for this GPU (built for sm_80 and sm_90, PTX for newer)
  cudaFuncAttributes attr;
  cudaDeviceProp prop;
  if (cudaFuncGetAttributes(&attr, dtac_gels_advance_kernel) != cudaSuccess) {
    cudaGetLastError();
    int ok = cudaGetDeviceProperties(&prop, ordinal) == cudaSuccess;
    snprintf(err, errlen, "CUDA device %d (%s, compute capability %d.%d) cannot run this build's "
             "kernels (built for 8.0 and 9.0)", ordinal, ok ? prop.name : "?", ok ? prop.major : 0,
             ok ? prop.minor : 0);
    return 1;
  }
  // blocks of the kernel the GPU holds at once: the most a cooperative launch may start (0: no
  // cooperative launches, one block per environment)
  int per_sm = 0, coop = 0, nsm = 0;
  if (check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, dtac_gels_advance_kernel,
                                                          DTAC_DEV_THREADS, 0),
            "cudaOccupancyMaxActiveBlocksPerMultiprocessor", err, errlen) ||
      check(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, ordinal),
            "cudaDeviceGetAttribute", err, errlen) ||
      check(cudaDeviceGetAttribute(&nsm, cudaDevAttrMultiProcessorCount, ordinal),
            "cudaDeviceGetAttribute", err, errlen))
    return 1;
  *maxblocks = coop ? per_sm * nsm : 0;
  cudaStream_t s;
  if (check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate", err, errlen))
    return 1;
  *stream = (void*)s;
  return 0;
}

DTAC_EXPORT void dtac_cuda_close(int ordinal, void* stream) {
  if (!stream) return;
  DeviceScope scope(ordinal);
  cudaStreamSynchronize((cudaStream_t)stream);
  cudaStreamDestroy((cudaStream_t)stream);
  cudaGetLastError();
}

DTAC_EXPORT void* dtac_cuda_alloc(int ordinal, void* stream, size_t n, char* err, size_t errlen) {
  DeviceScope scope(ordinal);
  void* p = NULL;
  cudaStream_t s = (cudaStream_t)stream;
  if (check(scope.err, "cudaSetDevice", err, errlen) ||
      check(cudaMalloc(&p, n), "cudaMalloc", err, errlen))
    return NULL;
  // zeroed on the context's stream, before anything is uploaded on it
  if (check(cudaMemsetAsync(p, 0, n, s), "cudaMemset", err, errlen) ||
      check(cudaStreamSynchronize(s), "cudaStreamSynchronize", err, errlen)) {
    cudaFree(p);
    return NULL;
  }
  return p;
}

DTAC_EXPORT void dtac_cuda_free(int ordinal, void* p) {
  DeviceScope scope(ordinal);
  cudaFree(p);
}

DTAC_EXPORT int dtac_cuda_put(int ordinal, void* stream, void* dst, const void* src, size_t n,
                              char* err, size_t errlen) {
  // synchronous on the stream: src is pageable host memory that may change right after
  DeviceScope scope(ordinal);
  cudaStream_t s = (cudaStream_t)stream;
  return check(scope.err, "cudaSetDevice", err, errlen) ||
         check(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, s), "cudaMemcpy to device",
               err, errlen) ||
         check(cudaStreamSynchronize(s), "cudaStreamSynchronize", err, errlen);
}

DTAC_EXPORT int dtac_cuda_get(int ordinal, void* stream, void* dst, const void* src, size_t n,
                              char* err, size_t errlen) {
  DeviceScope scope(ordinal);
  cudaStream_t s = (cudaStream_t)stream;
  return check(scope.err, "cudaSetDevice", err, errlen) ||
         check(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, s), "cudaMemcpy to host", err,
               errlen) ||
         check(cudaStreamSynchronize(s), "cudaStreamSynchronize", err, errlen);
}

DTAC_EXPORT int dtac_cuda_advance(int ordinal, void* stream, dtac_dev_env* const* envs, int n,
                                  int bpe, double* part, unsigned* bar, int* coop_refused,
                                  char* err, size_t errlen) {
  DeviceScope scope(ordinal);
  cudaStream_t s = (cudaStream_t)stream;
  if (check(scope.err, "cudaSetDevice", err, errlen)) return 1;
  cudaGetLastError();  // an earlier, handled error must not be taken for this launch's
  if (bpe <= 1) {
    dtac_gels_advance_kernel<<<n, DTAC_DEV_THREADS, 0, s>>>(envs, n, 1, part, bar);
    if (check(cudaGetLastError(), "kernel launch", err, errlen)) return 1;
  } else {
    // teams of several blocks: every block resident at once (a cooperative launch), the
    // barriers' counters zeroed first (a failed launch may have left them anywhere)
    void* args[] = {(void*)&envs, (void*)&n, (void*)&bpe, (void*)&part, (void*)&bar};
    if (check(cudaMemsetAsync(bar, 0, sizeof(unsigned) * 2 * n, s), "cudaMemset", err, errlen))
      return 1;
    cudaError_t e = cudaLaunchCooperativeKernel((const void*)dtac_gels_advance_kernel,
                                                dim3(n * bpe), dim3(DTAC_DEV_THREADS), args, 0, s);
    if (e != cudaSuccess) {
      // refused (the GPU holds fewer blocks than when opened, shared with other work or MPS, or
      // no cooperative launches here): one block per environment needs no co-residency; the
      // caller stops asking for teams
      cudaGetLastError();
      *coop_refused = 1;
      dtac_gels_advance_kernel<<<n, DTAC_DEV_THREADS, 0, s>>>(envs, n, 1, part, bar);
      e = cudaGetLastError();
    }
    if (check(e, "kernel launch", err, errlen)) return 1;
  }
  return check(cudaStreamSynchronize(s), "gel step kernel", err, errlen);
}
