// bench_device: the element-force kernel on a CUDA GPU against the GPU's measured copy bandwidth
// (its roofline fraction), for the default pad (2 mm) and a 4x finer one (0.5 mm). Prints one
// JSON object per line; skips (a line saying so, exit 0) where no GPU is present. Built only
// when nvcc exists; run by bench/gpu.sh.
//   bench_device [seconds_per_case]
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fem.h"
extern "C" {
#include "gel.h"
}

#include "fem_loops.h"  // dtac_fem_forces_cuda: kernels/fem_cuda.cu (compiled into this program)

// flops and bytes of one tet's force evaluation and its share of the gather (docs/benchmarks.md,
// the same counts as bench_gel.c): with the data each thread must move from memory
static const int FLOPS_PER_TET = 54 + 91 + 206 + 60 + 14 + 12;
static const int BYTES_PER_TET = 16 + 72 + 8 + 96 + 8 + 16 + 96;

#define CK(call)                                                                      \
  do {                                                                                \
    cudaError_t e_ = (call);                                                          \
    if (e_ != cudaSuccess) {                                                          \
      fprintf(stderr, "bench_device: %s: %s\n", #call, cudaGetErrorString(e_));      \
      exit(1);                                                                        \
    }                                                                                 \
  } while (0)

static void* up(const void* src, size_t n) {
  void* d;
  CK(cudaMalloc(&d, n));
  if (src) CK(cudaMemcpy(d, src, n, cudaMemcpyHostToDevice));
  return d;
}

// device-to-device copy bandwidth, counting read + write, GB/s
static double copy_bandwidth(double seconds) {
  size_t n = (size_t)1 << 30;
  void *a = up(NULL, n), *b = up(NULL, n);
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  CK(cudaMemcpy(b, a, n, cudaMemcpyDeviceToDevice));
  double best = 0, spent = 0;
  while (spent < seconds) {
    CK(cudaEventRecord(e0));
    for (int i = 0; i < 10; i++) CK(cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice));
    CK(cudaEventRecord(e1));
    CK(cudaEventSynchronize(e1));
    float ms;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    spent += 1e-3 * ms;
    double gbs = 2.0 * 10 * n / (1e-3 * ms) * 1e-9;
    if (gbs > best) best = gbs;
  }
  cudaFree(a);
  cudaFree(b);
  return best;
}

int main(int argc, char** argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 1.0;
  int ndev = 0;
  if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
    printf("{\"bench\":\"device\",\"skipped\":\"no CUDA device\"}\n");
    return 0;
  }
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  double bw = copy_bandwidth(seconds);
  printf("{\"bench\":\"device_copy\",\"device\":\"%s\",\"sm\":%d,\"copy_gbytes_per_s\":%.1f}\n",
         prop.name, prop.multiProcessorCount, bw);

  const double res[2] = {0.002, 0.0005};
  for (int r = 0; r < 2; r++) {
    dtac_gel_def def;
    dtac_gel_def_default(&def);
    def.size[0] = 0.02075;
    def.size[1] = 0.02525;
    def.size[2] = 0.004;
    def.resolution = res[r];
    dtac_gel_model gm;
    char err[DTAC_ERRLEN];
    if (dtac_gel_model_make(&gm, &def, 0, 0.002, err, sizeof(err))) {
      fprintf(stderr, "bench_device: %s\n", err);
      return 1;
    }
    int nn = gm.nnode, nt = gm.ntet;
    double* x = (double*)malloc(sizeof(double) * 3 * nn);
    double* v = (double*)calloc(3 * nn, sizeof(double));
    unsigned long long seed = 1;
    for (int i = 0; i < 3 * nn; i++) {
      seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
      double u = (double)(seed >> 11) / 9007199254740992.0 - 0.5;
      x[i] = gm.X[i] + 0.02 * res[r] * u;
      v[i] = 1e-3 * u;
    }
    int* tet = (int*)up(gm.tet, sizeof(int) * 4 * nt);
    double* Dm = (double*)up(gm.Dm_inv, sizeof(double) * 9 * nt);
    double* vol = (double*)up(gm.vol, sizeof(double) * nt);
    int* adr = (int*)up(gm.node_tetadr, sizeof(int) * (nn + 1));
    int* inc = (int*)up(gm.node_tet, sizeof(int) * 4 * nt);
    double* dx = (double*)up(x, sizeof(double) * 3 * nn);
    double* dv = (double*)up(v, sizeof(double) * 3 * nn);
    double* tf = (double*)up(NULL, sizeof(double) * 12 * nt);
    double* tJ = (double*)up(NULL, sizeof(double) * nt);
    double* f = (double*)up(NULL, sizeof(double) * 3 * nn);
    cudaStream_t s;
    CK(cudaStreamCreate(&s));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    double best = 1e30, spent = 0;
    int reps = 100;
    while (spent < seconds) {
      CK(cudaEventRecord(e0, s));
      for (int i = 0; i < reps; i++) {
        int e = dtac_fem_forces_cuda(nt, nn, tet, Dm, vol, &gm.mat, adr, inc, dx, dv, tf, tJ, f, s);
        if (e) CK((cudaError_t)e);
      }
      CK(cudaEventRecord(e1, s));
      CK(cudaEventSynchronize(e1));
      float ms;
      CK(cudaEventElapsedTime(&ms, e0, e1));
      spent += 1e-3 * ms;
      double ns = 1e6 * ms / reps / nt;
      if (ns < best) best = ns;
    }
    double gbs = BYTES_PER_TET / best, gfl = FLOPS_PER_TET / best;
    printf("{\"bench\":\"device_kernel\",\"device\":\"%s\",\"resolution\":%g,\"ntet\":%d,"
           "\"nnode\":%d,\"ns_per_tet\":%.4g,\"flops_per_tet\":%d,\"bytes_per_tet\":%d,"
           "\"gflops\":%.4g,\"gbytes_per_s\":%.4g,\"copy_gbytes_per_s\":%.1f,"
           "\"roofline_fraction\":%.3f}\n",
           prop.name, res[r], nt, nn, best, FLOPS_PER_TET, BYTES_PER_TET, gfl, gbs, bw, gbs / bw);
    fprintf(stderr, "  %s res %.4g m: %d tets, %.3g ns/tet, %.1f GB/s = %.0f%% of copy %.0f GB/s, "
            "%.0f GFLOP/s\n", prop.name, res[r], nt, best, gbs, 100 * gbs / bw, bw, gfl);
    cudaFree(tet), cudaFree(Dm), cudaFree(vol), cudaFree(adr), cudaFree(inc), cudaFree(dx);
    cudaFree(dv), cudaFree(tf), cudaFree(tJ), cudaFree(f);
    free(x);
    free(v);
    dtac_gel_model_free(&gm);
  }
  return 0;
}
