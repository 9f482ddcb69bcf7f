// bench_gel.c: speed of the difftac gel (explicit stable Neo-Hookean tets, substepped) against
// MuJoCo's own 3-D flex elasticity on the same pad, the same mesh and the same material, both
// pressed by a sphere (in contact, as in real use).
//
//   ./build/bench/bench_gel [min_seconds_per_case]      (bench/run.sh runs it)
//
// stdout: one JSON object per line (one per case, then one ratio line per resolution);
// stderr: a short human-readable table. Timing: CLOCK_MONOTONIC wall clock over whole mj_step
// calls, after a warm-up in which the finger presses the gel onto the sphere.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <difftac/difftac.h>
#include "bench_util.h"
#include <mujoco/mujoco.h>

#include "fem_loops.h"  // the CPU element loops of kernels/, timed alone below

// ---- the scene ----------------------------------------------------------------------------------
// GelSight Mini pad, as in models/press.xml
static const double SIZE[3] = {0.02075, 0.02525, 0.004};
static const double YOUNG = 3e5, POISSON = 0.45, DENSITY = 1000;
static const double TIMESTEP = 0.002;  // MuJoCo step of press.xml
// finger: body at z = 0.03 with a z slide; the gel hangs below it (back face on the body), the
// sphere's top is at z = 0.02, so qz = -0.006 puts the gel face on the sphere top
#define NSEG 3
static const double Q_START = -0.006, Q_PRESS = -0.007;  // commanded 1 mm press
static const double SPHERE_C[3] = {0, 0, 0.014}, SPHERE_R = 0.006;  // the indenter (SCENE_HEAD)

// deepest penetration of a node centre into the sphere, mm (negative: no node inside)
static double sphere_penetration_mm(const mjtNum* x, long n) {
  double best = -INFINITY;
  for (long a = 0; a < n; a++) {
    double dx = x[3 * a] - SPHERE_C[0], dy = x[3 * a + 1] - SPHERE_C[1], dz = x[3 * a + 2] - SPHERE_C[2];
    double p = SPHERE_R - sqrt(dx * dx + dy * dy + dz * dz);
    if (p > best) best = p;
  }
  return 1e3 * best;
}

// estimated floating-point operations of one tet force evaluation in kernels/fem.h
// (dtac_tet_force with damping on) plus its share of the node gather; see docs/benchmarks.md
//   F = Ds Dm^-1: 54, stable Neo-Hookean P: 91, Kelvin-Voigt damping (Fdot 54, F^T Fdot 45,
//   S 53, F S 45, add 9): 206, forces -V P Dm^-T: 60, det F again: 14, gather: 12
static const int FLOPS_PER_TET = 54 + 91 + 206 + 60 + 14 + 12;
// bytes streamed per tet force evaluation (node positions/velocities are re-used from cache):
//   tet (16) Dm_inv (72) vol (8) tet_force write (96) tet_J write (8), gather: node_tet (16)
//   + tet_force read (96)
static const int BYTES_PER_TET = 16 + 72 + 8 + 96 + 8 + 16 + 96;

static const char* SCENE_HEAD =
    "<mujoco model=\"bench gel\">\n"
    "  <option timestep=\"%g\" integrator=\"%s\" gravity=\"0 0 -9.81\"/>\n"
    "%s"
    "  <worldbody>\n"
    "    <geom name=\"floor\" type=\"plane\" size=\"0.2 0.2 0.01\"/>\n"
    "    <geom name=\"sphere\" type=\"sphere\" pos=\"0 0 0.014\" size=\"0.006\"/>\n"
    "    <body name=\"finger\" pos=\"0 0 0.03\" gravcomp=\"1\">\n"
    "      <joint name=\"z\" type=\"slide\" axis=\"0 0 1\" range=\"-0.03 0.03\" damping=\"5\"/>\n"
    "      <geom name=\"holder\" type=\"box\" size=\"0.013 0.015 0.003\" pos=\"0 0 0.003\"\n"
    "            mass=\"0.1\" contype=\"0\" conaffinity=\"0\"/>\n";
static const char* SCENE_TAIL =
    "    </body>\n"
    "  </worldbody>\n"
    "  <actuator>\n"
    "    <position name=\"z\" joint=\"z\" kp=\"2000\" ctrlrange=\"-0.03 0.03\"/>\n"
    "  </actuator>\n"
    "</mujoco>\n";

// integrator: the elastomer's key ("explicit" or "implicit")
static char* difftac_xml(double resolution, const char* integrator) {
  char ext[1200], body[256];
  snprintf(ext, sizeof(ext),
           "  <extension>\n"
           "    <plugin plugin=\"difftac.elastomer\">\n"
           "      <instance name=\"gel\">\n"
           "        <config key=\"site\" value=\"gel_site\"/>\n"
           "        <config key=\"size\" value=\"%g %g %g\"/>\n"
           "        <config key=\"resolution\" value=\"%g\"/>\n"
           "        <config key=\"young\" value=\"%g\"/>\n"
           "        <config key=\"poisson\" value=\"%g\"/>\n"
           "        <config key=\"density\" value=\"%g\"/>\n"
           "        <config key=\"friction\" value=\"1.0\"/>\n"
           "        <config key=\"integrator\" value=\"%s\"/>\n"
           "      </instance>\n"
           "    </plugin>\n"
           "  </extension>\n",
           SIZE[0], SIZE[1], SIZE[2], resolution, YOUNG, POISSON, DENSITY, integrator);
  snprintf(body, sizeof(body), "      <site name=\"gel_site\" pos=\"0 0 0\" euler=\"180 0 0\"/>\n");
  size_t n = strlen(SCENE_HEAD) + strlen(ext) + strlen(body) + strlen(SCENE_TAIL) + 64;
  char* xml = (char*)malloc(n);
  int k = snprintf(xml, n, SCENE_HEAD, TIMESTEP, "Euler", ext);
  snprintf(xml + k, n - k, "%s%s", body, SCENE_TAIL);
  return xml;
}

// the same pad as a MuJoCo flexcomp grid: the same nodes (the grid of difftac's cells), the back
// face (top, z = 0 of the finger) pinned to the finger, elasticity with the same E, nu and damping
// time, mass = density * volume. Contact: stiff direct solref so that the light vertices bear the
// press (MuJoCo's default solref makes a flex this light nearly transparent to the sphere).
static char* flex_xml(const int ncell[3], double damping, const char* integrator, double timestep) {
  char body[2048];
  double mass = DENSITY * SIZE[0] * SIZE[1] * SIZE[2];
  snprintf(body, sizeof(body),
           "      <flexcomp name=\"pad\" type=\"grid\" dim=\"3\" count=\"%d %d %d\"\n"
           "                spacing=\"%.9g %.9g %.9g\" pos=\"0 0 %g\" mass=\"%.9g\" radius=\"0.0002\">\n"
           "        <elasticity young=\"%g\" poisson=\"%g\" damping=\"%.6g\"/>\n"
           "        <contact selfcollide=\"none\" friction=\"1\" solref=\"-1e9 -3e4\"/>\n"
           "        <pin gridrange=\"0 0 %d %d %d %d\"/>\n"
           "      </flexcomp>\n",
           ncell[0] + 1, ncell[1] + 1, ncell[2] + 1, SIZE[0] / ncell[0], SIZE[1] / ncell[1],
           SIZE[2] / ncell[2], -0.5 * SIZE[2], mass, YOUNG, POISSON, damping, ncell[2], ncell[0],
           ncell[1], ncell[2]);
  size_t n = strlen(SCENE_HEAD) + strlen(body) + strlen(SCENE_TAIL) + 64;
  char* xml = (char*)malloc(n);
  int k = snprintf(xml, n, SCENE_HEAD, timestep, integrator, "");
  snprintf(xml + k, n - k, "%s%s", body, SCENE_TAIL);
  return xml;
}

// ---- helpers ---------------------------------------------------------------------------------------


// MuJoCo warnings are counted (the first kept) instead of printed, so stdout stays JSON
static int g_nwarn = 0;
static char g_warn[512] = "";
static void on_warning(const char* msg) {
  if (!g_nwarn++) {
    snprintf(g_warn, sizeof(g_warn), "%s", msg);
    for (char* p = g_warn; *p; p++) {
      if (*p == '"' || *p == '\\' || *p == '\n' || *p == '\t') *p = ' ';
    }
  }
}

static int nwarn_total(const mjData* d) {
  int n = 0;
  for (int i = 0; i < mjNWARNING; i++) n += d->warning[i].number;
  return n;
}

static int finite_state(const mjModel* m, const mjData* d, double vmax) {
  for (int i = 0; i < m->nq; i++) {
    if (!isfinite(d->qpos[i])) return 0;
  }
  for (int i = 0; i < m->nv; i++) {
    if (!isfinite(d->qvel[i]) || fabs(d->qvel[i]) > vmax) return 0;
  }
  return 1;
}

typedef struct {
  long nstep;         // steps timed, all segments
  double wall;        // wall seconds timed, all segments
  double sps[NSEG];   // steps per second of each segment
  double sps_med;     // median over the segments: the reported rate
  double warm_wall, warm_sim;
  int ok;  // state finite and bounded at the end
} timing;

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

// warm-up: press until `warm_sim` simulated seconds or `warm_cap` wall seconds; then time whole
// steps in NSEG segments of at least min_wall / NSEG seconds and 2 steps each; the median
// segment rate is reported (robust to the noise of a shared machine)
static timing run_case(const mjModel* m, mjData* d, double warm_sim, double warm_cap,
                       double min_wall) {
  timing t;
  memset(&t, 0, sizeof(t));
  t.ok = 1;
  mj_resetData(m, d);
  d->qpos[0] = Q_START;
  d->ctrl[0] = Q_PRESS;
  mj_forward(m, d);
  double t0 = now_s();
  long nw = 0;
  while ((d->time < warm_sim && now_s() - t0 < warm_cap) || nw < 2) {
    mj_step(m, d);
    nw++;
  }
  t.warm_wall = now_s() - t0;
  t.warm_sim = d->time;
  for (int s = 0; s < NSEG && t.ok; s++) {
    long ns = 0;
    double el = 0;
    t0 = now_s();
    while (el < min_wall / NSEG || ns < 2) {
      mj_step(m, d);
      ns++;
      el = now_s() - t0;
      if (ns % 16 == 0 && !finite_state(m, d, 100)) {
        t.ok = 0;
        break;
      }
    }
    t.nstep += ns;
    t.wall += el;
    t.sps[s] = ns / el;
  }
  if (!finite_state(m, d, 100)) t.ok = 0;
  double sorted[NSEG];
  memcpy(sorted, t.sps, sizeof(sorted));
  qsort(sorted, NSEG, sizeof(double), cmp_double);
  t.sps_med = sorted[NSEG / 2];
  return t;
}

// flex: total vertical contact force on the flex and the lift of the bottom-centre node above
// the undeformed face (mm), as evidence of the press
static void flex_press(const mjModel* m, const mjData* d, double* fz, double* lift_mm, int* ncon) {
  *fz = 0;
  *ncon = 0;
  for (int i = 0; i < d->ncon; i++) {
    const mjContact* c = d->contact + i;
    if (c->flex[0] < 0 && c->flex[1] < 0) continue;
    mjtNum f[6];
    mj_contactForce(m, d, i, f);
    // contact frame rows: normal, tangent1, tangent2; world force = frame^T f
    double w = c->frame[2] * f[0] + c->frame[5] * f[1] + c->frame[8] * f[2];
    *fz += w;
    (*ncon)++;
  }
  *fz = fabs(*fz);
  int finger = mj_name2id(m, mjOBJ_BODY, "finger");
  double face = d->xpos[3 * finger + 2] - SIZE[2];
  double best = INFINITY, z = face;
  for (long v = 0; v < (long)m->nflexvert; v++) {
    const mjtNum* x = d->flexvert_xpos + 3 * v;
    double r = x[0] * x[0] + x[1] * x[1] + (x[2] - face) * (x[2] - face);
    if (r < best) {
      best = r;
      z = x[2];
    }
  }
  *lift_mm = 1e3 * (z - face);
}

static void gel_press(const mjModel* m, const mjData* d, int gel, const dtac_gel_info* info,
                      double* fz, double* lift_mm) {
  mjtNum w[6];
  dtac_gel_contact_wrench(m, d, gel, w);
  *fz = fabs(w[2]);
  const mjtNum* x = dtac_gel_positions(m, d, gel);
  const mjtNum* X = dtac_gel_rest_positions(m, d, gel);
  int best = 0;
  double bd = INFINITY;
  for (int a = 0; a < info->nnode; a++) {
    const double* r = X + 3 * a;
    double q = r[0] * r[0] + r[1] * r[1] + (r[2] - SIZE[2]) * (r[2] - SIZE[2]);
    if (q < bd) {
      bd = q;
      best = a;
    }
  }
  double face = d->site_xpos[3 * info->site + 2] - SIZE[2];
  *lift_mm = 1e3 * (x[3 * best + 2] - face);
}

// ---- the element kernel alone -----------------------------------------------------------------------
// kernels/fem_cpu.c on the same box mesh as src/gel.c (Kuhn triangulation, 6 tets per cell), with
// a random small deformation and velocity: the per-substep internal-force pass without contact,
// integration or MuJoCo. Returns ns per tet of (forces, gather).
static void kernel_bench(double res, double beta, double min_wall, double* ns_force,
                         double* ns_gather, int* ntet_out) {
  int n[3];
  for (int k = 0; k < 3; k++) n[k] = (int)fmax(1, round(SIZE[k] / res));
  int nn = (n[0] + 1) * (n[1] + 1) * (n[2] + 1), nt = 6 * n[0] * n[1] * n[2];
  double* X = (double*)malloc(sizeof(double) * 3 * nn);
  double* x = (double*)malloc(sizeof(double) * 3 * nn);
  double* v = (double*)malloc(sizeof(double) * 3 * nn);
  double* force = (double*)malloc(sizeof(double) * 3 * nn);
  int* tet = (int*)malloc(sizeof(int) * 4 * nt);
  double* Dm_inv = (double*)malloc(sizeof(double) * 9 * nt);
  double* vol = (double*)malloc(sizeof(double) * nt);
  double* tf = (double*)malloc(sizeof(double) * 12 * nt);
  double* tJ = (double*)malloc(sizeof(double) * nt);
  int* adr = (int*)calloc(nn + 1, sizeof(int));
  int* inc = (int*)malloc(sizeof(int) * 4 * nt);
  int* fill = (int*)malloc(sizeof(int) * nn);
  unsigned long long seed = 1;
#define NODE(i, j, k) ((i) + (n[0] + 1) * ((j) + (n[1] + 1) * (k)))
  for (int k = 0; k <= n[2]; k++) {
    for (int j = 0; j <= n[1]; j++) {
      for (int i = 0; i <= n[0]; i++) {
        int a = NODE(i, j, k);
        X[3 * a] = SIZE[0] * i / n[0];
        X[3 * a + 1] = SIZE[1] * j / n[1];
        X[3 * a + 2] = SIZE[2] * k / n[2];
        for (int c = 0; c < 3; c++) {
          seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
          double u = (double)(seed >> 11) / 9007199254740992.0 - 0.5;
          x[3 * a + c] = X[3 * a + c] + 0.02 * res * u;
          v[3 * a + c] = 1e-3 * u;
        }
      }
    }
  }
  static const int perm[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  int t = 0;
  for (int k = 0; k < n[2]; k++) {
    for (int j = 0; j < n[1]; j++) {
      for (int i = 0; i < n[0]; i++) {
        for (int p = 0; p < 6; p++, t++) {
          int c[3] = {0, 0, 0};
          int* tv = tet + 4 * t;
          tv[0] = NODE(i, j, k);
          for (int s = 0; s < 3; s++) {
            c[perm[p][s]] = 1;
            tv[s + 1] = NODE(i + c[0], j + c[1], k + c[2]);
          }
          double V = dtac_tet_rest(X + 3 * tv[0], X + 3 * tv[1], X + 3 * tv[2], X + 3 * tv[3],
                                   Dm_inv + 9 * t);
          if (V < 0) {
            int tmp = tv[2];
            tv[2] = tv[3];
            tv[3] = tmp;
            V = dtac_tet_rest(X + 3 * tv[0], X + 3 * tv[1], X + 3 * tv[2], X + 3 * tv[3],
                              Dm_inv + 9 * t);
          }
          vol[t] = V;
        }
      }
    }
  }
#undef NODE
  for (int q = 0; q < 4 * nt; q++) adr[tet[q] + 1]++;
  for (int a = 0; a < nn; a++) adr[a + 1] += adr[a];
  memcpy(fill, adr, sizeof(int) * nn);
  for (int q = 0; q < 4 * nt; q++) inc[fill[tet[q]]++] = q;
  dtac_material mat;
  dtac_material_set(&mat, YOUNG, POISSON, beta);

  // KSEG segments of min_wall / KSEG seconds; the median segment is reported
  enum { KSEG = 5 };
  double segf[KSEG], segg[KSEG];
  dtac_fem_tet_forces_cpu(nt, tet, Dm_inv, vol, &mat, x, v, tf, tJ);  // warm caches
  for (int sg = 0; sg < KSEG; sg++) {
    double tforce = 0, tgather = 0;
    long reps = 0;
    while (tforce + tgather < min_wall / KSEG || reps < 10) {
      double t0 = now_s();
      for (int r = 0; r < 10; r++) {
        dtac_fem_tet_forces_cpu(nt, tet, Dm_inv, vol, &mat, x, v, tf, tJ);
      }
      double t1 = now_s();
      for (int r = 0; r < 10; r++) dtac_fem_gather_cpu(nn, adr, inc, tf, force);
      double t2 = now_s();
      tforce += t1 - t0;
      tgather += t2 - t1;
      reps += 10;
      x[0] += 1e-12 * force[0];  // keep the result live
    }
    segf[sg] = 1e9 * tforce / ((double)reps * nt);
    segg[sg] = 1e9 * tgather / ((double)reps * nt);
  }
  qsort(segf, KSEG, sizeof(double), cmp_double);
  qsort(segg, KSEG, sizeof(double), cmp_double);
  *ns_force = segf[KSEG / 2];
  *ns_gather = segg[KSEG / 2];
  *ntet_out = nt;
  free(X);
  free(x);
  free(v);
  free(force);
  free(tet);
  free(Dm_inv);
  free(vol);
  free(tf);
  free(tJ);
  free(adr);
  free(inc);
  free(fill);
}

// ---- main ------------------------------------------------------------------------------------------

typedef struct {
  double res;
  int ncell[3], nnode, ntet, nsub;
  double dt_sub, beta, ns_kernel;
  double rtf_gel, rtf_flex_discrete, rtf_flex_euler;
  double rtf_imp;  // the same gel with integrator="implicit"
  double sps_gel, sps_flex_discrete, sps_flex_euler;
} row;

int main(int argc, char** argv) {
  double min_wall = argc > 1 ? atof(argv[1]) : 2.0;
  if (!(min_wall > 0)) min_wall = 2.0;
  const double resolutions[3] = {0.002, 0.0015, 0.001};
  const int nres = 3;
  row rows[3];
  memset(rows, 0, sizeof(rows));

  mj_loadPluginLibrary(DTAC_LIB);
  mju_user_warning = on_warning;
  fprintf(stderr, "bench_gel: difftac %s, MuJoCo %s, %g s timed per case\n", dtac_version(),
          mj_versionString(), min_wall);

  for (int r = 0; r < nres; r++) {
    row* R = rows + r;
    R->res = resolutions[r];

    // ---- difftac gel ----
    char* xml = difftac_xml(R->res, "explicit");
    mjModel* m = bench_compile("bench_gel", xml);
    free(xml);
    if (!m) return 1;
    mjData* d = mj_makeData(m);
    int gel = dtac_gel_find(m, "gel");
    dtac_gel_info info;
    dtac_gel_get_info(m, d, gel, &info);
    memcpy(R->ncell, info.ncell, sizeof(R->ncell));
    R->nnode = info.nnode;
    R->ntet = info.ntet;
    R->nsub = info.nsub;
    R->dt_sub = info.dt_sub;
    R->beta = 0.2 / info.omega_max;  // difftac's default stiffness-damping time (src/gel.c)
    g_nwarn = 0;
    g_warn[0] = 0;
    timing t = run_case(m, d, 0.05, 3.0, min_wall);
    dtac_gel_get_info(m, d, gel, &info);
    double fz, lift;
    gel_press(m, d, gel, &info, &fz, &lift);
    double pen = sphere_penetration_mm(dtac_gel_positions(m, d, gel), info.nnode);
    double step_s = 1 / t.sps_med;
    R->sps_gel = 1 / step_s;
    R->rtf_gel = TIMESTEP / step_s;
    double es = (double)info.nsub * info.ntet / step_s;  // element-substeps per second
    printf("{\"bench\":\"gel\",\"engine\":\"difftac\",\"resolution\":%g,\"ncell\":[%d,%d,%d],"
           "\"nnode\":%d,\"nelem\":%d,\"nv\":%d,\"integrator\":\"Euler\",\"timestep\":%g,"
           "\"nsub\":%d,\"dt_sub\":%.4g,\"force_evals_per_step\":%d,\"steps\":%ld,\"wall_s\":%.4f,"
           "\"warmup_sim_s\":%.4g,\"steps_per_s\":%.5g,\"steps_per_s_segments\":[%.5g,%.5g,%.5g],"
           "\"realtime_factor\":%.5g,\"ns_per_step\":%.6g,\"ns_per_elem_substep\":%.4g,\"elem_substeps_per_s\":%.5g,"
           "\"flops_per_elem_substep_est\":%d,\"gflops_est\":%.4g,\"bytes_per_elem_substep_est\":%d,"
           "\"gbytes_per_s_est\":%.4g,\"ncontact_nodes\":%d,\"contact_force_N\":%.4g,"
           "\"center_lift_mm\":%.4g,\"node_penetration_mm\":%.4g,\"gel_warnings\":%d,"
           "\"mujoco_warnings\":%d,\"stable\":%s}\n",
           R->res, info.ncell[0], info.ncell[1], info.ncell[2], info.nnode, info.ntet, (int)m->nv,
           m->opt.timestep, info.nsub, info.dt_sub, info.nsub + 1, t.nstep, t.wall, t.warm_sim,
           R->sps_gel, t.sps[0], t.sps[1], t.sps[2], R->rtf_gel, 1e9 * step_s, 1e9 / es, es, FLOPS_PER_TET,
           es * FLOPS_PER_TET * 1e-9, BYTES_PER_TET, es * BYTES_PER_TET * 1e-9, info.ncontact, fz,
           lift, pen, info.nwarning, nwarn_total(d), t.ok && !info.nwarning ? "true" : "false");
    fflush(stdout);
    fprintf(stderr,
            "  difftac  res %.4g m  %5d nodes %6d tets  nsub %3d  %9.1f steps/s  RTF %7.4f  "
            "%6.1f ns/elem-substep  F %.3g N  lift %.3f mm  pen %.3f mm\n",
            R->res, info.nnode, info.ntet, info.nsub, R->sps_gel, R->rtf_gel, 1e9 / es, fz, lift,
            pen);
    mj_deleteData(d);
    mj_deleteModel(m);

    // ---- the same gel, integrator="implicit" (one backward-Euler solve per step) ----
    xml = difftac_xml(R->res, "implicit");
    m = bench_compile("bench_gel", xml);
    free(xml);
    if (!m) return 1;
    d = mj_makeData(m);
    t = run_case(m, d, 0.05, 3.0, min_wall);
    dtac_gel_get_info(m, d, gel, &info);
    gel_press(m, d, gel, &info, &fz, &lift);
    R->rtf_imp = t.ok && !info.nwarning ? TIMESTEP * t.sps_med : 0;
    printf("{\"bench\":\"gel\",\"engine\":\"difftac_implicit\",\"resolution\":%g,"
           "\"nnode\":%d,\"nelem\":%d,\"steps_per_s\":%.5g,\"realtime_factor\":%.5g,"
           "\"newton_iterations_last\":%d,\"residual_last\":%.3g,\"nnonconverged\":%d,"
           "\"contact_force_N\":%.4g,\"center_lift_mm\":%.4g,\"rtf_ratio_implicit_over_explicit\":%.4g,"
           "\"gel_warnings\":%d,\"stable\":%s}\n",
           R->res, info.nnode, info.ntet, t.sps_med, TIMESTEP * t.sps_med, info.iterations,
           info.residual, info.nnonconverged, fz, lift, TIMESTEP * t.sps_med / R->rtf_gel,
           info.nwarning, t.ok && !info.nwarning ? "true" : "false");
    fflush(stdout);
    fprintf(stderr, "  implicit res %.4g m  %9.1f steps/s  RTF %7.4f  (%.2fx explicit)  F %.3g N  "
            "lift %.3f mm\n", R->res, t.sps_med, TIMESTEP * t.sps_med,
            TIMESTEP * t.sps_med / R->rtf_gel, fz, lift);
    mj_deleteData(d);
    mj_deleteModel(m);

    // ---- the element kernel alone, on the same mesh ----
    double nsf, nsg;
    int ntk;
    kernel_bench(R->res, R->beta, 0.75, &nsf, &nsg, &ntk);
    R->ns_kernel = nsf + nsg;
    printf("{\"bench\":\"gel_kernel\",\"resolution\":%g,\"nelem\":%d,"
           "\"ns_per_elem_force\":%.4g,\"ns_per_elem_gather\":%.4g,\"ns_per_elem_total\":%.4g,"
           "\"gflops_est\":%.4g,\"gbytes_per_s_est\":%.4g,"
           "\"share_of_gel_step\":%.3g}\n",
           R->res, ntk, nsf, nsg, nsf + nsg, FLOPS_PER_TET / (nsf + nsg),
           BYTES_PER_TET / (nsf + nsg), (nsf + nsg) * (R->nsub + 1) / (R->nsub * 1e9 / es));
    fflush(stdout);
    fprintf(stderr, "  kernel   res %.4g m  %6d tets  force %.1f + gather %.1f = %.1f ns/tet  "
            "(%.0f%% of the gel step)\n", R->res, ntk, nsf, nsg, nsf + nsg,
            100 * (nsf + nsg) * (R->nsub + 1) / (R->nsub * 1e9 / es));

    // ---- MuJoCo flex: discrete integrator at the scene's 0.002 s (implicit in position), then
    // Euler at difftac's substep (explicit, as difftac), both with the default Newton solver ----
    for (int variant = 0; variant < 2; variant++) {
      const char* integ = variant == 0 ? "discrete" : "Euler";
      double h = variant == 0 ? TIMESTEP : R->dt_sub;
      // Euler: halve the timestep until the pressed flex stays finite and bounded
      for (int tries = 0; tries < 3; tries++) {
        xml = flex_xml(R->ncell, R->beta, integ, h);
        m = bench_compile("bench_gel", xml);
        free(xml);
        if (!m) return 1;
        d = mj_makeData(m);
        g_nwarn = 0;
        g_warn[0] = 0;
        double warm_sim = variant == 0 ? 0.05 : 0.005;
        t = run_case(m, d, warm_sim, 3.0, min_wall);
        if (t.ok || variant == 0 || tries == 2) break;
        fprintf(stderr, "  flex %s unstable at timestep %.3g s: halving\n", integ, h);
        mj_deleteData(d);
        mj_deleteModel(m);
        h *= 0.5;
      }
      int ncon;
      flex_press(m, d, &fz, &lift, &ncon);
      pen = sphere_penetration_mm(d->flexvert_xpos, m->nflexvert);
      step_s = 1 / t.sps_med;
      double sps = 1 / step_s, rtf = h / step_s;
      double eps = (double)m->nflexelem / step_s;  // element-steps per second
      const char* solver = m->opt.solver == mjSOL_NEWTON ? "Newton"
                           : m->opt.solver == mjSOL_CG   ? "CG"
                                                         : "PGS";
      printf("{\"bench\":\"gel\",\"engine\":\"mujoco_flex\",\"resolution\":%g,"
             "\"ncell\":[%d,%d,%d],\"nnode\":%d,\"nelem\":%d,\"nv\":%d,\"integrator\":\"%s\","
             "\"solver\":\"%s\",\"timestep\":%.4g,\"steps\":%ld,\"wall_s\":%.4f,"
             "\"warmup_sim_s\":%.4g,\"steps_per_s\":%.5g,\"steps_per_s_segments\":[%.5g,%.5g,%.5g],"
             "\"realtime_factor\":%.5g,\"ns_per_step\":%.6g,\"ns_per_elem_step\":%.4g,\"elem_steps_per_s\":%.5g,"
             "\"ncontact\":%d,\"contact_force_N\":%.4g,\"center_lift_mm\":%.4g,"
             "\"node_penetration_mm\":%.4g,"
             "\"elasticity_damping_s\":%.4g,\"mujoco_warnings\":%d,\"inertia_warnings\":%d,\"first_warning\":\"%s\","
             "\"stable\":%s}\n",
             R->res, R->ncell[0], R->ncell[1], R->ncell[2], (int)m->nflexvert, (int)m->nflexelem, (int)m->nv,
             integ, solver, h, t.nstep, t.wall, t.warm_sim, sps, t.sps[0], t.sps[1], t.sps[2], rtf, 1e9 * step_s, 1e9 / eps,
             eps, ncon, fz, lift, pen, R->beta, nwarn_total(d), d->warning[mjWARN_INERTIA].number, g_warn, t.ok ? "true" : "false");
      fflush(stdout);
      fprintf(stderr,
              "  flex     res %.4g m  %5d nodes %6d tets  %-8s h %.3g  %9.1f steps/s  RTF %7.4f  "
              "%6.1f ns/elem-step  F %.3g N  lift %.3f mm  pen %.3f mm%s\n",
              R->res, (int)m->nflexvert, (int)m->nflexelem, integ, h, sps, rtf, 1e9 / eps, fz, lift,
              pen, nwarn_total(d) ? "  (MuJoCo warnings)" : "");
      if (variant == 0) {
        R->sps_flex_discrete = sps;
        R->rtf_flex_discrete = t.ok ? rtf : 0;
      } else {
        R->sps_flex_euler = sps;
        R->rtf_flex_euler = t.ok ? rtf : 0;
      }
      mj_deleteData(d);
      mj_deleteModel(m);
    }

    printf("{\"bench\":\"gel_ratio\",\"resolution\":%g,\"nnode\":%d,\"nelem\":%d,"
           "\"realtime_factor_difftac\":%.5g,\"realtime_factor_flex_discrete\":%.5g,"
           "\"realtime_factor_flex_euler\":%.5g,\"rtf_ratio_difftac_over_flex_discrete\":%.4g,"
           "\"rtf_ratio_difftac_over_flex_euler\":%.4g,\"realtime_factor_difftac_implicit\":%.5g,"
           "\"rtf_ratio_implicit_over_flex_discrete\":%.4g}\n",
           R->res, R->nnode, R->ntet, R->rtf_gel, R->rtf_flex_discrete, R->rtf_flex_euler,
           R->rtf_flex_discrete > 0 ? R->rtf_gel / R->rtf_flex_discrete : 0,
           R->rtf_flex_euler > 0 ? R->rtf_gel / R->rtf_flex_euler : 0, R->rtf_imp,
           R->rtf_flex_discrete > 0 ? R->rtf_imp / R->rtf_flex_discrete : 0);
    fflush(stdout);
  }

  fprintf(stderr, "\n%-8s %6s %6s %5s | %10s %10s %10s | %10s %10s | %8s %8s\n", "res_m",
          "nodes", "tets", "nsub", "RTF gel", "ns/el-sub", "ns kernel", "RTF flexD", "RTF flexE",
          "gel/flxD", "gel/flxE");
  for (int r = 0; r < nres; r++) {
    const row* R = rows + r;
    double es = (double)R->nsub * R->ntet * R->sps_gel;
    fprintf(stderr, "%-8g %6d %6d %5d | %10.4f %10.1f %10.1f | %10.4f %10.4f | %8.2f %8.2f\n",
            R->res, R->nnode, R->ntet, R->nsub, R->rtf_gel, 1e9 / es, R->ns_kernel,
            R->rtf_flex_discrete,
            R->rtf_flex_euler, R->rtf_flex_discrete > 0 ? R->rtf_gel / R->rtf_flex_discrete : 0,
            R->rtf_flex_euler > 0 ? R->rtf_gel / R->rtf_flex_euler : 0);
  }
  return 0;
}
