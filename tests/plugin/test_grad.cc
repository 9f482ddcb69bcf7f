// test_grad.cc: parameters, the rollout tape and its reverse pass against central finite
// differences of whole rollouts (in contact, sliding included), in double.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "common.h"

namespace {

// a finger on x and z slides presses a gel pad onto a sphere and slides over it
const char* kPress = R"(
<mujoco>
  <option timestep="0.002" gravity="0 0 -9.81"/>
  <extension>
    <plugin plugin="difftac.elastomer">
      <instance name="gel">
        <config key="site" value="gel_site"/>
        <config key="size" value="0.012 0.012 0.003"/>
        <config key="resolution" value="0.0015"/>
        <config key="young" value="2e5"/>
        <config key="poisson" value="0.4"/>
        <config key="friction" value="0.8"/>
      </instance>
    </plugin>
  </extension>
  <worldbody>
    <geom name="ball" type="sphere" pos="0 0 0.01" size="0.004"/>
    <body name="finger" pos="0 0 0.0175">
      <joint name="x" type="slide" axis="1 0 0" damping="2"/>
      <joint name="z" type="slide" axis="0 0 1" damping="2"/>
      <geom type="box" size="0.008 0.008 0.002" pos="0 0 0.003" mass="0.05" contype="0"
            conaffinity="0"/>
      <site name="gel_site" euler="180 0 0"/>
    </body>
  </worldbody>
  <actuator>
    <position name="x" joint="x" kp="300"/>
    <position name="z" joint="z" kp="300"/>
  </actuator>
  <sensor>
    <jointpos joint="x"/>
    <jointvel joint="z"/>
  </sensor>
</mujoco>)";

TEST(Params, NamesGetSet) {
  Scene s = Scene::FromString(kPress);
  ASSERT_TRUE(s.m) << s.err;
  ASSERT_EQ(dtac_param_count(s.m), 8);
  char name[128];
  ASSERT_EQ(dtac_param_name(s.m, 0, name, sizeof(name)), 0);
  EXPECT_STREQ(name, "gel/young");
  int iy = dtac_param_find(s.m, "gel/young"), imu = dtac_param_find(s.m, "gel/friction");
  ASSERT_GE(iy, 0);
  ASSERT_GE(imu, 0);
  EXPECT_EQ(dtac_param_find(s.m, "gel/nope"), -1);
  EXPECT_DOUBLE_EQ(dtac_param_get(s.m, s.d, iy), 2e5);
  EXPECT_DOUBLE_EQ(dtac_param_get(s.m, s.d, imu), 0.8);
  EXPECT_EQ(dtac_param_set(s.m, s.d, iy, 3e5), 0);
  EXPECT_DOUBLE_EQ(dtac_param_get(s.m, s.d, iy), 3e5);
  EXPECT_EQ(dtac_param_set(s.m, s.d, imu, -1), -1);
  EXPECT_DOUBLE_EQ(dtac_param_get(s.m, s.d, imu), 0.8);
  EXPECT_TRUE(std::isnan(dtac_param_get(s.m, s.d, 99)));
}

// a rollout of T steps from a saved state with a control sequence; loss = <sensor weights,
// sensordata each step> + <state weights, final state> (qpos as a tangent from a base)
struct Rollout {
  const mjModel* m;
  mjData* d;
  std::vector<double> s0;    // integration state
  std::vector<double> ctrl;  // T x nu
  int T;
  std::vector<double> wy, wx;  // weights
  std::vector<double> qbase;   // final qpos of the unperturbed rollout

  double Run(std::function<void(mjData*)> perturb0, const std::vector<double>& u,
             dtac_tape* tape = nullptr) {
    mj_setState(m, d, s0.data(), mjSTATE_INTEGRATION);
    if (perturb0) perturb0(d);
    double l = 0;
    for (int t = 0; t < T; t++) {
      mju_copy(d->ctrl, u.data() + t * m->nu, m->nu);
      if (tape) {
        dtac_tape_step(tape);
      } else {
        mj_step(m, d);
      }
      for (int k = 0; k < m->nsensordata; k++) l += wy[t * m->nsensordata + k] * d->sensordata[k];
    }
    int nv = m->nv;
    if (qbase.empty()) qbase.assign(d->qpos, d->qpos + m->nq);
    std::vector<double> dq(nv);
    mj_differentiatePos(m, dq.data(), 1, qbase.data(), d->qpos);
    for (int k = 0; k < nv; k++) l += wx[k] * dq[k] + wx[nv + k] * d->qvel[k];
    for (int k = 0; k < m->na; k++) l += wx[2 * nv + k] * d->act[k];
    for (int k = 0; k < m->npluginstate; k++) l += wx[2 * nv + m->na + k] * d->plugin_state[k];
    return l;
  }
};

class RolloutGrad : public ::testing::Test {
 protected:
  // the rollout is piecewise smooth (nodes enter contact, stick and slip): central differences
  // over it agree with the reverse pass to about 1e-5 and are noisier below their step
  double tol_ = 1e-4;
  void Check(Scene& s, int warm, int T, std::function<void(mjData*, int, double*)> control) {
    const mjModel* m = s.m;
    mjData* d = s.d;
    int gel = dtac_gel_find(m, "gel");
    ASSERT_GE(gel, 0);
    dtac_gel_info info;
    ASSERT_EQ(dtac_gel_get_info(m, d, gel, &info), 0);
    // warm up into contact
    mj_forward(m, d);
    std::vector<double> u(m->nu);
    for (int t = 0; t < warm; t++) {
      control(d, t, u.data());
      mju_copy(d->ctrl, u.data(), m->nu);
      mj_step(m, d);
    }
    Rollout r;
    r.m = m;
    r.d = d;
    r.T = T;
    r.s0.resize(mj_stateSize(m, mjSTATE_INTEGRATION));
    mj_getState(m, d, r.s0.data(), mjSTATE_INTEGRATION);
    r.ctrl.resize(T * m->nu);
    for (int t = 0; t < T; t++) control(d, warm + t, r.ctrl.data() + t * m->nu);
    std::mt19937 rng(3);
    std::normal_distribution<double> n01(0, 1);
    int nx = dtac_grad_state_size(m), nv = m->nv;
    r.wy.resize(T * m->nsensordata);
    for (double& w : r.wy) w = n01(rng);
    r.wx.assign(nx, 0);
    for (int k = 0; k < 2 * nv + m->na; k++) r.wx[k] = n01(rng);
    // gel positions and velocities (not anchors or flags)
    int adr = m->plugin_stateadr[gel];
    for (int k = 0; k < 6 * info.nnode; k++) r.wx[2 * nv + m->na + adr + k] = n01(rng);
    // reverse pass
    dtac_tape* tape = dtac_tape_make(m, d, T, 0);  // checkpoints every ceil(sqrt(T)) steps
    ASSERT_TRUE(tape);
    r.Run(nullptr, r.ctrl, tape);
    dtac_gel_get_info(m, d, gel, &info);
    EXPECT_GT(info.ncontact, 5) << "the rollout must end in contact";
    std::vector<double> x0b(nx), ub(T * m->nu), pb(dtac_param_count(m));
    std::vector<double> wx_dq = r.wx;  // state cotangent: qpos tangent weights as they are
    ASSERT_EQ(dtac_tape_backward(tape, r.wy.data(), wx_dq.data(), x0b.data(), ub.data(), pb.data()),
              0);
    dtac_tape_free(tape);
    for (double v : x0b) ASSERT_TRUE(std::isfinite(v));

    auto fd = [&](std::function<void(mjData*, double)> pert0,
                  std::function<void(std::vector<double>&, double)> pertu, double e) {
      double l[4];
      const double at[4] = {e, -e, 2 * e, -2 * e};
      for (int i = 0; i < 4; i++) {
        std::vector<double> u = r.ctrl;
        if (pertu) pertu(u, at[i]);
        l[i] = r.Run(pert0 ? [&](mjData* dd) { pert0(dd, at[i]); } : std::function<void(mjData*)>(),
                     u);
      }
      return (8 * (l[0] - l[1]) - (l[2] - l[3])) / (12 * e);
    };
    auto expect_close = [&](const char* what, double an, double num) {
      double err = std::fabs(an - num) / std::fmax(std::fabs(num), 1e-12);
      EXPECT_LT(err, tol_) << what << ": tape " << an << " finite differences " << num;
      EXPECT_GT(std::fabs(num), 1e-9) << what << " has no effect";
      printf("  %-22s tape %+.10e  fd %+.10e  rel err %.2e\n", what, an, num, err);
    };

    // initial qvel and qpos (tangent)
    std::vector<double> dv(nv), dqd(nv);
    for (int k = 0; k < nv; k++) {
      dv[k] = 0.01 * n01(rng);
      dqd[k] = 1e-4 * n01(rng);
    }
    double an = 0;
    for (int k = 0; k < nv; k++) an += x0b[nv + k] * dv[k];
    expect_close("initial qvel", an,
                 fd(
                     [&](mjData* dd, double e) {
                       for (int k = 0; k < nv; k++) dd->qvel[k] += e * dv[k];
                     },
                     nullptr, 1e-3));
    an = 0;
    for (int k = 0; k < nv; k++) an += x0b[k] * dqd[k];
    expect_close("initial qpos", an,
                 fd(
                     [&](mjData* dd, double e) {
                       std::vector<double> t(nv);
                       for (int k = 0; k < nv; k++) t[k] = e * dqd[k];
                       mj_integratePos(m, dd->qpos, t.data(), 1);
                     },
                     nullptr, 1e-3));
    // initial gel positions and velocities
    std::vector<double> dg(6 * info.nnode);
    for (int k = 0; k < 6 * info.nnode; k++) dg[k] = (k < 3 * info.nnode ? 1e-6 : 1e-4) * n01(rng);
    an = 0;
    for (int k = 0; k < 6 * info.nnode; k++) an += x0b[2 * nv + m->na + adr + k] * dg[k];
    expect_close("initial gel state", an,
                 fd(
                     [&](mjData* dd, double e) {
                       for (int k = 0; k < 6 * info.nnode; k++)
                         dd->plugin_state[adr + k] += e * dg[k];
                     },
                     nullptr, 1e-1));
    // stick anchors of nodes in contact (coordinates in the touched geom's frame)
    {
      std::vector<double> da(4 * info.nsurf, 0);
      const double* an0 = r.s0.data();  // find the anchors in the saved state via d
      mj_setState(m, d, r.s0.data(), mjSTATE_INTEGRATION);
      const double* anc = d->plugin_state + adr + 6 * info.nnode;
      int nstuck = 0;
      an = 0;
      for (int i = 0; i < info.nsurf; i++) {
        if (anc[4 * i] < 0) continue;
        nstuck++;
        for (int k = 1; k < 4; k++) {
          da[4 * i + k] = 1e-6 * n01(rng);
          an += x0b[2 * nv + m->na + adr + 6 * info.nnode + 4 * i + k] * da[4 * i + k];
        }
      }
      (void)an0;
      EXPECT_GT(nstuck, 3);
      expect_close("initial anchors", an,
                   fd(
                       [&](mjData* dd, double e) {
                         for (int k = 0; k < 4 * info.nsurf; k++) {
                           dd->plugin_state[adr + 6 * info.nnode + k] += e * da[k];
                         }
                       },
                       nullptr, 1e-1));
    }
    // controls
    std::vector<double> du(T * m->nu);
    an = 0;
    for (int k = 0; k < T * m->nu; k++) {
      du[k] = 1e-4 * n01(rng);
      an += ub[k] * du[k];
    }
    expect_close("controls", an,
                 fd(
                     nullptr,
                     [&](std::vector<double>& u, double e) {
                       for (int k = 0; k < T * m->nu; k++) u[k] += e * du[k];
                     },
                     1e-2));
    // parameters
    for (const char* pn : {"gel/young", "gel/friction", "gel/contact_stiffness"}) {
      int ip = dtac_param_find(m, pn);
      double v0 = dtac_param_get(m, d, ip);
      an = pb[ip] * v0;
      double num =
          fd([&](mjData* dd, double e) { dtac_param_set(m, dd, ip, v0 * (1 + e)); }, nullptr, 1e-5);
      dtac_param_set(m, d, ip, v0);
      expect_close(pn, an, num);
    }
  }
};

TEST_F(RolloutGrad, PressAndSlideMatchesFiniteDifferences) {
  Scene s = Scene::FromString(kPress);
  ASSERT_TRUE(s.m) << s.err;
  // press 0.5 mm into the ball, then slide along x while pressing
  Check(s, 40, 20, [](mjData* d, int t, double* u) {
    double tt = t * 0.002;
    u[0] = tt > 0.08 ? 0.02 * (tt - 0.08) : 0;
    u[1] = -0.0015 - 0.002 * std::fmin(tt / 0.08, 1.0);
  });
}

}  // namespace
