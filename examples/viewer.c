// viewer.c: an interactive MuJoCo viewer for difftac scenes. The 3D scene (MuJoCo's renderer,
// with the gels drawn by difftac.elastomer's visualize) fills the left of the window; a panel on
// the right shows what each difftac.tactile sensor sees, live: RGB, depth, pressure and shear as
// colour maps, markers as arrows, force as numbers.
//
//   ./build/examples/viewer [model.xml] [--ctrl a,b,..] [--lib libdifftac.so]
//                           [--width W] [--height H]
//   xvfb-run -a ./build/examples/viewer models/press_tactile.xml --ctrl 0,-0.007 --steps 150
//                           --screenshot out/viewer.png      (headless, one line)
//
// Mouse (as in MuJoCo's samples): left drag rotates, right drag moves, middle drag or scroll
// zooms; shift with a drag works in the horizontal plane. Keys: space pause, right arrow one step
// (when paused), backspace reset, Tab switch the panel (all sensors, then each one alone),
// Esc quit. --ctrl sets mjData.ctrl after every reset (e.g. the finger's target position).
// --screenshot runs --steps steps, renders one frame into an offscreen buffer of the window's
// size, reads it with mjr_readPixels and writes it as PNG (or binary PPM if the name ends .ppm).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <GLFW/glfw3.h>
#include <zlib.h>

#include <difftac/difftac.h>
#include <mujoco/mujoco.h>

#ifndef DTAC_LIB
#define DTAC_LIB "libdifftac.so"
#endif
#ifndef DTAC_MODELS
#define DTAC_MODELS "models"
#endif

#define MAX_TACTILE 64
#define MAX_CTRL 256

// ---- state ---------------------------------------------------------------------------------------
static mjModel* m = NULL;
static mjData* d = NULL;
static mjvCamera cam;
static mjvOption opt;
static mjvScene scn;
static mjrContext con;
static mjvPerturb pert;

static int paused = 0, step_once = 0, want_reset = 0;
static int btn_left = 0, btn_middle = 0, btn_right = 0;
static double lastx = 0, lasty = 0;

static int ntactile = 0;                 // tactile sensors shown in the panel (images)
static int tactile_id[MAX_TACTILE];      // their sensor ids
static int nforce = 0;                   // force sensors (shown as text)
static int force_id[MAX_TACTILE];
static int panel_mode = -1;              // -1: all image sensors tiled; k: sensor k alone

static int nctrl = 0;
static double ctrl_init[MAX_CTRL];

static unsigned char* tilebuf = NULL;    // scratch: one tile, rgb, bottom row first
static size_t tilebuf_size = 0;
static unsigned char* imgbuf = NULL;     // scratch: one sensor image at its own size, top row first
static size_t imgbuf_size = 0;

static void* grow(void* p, size_t* cap, size_t need) {
  if (need <= *cap) return p;
  void* q = realloc(p, need);
  if (!q) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  *cap = need;
  return q;
}

// ---- simulation ------------------------------------------------------------------------------------
static void reset_sim(void) {
  mj_resetData(m, d);
  for (int i = 0; i < nctrl && i < m->nu; i++) d->ctrl[i] = ctrl_init[i];
  mj_forward(m, d);
}

static void find_sensors(void) {
  ntactile = nforce = 0;
  for (int i = 0; i < m->nsensor; i++) {
    dtac_tactile_info info;
    if (dtac_tactile_get_info(m, d, i, &info) != 0) continue;
    if (info.output == DTAC_TACTILE_FORCE) {
      if (nforce < MAX_TACTILE) force_id[nforce++] = i;
    } else if (ntactile < MAX_TACTILE) {
      tactile_id[ntactile++] = i;
    }
  }
}

// ---- sensor images -----------------------------------------------------------------------------------
static const char* output_name(int output) {
  static const char* names[] = {"rgb", "depth", "pressure", "shear", "markers", "force"};
  return output >= 0 && output <= 5 ? names[output] : "?";
}

// viridis, 5 stops, linear in between; s in [0, 1]
static void colormap(double s, unsigned char out[3]) {
  static const double stops[5][3] = {{0.267, 0.005, 0.329},
                                     {0.229, 0.322, 0.546},
                                     {0.128, 0.567, 0.551},
                                     {0.369, 0.789, 0.383},
                                     {0.993, 0.906, 0.144}};
  if (!(s > 0)) s = 0;  // also NaN
  if (s > 1) s = 1;
  double x = s * 4;
  int i = (int)x;
  if (i > 3) i = 3;
  double f = x - i;
  for (int c = 0; c < 3; c++) {
    out[c] = (unsigned char)lround(255 * ((1 - f) * stops[i][c] + f * stops[i + 1][c]));
  }
}

static void put_pixel(unsigned char* img, int w, int h, int x, int y, const unsigned char c[3]) {
  if (x < 0 || y < 0 || x >= w || y >= h) return;
  memcpy(img + 3 * ((size_t)y * w + x), c, 3);
}

static void draw_line(unsigned char* img, int w, int h, double x0, double y0, double x1,
                      double y1, int thick, const unsigned char c[3]) {
  double len = fmax(fabs(x1 - x0), fabs(y1 - y0));
  int n = (int)ceil(len) + 1;
  for (int i = 0; i <= n; i++) {
    double t = (double)i / n;
    int x = (int)lround(x0 + t * (x1 - x0)), y = (int)lround(y0 + t * (y1 - y0));
    for (int dy = -thick; dy <= thick; dy++) {
      for (int dx = -thick; dx <= thick; dx++) put_pixel(img, w, h, x + dx, y + dy, c);
    }
  }
}

// converts sensor `id` to an 8-bit rgb image (top row first) at its own size; fills a one-line
// description (range of the colour map) and returns 0, or -1 if it has no image
static int sensor_image(int id, int* W, int* H, char* desc, int desclen) {
  dtac_tactile_info info;
  if (dtac_tactile_get_info(m, d, id, &info) != 0) return -1;
  int w = info.width, h = info.height;
  if (w <= 0 || h <= 0) return -1;
  imgbuf = grow(imgbuf, &imgbuf_size, (size_t)3 * w * h);
  const mjtNum* v = d->sensordata + m->sensor_adr[id];
  size_t np = (size_t)w * h;
  *W = w;
  *H = h;
  switch (info.output) {
    case DTAC_TACTILE_RGB:
      for (size_t i = 0; i < 3 * np; i++) {
        double x = v[i];
        imgbuf[i] = (unsigned char)lround(255 * (x > 1 ? 1 : (x > 0 ? x : 0)));
      }
      snprintf(desc, desclen, "%dx%d", w, h);
      return 0;
    case DTAC_TACTILE_DEPTH:
    case DTAC_TACTILE_PRESSURE:
    case DTAC_TACTILE_SHEAR: {
      int shear = info.output == DTAC_TACTILE_SHEAR;
      double vmax = 0;
      for (size_t i = 0; i < np; i++) {
        double x = shear ? hypot(v[2 * i], v[2 * i + 1]) : v[i];
        if (x > vmax) vmax = x;
      }
      // the colour scale follows the image, with a floor so noise does not fill it
      double floor = info.output == DTAC_TACTILE_DEPTH ? 1e-4 : 1e3;
      double scale = fmax(vmax, floor);
      for (size_t i = 0; i < np; i++) {
        double x = shear ? hypot(v[2 * i], v[2 * i + 1]) : v[i];
        colormap(x / scale, imgbuf + 3 * i);
      }
      if (info.output == DTAC_TACTILE_DEPTH) {
        snprintf(desc, desclen, "0-%.3f mm", 1e3 * scale);
      } else {
        snprintf(desc, desclen, "%s0-%.1f kPa", shear ? "magnitude " : "", 1e-3 * scale);
      }
      return 0;
    }
    case DTAC_TACTILE_MARKERS: {
      for (size_t i = 0; i < 3 * np; i++) imgbuf[i] = 40;
      int n = info.nmarker;
      mjtNum* rest = malloc(sizeof(mjtNum) * 2 * (n > 0 ? n : 1));
      if (!rest || dtac_tactile_marker_rest(m, d, id, rest) != n) {
        free(rest);
        return -1;
      }
      double dmax = 0;
      for (int k = 0; k < n; k++) dmax = fmax(dmax, hypot(v[2 * k], v[2 * k + 1]));
      // arrows at least 5x the displacement (as the 3D view draws them), more when small, so
      // that the longest is about half the marker spacing
      double spacing = info.marker_pitch / info.pitch;
      double gain = dmax > 0 ? fmin(50, fmax(5, 0.5 * spacing / dmax)) : 5;
      gain = floor(gain);
      const unsigned char dot[3] = {230, 230, 230}, arrow[3] = {255, 215, 25};
      int r = w / 160 + 1;
      for (int k = 0; k < n; k++) {
        double u = rest[2 * k], vv = rest[2 * k + 1];
        double du = v[2 * k], dv = v[2 * k + 1];
        draw_line(imgbuf, w, h, u, vv, u + gain * du, vv + gain * dv, r / 2, arrow);
        draw_line(imgbuf, w, h, u, vv, u, vv, r, dot);
      }
      free(rest);
      snprintf(desc, desclen, "x%g, max %.2f px", gain, dmax);
      return 0;
    }
    default:
      return -1;
  }
}

static int info_output(int id) {
  dtac_tactile_info info;
  return dtac_tactile_get_info(m, d, id, &info) == 0 ? info.output : -1;
}

// width in pixels of `s` in the context's normal font
static int text_width(const char* s) {
  int w = 0;
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    w += con.charWidth[c < 127 ? c : '?'];
  }
  return w;
}

// shortens `s` in place, ending in "..", until it is at most `maxw` pixels wide
static void fit_text(char* s, int maxw) {
  if (text_width(s) <= maxw) return;
  int dots = text_width("..");
  size_t n = strlen(s);
  while (n > 0) {
    s[--n] = 0;
    if (text_width(s) + dots <= maxw) break;
  }
  if (text_width(s) + dots <= maxw) strcat(s, "..");
}

// draws sensor `id` into the top-down rectangle (x, top, w, h) of a framebuffer `fbh` high,
// keeping its aspect ratio, with a label above it: "name (output): range" on one line when it
// fits the tile, else the name on one line and the range on the next, each shortened to fit
static void draw_sensor(int id, int x, int top, int w, int h, int fbh, int selected) {
  int iw, ih;
  char desc[128];
  const int line = con.charHeight + 6;
  if (sensor_image(id, &iw, &ih, desc, sizeof(desc)) != 0 || w < 8 || h < 2 * line + 8) return;
  char title[256], title2[256] = "";
  const char* name = m->names + m->name_sensoradr[id];
  const char* out = output_name(info_output(id));
  if (!strcmp(name, out)) {
    snprintf(title, sizeof(title), "%s: %s", name, desc);
  } else {
    snprintf(title, sizeof(title), "%s (%s): %s", name, out, desc);
  }
  int textw = w - 16;
  if (text_width(title) > textw) {
    snprintf(title, sizeof(title), "%s", name);
    if (strcmp(name, out)) snprintf(title2, sizeof(title2), "%s: %s", out, desc);
    else snprintf(title2, sizeof(title2), "%s", desc);
    fit_text(title, textw);
    fit_text(title2, textw);
  }
  const int label = title2[0] ? 2 * line : line;
  int aw = w - 8, ah = h - label - 8;
  double s = fmin((double)aw / iw, (double)ah / ih);
  int tw = (int)(iw * s), th = (int)(ih * s);
  if (tw < 1 || th < 1) return;
  tilebuf = grow(tilebuf, &tilebuf_size, (size_t)3 * tw * th);
  for (int r = 0; r < th; r++) {
    int sr = (int)((r + 0.5) / s);
    if (sr >= ih) sr = ih - 1;
    unsigned char* dst = tilebuf + (size_t)3 * tw * (th - 1 - r);  // GL: bottom row first
    for (int c = 0; c < tw; c++) {
      int sc = (int)((c + 0.5) / s);
      if (sc >= iw) sc = iw - 1;
      memcpy(dst + 3 * c, imgbuf + 3 * ((size_t)sr * iw + sc), 3);
    }
  }
  int left = x + (w - tw) / 2, imtop = top + label + 4;
  mjrRect rect = {left, fbh - imtop - th, tw, th};
  if (selected) {
    mjrRect frame = {left - 2, rect.bottom - 2, tw + 4, th + 4};
    mjr_rectangle(frame, 0.9f, 0.8f, 0.2f, 1);
  }
  mjr_drawPixels(tilebuf, NULL, rect, &con);
  mjrRect lr = {x + 4, fbh - top - line, w - 8, line};
  mjr_label(lr, mjFONT_NORMAL, title, 0.15f, 0.15f, 0.18f, 1, 0.95f, 0.95f, 0.95f, &con);
  if (title2[0]) {
    lr.bottom -= line;
    mjr_label(lr, mjFONT_NORMAL, title2, 0.15f, 0.15f, 0.18f, 1, 0.95f, 0.95f, 0.95f, &con);
  }
}

// the panel: background, then the selected sensor or all of them tiled, then the forces
static void draw_panel(mjrRect panel, int fbh) {
  mjr_rectangle(panel, 0.1f, 0.1f, 0.12f, 1);
  int top = fbh - (panel.bottom + panel.height);
  int forces_h = nforce > 0 ? 24 * (nforce + 1) : 0;
  int avail = panel.height - forces_h;
  if (ntactile > 0) {
    if (panel_mode >= 0) {
      draw_sensor(tactile_id[panel_mode], panel.left, top, panel.width, avail, fbh, 0);
    } else {
      int cols = ntactile <= 3 ? 1 : 2;
      int rows = (ntactile + cols - 1) / cols;
      int tw = panel.width / cols, th = avail / rows;
      for (int k = 0; k < ntactile; k++) {
        draw_sensor(tactile_id[k], panel.left + (k % cols) * tw, top + (k / cols) * th, tw, th,
                    fbh, 0);
      }
    }
  }
  if (nforce > 0) {
    char text[2048] = "", line[256];
    for (int k = 0; k < nforce; k++) {
      const mjtNum* f = d->sensordata + m->sensor_adr[force_id[k]];
      snprintf(line, sizeof(line), "%s%s  F = %+.3f %+.3f %+.3f N", k ? "\n" : "",
               m->names + m->name_sensoradr[force_id[k]], f[0], f[1], f[2]);
      strncat(text, line, sizeof(text) - strlen(text) - 1);
    }
    mjrRect fr = {panel.left, panel.bottom, panel.width, forces_h};
    mjr_overlay(mjFONT_NORMAL, mjGRID_BOTTOMLEFT, fr, text, NULL, &con);
  }
}

// ---- one frame ---------------------------------------------------------------------------------------
static double rt_factor = 0;

static void render(int fbw, int fbh) {
  int pw = ntactile + nforce > 0 ? (int)(0.38 * fbw) : 0;
  mjrRect scene = {0, 0, fbw - pw, fbh};
  mjv_updateScene(m, d, &opt, &pert, &cam, mjCAT_ALL, &scn);
  mjr_render(scene, &scn, &con);

  char title[256], values[512];
  snprintf(title, sizeof(title), "time\nstatus\nspeed\npanel");
  const char* panel = panel_mode < 0 ? "all sensors"
                                     : m->names + m->name_sensoradr[tactile_id[panel_mode]];
  snprintf(values, sizeof(values), "%.3f s\n%s\n%.2fx real time\n%s", d->time,
           paused ? "paused" : "running", rt_factor, panel);
  mjr_overlay(mjFONT_NORMAL, mjGRID_TOPLEFT, scene, title, values, &con);
  mjr_overlay(mjFONT_NORMAL, mjGRID_BOTTOMLEFT, scene,
              "space pause  right step  backspace reset  tab panel  esc quit", NULL, &con);
  if (pw > 0) {
    mjrRect pr = {fbw - pw, 0, pw, fbh};
    draw_panel(pr, fbh);
  }
}

// ---- image files ---------------------------------------------------------------------------------------
static void be32(unsigned char* p, unsigned v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

static int png_chunk(FILE* f, const char* type, const unsigned char* data, unsigned len) {
  unsigned char hdr[8];
  be32(hdr, len);
  memcpy(hdr + 4, type, 4);
  unsigned long crc = crc32(0L, (const Bytef*)type, 4);
  if (len) crc = crc32(crc, data, len);
  unsigned char tail[4];
  be32(tail, (unsigned)crc);
  return fwrite(hdr, 1, 8, f) == 8 && (!len || fwrite(data, 1, len, f) == len) &&
         fwrite(tail, 1, 4, f) == 4;
}

// writes rgb (top row first) as an 8-bit RGB PNG (filter 0 on every row, zlib) or binary PPM
static int write_image(const char* path, const unsigned char* rgb, int w, int h) {
  FILE* f = fopen(path, "wb");
  if (!f) return -1;
  size_t n = strlen(path);
  int ok;
  if (n > 4 && strcmp(path + n - 4, ".ppm") == 0) {
    fprintf(f, "P6\n%d %d\n255\n", w, h);
    ok = fwrite(rgb, 1, (size_t)3 * w * h, f) == (size_t)3 * w * h;
  } else {
    size_t row = (size_t)3 * w + 1, rawlen = row * h;
    unsigned char* raw = malloc(rawlen);
    uLongf zlen = compressBound(rawlen);
    unsigned char* z = malloc(zlen);
    ok = raw && z;
    if (ok) {
      for (int y = 0; y < h; y++) {
        raw[y * row] = 0;
        memcpy(raw + y * row + 1, rgb + (size_t)3 * w * y, (size_t)3 * w);
      }
      ok = compress2(z, &zlen, raw, rawlen, 6) == Z_OK;
    }
    if (ok) {
      static const unsigned char sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
      unsigned char ihdr[13];
      be32(ihdr, (unsigned)w);
      be32(ihdr + 4, (unsigned)h);
      ihdr[8] = 8;   // bit depth
      ihdr[9] = 2;   // colour type: RGB
      ihdr[10] = ihdr[11] = ihdr[12] = 0;
      ok = fwrite(sig, 1, 8, f) == 8 && png_chunk(f, "IHDR", ihdr, 13) &&
           png_chunk(f, "IDAT", z, (unsigned)zlen) && png_chunk(f, "IEND", NULL, 0);
    }
    free(raw);
    free(z);
  }
  return fclose(f) == 0 && ok ? 0 : -1;
}

// ---- GLFW callbacks ------------------------------------------------------------------------------------
static void on_key(GLFWwindow* w, int key, int scancode, int act, int mods) {
  if (act == GLFW_RELEASE) return;
  switch (key) {
    case GLFW_KEY_ESCAPE:
      glfwSetWindowShouldClose(w, 1);
      break;
    case GLFW_KEY_SPACE:
      if (act == GLFW_PRESS) paused = !paused;
      break;
    case GLFW_KEY_RIGHT:
      if (paused) step_once = 1;
      break;
    case GLFW_KEY_BACKSPACE:
      want_reset = 1;
      break;
    case GLFW_KEY_TAB:
      if (ntactile > 0) {
        panel_mode = (mods & GLFW_MOD_SHIFT) ? panel_mode - 1 : panel_mode + 1;
        if (panel_mode >= ntactile) panel_mode = -1;
        if (panel_mode < -1) panel_mode = ntactile - 1;
      }
      break;
    default:
      break;
  }
}

static void on_button(GLFWwindow* w, int button, int act, int mods) {
  btn_left = glfwGetMouseButton(w, GLFW_MOUSE_BUTTON_LEFT) == GLFW_PRESS;
  btn_middle = glfwGetMouseButton(w, GLFW_MOUSE_BUTTON_MIDDLE) == GLFW_PRESS;
  btn_right = glfwGetMouseButton(w, GLFW_MOUSE_BUTTON_RIGHT) == GLFW_PRESS;
  glfwGetCursorPos(w, &lastx, &lasty);
}

static void on_move(GLFWwindow* w, double x, double y) {
  if (!btn_left && !btn_middle && !btn_right) return;
  double dx = x - lastx, dy = y - lasty;
  lastx = x;
  lasty = y;
  int width, height;
  glfwGetWindowSize(w, &width, &height);
  int shift = glfwGetKey(w, GLFW_KEY_LEFT_SHIFT) == GLFW_PRESS ||
              glfwGetKey(w, GLFW_KEY_RIGHT_SHIFT) == GLFW_PRESS;
  int action;
  if (btn_right) {
    action = shift ? mjMOUSE_MOVE_H : mjMOUSE_MOVE_V;
  } else if (btn_left) {
    action = shift ? mjMOUSE_ROTATE_H : mjMOUSE_ROTATE_V;
  } else {
    action = mjMOUSE_ZOOM;
  }
  mjv_moveCamera(m, action, dx / height, dy / height, &cam);
}

static void on_scroll(GLFWwindow* w, double xoff, double yoff) {
  mjv_moveCamera(m, mjMOUSE_ZOOM, 0, -0.05 * yoff, &cam);
}

// ---- main ----------------------------------------------------------------------------------------------
static void usage(void) {
  fprintf(stderr,
          "usage: viewer [model.xml|model.mjb] [--ctrl a,b,..] [--lib libdifftac.so]\n"
          "              [--width W] [--height H] [--screenshot out.png|out.ppm] [--steps N]\n");
}

int main(int argc, char** argv) {
  const char* path = DTAC_MODELS "/press_tactile.xml";
  const char* lib = DTAC_LIB;
  const char* shot = NULL;
  int nstep = 0, width = 1280, height = 720;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    int more = i + 1 < argc;
    if (!strcmp(a, "--screenshot") && more) {
      shot = argv[++i];
    } else if (!strcmp(a, "--steps") && more) {
      nstep = atoi(argv[++i]);
    } else if (!strcmp(a, "--width") && more) {
      width = atoi(argv[++i]);
    } else if (!strcmp(a, "--height") && more) {
      height = atoi(argv[++i]);
    } else if (!strcmp(a, "--lib") && more) {
      lib = argv[++i];
    } else if (!strcmp(a, "--ctrl") && more) {
      char* s = argv[++i];
      nctrl = 0;
      while (*s && nctrl < MAX_CTRL) {
        char* end;
        ctrl_init[nctrl++] = strtod(s, &end);
        if (end == s) break;
        s = *end == ',' ? end + 1 : end;
      }
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage();
      return 0;
    } else if (a[0] != '-') {
      path = a;
    } else {
      usage();
      return 2;
    }
  }
  if (width < 64 || height < 64) {
    fprintf(stderr, "window too small\n");
    return 2;
  }

  mj_loadPluginLibrary(lib);
  char err[1000] = "";
  size_t n = strlen(path);
  if (n > 4 && !strcmp(path + n - 4, ".mjb")) {
    m = mj_loadModel(path, NULL);
  } else {
    m = mj_loadXML(path, NULL, err, sizeof(err));
  }
  if (!m) {
    fprintf(stderr, "could not load %s: %s\n", path, err);
    return 1;
  }
  d = mj_makeData(m);
  reset_sim();
  find_sensors();
  printf("difftac %s, MuJoCo %s: %s, %d tactile image sensors, %d force sensors\n",
         dtac_version(), mj_versionString(), path, ntactile, nforce);

  if (!glfwInit()) {
    fprintf(stderr, "could not initialise GLFW (no display? try xvfb-run -a)\n");
    return 3;
  }
  if (shot) glfwWindowHint(GLFW_VISIBLE, GLFW_FALSE);
  glfwWindowHint(GLFW_SAMPLES, 4);
  GLFWwindow* window = glfwCreateWindow(width, height, "difftac viewer", NULL, NULL);
  if (!window) {
    fprintf(stderr, "could not create an OpenGL window\n");
    glfwTerminate();
    return 3;
  }
  glfwMakeContextCurrent(window);
  glfwSwapInterval(1);

  mjv_defaultFreeCamera(m, &cam);
  mjv_defaultOption(&opt);
  mjv_defaultPerturb(&pert);
  mjv_defaultScene(&scn);
  mjr_defaultContext(&con);
  mjv_makeScene(m, &scn, 20000);  // the gels draw two triangles per top-face cell
  mjr_makeContext(m, &con, mjFONTSCALE_100);

  // look at the first gel, close enough to see it deform
  for (int i = 0; i < m->nplugin; i++) {
    dtac_gel_info gi;
    if (dtac_gel_get_info(m, d, i, &gi) == 0) {
      for (int c = 0; c < 3; c++) cam.lookat[c] = d->site_xpos[3 * gi.site + c];
      cam.distance = 0.15;
      cam.azimuth = 120;
      cam.elevation = -20;
      break;
    }
  }

  int rc = 0;
  if (shot) {
    double t0 = glfwGetTime();
    for (int i = 0; i < nstep; i++) mj_step(m, d);
    mj_forward(m, d);  // sensordata of the final state
    double tsim = glfwGetTime() - t0;
    rt_factor = tsim > 0 ? d->time / tsim : 0;
    paused = 1;
    mjr_setBuffer(mjFB_OFFSCREEN, &con);
    mjr_resizeOffscreen(width, height, &con);
    if (con.offWidth != width || con.offHeight != height) {
      fprintf(stderr, "offscreen buffer is %dx%d, not %dx%d\n", con.offWidth, con.offHeight,
              width, height);
    }
    render(width, height);
    unsigned char* rgb = malloc((size_t)3 * width * height);
    unsigned char* flip = malloc((size_t)3 * width * height);
    mjrRect all = {0, 0, width, height};
    mjr_readPixels(rgb, NULL, all, &con);
    for (int y = 0; y < height; y++) {
      memcpy(flip + (size_t)3 * width * y, rgb + (size_t)3 * width * (height - 1 - y),
             (size_t)3 * width);
    }
    if (write_image(shot, flip, width, height) != 0) {
      fprintf(stderr, "could not write %s\n", shot);
      rc = 1;
    } else {
      printf("%d steps (%.3f s simulated) in %.2f s; wrote %s (%dx%d, panel from x = %d)\n",
             nstep, d->time, tsim, shot, width, height,
             ntactile + nforce > 0 ? width - (int)(0.38 * width) : width);
    }
    free(rgb);
    free(flip);
  } else {
    glfwSetKeyCallback(window, on_key);
    glfwSetMouseButtonCallback(window, on_button);
    glfwSetCursorPosCallback(window, on_move);
    glfwSetScrollCallback(window, on_scroll);
    for (int i = 0; i < nstep; i++) mj_step(m, d);
    double wall_prev = glfwGetTime(), sim_prev = d->time;
    while (!glfwWindowShouldClose(window)) {
      if (want_reset) {
        reset_sim();
        want_reset = 0;
      }
      // advance by one frame of simulated time, or as much as 1/30 s of wall time allows
      double tstart = glfwGetTime();
      if (!paused) {
        double target = d->time + 1.0 / 60;
        while (d->time < target && glfwGetTime() - tstart < 1.0 / 30) mj_step(m, d);
      } else if (step_once) {
        mj_step(m, d);
        step_once = 0;
      }
      double now = glfwGetTime();
      if (now - wall_prev > 0.5) {
        rt_factor = (d->time - sim_prev) / (now - wall_prev);
        wall_prev = now;
        sim_prev = d->time;
      }
      int fbw, fbh;
      glfwGetFramebufferSize(window, &fbw, &fbh);
      render(fbw, fbh);
      glfwSwapBuffers(window);
      glfwPollEvents();
    }
  }

  free(tilebuf);
  free(imgbuf);
  mjv_freeScene(&scn);
  mjr_freeContext(&con);
  glfwDestroyWindow(window);
  glfwTerminate();
  mj_deleteData(d);
  mj_deleteModel(m);
  return rc;
}
