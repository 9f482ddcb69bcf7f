// State: everything the gel needs lives in plugin_state, so MuJoCo's state functions, copies,
// resets and finite differences all see a consistent gel; threads share nothing.
#include <gtest/gtest.h>

#include <cstring>
#include <thread>
#include <vector>

#include "common.h"
#include "small_scene.h"

namespace {

// drives the finger down 1 mm into the ball and sideways, so the gel is in sliding contact
void Press(const mjModel* m, mjData* d, int nstep, double dx = 0.0005) {
  for (int i = 0; i < nstep; i++) {
    d->ctrl[0] = -0.001;
    d->ctrl[1] = dx * (d->time / 0.1);
    mj_step(m, d);
  }
}

std::vector<mjtNum> PluginState(const mjModel* m, const mjData* d) {
  return std::vector<mjtNum>(d->plugin_state, d->plugin_state + m->npluginstate);
}

}  // namespace

TEST(State, SmallScenePressesIntoContact) {
  Scene s = Scene::FromString(SmallScene());
  ASSERT_TRUE(s.m) << s.err;
  Press(s.m, s.d, 50);
  dtac_gel_info info;
  ASSERT_EQ(dtac_gel_get_info(s.m, s.d, dtac_gel_find(s.m, "gel"), &info), 0);
  EXPECT_GT(info.ncontact, 0);
  mjtNum w[6];
  dtac_gel_contact_wrench(s.m, s.d, dtac_gel_find(s.m, "gel"), w);
  EXPECT_GT(w[2], 0.01);  // the ball pushes the gel up
}

TEST(State, GetSetStateContinuationIsBitIdentical) {
  Scene s = Scene::FromString(SmallScene());
  ASSERT_TRUE(s.m) << s.err;
  Press(s.m, s.d, 40);
  int sig = mjSTATE_INTEGRATION;
  std::vector<mjtNum> st(mj_stateSize(s.m, sig));
  mj_getState(s.m, s.d, st.data(), sig);
  Press(s.m, s.d, 20);
  std::vector<mjtNum> a = PluginState(s.m, s.d);
  std::vector<mjtNum> qa(s.d->qpos, s.d->qpos + s.m->nq);
  // scramble, then restore and replay
  Press(s.m, s.d, 7, -0.002);
  mj_setState(s.m, s.d, st.data(), sig);
  Press(s.m, s.d, 20);
  std::vector<mjtNum> b = PluginState(s.m, s.d);
  std::vector<mjtNum> qb(s.d->qpos, s.d->qpos + s.m->nq);
  ASSERT_EQ(0, std::memcmp(a.data(), b.data(), sizeof(mjtNum) * a.size()));
  ASSERT_EQ(0, std::memcmp(qa.data(), qb.data(), sizeof(mjtNum) * qa.size()));
}

TEST(State, CopyDataGivesIndependentIdenticalCopy) {
  Scene s = Scene::FromString(SmallScene());
  ASSERT_TRUE(s.m) << s.err;
  Press(s.m, s.d, 30);
  mjData* c = mj_copyData(nullptr, s.m, s.d);
  std::vector<mjtNum> before = PluginState(s.m, s.d);
  Press(s.m, c, 10);
  // the original did not move
  ASSERT_EQ(0, std::memcmp(before.data(), s.d->plugin_state, sizeof(mjtNum) * before.size()));
  // the same steps on the original give the copy's result
  Press(s.m, s.d, 10);
  ASSERT_EQ(0, std::memcmp(c->plugin_state, s.d->plugin_state,
                           sizeof(mjtNum) * s.m->npluginstate));
  mj_deleteData(c);
}

TEST(State, ResetDataRestoresRestShape) {
  Scene s = Scene::FromString(SmallScene());
  ASSERT_TRUE(s.m) << s.err;
  int gel = dtac_gel_find(s.m, "gel");
  Press(s.m, s.d, 40);
  mj_resetData(s.m, s.d);
  mj_forward(s.m, s.d);
  dtac_gel_info info;
  dtac_gel_get_info(s.m, s.d, gel, &info);
  const mjtNum* x = dtac_gel_positions(s.m, s.d, gel);
  const mjtNum* X = dtac_gel_rest_positions(s.m, s.d, gel);
  const mjtNum* sp = s.d->site_xpos + 3 * info.site;
  const mjtNum* sm = s.d->site_xmat + 9 * info.site;
  for (int a = 0; a < info.nnode; a++) {
    mjtNum w[3];
    mju_mulMatVec3(w, sm, X + 3 * a);
    for (int k = 0; k < 3; k++) ASSERT_NEAR(x[3 * a + k], sp[k] + w[k], 1e-15);
  }
  EXPECT_EQ(dtac_gel_kinetic_energy(s.m, s.d, gel), 0);
  EXPECT_NEAR(dtac_gel_elastic_energy(s.m, s.d, gel), 0, 1e-15);
}

TEST(State, TransitionFDRunsAndLeavesGelUnchanged) {
  Scene s = Scene::FromString(SmallScene());
  ASSERT_TRUE(s.m) << s.err;
  Press(s.m, s.d, 40);
  std::vector<mjtNum> before = PluginState(s.m, s.d);
  int nx = 2 * s.m->nv + s.m->na;
  std::vector<mjtNum> A(nx * nx), B(nx * s.m->nu);
  mjd_transitionFD(s.m, s.d, 1e-6, 1, A.data(), B.data(), nullptr, nullptr);
  ASSERT_EQ(0, std::memcmp(before.data(), s.d->plugin_state, sizeof(mjtNum) * before.size()));
  for (mjtNum a : A) ASSERT_TRUE(std::isfinite(a));
  for (mjtNum b : B) ASSERT_TRUE(std::isfinite(b));
  // the gel's contact stiffness shows up in the rigid dynamics: d(qvel_fz)/d(qpos_fz) != free
  int fz = 0;
  EXPECT_LT(A[(s.m->nv + fz) * nx + fz], -1e-3);
}

TEST(Threads, ManyDataSteppedConcurrentlyMatchSequential) {
  Scene s = Scene::FromString(SmallScene());
  ASSERT_TRUE(s.m) << s.err;
  const int n = 4;
  auto run = [&](mjData* d, int k) { Press(s.m, d, 30, 0.0002 * (k + 1)); };
  std::vector<mjData*> seq(n), par(n);
  for (int k = 0; k < n; k++) {
    seq[k] = mj_makeData(s.m);
    par[k] = mj_makeData(s.m);
    run(seq[k], k);
  }
  std::vector<std::thread> th;
  for (int k = 0; k < n; k++) th.emplace_back(run, par[k], k);
  for (auto& t : th) t.join();
  for (int k = 0; k < n; k++) {
    EXPECT_EQ(0, std::memcmp(seq[k]->plugin_state, par[k]->plugin_state,
                             sizeof(mjtNum) * s.m->npluginstate)) << "data " << k;
    EXPECT_EQ(0, std::memcmp(seq[k]->qpos, par[k]->qpos, sizeof(mjtNum) * s.m->nq));
    mj_deleteData(seq[k]);
    mj_deleteData(par[k]);
  }
}

// a parameter set at run time lives with the mjData: mj_copyData carries it, and the copy steps
// exactly as the original (a copy with the loaded young would press differently)
TEST(State, CopyDataCarriesRunTimeParameters) {
  Scene s = Scene::FromString(SmallScene());
  ASSERT_TRUE(s.m) << s.err;
  int iy = dtac_param_find(s.m, "gel/young");
  int ik = dtac_param_find(s.m, "gel/contact_stiffness");
  ASSERT_GE(iy, 0);
  ASSERT_GE(ik, 0);
  mjtNum young0 = dtac_param_get(s.m, s.d, iy);
  Press(s.m, s.d, 20);
  ASSERT_EQ(dtac_param_set(s.m, s.d, iy, 0.5 * young0), 0);
  ASSERT_EQ(dtac_param_set(s.m, s.d, ik, 0.7 * dtac_param_get(s.m, s.d, ik)), 0);
  mjData* c = mj_makeData(s.m);
  mj_copyData(c, s.m, s.d);
  EXPECT_EQ(dtac_param_get(s.m, c, iy), 0.5 * young0);
  EXPECT_EQ(dtac_param_get(s.m, c, ik), dtac_param_get(s.m, s.d, ik));
  dtac_gel_info a, b;
  dtac_gel_get_info(s.m, s.d, dtac_gel_find(s.m, "gel"), &a);
  dtac_gel_get_info(s.m, c, dtac_gel_find(s.m, "gel"), &b);
  EXPECT_EQ(a.nsub, b.nsub);  // the substep follows the copied parameters
  EXPECT_EQ(a.dt_stable, b.dt_stable);
  Press(s.m, s.d, 20);
  Press(s.m, c, 20);
  std::vector<mjtNum> pa = PluginState(s.m, s.d), pc = PluginState(s.m, c);
  EXPECT_EQ(0, std::memcmp(pa.data(), pc.data(), sizeof(mjtNum) * pa.size()));
  // a fresh mjData has the loaded value
  mjData* f = mj_makeData(s.m);
  EXPECT_EQ(dtac_param_get(s.m, f, iy), young0);
  mj_deleteData(f);
  mj_deleteData(c);
}
