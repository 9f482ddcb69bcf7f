// batch.c: many environments: a persistent pool of worker threads stepping many mjData of one
// model (include/difftac/difftac.h, "many environments"; docs/guide.md).
//
// A call of dtac_batch_step runs each step as a sequence of phases; every phase is run by all
// threads at once, each on its own fixed block of environments (a static partition), and the
// next phase starts only when every thread finished the previous one (a barrier). Each mjData
// is touched by one thread per phase and by nothing else, so its result does not depend on the
// thread count: bit-identical to mj_step on it alone.
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "difftac/difftac.h"
#include "derivative.h"
#include "elastomer.h"

// the phases of one step
typedef enum dtac_batch_phase_ {
  DTAC_BATCH_STEP = 0,  // each environment's mj_step (gels on a device: their step deferred)
  DTAC_BATCH_DEVICE,    // each environment's deferred device step finished (after one launch)
  DTAC_BATCH_QUIT       // workers leave their loop (dtac_batch_free)
} dtac_batch_phase;

// one thread of the pool; thread 0 is the caller of dtac_batch_step
typedef struct dtac_batch_worker_ {
  struct dtac_batch_* b;
  int id;         // 0 .. nthread-1
  int nbad;       // environments of this thread that reported a blow-up in this call
  pthread_t tid;  // (not used for thread 0)
} dtac_batch_worker;

struct dtac_batch_ {
  const mjModel* m;
  int nthread;
  mjtSize nbuffer, narena;  // sizes of an mjData made for m: the check of the mjData passed in
  int nstarted;             // worker threads started (1 .. nthread-1 of the workers)
  dtac_batch_worker* worker;

  // the job of the current phase: written by thread 0 under `mutex` before a phase starts
  pthread_mutex_t mutex;
  pthread_cond_t start;  // thread 0 -> workers: a new phase (generation changed)
  pthread_cond_t done;   // workers -> thread 0: nbusy reached 0
  long generation;       // phases started so far
  int nbusy;             // worker threads still running the current phase
  dtac_batch_phase phase;
  mjData* const* d;
  int n;

  // gels on a GPU: one launch for every environment between the two phases
  int* nwarn;              // each environment's blow-up count before its step (cap)
  dtac_dev_env** envs;     // the environments' prepared device steps (cap)
  int cap;
  dtac_dev dev;            // the batch's own stream on the environments' GPU (open: 1)
  int dev_open;
};

// ---- phases ---------------------------------------------------------------------------------------

// the lead elastomer of d when its gels are stepped on a device, else NULL
static dtac_elastomer* device_lead(const mjModel* m, const mjData* d) {
  dtac_elastomer* e = dtac_elastomer_lead(m, d);
  return e && e->dev.kind != DTAC_DEV_CPU ? e : NULL;
}

// phase 1: mj_step of each environment of thread w's block; gels on a device are prepared for
// the batch's launch instead of stepped (their lead's advance defers)
static void phase_step(dtac_batch* b, dtac_batch_worker* w, int begin, int end) {
  for (int i = begin; i < end; i++) {
    mjData* d = b->d[i];
    dtac_elastomer* e = device_lead(b->m, d);
    int nwarn = dtac_blowup_count(b->m, d);
    if (e) e->world->defer = 1;
    mj_step(b->m, d);
    if (e) e->world->defer = 0;
    if (e && e->world->dev_env) {
      b->nwarn[i] = nwarn;  // finished in phase 2
    } else {
      b->nwarn[i] = -1;
      if (dtac_blowup_count(b->m, d) != nwarn) w->nbad++;
    }
  }
}

// phase 2 (gels on a device): each environment's download and rigid corrections; on the
// emulated device, each environment's kernel body first, on this thread. Environments the launch
// failed for were stepped on the CPU already.
static void phase_device(dtac_batch* b, dtac_batch_worker* w, int begin, int end) {
  for (int i = begin; i < end; i++) {
    if (b->nwarn[i] < 0) continue;  // finished in phase 1
    mjData* d = b->d[i];
    dtac_elastomer* e = dtac_elastomer_lead(b->m, d);
    if (e && e->world->dev_env) {
      if (e->dev.kind == DTAC_DEV_EMU && dtac_dev_launch(&e->dev, &e->world->dev_env, 1, e->world->block.work)) {
        dtac_world_device_abort(b->m, d, e->world);
      } else {
        dtac_world_device_finish(b->m, d, e->world);
      }
    }
    if (dtac_blowup_count(b->m, d) != b->nwarn[i]) w->nbad++;
  }
}

// one launch for every environment whose gels wait on a GPU (thread 0, between the phases); on
// failure each of them is stepped on the CPU here (and counted in phase 2)
static void launch_all(dtac_batch* b) {
  int n = 0, work = 0;
  for (int i = 0; i < b->n; i++) {
    dtac_elastomer* e = device_lead(b->m, b->d[i]);
    if (e && e->world->dev_env && e->dev.kind == DTAC_DEV_CUDA) {
      b->envs[n++] = e->world->dev_env;
      if (e->world->block.work > work) work = e->world->block.work;
    }
  }
  if (n == 0) return;
  if (b->dev_open && dtac_dev_launch(&b->dev, b->envs, n, work) == 0) return;
  dtac_warning("dtac_batch_step: %s", b->dev.err);
  for (int i = 0; i < b->n; i++) {
    dtac_elastomer* e = device_lead(b->m, b->d[i]);
    if (e && e->world->dev_env && e->dev.kind == DTAC_DEV_CUDA) {
      snprintf(e->dev.err, sizeof(e->dev.err), "the batched launch failed: %.400s", b->dev.err);
      dtac_world_device_abort(b->m, b->d[i], e->world);
      e->world->dev_env = NULL;
    }
  }
}

// runs the current phase on thread w's block of environments: a static partition, thread t
// owning [t n / nthread, (t + 1) n / nthread)
static void run_share(dtac_batch* b, dtac_batch_worker* w) {
  int begin = (int)((long)w->id * b->n / b->nthread);
  int end = (int)((long)(w->id + 1) * b->n / b->nthread);
  switch (b->phase) {
    case DTAC_BATCH_STEP:
      phase_step(b, w, begin, end);
      break;
    case DTAC_BATCH_DEVICE:
      phase_device(b, w, begin, end);
      break;
    case DTAC_BATCH_QUIT:
      break;
  }
}

// ---- the pool -------------------------------------------------------------------------------------

static void* worker_main(void* arg) {
  dtac_batch_worker* w = (dtac_batch_worker*)arg;
  dtac_batch* b = w->b;
  long seen = 0;
  pthread_mutex_lock(&b->mutex);
  for (;;) {
    while (b->generation == seen) pthread_cond_wait(&b->start, &b->mutex);
    seen = b->generation;
    if (b->phase == DTAC_BATCH_QUIT) break;
    pthread_mutex_unlock(&b->mutex);
    run_share(b, w);
    pthread_mutex_lock(&b->mutex);
    if (--b->nbusy == 0) pthread_cond_signal(&b->done);
  }
  pthread_mutex_unlock(&b->mutex);
  return NULL;
}

// runs one phase on every thread and returns when all finished it (the barrier between phases)
static void run_phase(dtac_batch* b, dtac_batch_phase phase) {
  pthread_mutex_lock(&b->mutex);
  b->phase = phase;
  b->nbusy = b->nstarted;
  b->generation++;
  pthread_cond_broadcast(&b->start);
  pthread_mutex_unlock(&b->mutex);

  run_share(b, b->worker);

  pthread_mutex_lock(&b->mutex);
  while (b->nbusy > 0) pthread_cond_wait(&b->done, &b->mutex);
  pthread_mutex_unlock(&b->mutex);
}

dtac_batch* dtac_batch_make(const mjModel* m, int nthread) {
  if (!m) {
    dtac_warning("dtac_batch_make: the model is NULL");
    return NULL;
  }
  if (nthread < 0) {
    dtac_warning("dtac_batch_make: nthread = %d must be 0 (one per CPU) or more", nthread);
    return NULL;
  }
  if (nthread == 0) {
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    nthread = ncpu > 0 ? (int)ncpu : 1;
  }

  // the sizes every mjData of m has
  mjData* d0 = mj_makeData(m);
  if (!d0) {
    dtac_warning("dtac_batch_make: mj_makeData failed");
    return NULL;
  }
  mjtSize nbuffer = d0->nbuffer, narena = d0->narena;
  mj_deleteData(d0);

  dtac_batch* b = (dtac_batch*)calloc(1, sizeof(dtac_batch));
  dtac_batch_worker* worker = (dtac_batch_worker*)calloc(nthread, sizeof(dtac_batch_worker));
  if (!b || !worker) {
    free(b);
    free(worker);
    dtac_warning("dtac_batch_make: out of memory (%d threads)", nthread);
    return NULL;
  }
  b->m = m;
  b->nthread = nthread;
  b->nbuffer = nbuffer;
  b->narena = narena;
  b->worker = worker;
  pthread_mutex_init(&b->mutex, NULL);
  pthread_cond_init(&b->start, NULL);
  pthread_cond_init(&b->done, NULL);
  for (int t = 0; t < nthread; t++) {
    worker[t].b = b;
    worker[t].id = t;
  }

  // the caller is thread 0; the others start now and wait for phases until dtac_batch_free
  for (int t = 1; t < nthread; t++) {
    if (pthread_create(&worker[t].tid, NULL, worker_main, worker + t) != 0) {
      dtac_warning("dtac_batch_make: could not start worker thread %d of %d", t, nthread);
      dtac_batch_free(b);
      return NULL;
    }
    b->nstarted++;
  }
  return b;
}

void dtac_batch_free(dtac_batch* b) {
  if (!b) return;
  // the workers leave their loop on DTAC_BATCH_QUIT
  pthread_mutex_lock(&b->mutex);
  b->phase = DTAC_BATCH_QUIT;
  b->generation++;
  pthread_cond_broadcast(&b->start);
  pthread_mutex_unlock(&b->mutex);
  for (int t = 1; t <= b->nstarted; t++) pthread_join(b->worker[t].tid, NULL);

  pthread_cond_destroy(&b->done);
  pthread_cond_destroy(&b->start);
  pthread_mutex_destroy(&b->mutex);
  if (b->dev_open) dtac_dev_close(&b->dev);
  free(b->nwarn);
  free(b->envs);
  free(b->worker);
  free(b);
}

int dtac_batch_nthread(const dtac_batch* b) {
  return b ? b->nthread : 0;
}

// ---- stepping -------------------------------------------------------------------------------------

int dtac_batch_step(dtac_batch* b, mjData* const* d, int n, int nstep) {
  if (!b) {
    dtac_warning("dtac_batch_step: the batch is NULL");
    return -1;
  }
  if (n < 0 || nstep < 0) {
    dtac_warning("dtac_batch_step: n = %d and nstep = %d must be 0 or more", n, nstep);
    return -1;
  }
  if (n > 0 && !d) {
    dtac_warning("dtac_batch_step: the mjData array is NULL (n = %d)", n);
    return -1;
  }
  for (int i = 0; i < n; i++) {
    if (!d[i]) {
      dtac_warning("dtac_batch_step: mjData %d of %d is NULL", i, n);
      return -1;
    }
    if (d[i]->nbuffer != b->nbuffer || d[i]->narena != b->narena) {
      dtac_warning(
          "dtac_batch_step: mjData %d was not made for the batch's model (buffer %lld "
          "and arena %lld bytes, expected %lld and %lld)",
          i, (long long)d[i]->nbuffer, (long long)d[i]->narena, (long long)b->nbuffer,
          (long long)b->narena);
      return -1;
    }
  }

  // per-environment records, grown here (not in the steps)
  if (n > b->cap) {
    int* nwarn = (int*)realloc(b->nwarn, sizeof(int) * n);
    if (nwarn) b->nwarn = nwarn;
    dtac_dev_env** envs = (dtac_dev_env**)realloc(b->envs, sizeof(dtac_dev_env*) * n);
    if (envs) b->envs = envs;
    if (!nwarn || !envs) {
      dtac_warning("dtac_batch_step: out of memory (%d environments)", n);
      return -1;
    }
    b->cap = n;
  }
  // gels on a device: the batch's own GPU stream, with room for a launch of n (made here, not in
  // the steps); without it every launch fails over to the CPU with a warning
  int device = 0, ordinal = -1;
  for (int i = 0; i < n; i++) {
    dtac_elastomer* e = device_lead(b->m, d[i]);
    if (e) device = 1;
    if (e && e->dev.kind == DTAC_DEV_CUDA && ordinal < 0) ordinal = e->dev.ordinal;
  }
  if (ordinal >= 0 && !b->dev_open) b->dev_open = dtac_dev_open(&b->dev, DTAC_DEV_CUDA, ordinal) == 0;
  if (b->dev_open && dtac_dev_reserve(&b->dev, n)) {
    dtac_dev_close(&b->dev);
    b->dev_open = 0;
  }

  b->d = d;
  b->n = n;
  for (int t = 0; t < b->nthread; t++) b->worker[t].nbad = 0;
  for (int s = 0; s < nstep; s++) {
    // phase 1: each environment's step (gels on a device: prepared, not stepped)
    run_phase(b, DTAC_BATCH_STEP);
    if (!device) continue;

    // one launch for all environments' gels, then phase 2: each environment's results
    launch_all(b);
    run_phase(b, DTAC_BATCH_DEVICE);
  }
  b->d = NULL;

  int nbad = 0;
  for (int t = 0; t < b->nthread; t++) nbad += b->worker[t].nbad;
  return nbad ? -1 : 0;
}
