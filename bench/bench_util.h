// bench_util.h: what the benchmarks share: a monotonic clock.
#ifndef DTAC_BENCH_UTIL_H_
#define DTAC_BENCH_UTIL_H_

#include <time.h>

// wall-clock seconds from CLOCK_MONOTONIC
static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

#endif  // DTAC_BENCH_UTIL_H_
