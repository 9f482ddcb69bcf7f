// bench_grad.c: cost of the reverse pass against the forward pass it differentiates, in the
// same process (bench/run.sh grad, docs/benchmarks.md), and the tape's memory for long rollouts.
// Arguments: T (100) and a scene-name filter (all scenes). For each scene: T plain mj_step calls (the reference), the same T steps recorded on a tape, and
// dtac_tape_backward with cotangents on every sensor and the final state. Prints one JSON object
// per line: forward and backward seconds, their ratio, the tape's bytes; and for the grasp scene
// the memory of a 1000-step tape (after one backward pass, so the gels' step tape is counted).
#include <difftac/difftac.h>
#include <mujoco/mujoco.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

typedef void (*control_fn)(const mjModel* m, mjData* d, int t);

// press_tactile.xml: press the cylinder below the finger about 1 mm deep over 0.1 s
static void press_ctrl(const mjModel* m, mjData* d, int t) {
  (void)m;
  double tt = t * 0.002;
  d->ctrl[0] = 0;
  d->ctrl[1] = -0.007 * (tt < 0.1 ? tt / 0.1 : 1);
}

// grasp.xml: close at 0.1 s, lift from 0.5 s
static void grasp_ctrl(const mjModel* m, mjData* d, int t) {
  double tt = t * 0.002, x = (tt - 0.5) / 0.6;
  x = x < 0 ? 0 : (x > 1 ? 1 : x);
  d->ctrl[mj_name2id(m, mjOBJ_ACTUATOR, "lift")] = 0.04 * x * x * (3 - 2 * x);
  d->ctrl[mj_name2id(m, mjOBJ_ACTUATOR, "grip")] = tt < 0.1 ? 0 : 0.02;
}

// the model in `file` with `keys` (config elements, may be NULL) added to each of its elastomers
static mjModel* load_with_keys(const char* file, const char* keys, char* err, int errlen) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/%s", DTAC_MODELS, file);
  if (!keys) return mj_loadXML(path, NULL, err, errlen);
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  size_t nk = strlen(keys);
  const char* tag = "<config key=\"site\"";
  int ninst = 0;
  char* xml = (char*)malloc(n + 1);
  size_t got = xml ? fread(xml, 1, n, f) : 0;
  fclose(f);
  if (!xml) return NULL;
  xml[got] = 0;
  for (char* p = strstr(xml, tag); p; p = strstr(p + 1, tag)) ninst++;
  char* out = (char*)malloc(got + ninst * nk + 1);
  mjModel* m = NULL;
  mjVFS* vfs = (mjVFS*)malloc(sizeof(mjVFS));
  if (out && vfs && ninst > 0) {
    char *src = xml, *dst = out;
    for (char* p = strstr(src, tag); p; p = strstr(src, tag)) {
      memcpy(dst, src, p - src);
      dst += p - src;
      memcpy(dst, keys, nk);
      dst += nk;
      memcpy(dst, tag, strlen(tag));
      dst += strlen(tag);
      src = p + strlen(tag);
    }
    strcpy(dst, src);
    mj_defaultVFS(vfs);
    mj_addBufferVFS(vfs, file, out, (int)strlen(out));
    m = mj_loadXML(file, vfs, err, errlen);
    mj_deleteVFS(vfs);
  }
  free(vfs);
  free(out);
  free(xml);
  return m;
}

static const char* g_only;  // run only the scenes whose name contains this (argv[2])

static void run(const char* name, const char* file, const char* keys, control_fn ctrl, int warm,
                int T) {
  if (g_only && !strstr(name, g_only)) return;
  char err[1000] = "";
  mjModel* m = load_with_keys(file, keys, err, sizeof(err));
  if (!m) {
    fprintf(stderr, "bench_grad: %s: %s\n", file, err);
    exit(1);
  }
  mjData* d = mj_makeData(m);
  mj_forward(m, d);
  for (int t = 0; t < warm; t++) {
    ctrl(m, d, t);
    mj_step(m, d);
  }
  int ns = mj_stateSize(m, mjSTATE_INTEGRATION);
  mjtNum* s0 = (mjtNum*)malloc(sizeof(mjtNum) * ns);
  mj_getState(m, d, s0, mjSTATE_INTEGRATION);

  // reference: plain steps
  double t0 = now_s();
  for (int t = 0; t < T; t++) {
    ctrl(m, d, warm + t);
    mj_step(m, d);
  }
  double t_plain = now_s() - t0;

  // recorded
  mj_setState(m, d, s0, mjSTATE_INTEGRATION);
  dtac_tape* tp = dtac_tape_make(m, d, T, 0);
  t0 = now_s();
  for (int t = 0; t < T; t++) {
    ctrl(m, d, warm + t);
    dtac_tape_step(tp);
  }
  double t_rec = now_s() - t0;

  int nx = dtac_grad_state_size(m), np = dtac_param_count(m);
  mjtNum* ybar = (mjtNum*)malloc(sizeof(mjtNum) * ((size_t)T * m->nsensordata + 1));
  mjtNum* xbar = (mjtNum*)malloc(sizeof(mjtNum) * nx);
  mjtNum* x0bar = (mjtNum*)malloc(sizeof(mjtNum) * nx);
  mjtNum* ubar = (mjtNum*)malloc(sizeof(mjtNum) * ((size_t)T * m->nu + 1));
  mjtNum* pbar = (mjtNum*)malloc(sizeof(mjtNum) * (np + 1));
  for (int i = 0; i < T * m->nsensordata; i++) ybar[i] = 1e-3 * ((i * 7919) % 13 - 6);
  for (int i = 0; i < nx; i++) xbar[i] = 1e-2 * ((i * 104729) % 11 - 5);
  t0 = now_s();
  int rc = dtac_tape_backward(tp, m->nsensordata ? ybar : NULL, xbar, x0bar, ubar, pbar);
  double t_back = now_s() - t0;
  int nsub = 0;
  for (int i = 0; i < m->nplugin; i++) {
    dtac_gel_info info;
    if (dtac_gel_get_info(m, d, i, &info) == 0 && info.nsub_last > nsub) nsub = info.nsub_last;
  }
  printf(
      "{\"bench\":\"grad\",\"scene\":\"%s\",\"steps\":%d,\"nv\":%d,\"nsensordata\":%d,"
      "\"nsub\":%d,\"forward_s\":%.4f,\"record_s\":%.4f,\"backward_s\":%.4f,"
      "\"backward_over_forward\":%.2f,\"tape_bytes\":%zu,\"ok\":%d}\n",
      name, T, (int)m->nv, (int)m->nsensordata, nsub, t_plain, t_rec, t_back, t_back / t_plain,
      dtac_tape_memory(tp), rc == 0);
  fprintf(stderr,
          "  %-14s %4d steps (nv %d, %d sensor values, %d substeps): forward %.2f s, recorded "
          "%.2f s, backward %.2f s = %.2f x forward; tape %.1f MB\n",
          name, T, (int)m->nv, (int)m->nsensordata, nsub, t_plain, t_rec, t_back, t_back / t_plain,
          dtac_tape_memory(tp) / 1e6);

  // transition Jacobians at the rollout's start: difftac (one reverse pass for all rows of A
  // and B; C and D by differences of the forward pass) against mjd_transitionFD (centred)
  {
    int ndx = 2 * m->nv + m->na, nu = m->nu;
    size_t nsd = m->nsensordata;
    mjtNum* A = (mjtNum*)malloc(sizeof(mjtNum) * ndx * ndx);
    mjtNum* B = (mjtNum*)malloc(sizeof(mjtNum) * ndx * (nu + 1));
    mjtNum* Af = (mjtNum*)malloc(sizeof(mjtNum) * ndx * ndx);
    mjtNum* Bf = (mjtNum*)malloc(sizeof(mjtNum) * ndx * (nu + 1));
    mjtNum* C = (mjtNum*)malloc(sizeof(mjtNum) * (nsd * (ndx + nu) + 1));
    mjtNum* Cf = (mjtNum*)malloc(sizeof(mjtNum) * (nsd * (ndx + nu) + 1));
    mjtNum* D = C + nsd * ndx;
    mjtNum* Df = Cf + nsd * ndx;
    mj_setState(m, d, s0, mjSTATE_INTEGRATION);
    dtac_tape* t1 = dtac_tape_make(m, d, 1, 1);
    dtac_tape_transition(t1, A, B, NULL, NULL);  // warm: the reverse pass's buffers
    mj_setState(m, d, s0, mjSTATE_INTEGRATION);
    t0 = now_s();
    int rc1 = dtac_tape_transition(t1, A, B, nsd ? C : NULL, nsd ? D : NULL);
    double t_ours = now_s() - t0;
    mj_setState(m, d, s0, mjSTATE_INTEGRATION);
    t0 = now_s();
    // (mjd_transitionFD runs out of MuJoCo's arena with half a million sensor values: A, B only)
    int fdC = nsd > 0 && nsd < 100000;
    mjd_transitionFD(m, d, 1e-6, 1, Af, Bf, fdC ? Cf : NULL, fdC ? Df : NULL);
    double t_fd = now_s() - t0;
    double dA = 0, mA = 0;
    for (int k = 0; k < ndx * ndx; k++) {
      dA = fmax(dA, fabs(A[k] - Af[k]));
      mA = fmax(mA, fabs(Af[k]));
    }
    printf(
        "{\"bench\":\"transition\",\"scene\":\"%s\",\"ndx\":%d,\"nu\":%d,"
        "\"nsensordata\":%zu,\"difftac_s\":%.4f,\"transitionFD_s\":%.4f,"
        "\"fd_over_difftac\":%.2f,\"max_abs_A_diff\":%.3e,\"max_abs_A\":%.3e,\"ok\":%d}\n",
        name, ndx, nu, nsd, t_ours, t_fd, t_fd / t_ours, dA, mA, rc1 == 0);
    fprintf(stderr,
            "  %-14s transition (ndx %d, nu %d): difftac %.3f s, mjd_transitionFD %.3f s (%.2fx); "
            "max |A - A_fd| %.2e of %.2e\n",
            name, ndx, nu, t_ours, t_fd, t_fd / t_ours, dA, mA);
    dtac_tape_free(t1);
    free(A), free(B), free(Af), free(Bf), free(C), free(Cf);
  }

  // memory of a 1000-step tape of this scene (states and the gels' step tape)
  dtac_tape* big = dtac_tape_make(m, d, 1000, 0);
  mj_setState(m, d, s0, mjSTATE_INTEGRATION);
  for (int t = 0; t < 2; t++) dtac_tape_step(big);
  dtac_tape_backward(big, NULL, NULL, NULL, NULL, NULL);
  printf("{\"bench\":\"grad_memory\",\"scene\":\"%s\",\"steps\":1000,\"tape_bytes\":%zu}\n", name,
         dtac_tape_memory(big));
  fprintf(stderr, "  %-14s 1000-step tape: %.1f MB\n", name, dtac_tape_memory(big) / 1e6);
  dtac_tape_free(big);

  dtac_tape_free(tp);
  free(s0);
  free(ybar);
  free(xbar);
  free(x0bar);
  free(ubar);
  free(pbar);
  mj_deleteData(d);
  mj_deleteModel(m);
}

int main(int argc, char** argv) {
  int T = argc > 1 ? atoi(argv[1]) : 100;
  g_only = argc > 2 ? argv[2] : NULL;
  mj_loadPluginLibrary(DTAC_LIB);
  fprintf(stderr, "bench_grad: difftac %s, MuJoCo %s\n", dtac_version(), mj_versionString());
  run("grasp", "grasp.xml", NULL, grasp_ctrl, 300, T);
  run("press_tactile", "press_tactile.xml", NULL, press_ctrl, 60, T / 5 > 0 ? T / 5 : 1);
  // the implicit integrator: the gel's forces applied by MuJoCo's step, and the finger an unknown
  // of the gel's solve (coupling 'substep', the default; the joint reverse)
  run("press_implicit", "press_tactile.xml",
      "<config key=\"integrator\" value=\"implicit\"/>"
      "<config key=\"coupling\" value=\"explicit\"/>",
      press_ctrl, 60, T / 5 > 0 ? T / 5 : 1);
  run("press_implicit_coupled", "press_tactile.xml",
      "<config key=\"integrator\" value=\"implicit\"/>", press_ctrl, 60, T / 5 > 0 ? T / 5 : 1);
  run("grasp_implicit", "grasp.xml", "<config key=\"integrator\" value=\"implicit\"/>",
      grasp_ctrl, 300, T);
  return 0;
}
