// cuda_stub.c: built when no CUDA compiler is present, so the library links without CUDA: no
// device is ever found, and the device calls fail with a message.
#include <stdio.h>

#include "device.h"

int dtac_cuda_count(void) {
  return 0;
}

static int no_cuda(char* err, size_t errlen) {
  snprintf(err, errlen, "this difftac build has no CUDA backend (built without nvcc)");
  return 1;
}

int dtac_cuda_open(int ordinal, void** stream, int* maxblocks, char* err, size_t errlen) {
  (void)ordinal;
  *stream = NULL;
  *maxblocks = 0;
  return no_cuda(err, errlen);
}

void dtac_cuda_close(int ordinal, void* stream) {
  (void)ordinal;
  (void)stream;
}

void* dtac_cuda_alloc(int ordinal, void* stream, size_t n, char* err, size_t errlen) {
  (void)ordinal, (void)stream, (void)n;
  no_cuda(err, errlen);
  return NULL;
}

void dtac_cuda_free(int ordinal, void* p) {
  (void)ordinal, (void)p;
}

int dtac_cuda_put(int ordinal, void* stream, void* dst, const void* src, size_t n, char* err,
                  size_t errlen) {
  (void)ordinal, (void)stream, (void)dst, (void)src, (void)n;
  return no_cuda(err, errlen);
}

int dtac_cuda_get(int ordinal, void* stream, void* dst, const void* src, size_t n, char* err,
                  size_t errlen) {
  (void)ordinal, (void)stream, (void)dst, (void)src, (void)n;
  return no_cuda(err, errlen);
}

int dtac_cuda_advance(int ordinal, void* stream, dtac_dev_env* const* envs, int n, int bpe,
                      double* part, unsigned* bar, int* coop_refused, char* err, size_t errlen) {
  (void)ordinal, (void)stream, (void)envs, (void)n, (void)bpe, (void)part, (void)bar;
  (void)coop_refused;
  return no_cuda(err, errlen);
}
