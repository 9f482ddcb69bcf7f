// device.h: stepping gels on a device. A device context (dtac_dev) is a CUDA GPU and stream, or
// the emulated device: host memory and the device kernel's body run by a team of host threads
// (one by default), which tests the device code path (buffers, uploads, the kernel's phases,
// barriers and reductions) where no GPU is present.
//
// The state stays authoritative in MuJoCo's plugin_state: the device keeps a copy, uploaded
// before a step whenever plugin_state differs from what the device last held (mj_resetData,
// mj_setState, mj_copyData, finite differences all change it behind the plugin's back), and
// downloaded after every step.
#ifndef DTAC_SRC_DEVICE_H_
#define DTAC_SRC_DEVICE_H_

#include <stddef.h>

#include "gel.h"
#include "gel_cuda.h"
#include "gel_dev.h"

typedef enum dtac_dev_kind_ {
  DTAC_DEV_CPU = 0,  // no device: the CPU step (src/step.c)
  DTAC_DEV_CUDA,     // a CUDA GPU
  DTAC_DEV_EMU       // the emulated device (host memory, host threads)
} dtac_dev_kind;

// a device context: one per elastomer instance (one stream each), or per batch
typedef struct dtac_dev_ {
  int kind;          // dtac_dev_kind
  int ordinal;       // CUDA device number
  void* stream;      // CUDA stream (cudaStream_t)
  void* ptrs;        // device array of environment pointers for a launch (cap of them)
  int cap;
  int fail;          // emulated device: 1 fails every launch, 2 every download (the tests'
                     // fault injection, from $DTAC_EMU_FAIL = launch or get when opened)
  int maxblocks;     // CUDA: blocks the GPU holds at once (0: no cooperative launches)
  int maxbpe;        // the most blocks an environment's team may have ($DTAC_DEV_BLOCKS; 0: any)
  double* part;      // CUDA: the teams' partial reductions (maxblocks x 8 doubles) ...
  unsigned* bar;     // ... and barriers (2 x maxblocks), made by dtac_dev_reserve
  int emu_blocks;    // emulated device: the team's blocks and threads per block, from
  int emu_threads;   // $DTAC_EMU_TEAM = BxT when opened (1x1: the launching thread alone)
  void* emu_mem;     // the team's shared memory, partial sums and thread records (made when
                     // opened: a launch creates the team's threads, allocates nothing else)
  char err[DTAC_ERRLEN];  // the last error
} dtac_dev;

// opens a context on device `kind` (ordinal for CUDA); nonzero with dv->err on failure (also a
// malformed $DTAC_EMU_TEAM or $DTAC_DEV_BLOCKS)
int dtac_dev_open(dtac_dev* dv, int kind, int ordinal);
// checks the environment's settings a device of `kind` will read when opened ($DTAC_EMU_TEAM,
// $DTAC_DEV_BLOCKS), so that a malformed one is a load error before any mjData exists; nonzero
// with the message in err
int dtac_dev_check_settings(int kind, char* err, size_t errlen);
void dtac_dev_close(dtac_dev* dv);
// 1 if a CUDA device is usable in this process (0 in a build without CUDA)
int dtac_dev_cuda_count(void);

// one gel's device copy: its mesh, state and scratch, and host shadows of what the device holds
typedef struct dtac_gel_mirror_ {
  dtac_dev_gel g;              // descriptor image: device pointers, sizes, material
  const double* host_planes;   // collider hull planes on the host (the elastomer's) ...
  double* dev_planes;          // ... and their device copy
  double* shadow;              // the state as the device holds it (state size)
  int valid;                   // 1 once shadow is what the device holds
  dtac_contact_node_param* param_shadow;  // surf_param as uploaded (nsurf)
  int size;                    // state size, doubles
  void* mem[20];               // device allocations (freed with the mirror)
  int nmem;
} dtac_gel_mirror;

// makes the device copy of gm (hull planes: nplane x 4 doubles at planes), with room for maxcol
// colliders; nonzero with dv->err on failure
int dtac_gel_mirror_make(dtac_dev* dv, dtac_gel_mirror* mr, const dtac_gel_model* gm,
                         const double* planes, int nplane);
void dtac_gel_mirror_free(dtac_dev* dv, dtac_gel_mirror* mr);

// one environment's joint-step block: the descriptor, bodies and per-step inputs, on the host
// (staging) and on the device, sized for at most maxgel gels, maxbody bodies, maxcol colliders
// per gel
typedef struct dtac_env_block_ {
  size_t size;  // bytes
  char* host;   // staging
  char* dev;
  int maxgel, maxbody, maxcol;
  int work;     // tets of the gels the last prepare set up (sizes the environment's team)
} dtac_env_block;

int dtac_env_block_make(dtac_dev* dv, dtac_env_block* eb, int maxgel, int maxbody, int maxcol);
void dtac_env_block_free(dtac_dev* dv, dtac_env_block* eb);

// the joint step of dtac_gels_advance on the device, in three parts so that a batch can launch
// many environments at once: prepare uploads the inputs (and the gels' states and contact
// constants where they changed) and returns the environment's device address, or NULL with
// dv->err; dtac_dev_launch runs n environments of at most `work` tets each (eb->work); finish
// downloads the states and outputs into gels[i].state, gels[i].rep and bodies' dP, dQ
dtac_dev_env* dtac_dev_prepare(dtac_dev* dv, dtac_env_block* eb, dtac_gel_step* gels,
                               dtac_gel_mirror* const* mirrors, int ngel, dtac_body* bodies,
                               int nbody, const double gravity[3], double h);
int dtac_dev_launch(dtac_dev* dv, dtac_dev_env* const* envs, int n, int work);
// the thread blocks in each environment's team for a launch of n environments of `work` tets:
// on a GPU, as many as the GPU holds at once beside the other environments' teams, but no more
// than keep each block's threads at 4 tets or more each (a barrier costs a few microseconds);
// on the emulated device, its fixed team
int dtac_dev_team_blocks(const dtac_dev* dv, int n, int work);
// room for launches of up to n environments on dv, made before stepping (a launch allocates
// nothing); nonzero with dv->err on failure
int dtac_dev_reserve(dtac_dev* dv, int n);
int dtac_dev_finish(dtac_dev* dv, dtac_env_block* eb, dtac_gel_step* gels,
                    dtac_gel_mirror* const* mirrors, int ngel, dtac_body* bodies, int nbody);

#endif  // DTAC_SRC_DEVICE_H_
