// bench_util.h: what the benchmarks share: a monotonic clock, a model compiled from a string.
#ifndef DTAC_BENCH_UTIL_H_
#define DTAC_BENCH_UTIL_H_

#include <stdio.h>
#include <time.h>

#include <mujoco/mujoco.h>

// wall-clock seconds from CLOCK_MONOTONIC
static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

// the model of an MJCF string, or NULL with the parse or compile error on stderr after `who`
static inline mjModel* bench_compile(const char* who, const char* xml) {
  char err[1000] = "";
  mjSpec* spec = mj_parseXMLString(xml, NULL, err, sizeof(err));
  if (!spec) {
    fprintf(stderr, "%s: parse error: %s\n", who, err);
    return NULL;
  }
  mjModel* m = mj_compile(spec, NULL);
  if (!m) fprintf(stderr, "%s: compile error: %s\n", who, mjs_getError(spec));
  mj_deleteSpec(spec);
  return m;
}

#endif  // DTAC_BENCH_UTIL_H_
