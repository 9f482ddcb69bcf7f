// Devices: the `device` key, and the device code path against the CPU step. `emu` runs the
// device kernel's body (kernels/gel_dev.h) on the host, by one thread or by a team of host
// threads with barriers (DTAC_EMU_TEAM), through the same device copies, uploads and downloads
// as a GPU (src/device.c), so these tests check that path without a GPU. The same tests with `cuda` run where a GPU is present and skip (reported as skipped)
// elsewhere.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common.h"
#include "small_scene.h"

namespace {

// a model file with `device` set on every elastomer
std::string WithDevice(const char* file, const std::string& device) {
  return ::WithDevice(ReadModelFile(file), device);
}

// what a run leaves: qpos, qvel, plugin_state, sensordata
struct Outcome {
  std::vector<double> qpos, qvel, state, sensor;
  int nwarning = 0;
  int ncontact = 0;  // gel nodes in contact at the end
};

// the controls of step t: the press scenes press in and slide, the grasp closes and lifts
void Controls(const std::string& file, int t, double* ctrl) {
  if (file == "grasp.xml") {
    ctrl[1] = 0.02 * std::fmin(t / 40.0, 1.0);
    ctrl[0] = t > 40 ? 0.0002 * (t - 40) : 0;
  } else {
    ctrl[0] = 0.002 * std::sin(0.05 * t);
    ctrl[1] = (file == "press_small.xml" ? -0.0008 : -0.0072) - 0.0004 * std::sin(0.07 * t);
  }
}

// drives scene `file` on `device` for nstep steps with a fixed control schedule; reset_at >= 0
// saves the full state at step reset_at, steps 20 more, restores it and continues with shifted
// controls (the device must notice the state changed behind it); copy moves the run into a
// fresh mjData (mj_copyData) half way
Outcome Drive(const std::string& file, const std::string& device, int nstep, int reset_at = -1,
          bool copy = false) {
  Scene s = Scene::FromString(WithDevice(file.c_str(), device));
  EXPECT_NE(s.m, nullptr) << s.err;
  Outcome r;
  if (!s.m) return r;
  mjModel* m = s.m;
  mjData* d = s.d;
  int sig = mjSTATE_INTEGRATION;
  std::vector<double> saved(mj_stateSize(m, sig));
  mjData* work = d;
  mjData* dcopy = nullptr;
  int shift = 0;
  for (int t = 0; t < nstep; t++) {
    Controls(file, t + shift, work->ctrl);
    mj_step(m, work);
    if (reset_at >= 0 && t == reset_at) mj_getState(m, work, saved.data(), sig);
    if (reset_at >= 0 && t == reset_at + 20) {
      mj_setState(m, work, saved.data(), sig);
      t = reset_at;
      reset_at = -1;
      shift = 17;  // and other controls from there on
    }
    if (copy && t == nstep / 2 && !dcopy) {
      dcopy = mj_makeData(m);
      mj_copyData(dcopy, m, work);
      work = dcopy;
    }
  }
  r.qpos.assign(work->qpos, work->qpos + m->nq);
  r.qvel.assign(work->qvel, work->qvel + m->nv);
  r.state.assign(work->plugin_state, work->plugin_state + m->npluginstate);
  r.sensor.assign(work->sensordata, work->sensordata + m->nsensordata);
  for (int i = 0; i < m->nplugin; i++) {
    dtac_gel_info info;
    if (dtac_gel_get_info(m, work, i, &info) == 0) {
      r.nwarning += info.nwarning;
      r.ncontact += info.ncontact;
    }
  }
  if (dcopy) mj_deleteData(dcopy);
  return r;
}

// largest difference relative to the largest magnitude, or to `floor` if that is larger
double RelDiff(const std::vector<double>& a, const std::vector<double>& b, double floor = 1e-300) {
  EXPECT_EQ(a.size(), b.size());
  double scale = floor, diff = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); i++) {
    scale = std::max(scale, std::fabs(a[i]));
    diff = std::max(diff, std::fabs(a[i] - b[i]));
    if (!std::isfinite(b[i])) return INFINITY;
  }
  return diff / scale;
}

// (velocities relative to 1 mm/s at least: a body at rest has velocities of rounding size, whose
// own relative differences mean nothing)
void ExpectParity(const Outcome& cpu, const Outcome& dev, double tol, const char* what) {
  double e[4] = {RelDiff(cpu.qpos, dev.qpos), RelDiff(cpu.qvel, dev.qvel, 1e-3),
                 RelDiff(cpu.state, dev.state), RelDiff(cpu.sensor, dev.sensor)};
  std::printf("%s: rel diff qpos %.2e qvel %.2e gel state %.2e sensors %.2e\n", what, e[0], e[1],
              e[2], e[3]);
  for (double x : e) EXPECT_LE(x, tol) << what;
  EXPECT_GT(cpu.ncontact, 0) << "the scene must be in contact to test it";
  EXPECT_EQ(cpu.ncontact, dev.ncontact);
  EXPECT_EQ(cpu.nwarning, 0);
  EXPECT_EQ(dev.nwarning, 0);
}

// device strings under test: the emulated device always, a GPU where present
std::vector<std::string> Devices() {
  std::vector<std::string> v = {"emu"};
  if (dtac_cuda_available()) v.push_back("cuda");
  return v;
}

// the emulated device with one thread runs the CPU step's own arithmetic in its order (the same
// per-node substep, the same sums): bit for bit. Teams of threads sum the reactions in another
// order, and those rounding differences have 100 steps of contact to grow (observed up to 1e-12);
// a GPU also fuses multiply-adds and has its own sin, cos and tanh, so its differences start
// larger (not yet measured: no GPU so far)
// (Run with DTAC_EMU_TEAM set, as under ThreadSanitizer, the emulated device is held to kTol.)
constexpr double kTol = 1e-8;
double Tol(const std::string& dev) {
  const char* team = getenv("DTAC_EMU_TEAM");
  bool one_thread = !team || !strcmp(team, "1x1");
  return dev == "emu" ? (one_thread ? 0 : kTol) : 1e-6;
}

}  // namespace

TEST(Device, SlidingPressMatchesCpu) {
  Outcome cpu = Drive("press_small.xml", "cpu", 100);
  for (const std::string& dev : Devices())
    ExpectParity(cpu, Drive("press_small.xml", dev, 100), Tol(dev), dev.c_str());
}

TEST(Device, GraspTwoGelsCoupledBoxMatchesCpu) {
  Outcome cpu = Drive("grasp.xml", "cpu", 100);
  for (const std::string& dev : Devices())
    ExpectParity(cpu, Drive("grasp.xml", dev, 100), Tol(dev), dev.c_str());
}

TEST(Device, TactileImagesMatchCpu) {
  Outcome cpu = Drive("press_tactile.xml", "cpu", 30);
  for (const std::string& dev : Devices())
    ExpectParity(cpu, Drive("press_tactile.xml", dev, 30), Tol(dev), dev.c_str());
}

TEST(Device, StateChangedBehindTheDeviceIsUploaded) {
  // mj_setState in the middle, and mj_copyData into a fresh mjData: the device copy is a cache
  Outcome cpu = Drive("press_small.xml", "cpu", 80, 30, true);
  for (const std::string& dev : Devices()) {
    Outcome r = Drive("press_small.xml", dev, 80, 30, true);
    ExpectParity(cpu, r, Tol(dev), dev.c_str());
  }
  // and the test can fail: without the restore the runs differ (a device that kept its own copy
  // would have gone on from the state 20 steps later)
  Outcome plain = Drive("press_small.xml", "emu", 80);
  EXPECT_GT(RelDiff(cpu.qpos, plain.qpos) + RelDiff(cpu.state, plain.state), 1e-6);
}

TEST(Device, ResetDataRestartsFromRest) {
  for (const std::string& dev : Devices()) {
    Scene a = Scene::FromString(WithDevice("press_small.xml", "cpu"));
    Scene b = Scene::FromString(WithDevice("press_small.xml", dev));
    ASSERT_NE(b.m, nullptr) << b.err;
    for (Scene* s : {&a, &b}) {
      s->d->ctrl[1] = -0.004;
      for (int t = 0; t < 40; t++) mj_step(s->m, s->d);
      mj_resetData(s->m, s->d);
      s->d->ctrl[1] = -0.002;
      for (int t = 0; t < 40; t++) mj_step(s->m, s->d);
    }
    std::vector<double> sa(a.d->plugin_state, a.d->plugin_state + a.m->npluginstate);
    std::vector<double> sb(b.d->plugin_state, b.d->plugin_state + b.m->npluginstate);
    EXPECT_LE(RelDiff(sa, sb), Tol(dev)) << dev;
  }
}

TEST(Device, KeyValuesAndErrors) {
  // accepted: auto, cpu, emu (and cuda, cuda:N where a GPU is)
  for (const char* v : {"auto", "cpu", "emu"}) {
    Scene s = Scene::FromString(SmallScene(std::string("<config key=\"device\" value=\"") + v +
                                           "\"/>"));
    EXPECT_NE(s.m, nullptr) << v << ": " << s.err;
  }
  // a GPU that is not there is a load error naming instance, key and value
  int n = dtac_cuda_available();
  std::string bad = "cuda:" + std::to_string(n + 3);
  Scene s = Scene::FromString(SmallScene("<config key=\"device\" value=\"" + bad + "\"/>"));
  EXPECT_EQ(s.m, nullptr);
  EXPECT_NE(s.err.find("gel"), std::string::npos) << s.err;
  EXPECT_NE(s.err.find("device"), std::string::npos) << s.err;
  EXPECT_NE(s.err.find(bad), std::string::npos) << s.err;
  for (const char* v : {"cuda:", "cuda:x", "cuda:1x", "gpu"}) {
    Scene t = Scene::FromString(SmallScene(std::string("<config key=\"device\" value=\"") + v +
                                           "\"/>"));
    EXPECT_EQ(t.m, nullptr) << v;
    EXPECT_NE(t.err.find(v), std::string::npos) << t.err;
  }
  if (!n) {
    Scene c = Scene::FromString(SmallScene("<config key=\"device\" value=\"cuda\"/>"));
    EXPECT_EQ(c.m, nullptr);
    EXPECT_NE(c.err.find("cuda"), std::string::npos) << c.err;
  }
}

TEST(Device, CudaIsSkippedWithoutGpu) {
  if (!dtac_cuda_available()) GTEST_SKIP() << "no CUDA device: the cuda parity runs are skipped";
  Scene s = Scene::FromString(WithDevice("press_small.xml", "cuda"));
  ASSERT_NE(s.m, nullptr) << s.err;
}

TEST(Device, BatchOfEnvironmentsMatchesSteppingEachAlone) {
  // dtac_batch_step with gels on a device: every environment's MuJoCo step on the threads with
  // the gels deferred, one launch for all, then each environment's download and corrections;
  // bit-identical to mj_step on each alone on the same device, and to rounding to the CPU
  for (const std::string& dev : Devices()) {
    Scene s = Scene::FromString(WithDevice("grasp.xml", dev));
    ASSERT_NE(s.m, nullptr) << s.err;
    const int n = 4, nstep = 50;
    std::vector<mjData*> batch(n), alone(n), cpu(n);
    Scene c = Scene::FromString(WithDevice("grasp.xml", "cpu"));
    for (int i = 0; i < n; i++) {
      batch[i] = mj_makeData(s.m);
      alone[i] = mj_makeData(s.m);
      cpu[i] = mj_makeData(c.m);
      for (mjData* d : {batch[i], alone[i], cpu[i]}) d->qvel[0] = 0.002 * i;  // distinct runs
    }
    dtac_batch* b = dtac_batch_make(s.m, 3);
    ASSERT_NE(b, nullptr);
    for (int t = 0; t < nstep; t++) {
      for (int i = 0; i < n; i++) {
        Controls("grasp.xml", t + 3 * i, batch[i]->ctrl);
        Controls("grasp.xml", t + 3 * i, alone[i]->ctrl);
        Controls("grasp.xml", t + 3 * i, cpu[i]->ctrl);
        mj_step(s.m, alone[i]);
        mj_step(c.m, cpu[i]);
      }
      EXPECT_EQ(dtac_batch_step(b, batch.data(), n, 1), 0);
    }
    for (int i = 0; i < n; i++) {
      std::vector<double> sb(batch[i]->plugin_state, batch[i]->plugin_state + s.m->npluginstate);
      std::vector<double> sa(alone[i]->plugin_state, alone[i]->plugin_state + s.m->npluginstate);
      std::vector<double> sc(cpu[i]->plugin_state, cpu[i]->plugin_state + s.m->npluginstate);
      EXPECT_EQ(sb, sa) << dev << " env " << i;
      for (int k = 0; k < s.m->nq; k++) EXPECT_EQ(batch[i]->qpos[k], alone[i]->qpos[k]) << k;
      EXPECT_LE(RelDiff(sc, sb), Tol(dev)) << dev << " env " << i;
      if (i > 0) EXPECT_NE(sb, std::vector<double>(batch[0]->plugin_state,
                                                   batch[0]->plugin_state + s.m->npluginstate));
    }
    dtac_batch_free(b);
    for (int i = 0; i < n; i++) {
      mj_deleteData(batch[i]);
      mj_deleteData(alone[i]);
      mj_deleteData(cpu[i]);
    }
  }
}

TEST(Device, GradientsMatchCpu) {
  // the tape records on the CPU (docs/gpu.md): a device model's transition Jacobians after device
  // steps equal the CPU model's after CPU steps, and so do mjd_transitionFD's
  std::vector<std::vector<double>> AB[2];
  const char* devs[2] = {"cpu", "emu"};
  for (int k = 0; k < 2; k++) {
    Scene s = Scene::FromString(WithDevice("press_small.xml", devs[k]));
    ASSERT_NE(s.m, nullptr) << s.err;
    for (int t = 0; t < 40; t++) {
      Controls("press_small.xml", t, s.d->ctrl);
      mj_step(s.m, s.d);
    }
    int ndx = 2 * s.m->nv + s.m->na, nu = s.m->nu;
    std::vector<double> A(ndx * ndx), B(ndx * nu), Af(ndx * ndx), Bf(ndx * nu);
    ASSERT_EQ(dtac_transition(s.m, s.d, A.data(), B.data(), nullptr, nullptr), 0);
    // MuJoCo's finite differences set the state behind the device between their steps
    mjd_transitionFD(s.m, s.d, 1e-6, 1, Af.data(), Bf.data(), nullptr, nullptr);
    AB[k] = {A, B, Af, Bf};
    double amax = 0;
    for (double a : A) amax = std::max(amax, std::fabs(a));
    EXPECT_GT(amax, 0);
  }
  for (int j = 0; j < 4; j++) EXPECT_LT(RelDiff(AB[0][j], AB[1][j]), kTol) << j;
}

namespace {
std::string g_warning;
void CaptureWarning(const char* msg) { g_warning += msg; }
}  // namespace

TEST(Device, NodeInsideTooManyCollidersIsSaidOnce) {
  // five nested balls under the pad: nodes inside all five push on four (DTAC_NODE_MAXCOL),
  // the same on the CPU and the device, and a warning says so once
  std::string balls;
  for (int i = 0; i < 5; i++)
    balls += "<geom type=\"sphere\" pos=\"0 0 0.01\" size=\"" + std::to_string(0.004 + 1e-6 * i) + "\"/>";
  Outcome r[2];
  const char* devs[2] = {"cpu", "emu"};
  for (int k = 0; k < 2; k++) {
    std::string xml = WithDevice("press_small.xml", devs[k]);
    const std::string ball = "<geom name=\"ball\" type=\"sphere\" pos=\"0 0 0.01\" size=\"0.004\"/>";
    size_t p = xml.find(ball);
    ASSERT_NE(p, std::string::npos);
    xml.replace(p, ball.size(), balls);
    Scene s = Scene::FromString(xml);
    ASSERT_NE(s.m, nullptr) << s.err;
    g_warning.clear();
    void (*old)(const char*) = mju_user_warning;
    mju_user_warning = CaptureWarning;
    s.d->ctrl[1] = -0.001;
    for (int t = 0; t < 40; t++) mj_step(s.m, s.d);
    mju_user_warning = old;
    EXPECT_NE(g_warning.find("more than 4 colliders"), std::string::npos) << devs[k] << g_warning;
    EXPECT_EQ(g_warning.find("more than 4 colliders"), g_warning.rfind("more than 4 colliders"));
    r[k].state.assign(s.d->plugin_state, s.d->plugin_state + s.m->npluginstate);
  }
  EXPECT_LE(RelDiff(r[0].state, r[1].state), Tol("emu"));
}

TEST(Device, EveryGeomTypeMatchesCpu) {
  // the gel pressed into each geom type (a mesh's hull planes reach the device through their
  // own device copy), on the CPU and on each device: states, positions and contact counts to
  // rounding after 40 steps
  auto run = [](const std::string& xml, Outcome* r) {
    Scene s = Scene::FromString(xml);
    EXPECT_NE(s.m, nullptr) << s.err;
    if (!s.m) return;
    for (int t = 0; t < 40; t++) {
      s.d->ctrl[0] = -0.0007;
      mj_step(s.m, s.d);
    }
    r->qpos.assign(s.d->qpos, s.d->qpos + s.m->nq);
    r->qvel.assign(s.d->qvel, s.d->qvel + s.m->nv);
    r->state.assign(s.d->plugin_state, s.d->plugin_state + s.m->npluginstate);
    dtac_gel_info info;
    dtac_gel_get_info(s.m, s.d, dtac_gel_find(s.m, "gel"), &info);
    r->ncontact = info.ncontact;
    r->nwarning = info.nwarning;
  };
  for (const GeomCase& c : GeomCases()) {
    Outcome cpu;
    run(WithDevice(PressOnGeom(c.geom, c.asset), "cpu"), &cpu);
    for (const std::string& dev : Devices()) {
      Outcome d;
      run(WithDevice(PressOnGeom(c.geom, c.asset), dev), &d);
      ExpectParity(cpu, d, Tol(dev), (std::string(c.name) + " " + dev).c_str());
    }
  }
}

TEST(Device, TeamsOfThreadsMatchCpu) {
  // the emulated device with teams of host threads (DTAC_EMU_TEAM = blocks x threads per block):
  // the kernel body's striding, barriers and two-level reductions as a GPU runs them, a team of
  // one block or of several joined by the team barrier; to rounding with the CPU, and
  // bit-identical between runs (the reductions' order does not depend on the threads' timing)
  const char* outer = getenv("DTAC_EMU_TEAM");  // the run's own setting, given back at the end
  std::string saved = outer ? outer : "";
  Outcome press = Drive("press_small.xml", "cpu", 100);
  for (const char* team : {"1x8", "3x4"}) {
    setenv("DTAC_EMU_TEAM", team, 1);
    Outcome a = Drive("press_small.xml", "emu", 100);
    Outcome b = Drive("press_small.xml", "emu", 100);
    unsetenv("DTAC_EMU_TEAM");
    ExpectParity(press, a, kTol, team);
    EXPECT_EQ(a.state, b.state) << team;
    EXPECT_EQ(a.qvel, b.qvel) << team;
  }
  Outcome grasp = Drive("grasp.xml", "cpu", 60);
  setenv("DTAC_EMU_TEAM", "2x4", 1);
  Outcome g = Drive("grasp.xml", "emu", 60);
  unsetenv("DTAC_EMU_TEAM");
  ExpectParity(grasp, g, kTol, "grasp 2x4");

  // a malformed team is an error naming the setting and its value
  setenv("DTAC_EMU_TEAM", "2x6", 1);
  Scene s = Scene::FromString(WithDevice("press_small.xml", "emu"));
  unsetenv("DTAC_EMU_TEAM");
  EXPECT_EQ(s.m, nullptr);
  EXPECT_NE(s.err.find("DTAC_EMU_TEAM = '2x6'"), std::string::npos) << s.err;
  if (outer) setenv("DTAC_EMU_TEAM", saved.c_str(), 1);
}

TEST(Device, FailureIsAWarningAndTheCpuStepsOn) {
  // a device call that fails while stepping (injected on the emulated device: every launch, or
  // every download) is a MuJoCo warning naming the instance, and the gels go on from
  // plugin_state on the CPU: the run equals a CPU run, alone and in a batch
  Outcome cpu = Drive("press_small.xml", "cpu", 60);
  for (const char* what : {"launch", "get"}) {
    setenv("DTAC_EMU_FAIL", what, 1);
    g_warning.clear();
    void (*old)(const char*) = mju_user_warning;
    mju_user_warning = CaptureWarning;
    Outcome r = Drive("press_small.xml", "emu", 60);
    // and in a batch: the fallback happens in the batch's phases
    Scene s = Scene::FromString(WithDevice("press_small.xml", "emu"));
    Scene c = Scene::FromString(WithDevice("press_small.xml", "cpu"));
    dtac_batch* b = dtac_batch_make(s.m, 2);
    mjData* d[2] = {s.d, mj_makeData(s.m)};
    mjData* dc[2] = {c.d, mj_makeData(c.m)};
    for (int t = 0; t < 20; t++) {
      for (int i = 0; i < 2; i++) {
        Controls("press_small.xml", t + 5 * i, d[i]->ctrl);
        Controls("press_small.xml", t + 5 * i, dc[i]->ctrl);
        mj_step(c.m, dc[i]);
      }
      EXPECT_EQ(dtac_batch_step(b, d, 2, 1), 0) << what;
    }
    mju_user_warning = old;
    unsetenv("DTAC_EMU_FAIL");
    ExpectParity(cpu, r, kTol, what);
    for (int i = 0; i < 2; i++) {
      std::vector<double> a(d[i]->plugin_state, d[i]->plugin_state + s.m->npluginstate);
      std::vector<double> e(dc[i]->plugin_state, dc[i]->plugin_state + c.m->npluginstate);
      EXPECT_LT(RelDiff(e, a), kTol) << what << " env " << i;
    }
    EXPECT_NE(g_warning.find("instance 'gel'"), std::string::npos) << g_warning;
    EXPECT_NE(g_warning.find("emulated"), std::string::npos) << g_warning;
    EXPECT_NE(g_warning.find("stepped on the CPU from now on"), std::string::npos) << g_warning;
    dtac_batch_free(b);
    mj_deleteData(d[1]);
    mj_deleteData(dc[1]);
  }
}
