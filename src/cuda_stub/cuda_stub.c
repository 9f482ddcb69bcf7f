// cuda_stub.c: built when no CUDA compiler is present, so the library links without CUDA.
#include "difftac/difftac.h"

DTAC_API int dtac_cuda_available(void) { return 0; }
