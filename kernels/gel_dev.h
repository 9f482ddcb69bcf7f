// gel_dev.h: the joint step of one environment's gels (dtac_gels_advance of src/step.c) as one
// device kernel body: every substep of a MuJoCo step in one launch (a persistent kernel). A team
// of threads steps one environment: the threads of one thread block, or of several co-resident
// blocks joined by a barrier in global memory (a single large environment spread over the GPU).
// The team's threads stride over tets and nodes, its phases separated by barriers. The physics
// is the per-element and per-node functions of fem.h and substep.h, the same the CPU step calls.
// The body runs under CUDA (kernels/gel_cuda.cu) and on the host (src/device.c's emulated
// device, which runs a team of host threads and so tests this code path, its barriers and
// reductions included, where no GPU is present).
#ifndef DTAC_KERNELS_GEL_DEV_H_
#define DTAC_KERNELS_GEL_DEV_H_

#include "fem.h"
#include "substep.h"

// threads of a block (a power of 2) and the doubles of shared memory a block needs
#define DTAC_DEV_THREADS 256
#define DTAC_DEV_SHARED (DTAC_DEV_THREADS * 8)

// one thread's view of the team stepping an environment
typedef struct dtac_dev_team_ {
  int tid, nthr;  // this thread in the team, the team's threads
  int btid, bthr; // this thread in its block, the block's threads (a power of 2)
  int blk, nblk;  // this block in the team, the team's blocks
  double* red;    // the block's shared memory: bthr x 8 doubles
  double* part;   // the blocks' partial reductions: nblk x 8 doubles (nblk > 1), global memory
  unsigned* bar;  // the team's barrier: arrivals and generation (nblk > 1, CUDA), global memory
  void (*sync)(void* arg);  // the emulated device's barrier (host only; NULL: one thread)
  void* sync_arg;
} dtac_dev_team;

#if defined(__CUDA_ARCH__)
// the barrier of nblk co-resident blocks (a cooperative launch guarantees they are): the block's
// threads meet, its thread 0 arrives and waits for the generation to change, the last to arrive
// resets the count and starts the next generation; fences make every write before the barrier
// visible to every block after it
__device__ static inline void dtac_dev_team_barrier(unsigned* bar, int nblk) {
  __syncthreads();
  if (threadIdx.x == 0) {
    volatile unsigned* gen = bar + 1;
    unsigned g = *gen;
    __threadfence();
    if (atomicAdd(bar, 1u) == (unsigned)nblk - 1) {
      atomicExch(bar, 0u);
      __threadfence();
      atomicAdd(bar + 1, 1u);
    } else {
      while (*gen == g) __nanosleep(32);
    }
    __threadfence();
  }
  __syncthreads();
}
#endif

// the threads of this thread's block meet
DTAC_HD void dtac_dev_bsync(const dtac_dev_team* T) {
#if defined(__CUDA_ARCH__)
  (void)T;
  __syncthreads();
#else
  if (T->sync) T->sync(T->sync_arg);  // the emulated team meets whole: a stronger barrier
#endif
}

// the team's threads meet: every write before is seen by every thread after
DTAC_HD void dtac_dev_sync(const dtac_dev_team* T) {
#if defined(__CUDA_ARCH__)
  if (T->nblk > 1) {
    dtac_dev_team_barrier(T->bar, T->nblk);
  } else {
    __syncthreads();
  }
#else
  if (T->sync) T->sync(T->sync_arg);
#endif
}

// one gel of an environment, in device memory (every pointer a device address). The state and
// scratch arrays below, and the environment's bodies, frames, wrenches and the teams' partial
// sums, are written by some blocks and read by others across team barriers: read them with
// plain loads only, never through the read-only path (__ldg, const __restrict__), which the
// barrier's fences do not make coherent.
typedef struct dtac_dev_gel_ {
  // mesh and material (uploaded at creation; surf_param again when a parameter changes)
  int nnode, ntet, nsurf, nfixed;
  const int* tet;             // ntet x 4
  const double* Dm_inv;       // ntet x 9
  const double* vol;          // ntet
  const double* mass;         // nnode
  const double* inv_mass;     // nnode (0: back face)
  const unsigned char* lock;  // nnode
  const int* node_tetadr;     // nnode + 1
  const int* node_tet;        // 4 ntet
  const int* node_surf;       // nnode: contact node index, -1 if none
  const int* surf;            // nsurf
  const int* fixed_id;        // nfixed
  const double* X;            // rest positions, site frame (nnode x 3)
  const dtac_contact_node_param* surf_param;  // nsurf
  dtac_material mat;
  double alpha;
  // state (the device copy of plugin_state) and scratch
  double* state;  // x at 0, v at 3 nnode, anchors at 6 nnode (nsurf x 4)
  double* tet_force;        // ntet x 12
  double* tet_J;            // ntet
  dtac_node_react* react;   // nsurf: forces on the colliders in the substep
  double* react_t;          // nsurf x DTAC_NODE_MAXCOL x 3: their torques about the collider
  // this step
  int nsub;                    // substeps this gel needs
  int site_slot;               // body slot carrying the site, -1: constant velocity
  dtac_frame site;             // the site at the step start
  dtac_frame site_b;           // the site in its body's frame (site_slot >= 0)
  int ncol;
  const dtac_collider* col;    // colliders at the step start (ncol; planes: device addresses)
  const int* col_slot;         // body slot of each collider, -1: constant velocity (ncol)
  const double* col_local;     // collider pose in its body's frame (ncol x 12)
  dtac_collider* col_t;        // colliders at the current substep (ncol)
  dtac_frame st;               // the site at the current substep
  // out
  double min_J;
  int ncontact, nonfinite, nover;
} dtac_dev_gel;

// one environment's joint step (dtac_gels_advance), in device memory
typedef struct dtac_dev_env_ {
  int ngel, nbody;
  dtac_dev_gel* gels;  // ngel
  dtac_body* bodies;   // nbody: in: frame, Winv, wrench_app; out: dP, dQ
  dtac_frame* cur;     // nbody: the bodies' frames in the substep
  double* wb;          // nbody x 6: the gels' wrench on each body in the substep
  double gravity[3];
  double h;
  int nsub;  // out: substeps taken
} dtac_dev_env;

// sum (op 0) or minimum (op 1) of n <= 8 values per thread over the team's threads: a tree in
// each block's shared memory, then the blocks' partial results in block order, the same in every
// thread (the result does not depend on which blocks finish first); every thread gets it in v
DTAC_HD void dtac_dev_reduce(double* v, int n, int op, const dtac_dev_team* T) {
  double* red = T->red;
  int tid = T->btid;
  for (int k = 0; k < n; k++) red[n * tid + k] = v[k];
  dtac_dev_bsync(T);
  for (int s = T->bthr / 2; s > 0; s /= 2) {
    if (tid < s) {
      for (int k = 0; k < n; k++) {
        double a = red[n * tid + k], b = red[n * (tid + s) + k];
        red[n * tid + k] = op ? fmin(a, b) : a + b;
      }
    }
    dtac_dev_bsync(T);
  }
  if (T->nblk == 1) {
    for (int k = 0; k < n; k++) v[k] = red[k];
    dtac_dev_bsync(T);
    return;
  }
  if (tid == 0) {
    for (int k = 0; k < n; k++) T->part[8 * T->blk + k] = red[k];
  }
  dtac_dev_sync(T);
  // value k: the blocks' partials in block order, by thread k of each block (the same sum in
  // every block), handed to the block's threads through shared memory
  for (int k = tid; k < n; k += T->bthr) {
    double a = T->part[k];
    for (int b = 1; b < T->nblk; b++) a = op ? fmin(a, T->part[8 * b + k]) : a + T->part[8 * b + k];
    red[k] = a;
  }
  dtac_dev_bsync(T);
  for (int k = 0; k < n; k++) v[k] = red[k];
  dtac_dev_sync(T);  // part and red free for the next reduction
}

// element forces and det F of gel g; returns this thread's smallest det F
DTAC_HD double dtac_dev_tets(dtac_dev_gel* g, const dtac_dev_team* T) {
  const double* x = g->state;
  const double* v = g->state + 3 * g->nnode;
  double minJ = INFINITY;
  for (int t = T->tid; t < g->ntet; t += T->nthr) {
    const int* tv = g->tet + 4 * t;
    double J = dtac_tet_force(&g->mat, x + 3 * tv[0], x + 3 * tv[1], x + 3 * tv[2], x + 3 * tv[3],
                              v + 3 * tv[0], v + 3 * tv[1], v + 3 * tv[2], v + 3 * tv[3],
                              g->Dm_inv + 9 * t, g->vol[t], g->tet_force + 12 * t);
    g->tet_J[t] = J;
    minJ = fmin(minJ, J);
  }
  return minJ;
}

// what the reverse pass keeps of a substep recomputed for it (src/step_adj.c), per node
typedef struct dtac_node_rec_ {
  double* fint;  // each node's internal force (nnode x 3)
  double* imp;   // each contact node's implicit contact terms (nsurf x DTAC_IMP_SIZE)
  double* vimp;  // each contact node's velocity before its implicit updates (nsurf x 6)
} dtac_node_rec;

// one node's substep, after the element forces: forces (elastic, damping relative to the site's
// body, gravity, contact), velocity, implicit contact, position. Adds the node's share of the
// gel's wrench on the site's body (about st.pos) to wsite[0..5] and the colliders it left out to
// wsite[7], records its forces on the colliders in g->react and their torques in g->react_t, and
// what the reverse pass needs in rec (NULL: nothing); returns 1 if in contact. Both steps call
// it: the CPU's (src/step.c, node after node, on a view of the gel in host memory) and the
// device kernel's (below, the team's threads striding over the nodes).
DTAC_HD int dtac_node_substep(dtac_dev_gel* g, int a, const double gravity[3], double dt,
                              double wsite[8], const dtac_node_rec* rec) {
  double* x = g->state;
  double* v = g->state + 3 * g->nnode;
  double* anchor = g->state + 6 * g->nnode;
  double* xa = x + 3 * a;
  double* va = v + 3 * a;
  const dtac_frame* st = &g->st;
  double im = g->inv_mass[a], m = g->mass[a];

  double f[3] = {0, 0, 0};
  dtac_node_gather(0, g->node_tetadr + a, g->node_tet, g->tet_force, f);  // node a into f
  if (rec) {
    for (int k = 0; k < 3; k++) rec->fint[3 * a + k] = f[k];
  }
  if (g->site_slot >= 0 && im == 0) {
    const double zero[3] = {0, 0, 0};
    dtac_wrench_add(wsite, f, zero, xa, st->pos);
  }
  if (g->alpha > 0 && im != 0) {
    double fd[3], r[3], t[3];
    dtac_mass_damping_node(g->alpha, m, xa, va, st->pos, st, fd);
    for (int k = 0; k < 3; k++) f[k] += fd[k];
    if (g->site_slot >= 0) {
      dtac_sub3(r, xa, st->pos);
      dtac_cross3(t, r, fd);
      for (int k = 0; k < 3; k++) {
        wsite[k] -= fd[k];
        wsite[3 + k] -= t[k];
      }
    }
  }
  for (int k = 0; k < 3; k++) f[k] += m * gravity[k];

  int s = g->node_surf[a], touch = 0;
  double imp[DTAC_IMP_SIZE];
  dtac_node_react* r = s >= 0 ? g->react + s : 0;
  if (r) {
    double* an = anchor + 4 * s;
    touch = dtac_contact_node(g->surf_param + s, xa, va, an, an, g->col_t, g->ncol, f, imp, r);
    wsite[7] += r->over;
    if (rec) {
      for (int k = 0; k < DTAC_IMP_SIZE; k++) rec->imp[DTAC_IMP_SIZE * s + k] = imp[k];
    }
  }

  // symplectic Euler: velocity, then the implicit normal contact, then position
  if (im != 0) {
    for (int k = 0; k < 3; k++) va[k] += dt * im * f[k];
    for (int j = 0; r && j < 2; j++) {
      const double* q = imp + 7 * j;
      if (q[5] < 0) continue;
      int c = (int)q[5];
      double fc[3];
      if (rec) {
        for (int k = 0; k < 3; k++) rec->vimp[3 * (2 * s + j) + k] = va[k];
      }
      dtac_contact_implicit(q, g->col_t + c, m, xa, va, dt, fc);
      for (int i = 0; i < r->n; i++) {
        if (r->c[i] != c) continue;
        for (int k = 0; k < 3; k++) r->f[i][k] += fc[k];
      }
    }
  }
  // the reactions' torques about the colliders, at the substep-start position
  for (int i = 0; r && i < r->n; i++) {
    double d[3];
    dtac_sub3(d, xa, g->col_t[r->c[i]].pos);
    dtac_cross3(g->react_t + 3 * (DTAC_NODE_MAXCOL * s + i), d, r->f[i]);
  }
  if (im != 0) {
    for (int k = 0; k < 3; k++) {
      if (g->lock[a] & (1 << k)) va[k] = 0;
      xa[k] += dt * va[k];
    }
  }
  return touch;
}

// collider c's reaction to the contact nodes s = tid, tid + nthr, ... of gel g (minus the
// forces on them, and minus their torques about the collider), added to ft[0..5]
DTAC_HD void dtac_collider_reaction(const dtac_dev_gel* g, int c, int tid, int nthr,
                                    double ft[6]) {
  for (int s = tid; s < g->nsurf; s += nthr) {
    const dtac_node_react* r = g->react + s;
    for (int j = 0; j < r->n; j++) {
      if (r->c[j] != c) continue;
      for (int k = 0; k < 3; k++) {
        ft[k] -= r->f[j][k];
        ft[3 + k] -= g->react_t[3 * (DTAC_NODE_MAXCOL * s + j) + k];
      }
    }
  }
}

// the joint step of environment E over E->h (dtac_gels_advance), by thread T of its team
DTAC_HD void dtac_dev_advance(dtac_dev_env* E, const dtac_dev_team* T) {
  int tid = T->tid, nthr = T->nthr;
  // substeps: the finest any gel needs, more when elements are compressed or inverted
  int nsub = 1;
  for (int i = 0; i < E->ngel; i++) {
    dtac_dev_gel* g = E->gels + i;
    double mj = dtac_dev_tets(g, T);
    dtac_dev_reduce(&mj, 1, 1, T);
    int n = dtac_substep_count(g->nsub, mj);
    if (n > nsub) nsub = n;
    if (tid == 0) {
      g->min_J = mj;
      g->nover = 0;
    }
  }
  double dt = E->h / nsub;
  for (int b = tid; b < E->nbody; b += nthr) {
    E->cur[b] = E->bodies[b].frame;
    for (int k = 0; k < 6; k++) E->bodies[b].dP[k] = E->bodies[b].dQ[k] = E->wb[6 * b + k] = 0;
  }
  dtac_dev_sync(T);

  for (int sub = 0; sub < nsub; sub++) {
    double t = sub * dt;
    // frames of the colliders and sites at the substep start
    for (int i = 0; i < E->ngel; i++) {
      dtac_dev_gel* g = E->gels + i;
      for (int c = tid; c < g->ncol; c += nthr) {
        int b = g->col_slot[c];
        dtac_collider_at(g->col + c, b, g->col_local + 12 * c, E->cur, t, g->col_t + c);
      }
      if (tid == 0) dtac_site_at(&g->site, g->site_slot, &g->site_b, E->cur, t, &g->st);
    }
    dtac_dev_sync(T);

    for (int i = 0; i < E->ngel; i++) {
      dtac_dev_gel* g = E->gels + i;
      // substep 0 keeps the element forces of the substep count's pass (the same state)
      double mj = sub > 0 ? dtac_dev_tets(g, T) : INFINITY;
      dtac_dev_sync(T);
      // wrench on the site's body, contact nodes, colliders left out
      double w[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int a = tid; a < g->nnode; a += nthr) {
        w[6] += dtac_node_substep(g, a, E->gravity, dt, w, 0);
      }
      dtac_dev_reduce(&mj, 1, 1, T);
      dtac_dev_reduce(w, 8, 0, T);
      if (tid == 0) {
        g->min_J = fmin(g->min_J, mj);
        g->ncontact = (int)w[6];
        g->nover += (int)w[7];
        if (g->site_slot >= 0) {
          dtac_wrench_add(E->wb + 6 * g->site_slot, w, w + 3, g->st.pos,
                          E->cur[g->site_slot].pos);
        }
      }
      // each collider's reaction (minus the nodes' forces), about its origin, to its body
      for (int c = 0; c < g->ncol; c++) {
        int b = g->col_slot[c];
        if (b < 0) continue;
        double ft[6] = {0, 0, 0, 0, 0, 0};
        dtac_collider_reaction(g, c, tid, nthr, ft);
        dtac_dev_reduce(ft, 6, 0, T);
        if (tid == 0) dtac_wrench_add(E->wb + 6 * b, ft, ft + 3, g->col_t[c].pos, E->cur[b].pos);
      }
    }
    dtac_dev_sync(T);

    // bodies: the gels' wrench beyond what the rigid step applied changes their velocity now
    for (int b = tid; b < E->nbody; b += nthr) {
      dtac_body* B = E->bodies + b;
      dtac_body_substep(B, E->cur + b, B->dP, B->dQ, E->wb + 6 * b, dt);
      for (int k = 0; k < 6; k++) E->wb[6 * b + k] = 0;
    }
    dtac_dev_sync(T);

    // the back faces with their sites at the substep's end
    for (int i = 0; i < E->ngel; i++) {
      dtac_dev_gel* g = E->gels + i;
      dtac_frame sf;
      dtac_site_at(&g->site, g->site_slot, &g->site_b, E->cur, t + dt, &sf);
      for (int j = tid; j < g->nfixed; j += nthr) {
        int a = g->fixed_id[j];
        dtac_place_node(&sf, g->X + 3 * a, g->state + 3 * a, g->state + 3 * g->nnode + 3 * a);
      }
    }
    dtac_dev_sync(T);
  }

  // a non-finite value anywhere in positions or velocities
  for (int i = 0; i < E->ngel; i++) {
    dtac_dev_gel* g = E->gels + i;
    double bad = 0;
    for (int k = tid; k < 6 * g->nnode; k += nthr) {
      if (!isfinite(g->state[k])) bad = 1;
    }
    dtac_dev_reduce(&bad, 1, 0, T);
    if (tid == 0) g->nonfinite = bad > 0;
  }
  if (tid == 0) E->nsub = nsub;
}

#endif  // DTAC_KERNELS_GEL_DEV_H_
