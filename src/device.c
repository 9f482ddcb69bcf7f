// device.c: gels stepped on a device (device.h): contexts, the gels' device copies, the
// per-environment step blocks, and the emulated device that runs the device kernel's body on
// the host.
#include "device.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- contexts and memory
// --------------------------------------------------------------------------

int dtac_dev_cuda_count(void) {
  return dtac_cuda_count();
}

// reads the integer setting `name` from the environment into *v (unset: *v unchanged);
// nonzero with dv->err if it is not an integer in [lo, hi]
static int env_int(dtac_dev* dv, const char* name, int lo, int hi, int* v) {
  const char* s = getenv(name);
  if (!s) return 0;
  char* end;
  long x = strtol(s, &end, 10);
  if (end == s || *end || x < lo || x > hi) {
    snprintf(dv->err, sizeof(dv->err), "%s = '%.40s': an integer from %d to %d expected", name, s,
             lo, hi);
    return 1;
  }
  *v = (int)x;
  return 0;
}

// the environment's settings of a device of `kind` into dv; nonzero with dv->err if malformed
static int dev_settings(dtac_dev* dv, int kind) {
  dv->emu_blocks = dv->emu_threads = 1;
  if (env_int(dv, "DTAC_DEV_BLOCKS", 1, 1 << 16, &dv->maxbpe)) return 1;
  if (kind != DTAC_DEV_EMU) return 0;
  const char* fail = getenv("DTAC_EMU_FAIL");
  if (fail) dv->fail = !strcmp(fail, "launch") ? 1 : (!strcmp(fail, "get") ? 2 : 0);
  const char* team = getenv("DTAC_EMU_TEAM");
  if (team) {
    int b = 0, t = 0;
    char tail;
    if (sscanf(team, "%dx%d%c", &b, &t, &tail) != 2 || b < 1 || b > 64 || t < 1 ||
        t > DTAC_DEV_THREADS || (t & (t - 1))) {
      snprintf(dv->err, sizeof(dv->err), "DTAC_EMU_TEAM = '%.40s': BxT expected, 1 <= B <= 64 "
               "blocks of T threads, T a power of 2 up to %d", team, DTAC_DEV_THREADS);
      return 1;
    }
    dv->emu_blocks = b;
    dv->emu_threads = t;
  }
  return 0;
}

static int emu_open(dtac_dev* dv);

int dtac_dev_check_settings(int kind, char* err, size_t errlen) {
  dtac_dev dv;
  memset(&dv, 0, sizeof(dv));
  if (dev_settings(&dv, kind) == 0) return 0;
  snprintf(err, errlen, "%s", dv.err);
  return 1;
}

int dtac_dev_open(dtac_dev* dv, int kind, int ordinal) {
  memset(dv, 0, sizeof(*dv));
  dv->kind = kind;
  dv->ordinal = ordinal;
  if (dev_settings(dv, kind)) return 1;
  if (kind == DTAC_DEV_CUDA)
    return dtac_cuda_open(ordinal, &dv->stream, &dv->maxblocks, dv->err, sizeof(dv->err));
  return emu_open(dv);
}

static void* dev_alloc(dtac_dev* dv, size_t n) {
  if (n == 0) n = 8;
  if (dv->kind == DTAC_DEV_CUDA) return dtac_cuda_alloc(dv->ordinal, dv->stream, n, dv->err, sizeof(dv->err));
  void* p = calloc(1, n);
  if (!p) snprintf(dv->err, sizeof(dv->err), "out of host memory (%zu bytes)", n);
  return p;
}

static void dev_free(dtac_dev* dv, void* p) {
  if (!p) return;
  if (dv->kind == DTAC_DEV_CUDA) {
    dtac_cuda_free(dv->ordinal, p);
  } else {
    free(p);
  }
}

static int dev_put(dtac_dev* dv, void* dst, const void* src, size_t n) {
  if (n == 0) return 0;
  if (dv->kind == DTAC_DEV_CUDA)
    return dtac_cuda_put(dv->ordinal, dv->stream, dst, src, n, dv->err, sizeof(dv->err));
  memcpy(dst, src, n);
  return 0;
}

static int dev_get(dtac_dev* dv, void* dst, const void* src, size_t n) {
  if (n == 0) return 0;
  if (dv->kind == DTAC_DEV_CUDA)
    return dtac_cuda_get(dv->ordinal, dv->stream, dst, src, n, dv->err, sizeof(dv->err));
  if (dv->fail == 2) {
    snprintf(dv->err, sizeof(dv->err), "emulated download failure (DTAC_EMU_FAIL=get)");
    return 1;
  }
  memcpy(dst, src, n);
  return 0;
}

void dtac_dev_close(dtac_dev* dv) {
  free(dv->emu_mem);
  dv->emu_mem = NULL;
  dev_free(dv, dv->ptrs);
  dev_free(dv, dv->part);
  dev_free(dv, dv->bar);
  dv->part = NULL;
  dv->bar = NULL;
  if (dv->kind == DTAC_DEV_CUDA) dtac_cuda_close(dv->ordinal, dv->stream);
  dv->ptrs = NULL;
  dv->stream = NULL;
  dv->cap = 0;
}

// ---- a gel's device copy
// --------------------------------------------------------------------------

// allocates n bytes on the device into *p (kept for freeing) and uploads src there if not NULL
static int mirror_array(dtac_dev* dv, dtac_gel_mirror* mr, void* p, const void* src, size_t n) {
  void* d = dev_alloc(dv, n);
  if (!d) return 1;
  mr->mem[mr->nmem++] = d;
  memcpy(p, &d, sizeof(void*));
  return src ? dev_put(dv, d, src, n) : 0;
}

int dtac_gel_mirror_make(dtac_dev* dv, dtac_gel_mirror* mr, const dtac_gel_model* gm,
                         const double* planes, int nplane) {
  memset(mr, 0, sizeof(*mr));
  dtac_dev_gel* g = &mr->g;
  int nn = gm->nnode, nt = gm->ntet, ns = gm->nsurf;
  g->nnode = nn;
  g->ntet = nt;
  g->nsurf = ns;
  g->nfixed = gm->nfixed;
  mr->size = dtac_gel_state_layout(gm).size;
  mr->host_planes = planes;
  mr->shadow = (double*)malloc(sizeof(double) * mr->size);
  mr->param_shadow = (dtac_contact_node_param*)malloc(sizeof(dtac_contact_node_param) * (ns + 1));
  if (!mr->shadow || !mr->param_shadow) {
    snprintf(dv->err, sizeof(dv->err), "out of host memory");
    return 1;
  }
  memcpy(mr->param_shadow, gm->surf_param, sizeof(dtac_contact_node_param) * ns);

  int err = mirror_array(dv, mr, &g->tet, gm->tet, sizeof(int) * 4 * nt) ||
            mirror_array(dv, mr, &g->Dm_inv, gm->Dm_inv, sizeof(double) * 9 * nt) ||
            mirror_array(dv, mr, &g->vol, gm->vol, sizeof(double) * nt) ||
            mirror_array(dv, mr, &g->mass, gm->mass, sizeof(double) * nn) ||
            mirror_array(dv, mr, &g->inv_mass, gm->inv_mass, sizeof(double) * nn) ||
            mirror_array(dv, mr, &g->lock, gm->lock, nn) ||
            mirror_array(dv, mr, &g->node_tetadr, gm->node_tetadr, sizeof(int) * (nn + 1)) ||
            mirror_array(dv, mr, &g->node_tet, gm->node_tet, sizeof(int) * 4 * nt) ||
            mirror_array(dv, mr, &g->node_surf, gm->node_surf, sizeof(int) * nn) ||
            mirror_array(dv, mr, &g->surf, gm->surf, sizeof(int) * ns) ||
            mirror_array(dv, mr, &g->fixed_id, gm->fixed_id, sizeof(int) * gm->nfixed) ||
            mirror_array(dv, mr, &g->X, gm->X, sizeof(double) * 3 * nn) ||
            mirror_array(dv, mr, &g->surf_param, gm->surf_param,
                         sizeof(dtac_contact_node_param) * ns) ||
            mirror_array(dv, mr, &g->state, NULL, sizeof(double) * mr->size) ||
            mirror_array(dv, mr, &g->tet_force, NULL, sizeof(double) * 12 * nt) ||
            mirror_array(dv, mr, &g->tet_J, NULL, sizeof(double) * nt) ||
            mirror_array(dv, mr, &g->react, NULL, sizeof(dtac_node_react) * ns) ||
            mirror_array(dv, mr, &g->react_t, NULL, sizeof(double) * 3 * DTAC_NODE_MAXCOL * ns) ||
            mirror_array(dv, mr, &mr->dev_planes, planes, sizeof(double) * 4 * nplane);
  return err;
}

void dtac_gel_mirror_free(dtac_dev* dv, dtac_gel_mirror* mr) {
  for (int i = 0; i < mr->nmem; i++) dev_free(dv, mr->mem[i]);
  free(mr->shadow);
  free(mr->param_shadow);
  memset(mr, 0, sizeof(*mr));
}

// ---- an environment's step block
// ----------------------------------------------------------------

// where each part of a block lies (byte offsets), for ngel gels of maxcol colliders, nbody bodies
typedef struct block_layout_ {
  size_t env, gels, bodies, cur, wb, col, col_slot, col_local, col_t, size;
} block_layout;

static size_t align16(size_t n) {
  return (n + 15) & ~(size_t)15;
}

static block_layout layout(int ngel, int nbody, int maxcol) {
  block_layout L;
  size_t mc = maxcol > 0 ? maxcol : 1;
  L.env = 0;
  L.gels = align16(sizeof(dtac_dev_env));
  L.bodies = L.gels + align16(sizeof(dtac_dev_gel) * ngel);
  L.cur = L.bodies + align16(sizeof(dtac_body) * nbody);
  L.wb = L.cur + align16(sizeof(dtac_frame) * nbody);
  L.col = L.wb + align16(sizeof(double) * 6 * nbody);
  L.col_slot = L.col + align16(sizeof(dtac_collider) * mc * ngel);
  L.col_local = L.col_slot + align16(sizeof(int) * mc * ngel);
  L.col_t = L.col_local + align16(sizeof(double) * 12 * mc * ngel);
  L.size = L.col_t + align16(sizeof(dtac_collider) * mc * ngel);
  return L;
}

int dtac_env_block_make(dtac_dev* dv, dtac_env_block* eb, int maxgel, int maxbody, int maxcol) {
  memset(eb, 0, sizeof(*eb));
  eb->maxgel = maxgel;
  eb->maxbody = maxbody;
  eb->maxcol = maxcol;
  eb->size = layout(maxgel, maxbody, maxcol).size;
  eb->host = (char*)calloc(1, eb->size);
  if (!eb->host) {
    snprintf(dv->err, sizeof(dv->err), "out of host memory");
    return 1;
  }
  eb->dev = (char*)dev_alloc(dv, eb->size);
  return eb->dev ? 0 : 1;
}

void dtac_env_block_free(dtac_dev* dv, dtac_env_block* eb) {
  dev_free(dv, eb->dev);
  free(eb->host);
  memset(eb, 0, sizeof(*eb));
}

// ---- the joint step
// -------------------------------------------------------------------------------

dtac_dev_env* dtac_dev_prepare(dtac_dev* dv, dtac_env_block* eb, dtac_gel_step* gels,
                               dtac_gel_mirror* const* mirrors, int ngel, dtac_body* bodies,
                               int nbody, const double gravity[3], double h) {
  if (ngel > eb->maxgel || nbody > eb->maxbody) {
    snprintf(dv->err, sizeof(dv->err), "step block too small (%d gels, %d bodies)", ngel, nbody);
    return NULL;
  }
  // the sites' and colliders' poses in their bodies' frames, as the CPU step takes them
  dtac_gels_locals(gels, ngel, bodies);

  block_layout L = layout(eb->maxgel, eb->maxbody, eb->maxcol);
  char* H = eb->host;
  char* D = eb->dev;
  dtac_dev_env* env = (dtac_dev_env*)(H + L.env);
  memset(env, 0, sizeof(*env));
  env->ngel = ngel;
  env->nbody = nbody;
  env->gels = (dtac_dev_gel*)(D + L.gels);
  env->bodies = (dtac_body*)(D + L.bodies);
  env->cur = (dtac_frame*)(D + L.cur);
  env->wb = (double*)(D + L.wb);
  for (int k = 0; k < 3; k++) env->gravity[k] = gravity[k];
  env->h = h;
  memcpy(H + L.bodies, bodies, sizeof(dtac_body) * nbody);
  eb->work = 0;
  for (int i = 0; i < ngel; i++) eb->work += gels[i].gm->ntet;

  for (int i = 0; i < ngel; i++) {
    dtac_gel_step* st = gels + i;
    dtac_gel_mirror* mr = mirrors[i];
    const dtac_gel_model* gm = st->gm;
    int ncol = st->ncol < eb->maxcol ? st->ncol : eb->maxcol;

    // the state and the contact constants where MuJoCo or a parameter changed them
    size_t bytes = sizeof(double) * mr->size;
    if (!mr->valid || memcmp(mr->shadow, st->state, bytes) != 0) {
      if (dev_put(dv, mr->g.state, st->state, bytes)) return NULL;
      memcpy(mr->shadow, st->state, bytes);
      mr->valid = 1;
    }
    size_t pbytes = sizeof(dtac_contact_node_param) * gm->nsurf;
    if (memcmp(mr->param_shadow, gm->surf_param, pbytes) != 0) {
      if (dev_put(dv, (void*)mr->g.surf_param, gm->surf_param, pbytes)) return NULL;
      memcpy(mr->param_shadow, gm->surf_param, pbytes);
    }

    // the descriptor: mesh and state from the mirror, this step's inputs into the block
    dtac_dev_gel* g = (dtac_dev_gel*)(H + L.gels) + i;
    *g = mr->g;
    g->mat = gm->mat;
    g->alpha = gm->alpha;
    g->nsub = st->nsub;
    g->site_slot = st->site_slot;
    g->site = *st->site;
    g->site_b = st->site_b;
    g->ncol = ncol;
    size_t c0 = (size_t)i * eb->maxcol;
    dtac_collider* col = (dtac_collider*)(H + L.col) + c0;
    int* col_slot = (int*)(H + L.col_slot) + c0;
    double* col_local = (double*)(H + L.col_local) + 12 * c0;
    for (int c = 0; c < ncol; c++) {
      col[c] = st->col[c];
      if (col[c].planes) col[c].planes = mr->dev_planes + (col[c].planes - mr->host_planes);
      col_slot[c] = st->col_slot ? st->col_slot[c] : -1;
    }
    memcpy(col_local, st->s->col_local, sizeof(double) * 12 * ncol);
    g->col = (const dtac_collider*)(D + L.col) + c0;
    g->col_slot = (const int*)(D + L.col_slot) + c0;
    g->col_local = (const double*)(D + L.col_local) + 12 * c0;
    g->col_t = (dtac_collider*)(D + L.col_t) + c0;
  }
  if (dev_put(dv, D, H, L.col_t)) return NULL;
  return (dtac_dev_env*)(D + L.env);
}

// ---- the emulated device: a team of host threads per environment, meeting at a pthread barrier
// (the threads are created for each launch: the emulated device is for tests, not speed)

typedef struct emu_thread_ {
  dtac_dev_env* E;
  dtac_dev_team T;
  pthread_mutex_t* mu;  // the gate: threads wait until *go is 1 (run) or -1 (a thread could not
  pthread_cond_t* cv;   // be started: leave)
  int* go;
} emu_thread;

static void emu_sync(void* arg) {
  pthread_barrier_wait((pthread_barrier_t*)arg);
}

static void* emu_run(void* arg) {
  emu_thread* t = (emu_thread*)arg;
  pthread_mutex_lock(t->mu);
  while (*t->go == 0) pthread_cond_wait(t->cv, t->mu);
  int go = *t->go;
  pthread_mutex_unlock(t->mu);
  if (go > 0) dtac_dev_advance(t->E, &t->T);
  return NULL;
}

// where the emulated team of dv keeps its shared memory and partial sums (red), thread records
// (th) and thread ids (id) in dv->emu_mem
static void emu_layout(const dtac_dev* dv, double** red, emu_thread** th, pthread_t** id) {
  int nb = dv->emu_blocks, n = nb * dv->emu_threads;
  char* p = (char*)dv->emu_mem;
  *red = (double*)p;
  *th = (emu_thread*)(p + sizeof(double) * (8 * (size_t)n + 8 * nb));
  *id = (pthread_t*)((char*)*th + sizeof(emu_thread) * n);
}

// the emulated device's memory for a team of more than one thread; nonzero with dv->err
static int emu_open(dtac_dev* dv) {
  int nb = dv->emu_blocks, n = nb * dv->emu_threads;
  if (n == 1) return 0;
  size_t bytes = sizeof(double) * (8 * (size_t)n + 8 * nb) + (sizeof(emu_thread) +
                 sizeof(pthread_t)) * n;
  dv->emu_mem = calloc(1, bytes);
  if (!dv->emu_mem) {
    snprintf(dv->err, sizeof(dv->err), "out of host memory (emulated team of %d threads)", n);
    return 1;
  }
  return 0;
}

// environment E by the emulated device's team; nonzero with dv->err if it could not be run
static int emu_team(dtac_dev* dv, dtac_dev_env* E) {
  int nb = dv->emu_blocks, bt = dv->emu_threads, n = nb * bt;
  if (n == 1) {
    double red[8];
    dtac_dev_team T = {0, 1, 0, 1, 0, 1, red, NULL, NULL, NULL, NULL};
    dtac_dev_advance(E, &T);
    return 0;
  }
  double* red;
  emu_thread* th;
  pthread_t* id;
  emu_layout(dv, &red, &th, &id);
  pthread_barrier_t bar;
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
  int go = 0;
  pthread_barrier_init(&bar, NULL, (unsigned)n);
  for (int i = 0; i < n; i++) {
    dtac_dev_team* T = &th[i].T;
    T->blk = i / bt;
    T->nblk = nb;
    T->btid = i % bt;
    T->bthr = bt;
    T->tid = i;
    T->nthr = n;
    T->red = red + (size_t)8 * bt * T->blk;
    T->part = red + (size_t)8 * n;
    T->bar = NULL;
    T->sync = emu_sync;
    T->sync_arg = &bar;
    th[i].E = E;
    th[i].mu = &mu;
    th[i].cv = &cv;
    th[i].go = &go;
  }
  int started = 1;  // thread 0 is this one
  while (started < n && pthread_create(id + started, NULL, emu_run, th + started) == 0) started++;
  pthread_mutex_lock(&mu);
  go = started == n ? 1 : -1;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
  if (go > 0) dtac_dev_advance(E, &th[0].T);
  for (int i = 1; i < started; i++) pthread_join(id[i], NULL);
  pthread_barrier_destroy(&bar);
  if (go < 0) {
    snprintf(dv->err, sizeof(dv->err), "could not start the emulated team's thread %d of %d",
             started, n);
    return 1;
  }
  return 0;
}

int dtac_dev_team_blocks(const dtac_dev* dv, int n, int work) {
  if (dv->kind != DTAC_DEV_CUDA) return dv->emu_blocks;
  if (n <= 0 || dv->maxblocks < 2 * n) return 1;
  int bpe = dv->maxblocks / n;
  int useful = (work + 4 * DTAC_DEV_THREADS - 1) / (4 * DTAC_DEV_THREADS);
  if (bpe > useful) bpe = useful;
  if (dv->maxbpe > 0 && bpe > dv->maxbpe) bpe = dv->maxbpe;
  return bpe > 1 ? bpe : 1;
}

int dtac_dev_launch(dtac_dev* dv, dtac_dev_env* const* envs, int n, int work) {
  if (n <= 0) return 0;
  if (dv->kind != DTAC_DEV_CUDA) {
    if (dv->fail == 1) {
      snprintf(dv->err, sizeof(dv->err), "emulated launch failure (DTAC_EMU_FAIL=launch)");
      return 1;
    }
    for (int i = 0; i < n; i++) {
      if (emu_team(dv, envs[i])) return 1;
    }
    return 0;
  }
  if (n > dv->cap) {
    snprintf(dv->err, sizeof(dv->err), "launch of %d environments, room for %d", n, dv->cap);
    return 1;
  }
  int bpe = dv->part && dv->bar ? dtac_dev_team_blocks(dv, n, work) : 1;
  if (dev_put(dv, dv->ptrs, envs, sizeof(dtac_dev_env*) * n)) return 1;
  int refused = 0;
  int rc = dtac_cuda_advance(dv->ordinal, dv->stream, (dtac_dev_env* const*)dv->ptrs, n, bpe,
                             dv->part, dv->bar, &refused, dv->err, sizeof(dv->err));
  if (refused) dv->maxblocks = 0;  // one block per environment from now on
  return rc;
}

int dtac_dev_reserve(dtac_dev* dv, int n) {
  if (dv->kind != DTAC_DEV_CUDA) return 0;
  // the teams' reductions and barriers: a team of several blocks is only formed while the GPU
  // holds every block, so maxblocks of each is room for any launch
  if (dv->maxblocks > 1 && (!dv->part || !dv->bar)) {
    dev_free(dv, dv->part);
    dev_free(dv, dv->bar);
    dv->part = (double*)dev_alloc(dv, sizeof(double) * 8 * dv->maxblocks);
    dv->bar = dv->part ? (unsigned*)dev_alloc(dv, sizeof(unsigned) * 2 * dv->maxblocks) : NULL;
    if (!dv->part || !dv->bar) {
      dev_free(dv, dv->part);
      dv->part = NULL;
      dv->bar = NULL;
      return 1;
    }
  }
  if (n <= dv->cap) return 0;
  dev_free(dv, dv->ptrs);
  dv->cap = 0;
  dv->ptrs = dev_alloc(dv, sizeof(dtac_dev_env*) * n);
  if (!dv->ptrs) return 1;
  dv->cap = n;
  return 0;
}

int dtac_dev_finish(dtac_dev* dv, dtac_env_block* eb, dtac_gel_step* gels,
                    dtac_gel_mirror* const* mirrors, int ngel, dtac_body* bodies, int nbody) {
  block_layout L = layout(eb->maxgel, eb->maxbody, eb->maxcol);
  // the outputs: descriptors (reports), bodies (dP, dQ), then the states
  if (dev_get(dv, eb->host, eb->dev, L.cur)) return 1;
  const dtac_dev_env* env = (const dtac_dev_env*)(eb->host + L.env);
  const dtac_body* b = (const dtac_body*)(eb->host + L.bodies);
  for (int k = 0; k < nbody; k++) {
    memcpy(bodies[k].dP, b[k].dP, sizeof(b[k].dP));
    memcpy(bodies[k].dQ, b[k].dQ, sizeof(b[k].dQ));
  }
  // every state into its shadow first: plugin_state changes only once all downloads succeeded
  // (a failure leaves the step to be taken again on the CPU from the states before it)
  for (int i = 0; i < ngel; i++) {
    mirrors[i]->valid = 0;
    if (dev_get(dv, mirrors[i]->shadow, mirrors[i]->g.state, sizeof(double) * mirrors[i]->size))
      return 1;
  }
  for (int i = 0; i < ngel; i++) {
    dtac_gel_mirror* mr = mirrors[i];
    const dtac_dev_gel* g = (const dtac_dev_gel*)(eb->host + L.gels) + i;
    memcpy(gels[i].state, mr->shadow, sizeof(double) * mr->size);
    mr->valid = 1;
    dtac_step_report* rep = &gels[i].rep;
    rep->min_J = g->min_J;
    rep->ncontact = g->ncontact;
    rep->nonfinite = g->nonfinite;
    rep->nover = g->nover;
    rep->nsub = env->nsub;
  }
  return 0;
}
