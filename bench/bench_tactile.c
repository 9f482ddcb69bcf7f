// bench_tactile.c: cost of one difftac.tactile frame per output (rgb, depth, pressure, shear,
// markers, force) at 160x120, 320x240 and 640x480, next to the cost of the gel step it reads,
// measured in the same process on the same pressed gel.
//
//   ./build/bench/bench_tactile [seconds_per_case]      (bench/run.sh runs it; default 0.5)
//
// Scene: bench_gel's press at the press scene's resolution (0.001 m, GelSight Mini pad pressed
// 1 mm onto a 6 mm sphere), warmed up once into contact; every case starts from that state.
// Per (output, size): a model with the gel and that one sensor. The image keeps the GelSight Mini
// field of view (20.8 x 15.6 mm), so pitch = 6.5e-5 m * 320 / W.
//
// Frame cost, two ways (docs/benchmarks.md):
//   frame  = time of mj_forward with the sensor minus mj_forward of the same model and state with
//            sensors disabled (mjDSBL_SENSOR), interleaved blocks, median of segments. The sensor
//            re-renders only when its inputs change, so every call moves the finger by +-1 nm
//            (both arms alike): the site pose changes and the cache misses on every frame
//            (checked: evaluations counted by dtac_tactile_get_info).
//   render = the sensor's compute callback alone, its cache invalidated by its reset callback
//            before each call (less noisy; no MuJoCo pipeline around it).
// Raster passes alone (src/raster.c compiled in, on the same pressed top face): the visibility
// pass and the interpolation (resolve) of 1 and 4 channels, per pixel: where a frame's time goes.
// Gel step: time of one mj_step of the same scene without any sensor, continuing the press.
//
// stdout: one JSON object per line ("bench":"tactile_step", then "bench":"tactile" per case);
// stderr: a short table. Timing: CLOCK_MONOTONIC.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <difftac/difftac.h>
#include "bench_util.h"
#include <mujoco/mujoco.h>

#include "raster.h"  // src/raster.c, compiled into this benchmark: its passes timed alone

// ---- the scene (as bench_gel.c, resolution of models/press.xml) -----------------------------------
static const double SIZE[3] = {0.02075, 0.02525, 0.004};
static const double YOUNG = 3e5, POISSON = 0.45, DENSITY = 1000, RESOLUTION = 0.001;
static const double TIMESTEP = 0.002;
static const double Q_START = -0.006, Q_PRESS = -0.007;  // commanded 1 mm press
static const double WARM_SIM = 0.05, WARM_CAP = 5.0;    // warm-up: simulated s, wall cap s
static const double PITCH_320 = 6.5e-5;                  // GelSight Mini: 320 x 240 at 0.065 mm
#define NSEG 3

static const char* OUTPUTS[6] = {"rgb", "depth", "pressure", "shear", "markers", "force"};
static const int SIZES[3][2] = {{160, 120}, {320, 240}, {640, 480}};

static char* scene_xml(int output, int width, int height) {
  char sensor[1024] = "";
  if (output >= 0) {
    snprintf(sensor, sizeof(sensor),
             "  <sensor>\n"
             "    <plugin name=\"tac\" plugin=\"difftac.tactile\" objtype=\"site\" objname=\"gel_site\">\n"
             "      <config key=\"elastomer\" value=\"gel\"/>\n"
             "      <config key=\"output\" value=\"%s\"/>\n"
             "      <config key=\"size\" value=\"%d %d\"/>\n"
             "      <config key=\"pitch\" value=\"%.9g\"/>\n"
             "    </plugin>\n"
             "  </sensor>\n",
             OUTPUTS[output], width, height, PITCH_320 * 320.0 / width);
  }
  size_t n = 8192;
  char* xml = (char*)malloc(n);
  snprintf(xml, n,
           "<mujoco model=\"bench tactile\">\n"
           "  <option timestep=\"%g\" integrator=\"Euler\" gravity=\"0 0 -9.81\"/>\n"
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
           "      </instance>\n"
           "    </plugin>\n"
           "    <plugin plugin=\"difftac.tactile\"/>\n"
           "  </extension>\n"
           "  <worldbody>\n"
           "    <geom name=\"floor\" type=\"plane\" size=\"0.2 0.2 0.01\"/>\n"
           "    <geom name=\"sphere\" type=\"sphere\" pos=\"0 0 0.014\" size=\"0.006\"/>\n"
           "    <body name=\"finger\" pos=\"0 0 0.03\" gravcomp=\"1\">\n"
           "      <joint name=\"z\" type=\"slide\" axis=\"0 0 1\" range=\"-0.03 0.03\" damping=\"5\"/>\n"
           "      <geom name=\"holder\" type=\"box\" size=\"0.013 0.015 0.003\" pos=\"0 0 0.003\"\n"
           "            mass=\"0.1\" contype=\"0\" conaffinity=\"0\"/>\n"
           "      <site name=\"gel_site\" pos=\"0 0 0\" euler=\"180 0 0\"/>\n"
           "    </body>\n"
           "  </worldbody>\n"
           "%s"
           "  <actuator>\n"
           "    <position name=\"z\" joint=\"z\" kp=\"2000\" ctrlrange=\"-0.03 0.03\"/>\n"
           "  </actuator>\n"
           "</mujoco>\n",
           TIMESTEP, SIZE[0], SIZE[1], SIZE[2], RESOLUTION, YOUNG, POISSON, DENSITY, sensor);
  return xml;
}

// ---- helpers ---------------------------------------------------------------------------------------


static int g_nwarn = 0;
static void on_warning(const char* msg) {
  if (!g_nwarn++) fprintf(stderr, "bench_tactile: MuJoCo warning: %s\n", msg);
}

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static double median3(const double* v) {
  double s[NSEG];
  memcpy(s, v, sizeof(s));
  qsort(s, NSEG, sizeof(double), cmp_double);
  return s[NSEG / 2];
}

// n calls of mj_forward, the finger moved by +-1 nm before each (so the sensor's inputs change);
// returns seconds per call
static double time_forward(const mjModel* m, mjData* d, int n, double q0) {
  double t0 = now_s();
  for (int i = 0; i < n; i++) {
    d->qpos[0] = q0 + ((i & 1) ? 1e-9 : -1e-9);
    mj_forward(m, d);
  }
  return (now_s() - t0) / n;
}

// seconds per call of the visibility pass and of resolve with 1 and 4 channels
static void raster_bench(const dtac_camera* cam, int nvx, int nvy, const double* p, double budget,
                         double out_s[3]) {
  size_t npix = (size_t)cam->width * cam->height;
  dtac_vis vis;
  vis.zbuf = (double*)malloc(sizeof(double) * npix);
  vis.tri = (int*)malloc(sizeof(int) * npix);
  vis.bary = (double*)malloc(sizeof(double) * 2 * npix);
  double* attr = (double*)malloc(sizeof(double) * 4 * nvx * nvy);
  double* out = (double*)malloc(sizeof(double) * 4 * npix);
  for (int a = 0; a < 4 * nvx * nvy; a++) attr[a] = 1e-3 * (a % 7);
  for (int pass = 0; pass < 3; pass++) {
    double seg[NSEG];
    for (int s = 0; s < NSEG; s++) {
      long n = 0;
      double t0 = now_s(), el = 0;
      while (el < budget / (3 * NSEG) || n < 3) {
        if (pass == 0) {
          dtac_raster_visibility(cam, nvx, nvy, p, &vis);
        } else {
          dtac_raster_resolve(cam, nvx, &vis, attr, pass == 1 ? 1 : 4, 0, out);
        }
        n++;
        el = now_s() - t0;
      }
      seg[s] = el / n;
    }
    out_s[pass] = median3(seg);
  }
  free(vis.zbuf);
  free(vis.tri);
  free(vis.bary);
  free(attr);
  free(out);
}

// ---- main ------------------------------------------------------------------------------------------

int main(int argc, char** argv) {
  double min_wall = argc > 1 ? atof(argv[1]) : 0.5;
  if (!(min_wall > 0)) min_wall = 0.5;
  mj_loadPluginLibrary(DTAC_LIB);
  mju_user_warning = on_warning;
  fprintf(stderr, "bench_tactile: difftac %s, MuJoCo %s, %g s timed per case\n", dtac_version(),
          mj_versionString(), min_wall);

  // ---- the pressed state, from the scene without sensors ----
  char* xml = scene_xml(-1, 0, 0);
  mjModel* m0 = bench_compile("bench_tactile", xml);
  free(xml);
  if (!m0) return 1;
  mjData* d0 = mj_makeData(m0);
  int gel = dtac_gel_find(m0, "gel");
  d0->qpos[0] = Q_START;
  d0->ctrl[0] = Q_PRESS;
  mj_forward(m0, d0);
  double t0 = now_s();
  long nwarm = 0;
  while ((d0->time < WARM_SIM && now_s() - t0 < WARM_CAP) || nwarm < 2) {
    mj_step(m0, d0);
    nwarm++;
  }
  double warm_sim = d0->time;
  const int sig = mjSTATE_FULLPHYSICS | mjSTATE_CTRL;
  int nstate = mj_stateSize(m0, sig);
  mjtNum* state = (mjtNum*)malloc(sizeof(mjtNum) * nstate);
  mj_getState(m0, d0, state, sig);
  dtac_gel_info info;
  dtac_gel_get_info(m0, d0, gel, &info);
  mjtNum w[6];
  dtac_gel_contact_wrench(m0, d0, gel, w);
  double fz = fabs(w[2]);

  // ---- the gel step alone: mj_step without sensors, continuing the press ----
  double step_seg[NSEG];
  long nstep = 0;
  for (int s = 0; s < NSEG; s++) {
    long n = 0;
    double el = 0;
    t0 = now_s();
    while (el < min_wall || n < 2) {
      mj_step(m0, d0);
      n++;
      el = now_s() - t0;
    }
    step_seg[s] = el / n;
    nstep += n;
  }
  double step_s = median3(step_seg);
  // mj_forward alone in the pressed state (what every frame below is added to)
  mj_setState(m0, d0, state, sig);
  double q0 = d0->qpos[0];
  time_forward(m0, d0, 3, q0);
  double fwd_seg[NSEG];
  for (int s = 0; s < NSEG; s++) {
    int n = 0;
    double el = 0;
    t0 = now_s();
    while (el < 0.1 * min_wall || n < 3) {
      time_forward(m0, d0, 4, q0);
      n += 4;
      el = now_s() - t0;
    }
    fwd_seg[s] = el / n;
  }
  double fwd0_s = median3(fwd_seg);
  printf("{\"bench\":\"tactile_step\",\"resolution\":%g,\"nnode\":%d,\"nelem\":%d,\"nsub\":%d,"
         "\"dt_sub\":%.4g,\"timestep\":%g,\"warmup_sim_s\":%.4g,\"steps\":%ld,"
         "\"step_ms\":%.5g,\"step_ms_segments\":[%.5g,%.5g,%.5g],\"realtime_factor\":%.5g,"
         "\"forward_ms\":%.5g,\"contact_force_N\":%.4g,\"ncontact_nodes\":%d}\n",
         RESOLUTION, info.nnode, info.ntet, info.nsub, info.dt_sub, TIMESTEP, warm_sim,
         nstep, 1e3 * step_s, 1e3 * step_seg[0], 1e3 * step_seg[1], 1e3 * step_seg[2],
         TIMESTEP / step_s, 1e3 * fwd0_s, fz, info.ncontact);
  fflush(stdout);
  fprintf(stderr, "  gel step (no sensor): res %g m, %d tets, nsub %d: %.2f ms per mj_step "
          "(RTF %.4f); mj_forward %.3f ms; contact force %.3g N on %d nodes\n",
          RESOLUTION, info.ntet, info.nsub, 1e3 * step_s, TIMESTEP / step_s, 1e3 * fwd0_s, fz,
          info.ncontact);

  // the pressed top face in the site (camera) frame, for the raster passes alone
  mj_setState(m0, d0, state, sig);
  mj_forward(m0, d0);
  const int nvx = info.ncell[0] + 1, nvy = info.ncell[1] + 1, top0 = nvx * nvy * info.ncell[2];
  double* ptop = (double*)malloc(sizeof(double) * 3 * nvx * nvy);
  {
    const mjtNum* x = dtac_gel_positions(m0, d0, gel) + 3 * top0;
    const mjtNum* sp = d0->site_xpos + 3 * info.site;
    const mjtNum* R = d0->site_xmat + 9 * info.site;
    for (int a = 0; a < nvx * nvy; a++) {
      for (int i = 0; i < 3; i++) {
        double v = 0;
        for (int k = 0; k < 3; k++) v += R[3 * k + i] * (x[3 * a + k] - sp[k]);
        ptop[3 * a + i] = v;
      }
    }
  }

  // ---- one case per (size, output) ----
  double frame_ms[3][6], render_ms[3][6], raster_ms[3][3];
  for (int z = 0; z < 3; z++) {
    const int W = SIZES[z][0], H = SIZES[z][1];
    dtac_camera cam = {0};
    cam.width = W;
    cam.height = H;
    cam.pitch = PITCH_320 * 320.0 / W;
    cam.x0 = -0.5 * W * cam.pitch;
    cam.y0 = -0.5 * H * cam.pitch;
    double rs[3];
    raster_bench(&cam, nvx, nvy, ptop, min_wall, rs);
    for (int k = 0; k < 3; k++) raster_ms[z][k] = 1e3 * rs[k];
    double npix = (double)W * H;
    printf("{\"bench\":\"tactile_raster\",\"width\":%d,\"height\":%d,\"ntri\":%d,"
           "\"visibility_ms\":%.5g,\"resolve1_ms\":%.5g,\"resolve4_ms\":%.5g,"
           "\"visibility_ns_per_pixel\":%.4g,\"resolve1_ns_per_pixel\":%.4g,"
           "\"resolve4_ns_per_pixel\":%.4g}\n",
           W, H, dtac_top_ntri(nvx, nvy), 1e3 * rs[0], 1e3 * rs[1], 1e3 * rs[2],
           1e9 * rs[0] / npix, 1e9 * rs[1] / npix, 1e9 * rs[2] / npix);
    fflush(stdout);
    fprintf(stderr, "  raster   %3dx%-3d  visibility %.3f ms (%.1f ns/px)  resolve 1 ch %.3f ms "
            "(%.1f ns/px)  4 ch %.3f ms (%.1f ns/px)\n", W, H, 1e3 * rs[0], 1e9 * rs[0] / npix,
            1e3 * rs[1], 1e9 * rs[1] / npix, 1e3 * rs[2], 1e9 * rs[2] / npix);
    for (int o = 0; o < 6; o++) {
      xml = scene_xml(o, W, H);
      mjModel* m = bench_compile("bench_tactile", xml);
      free(xml);
      if (!m) return 1;
      mjData* d = mj_makeData(m);
      if (mj_stateSize(m, sig) != nstate) {
        fprintf(stderr, "bench_tactile: state sizes differ\n");
        return 1;
      }
      mj_setState(m, d, state, sig);
      int sensor = dtac_tactile_find(m, "tac");
      int inst = m->sensor_plugin[sensor];
      dtac_tactile_info ti;
      dtac_tactile_get_info(m, d, sensor, &ti);
      const mjpPlugin* plugin = mjp_getPluginAtSlot(m->plugin[inst]);
      int nout = ti.nout;
      int channels = o == 0 ? 3 : o == 3 ? 2 : 1;
      long bytes = 8L * nout;  // what one frame must write: W*H*channels doubles (or N*2, 6)

      // frame = forward(with sensor) - forward(sensors disabled), interleaved blocks
      const int base_flags = m->opt.disableflags;
      time_forward(m, d, 2, q0);  // warm caches (and the sensor's first render)
      double seg[NSEG], seg_on[NSEG], seg_off[NSEG];
      long nframe = 0;
      dtac_tactile_get_info(m, d, sensor, &ti);
      long ev0 = ti.nevaluation;
      for (int s = 0; s < NSEG; s++) {
        double on = 0, off = 0;
        long n_on = 0, n_off = 0;
        while (on + off < min_wall / NSEG || n_on < 4) {
          m->opt.disableflags = base_flags | mjDSBL_SENSOR;
          off += 2 * time_forward(m, d, 2, q0);
          n_off += 2;
          m->opt.disableflags = base_flags;
          on += 2 * time_forward(m, d, 2, q0);
          n_on += 2;
        }
        seg_on[s] = on / n_on;
        seg_off[s] = off / n_off;
        seg[s] = seg_on[s] - seg_off[s];
        nframe += n_on;
      }
      m->opt.disableflags = base_flags;
      dtac_tactile_get_info(m, d, sensor, &ti);
      long nmiss = ti.nevaluation - ev0;
      double frame_s = median3(seg);

      // the image content, as evidence of the press: covered pixels and the largest value
      const mjtNum* sd = d->sensordata + m->sensor_adr[sensor];
      long covered = 0;
      double vmax = 0;
      for (int k = 0; k < nout; k++) vmax = fmax(vmax, fabs(sd[k]));
      if (o <= 3) {
        for (long p = 0; p < (long)W * H; p++) {
          int any = 0;
          for (int c = 0; c < channels; c++) any |= sd[p * channels + c] != 0;
          covered += any;
        }
      }

      // render = the compute callback alone, cache invalidated by the reset callback
      mjtNum* pstate = d->plugin_state + m->plugin_stateadr[inst];
      void* pdata = (void*)d->plugin_data[inst];
      double rseg[NSEG];
      for (int s = 0; s < NSEG; s++) {
        long n = 0;
        double el = 0;
        t0 = now_s();
        while (el < 0.5 * min_wall / NSEG || n < 4) {
          plugin->reset(m, pstate, pdata, inst);
          plugin->compute(m, d, inst, mjPLUGIN_SENSOR);
          n++;
          if ((n & 3) == 0) el = now_s() - t0;
        }
        rseg[s] = (now_s() - t0) / n;
      }
      double render_s = median3(rseg);
      frame_ms[z][o] = 1e3 * frame_s;
      render_ms[z][o] = 1e3 * render_s;

      printf("{\"bench\":\"tactile\",\"output\":\"%s\",\"width\":%d,\"height\":%d,"
             "\"pitch\":%.5g,\"channels\":%d,\"nout\":%d,\"bytes_per_frame\":%ld,"
             "\"frame_ms\":%.5g,\"frame_ms_segments\":[%.5g,%.5g,%.5g],"
             "\"forward_ms_with\":%.5g,\"forward_ms_without\":%.5g,\"render_ms\":%.5g,"
             "\"render_ms_segments\":[%.5g,%.5g,%.5g],\"frames\":%ld,\"cache_misses\":%ld,"
             "\"gbytes_per_s_frame\":%.4g,\"gbytes_per_s_render\":%.4g,\"gel_step_ms\":%.5g,"
             "\"frame_over_step\":%.4g,\"covered_pixels\":%ld,\"max_abs_value\":%.4g}\n",
             OUTPUTS[o], W, H, ti.pitch, channels, nout, bytes, 1e3 * frame_s, 1e3 * seg[0],
             1e3 * seg[1], 1e3 * seg[2], 1e3 * median3(seg_on), 1e3 * median3(seg_off),
             1e3 * render_s, 1e3 * rseg[0], 1e3 * rseg[1], 1e3 * rseg[2], nframe, nmiss,
             frame_s > 0 ? 1e-9 * bytes / frame_s : 0, 1e-9 * bytes / render_s, 1e3 * step_s,
             frame_s / step_s, covered, vmax);
      fflush(stdout);
      fprintf(stderr, "  %-8s %3dx%-3d  frame %8.3f ms  render %8.3f ms  %7.3f GB/s  "
              "%5.1f%% of a gel step  (%ld/%ld frames re-rendered)\n",
              OUTPUTS[o], W, H, 1e3 * frame_s, 1e3 * render_s, 1e-9 * bytes / render_s,
              100 * frame_s / step_s, nmiss, nframe);
      mj_deleteData(d);
      mj_deleteModel(m);
    }
  }

  fprintf(stderr, "\nms per frame: mj_forward with minus without (the callback alone); gel mj_step "
          "%.2f ms\n%-9s", 1e3 * step_s, "output");
  for (int z = 0; z < 3; z++) fprintf(stderr, " | %9dx%-9d", SIZES[z][0], SIZES[z][1]);
  fprintf(stderr, "\n");
  for (int o = 0; o < 6; o++) {
    fprintf(stderr, "%-9s", OUTPUTS[o]);
    for (int z = 0; z < 3; z++) fprintf(stderr, " | %8.3f (%7.3f)", frame_ms[z][o], render_ms[z][o]);
    fprintf(stderr, "\n");
  }
  fprintf(stderr, "%-9s", "raster");
  for (int z = 0; z < 3; z++) {
    fprintf(stderr, " | vis %5.2f res1 %5.2f", raster_ms[z][0], raster_ms[z][1]);
  }
  fprintf(stderr, "\n");
  free(ptop);
  free(state);
  mj_deleteData(d0);
  mj_deleteModel(m0);
  if (g_nwarn) fprintf(stderr, "bench_tactile: %d MuJoCo warnings\n", g_nwarn);
  return 0;
}
