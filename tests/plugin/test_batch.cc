// test_batch.cc: many environments (dtac_batch_*): batched stepping on a worker pool is
// bit-identical to mj_step on each mjData alone, runs on the pool's threads with a static
// partition, reports blow-ups and rejects bad arguments.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common.h"
#include "small_scene.h"

namespace {

// models/grasp.xml with 4 mm gels (fast)
std::string BatchGrasp() {
  std::string xml = ReadModelFile("grasp.xml");
  for (size_t p; (p = xml.find("value=\"0.002\"")) != std::string::npos;) {
    xml.replace(p, 13, "value=\"0.004\"");
  }
  return xml;
}

// models/press_small.xml with tactile sensors (small rgb and pressure images, markers, force),
// like models/press_tactile.xml on a small pad
std::string BatchPressTactile() {
  return PressSmallTactile({"rgb", "pressure", "markers", "force"}, 16, "0.0006", 4);
}

// everything mj_step carries from one step to the next (mjSTATE_INTEGRATION: time, qpos, qvel,
// act, warm start, plugin_state, ctrl...) and the sensors it computed
std::vector<mjtNum> Snapshot(const mjModel* m, const mjData* d) {
  int nstate = mj_stateSize(m, mjSTATE_INTEGRATION);
  std::vector<mjtNum> s(nstate + m->nsensordata);
  mj_getState(m, d, s.data(), mjSTATE_INTEGRATION);
  std::memcpy(s.data() + nstate, d->sensordata, sizeof(mjtNum) * m->nsensordata);
  return s;
}

bool BitIdentical(const std::vector<mjtNum>& a, const std::vector<mjtNum>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(mjtNum) * a.size()) == 0;
}

// n environments started from d0's state, each with its own perturbed qvel and ctrl
std::vector<mjData*> Perturbed(const mjModel* m, const mjData* d0, int n) {
  std::vector<mjData*> d(n);
  for (int i = 0; i < n; i++) {
    d[i] = mj_makeData(m);
    mj_copyData(d[i], m, d0);
    for (int k = 0; k < m->nv; k++) d[i]->qvel[k] += 1e-3 * (i + 1) * (k % 2 ? -1 : 1);
    for (int k = 0; k < m->nu; k++) d[i]->ctrl[k] *= 1 + 0.05 * i;
  }
  return d;
}

std::vector<mjData*> Copies(const mjModel* m, const std::vector<mjData*>& src) {
  std::vector<mjData*> d(src.size());
  for (size_t i = 0; i < src.size(); i++) {
    d[i] = mj_makeData(m);
    mj_copyData(d[i], m, src[i]);
  }
  return d;
}

void DeleteAll(std::vector<mjData*>& d) {
  for (mjData* x : d) mj_deleteData(x);
  d.clear();
}

int ContactNodes(const mjModel* m, const mjData* d) {
  int n = 0;
  for (int i = 0; i < m->nplugin; i++) {
    dtac_gel_info info;
    if (dtac_gel_get_info(m, d, i, &info) == 0) n += info.ncontact;
  }
  return n;
}

// steps n environments from d0 (perturbed) nstep times by batches on 1, 2 and 3 threads (in
// calls of `chunk` steps) and one after another by mj_step; every result must be bit-identical.
// A reference started 1 ulp off in one qvel must differ: the comparison sees that small a change
void ExpectBatchMatchesSequential(const mjModel* m, const mjData* d0, int n, int nstep,
                                  int chunk) {
  std::vector<mjData*> start = Perturbed(m, d0, n);
  std::vector<mjData*> ref = Copies(m, start);
  for (mjData* d : ref) {
    for (int t = 0; t < nstep; t++) mj_step(m, d);
  }
  std::vector<mjData*> off = Copies(m, {start[n - 1]});
  off[0]->qvel[0] = std::nextafter(off[0]->qvel[0], INFINITY);
  for (int t = 0; t < nstep; t++) mj_step(m, off[0]);
  EXPECT_FALSE(BitIdentical(Snapshot(m, off[0]), Snapshot(m, ref[n - 1])));
  // the environments really differ, and the gels touch something
  EXPECT_FALSE(BitIdentical(Snapshot(m, ref[0]), Snapshot(m, ref[1])));
  EXPECT_GT(ContactNodes(m, ref[0]), 0);

  for (int nthread : {1, 2, 3}) {
    dtac_batch* b = dtac_batch_make(m, nthread);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(dtac_batch_nthread(b), nthread);
    std::vector<mjData*> d = Copies(m, start);
    for (int t = 0; t < nstep; t += chunk) {
      ASSERT_EQ(dtac_batch_step(b, d.data(), n, std::min(chunk, nstep - t)), 0);
    }
    for (int i = 0; i < n; i++) {
      EXPECT_TRUE(BitIdentical(Snapshot(m, d[i]), Snapshot(m, ref[i])))
          << "environment " << i << " of " << n << " on " << nthread << " threads";
    }
    DeleteAll(d);
    dtac_batch_free(b);
  }
  DeleteAll(off);
  DeleteAll(ref);
  DeleteAll(start);
}

// warnings, collected from any thread
std::mutex g_warn_mutex;
std::string g_warnings;
void CaptureWarning(const char* msg) {
  std::lock_guard<std::mutex> lock(g_warn_mutex);
  g_warnings += msg;
  g_warnings += "\n";
}

struct WarningCapture {
  void (*old)(const char*) = mju_user_warning;
  WarningCapture() {
    g_warnings.clear();
    mju_user_warning = CaptureWarning;
  }
  ~WarningCapture() { mju_user_warning = old; }
  std::string Take() {
    std::string w = g_warnings;
    g_warnings.clear();
    return w;
  }
};

// the thread each mjData's control callback ran on
std::mutex g_thread_mutex;
std::map<const mjData*, std::set<std::thread::id>> g_thread_of;
void RecordThread(const mjModel*, mjData* d) {
  std::lock_guard<std::mutex> lock(g_thread_mutex);
  g_thread_of[d].insert(std::this_thread::get_id());
}

}  // namespace

TEST(Batch, GraspBitIdenticalToSequentialMjStep) {
  Scene s = Scene::FromString(BatchGrasp());
  ASSERT_TRUE(s.m) << s.err;
  // close the gripper on the box: the pads in contact
  int grip = mj_name2id(s.m, mjOBJ_ACTUATOR, "grip");
  s.d->ctrl[grip] = 0.02;
  for (int t = 0; t < 100; t++) mj_step(s.m, s.d);
  ExpectBatchMatchesSequential(s.m, s.d, 5, 12, 5);
}

TEST(Batch, PressTactileBitIdenticalToSequentialMjStep) {
  Scene s = Scene::FromString(BatchPressTactile());
  ASSERT_TRUE(s.m) << s.err;
  ASSERT_EQ(dtac_tactile_find(s.m, "rgb") >= 0, true);
  // press the pad onto the ball, sliding
  s.d->ctrl[0] = 0.0005;
  s.d->ctrl[1] = -0.003;
  for (int t = 0; t < 40; t++) mj_step(s.m, s.d);
  ExpectBatchMatchesSequential(s.m, s.d, 4, 8, 3);
}

TEST(Batch, StepsOnItsThreadsWithStaticPartition) {
  Scene s = Scene::FromString(SmallScene());
  ASSERT_TRUE(s.m) << s.err;
  const int n = 6;
  std::vector<mjData*> d = Perturbed(s.m, s.d, n);
  g_thread_of.clear();
  mjfGeneric old = mjcb_control;
  mjcb_control = RecordThread;
  dtac_batch* b = dtac_batch_make(s.m, 3);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(dtac_batch_step(b, d.data(), n, 4), 0);
  dtac_batch_free(b);
  b = dtac_batch_make(s.m, 1);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(dtac_batch_step(b, d.data(), 2, 1), 0);  // on the caller: adds its id to d[0], d[1]
  dtac_batch_free(b);
  mjcb_control = old;

  // 3 threads, 2 environments each, every step on the same thread; thread 0 is the caller
  std::set<std::thread::id> all;
  for (int i = 0; i < n; i++) {
    ASSERT_EQ(g_thread_of.count(d[i]), 1u) << "environment " << i << " was not stepped";
    all.insert(g_thread_of[d[i]].begin(), g_thread_of[d[i]].end());
  }
  EXPECT_EQ(all.size(), 3u);
  std::thread::id caller = std::this_thread::get_id();
  EXPECT_EQ(g_thread_of[d[0]], std::set<std::thread::id>{caller});
  EXPECT_EQ(g_thread_of[d[1]], std::set<std::thread::id>{caller});
  EXPECT_EQ(g_thread_of[d[2]], g_thread_of[d[3]]);
  EXPECT_EQ(g_thread_of[d[4]], g_thread_of[d[5]]);
  EXPECT_EQ(g_thread_of[d[2]].size(), 1u);
  EXPECT_EQ(g_thread_of[d[4]].size(), 1u);
  EXPECT_NE(g_thread_of[d[2]], g_thread_of[d[4]]);
  EXPECT_EQ(g_thread_of[d[2]].count(caller), 0u);
  for (int i = 0; i < n; i++) EXPECT_NEAR(d[i]->time, (i < 2 ? 5 : 4) * s.m->opt.timestep, 1e-12);

  // nthread 0: one per online CPU
  b = dtac_batch_make(s.m, 0);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(dtac_batch_nthread(b), (int)sysconf(_SC_NPROCESSORS_ONLN));
  dtac_batch_free(b);
  g_thread_of.clear();
  DeleteAll(d);
}

TEST(Batch, BlowUpIsReportedAndTheOthersStepOn) {
  Scene s = Scene::FromString(SmallScene());
  ASSERT_TRUE(s.m) << s.err;
  for (int t = 0; t < 5; t++) mj_step(s.m, s.d);
  const int n = 3;
  std::vector<mjData*> d = Perturbed(s.m, s.d, n);
  std::vector<mjData*> ref = Copies(s.m, d);
  for (int i = 0; i < n; i++) {
    for (int t = 0; t < 3; t++) mj_step(s.m, ref[i]);
  }
  dtac_batch* b = dtac_batch_make(s.m, 2);
  ASSERT_NE(b, nullptr);
  WarningCapture cap;

  // a gel velocity poisoned in environment 1, as a diverging solve would
  int gel = dtac_gel_find(s.m, "gel");
  dtac_gel_info info;
  ASSERT_EQ(dtac_gel_get_info(s.m, d[1], gel, &info), 0);
  d[1]->plugin_state[s.m->plugin_stateadr[gel] + 3 * info.nnode + 3 * (info.nnode - 1)] = NAN;
  EXPECT_EQ(dtac_batch_step(b, d.data(), n, 3), -1);
  EXPECT_NE(cap.Take().find("non-finite"), std::string::npos);
  ASSERT_EQ(dtac_gel_get_info(s.m, d[1], gel, &info), 0);
  EXPECT_EQ(info.nwarning, 1);
  EXPECT_TRUE(BitIdentical(Snapshot(s.m, d[0]), Snapshot(s.m, ref[0])));
  EXPECT_TRUE(BitIdentical(Snapshot(s.m, d[2]), Snapshot(s.m, ref[2])));
  EXPECT_NEAR(d[1]->time, s.d->time + 3 * s.m->opt.timestep, 1e-12);
  for (int k = 0; k < s.m->npluginstate; k++) ASSERT_TRUE(std::isfinite(d[1]->plugin_state[k]));

  // clean steps again: 0
  EXPECT_EQ(dtac_batch_step(b, d.data(), n, 2), 0);
  // MuJoCo's own bad-state warning (non-finite qvel: MuJoCo resets the data) in environment 2
  d[2]->qvel[0] = NAN;
  EXPECT_EQ(dtac_batch_step(b, d.data(), n, 1), -1);
  EXPECT_GT(d[2]->warning[mjWARN_BADQVEL].number, 0);
  cap.Take();

  dtac_batch_free(b);
  DeleteAll(ref);
  DeleteAll(d);
}

TEST(Batch, BadArgumentsAreRejectedWithAWarning) {
  Scene s = Scene::FromString(SmallScene());
  Scene other = Scene::FromString(ReadModelFile("press_small.xml"));
  ASSERT_TRUE(s.m) << s.err;
  ASSERT_TRUE(other.m) << other.err;
  WarningCapture cap;

  EXPECT_EQ(dtac_batch_make(nullptr, 1), nullptr);
  EXPECT_NE(cap.Take().find("model is NULL"), std::string::npos);
  EXPECT_EQ(dtac_batch_make(s.m, -2), nullptr);
  EXPECT_NE(cap.Take().find("nthread = -2"), std::string::npos);

  dtac_batch* b = dtac_batch_make(s.m, 2);
  ASSERT_NE(b, nullptr);
  std::vector<mjData*> d = Perturbed(s.m, s.d, 2);
  mjData* mixed[3] = {d[0], other.d, d[1]};
  mjData* holes[2] = {d[0], nullptr};
  struct Case {
    dtac_batch* b;
    mjData* const* d;
    int n, nstep;
    const char* says;
  } cases[] = {
      {nullptr, d.data(), 2, 1, "batch is NULL"},
      {b, nullptr, 2, 1, "array is NULL"},
      {b, d.data(), -1, 1, "n = -1"},
      {b, d.data(), 2, -3, "nstep = -3"},
      {b, holes, 2, 1, "mjData 1 of 2 is NULL"},
      {b, mixed, 3, 1, "mjData 1 was not made for the batch's model"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(dtac_batch_step(c.b, c.d, c.n, c.nstep), -1) << c.says;
    std::string w = cap.Take();
    EXPECT_NE(w.find(c.says), std::string::npos) << "warning: " << w;
    // nothing was stepped
    EXPECT_EQ(d[0]->time, s.d->time) << c.says;
    EXPECT_EQ(other.d->time, 0) << c.says;
  }
  // nothing to do is no error
  EXPECT_EQ(dtac_batch_step(b, d.data(), 0, 5), 0);
  EXPECT_EQ(dtac_batch_step(b, d.data(), 2, 0), 0);
  EXPECT_EQ(d[0]->time, s.d->time);
  EXPECT_EQ(cap.Take(), "");
  dtac_batch_free(b);
  dtac_batch_free(nullptr);
  DeleteAll(d);
}
