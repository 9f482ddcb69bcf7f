// bench_batch.c: many environments: batched environment-steps per second of dtac_batch_step at
// N = 1, 64, 1024 and 4096 environments of a small gel pad pressed onto a ball
// (models/press_small.xml), against mj_step on one environment in the same process; and the
// single-environment MuJoCo step rate of the default GelSight Mini pad (models/press.xml) and of
// one 4x finer (resolution / 4), the CPU figures a GPU backend is measured against.
//
//   ./build/bench/bench_batch [min_seconds_per_case [fine_steps [single]]]  (bench/run.sh runs it)
//
// stdout: one JSON object per line; stderr: a short table. Timing: CLOCK_MONOTONIC wall clock
// over whole dtac_batch_step / mj_step calls, each case repeated until min_seconds passed (at
// least one call: at large N one call of one step takes longer than that). fine_steps: steps of
// the 4x finer pad (default 1; 0 skips it: it takes about a minute to load and to step). `single`:
// the single-environment cases only. On a GPU, $DTAC_DEV_BLOCKS caps the thread blocks stepping
// one environment (docs/gpu.md); the JSON says which cap was in force ("auto": none).
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <difftac/difftac.h>
#include <mujoco/mujoco.h>

#include "bench_util.h"

static const int NENV[] = {1, 64, 1024, 4096};
#define NCASE (int)(sizeof(NENV) / sizeof(NENV[0]))

// resident memory of the process, MB
static double rss_mb(void) {
  long pages = 0, resident = 0;
  FILE* f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
  }
  return resident * (double)sysconf(_SC_PAGESIZE) / 1e6;
}

// CPU time of the process (all threads), s: cpu / wall over a case is the number of cores it got
static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static char* read_file(const char* path) {
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char* s = (char*)malloc(n + 1);
  if (s && fread(s, 1, n, f) != (size_t)n) n = 0;
  if (s) s[n] = 0;
  fclose(f);
  return s;
}

// the device every gel is stepped on: $DTAC_DEVICE (cpu, cuda, cuda:N, emu) or the model's own
static const char* device(void) {
  const char* dev = getenv("DTAC_DEVICE");
  return dev && dev[0] ? dev : "model";
}

// the cap on an environment's thread blocks on a GPU: $DTAC_DEV_BLOCKS or "auto"
static const char* dev_blocks(void) {
  const char* b = getenv("DTAC_DEV_BLOCKS");
  return b && b[0] ? b : "auto";
}

// xml (freed) with <config key="device"> set to $DTAC_DEVICE before each elastomer's site key
static char* with_device(char* xml) {
  const char* dev = getenv("DTAC_DEVICE");
  const char* key = "<config key=\"site\"";
  if (!xml || !dev || !dev[0]) return xml;
  int count = 0;
  for (const char* at = strstr(xml, key); at; at = strstr(at + 1, key)) count++;
  size_t n = strlen(xml) + count * (strlen(dev) + 40) + 1;
  char* out = (char*)malloc(n);
  char* o = out;
  const char* p = xml;
  for (const char* at = strstr(p, key); at; at = strstr(p, key)) {
    o += sprintf(o, "%.*s<config key=\"device\" value=\"%s\"/><", (int)(at - p), p, dev);
    p = at + 1;  // the key's '<' is written
  }
  strcpy(o, p);
  free(xml);
  return out;
}

// press.xml with the gel's resolution (the one config value "0.001") replaced
static mjModel* load_press(const char* resolution) {
  char* xml = with_device(read_file(DTAC_MODELS "/press.xml"));
  if (!xml) return NULL;
  const char* key = "<config key=\"resolution\" value=\"0.001\"/>";
  char* at = strstr(xml, key);
  mjModel* m = NULL;
  if (at) {
    size_t n = strlen(xml) + 64;
    char* out = (char*)malloc(n);
    snprintf(out, n, "%.*s<config key=\"resolution\" value=\"%s\"/>%s", (int)(at - xml), xml,
             resolution, at + strlen(key));
    m = bench_compile("bench_batch", out);
    free(out);
  }
  free(xml);
  return m;
}

static int gel_info(const mjModel* m, const mjData* d, dtac_gel_info* info) {
  return dtac_gel_get_info(m, d, dtac_gel_find(m, "gel"), info);
}

// sequential mj_step on one environment: steps per second
static double time_sequential(const mjModel* m, mjData* d, double min_s, long* nstep) {
  long n = 0;
  double t0 = now_s(), t;
  do {
    mj_step(m, d);
    n++;
  } while ((t = now_s() - t0) < min_s || n < 3);
  *nstep = n;
  return n / t;
}

// batched steps of n environments: environment-steps per second
static double time_batch(dtac_batch* b, mjData** d, int n, double min_s, long* ncall, double* s,
                         double* cores) {
  long k = 0;
  double c0 = cpu_s(), t0 = now_s(), t;
  do {
    dtac_batch_step(b, d, n, 1);
    k++;
  } while ((t = now_s() - t0) < min_s);
  *ncall = k;
  *s = t;
  *cores = (cpu_s() - c0) / t;
  return (double)n * k / t;
}

// one environment of the press.xml pad at `resolution`: load time and step rate; 0, or 1 if it
// failed to load
static int single_env(const char* resolution, double min_s, int max_steps) {
  double t0 = now_s();
  mjModel* m = load_press(resolution);
  mjData* d = m ? mj_makeData(m) : NULL;
  if (!d) {
    fprintf(stderr, "bench_batch: press.xml at resolution %s failed to load\n", resolution);
    if (m) mj_deleteModel(m);
    return 1;
  }
  double load_s = now_s() - t0;
  dtac_gel_info info;
  gel_info(m, d, &info);
  long n = 0;
  double t1 = now_s(), t;
  do {
    mj_step(m, d);
    n++;
  } while ((t = now_s() - t1) < min_s && n < max_steps);
  printf("{\"bench\":\"single_env\",\"device\":\"%s\",\"dev_blocks\":\"%s\",\"scene\":\"press.xml\","
         "\"resolution\":%s,\"nnode\":%d,\"ntet\":%d,\"nsub\":%d,\"load_s\":%.3f,\"steps\":%ld,\"seconds\":%.3f,"
         "\"steps_per_s\":%.4g,\"rtf\":%.4g}\n",
         device(), dev_blocks(), resolution, info.nnode, info.ntet, info.nsub, load_s, n, t, n / t,
         n / t * m->opt.timestep);
  fflush(stdout);
  fprintf(stderr, "press.xml resolution %-8s %7d nodes %7d tets nsub %4d  load %6.1f s  %9.3g steps/s\n",
          resolution, info.nnode, info.ntet, info.nsub, load_s, n / t);
  mj_deleteData(d);
  mj_deleteModel(m);
  return 0;
}

int main(int argc, char** argv) {
  double min_s = argc > 1 ? atof(argv[1]) : 2;
  int fine_steps = argc > 2 ? atoi(argv[2]) : 1;
  int single = argc > 3 && !strcmp(argv[3], "single");
  mj_loadPluginLibrary(DTAC_LIB);
  if (single) {
    int bad = single_env("0.001", min_s, 1000000);
    if (fine_steps > 0) bad |= single_env("0.00025", 1e9, fine_steps);
    return bad;
  }

  char* xml = with_device(read_file(DTAC_MODELS "/press_small.xml"));
  mjModel* m = xml ? bench_compile("bench_batch", xml) : NULL;
  free(xml);
  if (!m) return 1;
  fprintf(stderr, "device: %s\n", device());
  // the start of every environment: the pad pressed 0.5 mm onto the ball, in contact
  mjData* d0 = mj_makeData(m);
  d0->ctrl[1] = -0.002;
  for (int t = 0; t < 50; t++) mj_step(m, d0);
  dtac_gel_info info;
  gel_info(m, d0, &info);

  // N = 1 sequential mj_step: the reference rate of every ratio
  mjData* d1 = mj_makeData(m);
  mj_copyData(d1, m, d0);
  long nseq;
  double seq = time_sequential(m, d1, min_s, &nseq);
  mj_deleteData(d1);
  printf("{\"bench\":\"batch_sequential\",\"device\":\"%s\",\"scene\":\"press_small.xml\","
         "\"nnode\":%d,\"ntet\":%d,\"nsub\":%d,\"ncontact\":%d,\"steps\":%ld,\"steps_per_s\":%.4g}\n",
         device(), info.nnode, info.ntet, info.nsub, info.ncontact, nseq, seq);
  fflush(stdout);
  fprintf(stderr, "press_small.xml: %d nodes, %d tets, nsub %d, %d nodes in contact\n", info.nnode,
          info.ntet, info.nsub, info.ncontact);
  fprintf(stderr, "sequential mj_step, 1 environment: %.4g steps/s\n", seq);
  fprintf(stderr, "%6s %8s %8s %12s %14s %10s %10s %7s %9s\n", "N", "nthread", "steps", "seconds",
          "env-steps/s", "ratio", "/thread", "cores", "MB/env");

  // environments, made as needed (N ascending) from d0
  int nmax = NENV[NCASE - 1];
  mjData** d = (mjData**)calloc(nmax, sizeof(mjData*));
  int nmade = 0;
  double rss0 = rss_mb(), make_s = 0;
  dtac_batch* pool = dtac_batch_make(m, 0);
  dtac_batch* one = dtac_batch_make(m, 1);
  if (!d || !pool || !one) return 1;

  for (int c = 0; c < NCASE; c++) {
    int n = NENV[c];
    double t0 = now_s();
    for (; nmade < n; nmade++) {
      d[nmade] = mj_makeData(m);
      if (!d[nmade]) {
        fprintf(stderr, "bench_batch: mj_makeData failed at environment %d\n", nmade);
        return 1;
      }
      mj_copyData(d[nmade], m, d0);
    }
    make_s += now_s() - t0;
    // on every CPU; at N = 64 also on one thread (the cost of the batching itself)
    for (int single = 0; single < (n == 64 ? 2 : 1); single++) {
      dtac_batch* b = single ? one : pool;
      long ncall;
      double s, cores, rate = time_batch(b, d, n, min_s, &ncall, &s, &cores);
      int nthread = dtac_batch_nthread(b);
      double mb = (rss_mb() - rss0) / nmade;
      printf("{\"bench\":\"batch\",\"device\":\"%s\",\"scene\":\"press_small.xml\",\"n\":%d,"
             "\"nthread\":%d,"
             "\"steps\":%ld,\"seconds\":%.3f,\"env_steps_per_s\":%.4g,\"sequential_steps_per_s\":"
             "%.4g,\"ratio_to_sequential\":%.3f,\"ratio_per_thread\":%.3f,\"cores_used\":%.2f,"
             "\"mb_per_env\":%.3f,\"make_ms_per_env\":%.3f}\n",
             device(), n, nthread, ncall, s, rate, seq, rate / seq, rate / seq / nthread, cores, mb,
             1e3 * make_s / nmade);
      fflush(stdout);
      fprintf(stderr, "%6d %8d %8ld %12.2f %14.4g %10.3f %10.3f %7.2f %9.2f\n", n, nthread, ncall,
              s, rate, rate / seq, rate / seq / nthread, cores, mb);
    }
  }
  dtac_batch_free(one);
  dtac_batch_free(pool);
  for (int i = 0; i < nmade; i++) mj_deleteData(d[i]);
  free(d);

  // the reference again: how much the machine's speed drifted during the cases
  d1 = mj_makeData(m);
  mj_copyData(d1, m, d0);
  double seq_end = time_sequential(m, d1, min_s, &nseq);
  mj_deleteData(d1);
  printf("{\"bench\":\"batch_sequential_end\",\"scene\":\"press_small.xml\",\"steps\":%ld,"
         "\"steps_per_s\":%.4g,\"ratio_to_start\":%.3f}\n",
         nseq, seq_end, seq_end / seq);
  fflush(stdout);
  fprintf(stderr, "sequential mj_step again at the end: %.4g steps/s (%.3f of the start)\n", seq_end,
          seq_end / seq);
  mj_deleteData(d0);
  mj_deleteModel(m);

  // one environment of the default pad and of a 4x finer one
  int bad = single_env("0.001", min_s, 1000000);
  if (fine_steps > 0) bad |= single_env("0.00025", 1e9, fine_steps);
  return bad;
}
