// test_grad.cc: parameters, the rollout tape and its reverse pass against central finite
// differences of whole rollouts (in contact, sliding included), in double.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common.h"

namespace {

// the same with tactile sensors on the pad: every output kind, small images
std::string PressTactile() {
  return PressSmallTactile({"rgb", "pressure", "shear", "depth", "markers", "force"}, 20, "0.0005", 5);
}

// the press scenes' controls: press 0.5 mm into the ball by 0.08 s, then slide along x
void PressSlide(mjData* d, int t, double* u) {
  (void)d;
  double tt = t * 0.002;
  u[0] = tt > 0.08 ? 0.02 * (tt - 0.08) : 0;
  u[1] = -0.0015 - 0.002 * std::fmin(tt / 0.08, 1.0);
}

// models/grasp.xml with 4 mm gels, the equality constraint coupling the fingers solved to
// convergence
std::string CoarseGrasp() {
  std::string xml = ReadModelFile("grasp.xml");
  for (size_t p; (p = xml.find("value=\"0.002\"")) != std::string::npos;) {
    xml.replace(p, 13, "value=\"0.004\"");
  }
  xml.replace(xml.find("<option "), 8, "<option tolerance=\"1e-14\" iterations=\"200\" ");
  return xml;
}

// the grasp's controls: close at 0.1 s, lift from 0.5 s by 4 cm over 0.6 s
std::function<void(mjData*, int, double*)> GraspLift(const mjModel* m) {
  int lift = mj_name2id(m, mjOBJ_ACTUATOR, "lift"), grip = mj_name2id(m, mjOBJ_ACTUATOR, "grip");
  return [lift, grip](mjData* d, int t, double* u) {
    (void)d;
    double tt = t * 0.002, x = std::fmin(std::fmax((tt - 0.5) / 0.6, 0.0), 1.0);
    u[lift] = 0.04 * x * x * (3 - 2 * x);
    u[grip] = tt < 0.1 ? 0 : 0.02;
  };
}

// presses the tactile press scene 3.5 mm deep and slides it a little (the gel in contact)
void PressDeep(const mjModel* m, mjData* d) {
  mj_forward(m, d);
  for (int t = 0; t < 60; t++) {
    d->ctrl[1] = -0.0035 * std::fmin(t / 40.0, 1.0);
    d->ctrl[0] = t > 40 ? 0.0002 * (t - 40) : 0;
    mj_step(m, d);
  }
}

TEST(Params, NamesGetSet) {
  Scene s = Scene::FromString(ReadModelFile("press_small.xml"));
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
  // a stiffer gel takes more substeps (the stable substep follows young), and back
  dtac_gel_info before, after;
  ASSERT_EQ(dtac_gel_get_info(s.m, s.d, dtac_gel_find(s.m, "gel"), &before), 0);
  EXPECT_EQ(dtac_param_set(s.m, s.d, iy, 8e5), 0);
  EXPECT_DOUBLE_EQ(dtac_param_get(s.m, s.d, iy), 8e5);
  dtac_gel_get_info(s.m, s.d, dtac_gel_find(s.m, "gel"), &after);
  EXPECT_NEAR(after.dt_stable, before.dt_stable / 2, 0.05 * before.dt_stable);
  EXPECT_GT(after.nsub, before.nsub);
  EXPECT_EQ(dtac_param_set(s.m, s.d, iy, 2e5), 0);
  dtac_gel_get_info(s.m, s.d, dtac_gel_find(s.m, "gel"), &after);
  EXPECT_EQ(after.nsub, before.nsub);
  EXPECT_NEAR(after.dt_stable, before.dt_stable, 1e-12 * before.dt_stable);
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
  double tol_ = 2e-5;
  void Check(Scene& s, const char* gelname, int warm, int T,
             std::function<void(mjData*, int, double*)> control,
             std::vector<std::string> extra_params = {}) {
    const mjModel* m = s.m;
    mjData* d = s.d;
    int gel = dtac_gel_find(m, gelname);
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
    // every gel's positions and velocities (not anchors or flags)
    for (int i = 0; i < m->nplugin; i++) {
      dtac_gel_info gi;
      if (dtac_gel_get_info(m, d, i, &gi)) continue;
      for (int k = 0; k < 6 * gi.nnode; k++)
        r.wx[2 * nv + m->na + m->plugin_stateadr[i] + k] = n01(rng);
    }
    int adr = m->plugin_stateadr[gel];
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

    // a central-difference estimate (fourth order) of the rollout's directional derivative
    auto fd1 = [&](std::function<void(mjData*, double)> pert0,
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
    // the rollout is piecewise smooth (nodes enter contact, stick and slip over the steps): a
    // stencil that straddles such a switch is off by the jump in slope. The estimate is taken at
    // steps e, e/10 and e/100 until one agrees within tol_; where none does (sliding contact
    // over many steps), the reverse pass must lie within the estimates' own spread, which must
    // itself be small. A wrong reverse pass fails both.
    auto check = [&](const char* what, double an, std::function<void(mjData*, double)> pert0,
                     std::function<void(std::vector<double>&, double)> pertu, double e) {
      double best = INFINITY, bestv = 0, lo = INFINITY, hi = -INFINITY;
      for (int k = 0; k < 3 && best > tol_; k++, e *= 0.1) {
        double num = fd1(pert0, pertu, e);
        double err = std::fabs(an - num) / std::fmax(std::fabs(num), 1e-12);
        EXPECT_GT(std::fabs(num), 1e-9) << what << " has no effect";
        if (err < best) best = err, bestv = num;
        lo = std::fmin(lo, num);
        hi = std::fmax(hi, num);
      }
      double spread = (hi - lo) / std::fabs(bestv);
      bool within = an >= lo - tol_ * std::fabs(bestv) && an <= hi + tol_ * std::fabs(bestv);
      EXPECT_TRUE(best < tol_ || (within && spread < 5e-3))
          << what << ": tape " << an << " finite differences " << lo << " .. " << hi;
      printf("  %-26s tape %+.10e  fd %+.10e  rel err %.2e (fd spread %.1e)\n", what, an, bestv,
             best, spread);
    };

    // initial qvel and qpos (tangent)
    std::vector<double> dv(nv), dqd(nv);
    for (int k = 0; k < nv; k++) {
      dv[k] = 0.01 * n01(rng);
      dqd[k] = 1e-4 * n01(rng);
    }
    double an = 0;
    for (int k = 0; k < nv; k++) an += x0b[nv + k] * dv[k];
    check(
        "initial qvel", an,
        [&](mjData* dd, double e) {
          for (int k = 0; k < nv; k++) dd->qvel[k] += e * dv[k];
        },
        nullptr, 1e-3);
    an = 0;
    for (int k = 0; k < nv; k++) an += x0b[k] * dqd[k];
    check(
        "initial qpos", an,
        [&](mjData* dd, double e) {
          std::vector<double> t(nv);
          for (int k = 0; k < nv; k++) t[k] = e * dqd[k];
          mj_integratePos(m, dd->qpos, t.data(), 1);
        },
        nullptr, 1e-3);
    // initial gel positions and velocities
    std::vector<double> dg(6 * info.nnode);
    for (int k = 0; k < 6 * info.nnode; k++) dg[k] = (k < 3 * info.nnode ? 1e-6 : 1e-4) * n01(rng);
    an = 0;
    for (int k = 0; k < 6 * info.nnode; k++) an += x0b[2 * nv + m->na + adr + k] * dg[k];
    check(
        "initial gel state", an,
        [&](mjData* dd, double e) {
          for (int k = 0; k < 6 * info.nnode; k++) dd->plugin_state[adr + k] += e * dg[k];
        },
        nullptr, 1e-1);
    // stick anchors of nodes in contact (coordinates in the touched geom's frame)
    {
      std::vector<double> da(4 * info.nsurf, 0);
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
      EXPECT_GT(nstuck, 3);
      check(
          "initial anchors", an,
          [&](mjData* dd, double e) {
            for (int k = 0; k < 4 * info.nsurf; k++) {
              dd->plugin_state[adr + 6 * info.nnode + k] += e * da[k];
            }
          },
          nullptr, 1e-1);
    }
    // controls
    std::vector<double> du(T * m->nu);
    an = 0;
    for (int k = 0; k < T * m->nu; k++) {
      du[k] = 1e-4 * n01(rng);
      an += ub[k] * du[k];
    }
    check(
        "controls", an, nullptr,
        [&](std::vector<double>& u, double e) {
          for (int k = 0; k < T * m->nu; k++) u[k] += e * du[k];
        },
        1e-1);
    // parameters
    std::vector<std::string> params = extra_params;
    for (const char* pp : {"young", "friction", "contact_stiffness"}) {
      params.push_back(std::string(gelname) + "/" + pp);
    }
    for (const std::string& pname : params) {
      const char* pn = pname.c_str();
      int ip = dtac_param_find(m, pn);
      ASSERT_GE(ip, 0) << pn;
      double v0 = dtac_param_get(m, d, ip);
      an = pb[ip] * v0;
      check(
          pn, an, [&](mjData* dd, double e) { dtac_param_set(m, dd, ip, v0 * (1 + e)); }, nullptr,
          1e-4);
      dtac_param_set(m, d, ip, v0);
    }
  }
};

TEST_F(RolloutGrad, PressAndSlideMatchesFiniteDifferences) {
  Scene s = Scene::FromString(ReadModelFile("press_small.xml"));
  ASSERT_TRUE(s.m) << s.err;
  Check(s, "gel", 40, 90, PressSlide);
}

TEST_F(RolloutGrad, PressAndSlideOnTheDeviceMatchesFiniteDifferences) {
  // the gel stepped by the device kernel (kernels/gel_dev.h on the emulated device): the tape's
  // reverse pass (the CPU step's adjoint) against finite differences of device rollouts
  Scene s = Scene::FromString(WithDevice(ReadModelFile("press_small.xml"), "emu"));
  ASSERT_TRUE(s.m) << s.err;
  Check(s, "gel", 40, 90, PressSlide);
}

TEST_F(RolloutGrad, PressWithTactileSensorsMatchesFiniteDifferences) {
  Scene s = Scene::FromString(PressTactile());
  ASSERT_TRUE(s.m) << s.err;
  char name[128];
  int ip = dtac_param_find(s.m, "gel/young") + 8;  // the rgb sensor's first optics parameter
  ASSERT_EQ(dtac_param_name(s.m, ip, name, sizeof(name)), 0);
  ASSERT_STREQ(name, "rgb/background_r");  // named after the sensor
  Check(s, "gel", 40, 30, PressSlide, {name});
}

// press_small.xml with the implicit integrator, its forces on the finger applied by MuJoCo's step
// (coupling 'explicit': no body is an unknown of the gel's solve) and the solve converged far
// below the finite differences' step (the gradient is that of the converged step)
std::string ImplicitPress() {
  std::string xml = ReadModelFile("press_small.xml");
  xml.insert(xml.find("<config key=\"young\""),
             "<config key=\"integrator\" value=\"implicit\"/><config key=\"coupling\" "
             "value=\"explicit\"/><config key=\"tolerance\" value=\"1e-11\"/>"
             "<config key=\"iterations\" value=\"100\"/>");
  return xml;
}

// pressed only: every node in contact sticks
void PressOnly(mjData* d, int t, double* u) {
  PressSlide(d, t, u);
  u[0] = 0;
}

TEST_F(RolloutGrad, ImplicitPressMatchesFiniteDifferences) {
  Scene s = Scene::FromString(ImplicitPress());
  ASSERT_TRUE(s.m) << s.err;
  Check(s, "gel", 40, 40, PressOnly);
}

TEST_F(RolloutGrad, ImplicitPressAndSlideMatchesFiniteDifferences) {
  Scene s = Scene::FromString(ImplicitPress());
  ASSERT_TRUE(s.m) << s.err;
  Check(s, "gel", 40, 60, PressSlide);
}

// the same with the finger an unknown of the gel's solve (coupling 'substep', the default): the
// reverse of the joint step (implicit_joint_adj.c), the solve converged to the rounding floor
std::string ImplicitCoupledPress() {
  std::string xml = ImplicitPress();
  xml.replace(xml.find("value=\"explicit\""), 16, "value=\"substep\"");
  xml.replace(xml.find("value=\"1e-11\""), 13, "value=\"1e-13\"");
  return xml;
}

TEST_F(RolloutGrad, ImplicitCoupledPressMatchesFiniteDifferences) {
  Scene s = Scene::FromString(ImplicitCoupledPress());
  ASSERT_TRUE(s.m) << s.err;
  // (20 steps: over 40 the pressed gel forgets its initial state to 1e-7 of the other effects,
  // below what the differences resolve)
  Check(s, "gel", 40, 20, PressOnly);
}

TEST_F(RolloutGrad, ImplicitCoupledPressAndSlideMatchesFiniteDifferences) {
  Scene s = Scene::FromString(ImplicitCoupledPress());
  ASSERT_TRUE(s.m) << s.err;
  Check(s, "gel", 40, 60, PressSlide);
}

// the grasp scene (models/grasp.xml with coarser gels): two pads hold a 50 g box while the
// gripper lifts it; the box, the fingers and the lift are coupled to both gels inside the substeps
TEST_F(RolloutGrad, GraspLiftMatchesFiniteDifferences) {
  Scene s = Scene::FromString(CoarseGrasp());
  ASSERT_TRUE(s.m) << s.err;
  int box = mj_name2id(s.m, mjOBJ_BODY, "object");
  // the rollout runs from 0.64 to 0.8 s, during the lift. young sets the explicit substep count
  // (with the fingers' inverse mass, which holds their joint damping): a window whose young
  // stencil changes that count sees a jump (0.6 to 0.8 s: fd spread 1 %, the tape inside it)
  Check(s, "left_gel", 320, 80, GraspLift(s.m));
  EXPECT_GT(s.d->xpos[3 * box + 2], 0.017) << "the box is lifted";
}

// the same grasp with the implicit integrator: both gels, the box and the fingers (their
// equality constraint held in the bodies' inverse mass) in one joint solve per step
TEST_F(RolloutGrad, ImplicitGraspLiftMatchesFiniteDifferences) {
  std::string xml = CoarseGrasp();
  for (size_t p = 0; (p = xml.find("<config key=\"young\"", p)) != std::string::npos;) {
    const char* k = "<config key=\"integrator\" value=\"implicit\"/>"
                    "<config key=\"tolerance\" value=\"1e-13\"/>"
                    "<config key=\"iterations\" value=\"100\"/>";
    xml.insert(p, k);
    p += std::strlen(k) + 10;
  }
  Scene s = Scene::FromString(xml);
  ASSERT_TRUE(s.m) << s.err;
  // the hold before the lift (0.4 to 0.48 s; later windows see the box's stick-slip switches
  // in the differences' stencils: fd spread 1 %)
  Check(s, "left_gel", 200, 20, GraspLift(s.m));
  for (const char* gel : {"left_gel", "right_gel"}) {
    dtac_gel_info info;
    ASSERT_EQ(0, dtac_gel_get_info(s.m, s.d, dtac_gel_find(s.m, gel), &info));
    EXPECT_GT(info.ncontact, 5) << gel << " holds the box";
  }
}

// A and B of dtac_transition against fourth-order central differences of one step (the gels'
// state held, as mjd_transitionFD holds it); C and D against mjd_transitionFD
void CheckTransition(Scene& s, int warm, std::function<void(mjData*, int, double*)> control) {
  const mjModel* m = s.m;
  mjData* d = s.d;
  mj_forward(m, d);
  std::vector<double> u(m->nu);
  for (int t = 0; t < warm; t++) {
    control(d, t, u.data());
    mju_copy(d->ctrl, u.data(), m->nu);
    mj_step(m, d);
  }
  int nv = m->nv, ndx = 2 * nv + m->na, nu = m->nu, nsd = m->nsensordata;
  std::vector<double> A(ndx * ndx), B(ndx * nu), C(nsd * ndx), D(nsd * nu);
  std::vector<double> s0(mj_stateSize(m, mjSTATE_INTEGRATION));
  mj_getState(m, d, s0.data(), mjSTATE_INTEGRATION);
  ASSERT_EQ(dtac_transition(m, d, A.data(), B.data(), C.data(), D.data()), 0);

  // the next rigid state from s0 with input j moved by e (gel state as in s0)
  std::vector<double> q1b(m->nq), v1b(nv);
  mj_setState(m, d, s0.data(), mjSTATE_INTEGRATION);
  mj_step(m, d);
  mju_copy(q1b.data(), d->qpos, m->nq);
  mju_copy(v1b.data(), d->qvel, nv);
  auto next = [&](int j, double e, double* out) {
    mj_setState(m, d, s0.data(), mjSTATE_INTEGRATION);
    if (j < nv) {
      std::vector<double> dq(nv, 0.0);
      dq[j] = e;
      mj_integratePos(m, d->qpos, dq.data(), 1);
    } else if (j < 2 * nv) {
      d->qvel[j - nv] += e;
    } else if (j < ndx) {
      d->act[j - 2 * nv] += e;
    } else {
      d->ctrl[j - ndx] += e;
    }
    mj_step(m, d);
    mj_differentiatePos(m, out, 1, q1b.data(), d->qpos);
    for (int k = 0; k < nv; k++) out[nv + k] = d->qvel[k] - v1b[k];
    for (int k = 0; k < m->na; k++) out[2 * nv + k] = d->act[k];
  };
  double amax = 0, err = 0;
  for (int j = 0; j < ndx + nu; j++) {
    // the step is stiff in the rigid state where nodes slide (the friction spring's tanh): a
    // small step keeps the stencil's truncation error below the tolerance (at 1e-5 it is 1e-3)
    const double e = 1e-7;
    std::vector<double> o[4];
    const double at[4] = {e, -e, 2 * e, -2 * e};
    for (int i = 0; i < 4; i++) {
      o[i].resize(ndx);
      next(j, at[i], o[i].data());
    }
    for (int r = 0; r < ndx; r++) {
      double fd = (8 * (o[0][r] - o[1][r]) - (o[2][r] - o[3][r])) / (12 * e);
      double an = j < ndx ? A[r * ndx + j] : B[r * nu + j - ndx];
      amax = std::fmax(amax, std::fabs(fd));
      err = std::fmax(err, std::fabs(an - fd));
    }
  }
  printf("  transition A, B: max |analytic - fd| %.2e of max |entry| %.2e\n", err, amax);
  EXPECT_LT(err, 1e-5 * amax);

  // C and D as mjd_transitionFD computes them (centred); A and B near its
  std::vector<double> Af(ndx * ndx), Bf(ndx * nu), Cf(nsd * ndx), Df(nsd * nu);
  mj_setState(m, d, s0.data(), mjSTATE_INTEGRATION);
  mjd_transitionFD(m, d, 1e-6, 1, Af.data(), Bf.data(), Cf.data(), Df.data());
  double cerr = 0, cmax = 0, aerr = 0;
  for (int k = 0; k < nsd * ndx; k++) {
    cerr = std::fmax(cerr, std::fabs(C[k] - Cf[k]));
    cmax = std::fmax(cmax, std::fabs(Cf[k]));
  }
  for (int k = 0; k < nsd * nu; k++) cerr = std::fmax(cerr, std::fabs(D[k] - Df[k]));
  for (int k = 0; k < ndx * ndx; k++) aerr = std::fmax(aerr, std::fabs(A[k] - Af[k]));
  printf("  C, D vs mjd_transitionFD: %.2e of %.2e; A vs mjd_transitionFD: %.2e\n", cerr, cmax,
         aerr);
  if (nsd) EXPECT_LT(cerr, 1e-6 * std::fmax(cmax, 1.0));
}

TEST(Transition, PressMatchesFiniteDifferences) {
  Scene s = Scene::FromString(ReadModelFile("press_small.xml"));
  ASSERT_TRUE(s.m) << s.err;
  CheckTransition(s, 60, PressSlide);
}

// the implicit step with the finger an unknown of its solve (coupling 'substep')
TEST(Transition, ImplicitCoupledPressMatchesFiniteDifferences) {
  Scene s = Scene::FromString(ImplicitCoupledPress());
  ASSERT_TRUE(s.m) << s.err;
  CheckTransition(s, 60, PressSlide);
}

TEST(Transition, GraspMatchesFiniteDifferences) {
  Scene s = Scene::FromString(CoarseGrasp());
  ASSERT_TRUE(s.m) << s.err;
  CheckTransition(s, 320, GraspLift(s.m));
}

// a gel that blew up (and was reset) inside the recording has no gradient; non-finite cotangents
// are refused, never passed on
TEST(Tape, RefusesBlownUpRolloutsAndNonFiniteCotangents) {
  Scene s = Scene::FromString(ReadModelFile("press_small.xml"));
  ASSERT_TRUE(s.m) << s.err;
  const mjModel* m = s.m;
  mjData* d = s.d;
  int nx = dtac_grad_state_size(m);
  std::vector<double> xb(nx, 0.0), x0(nx);
  dtac_tape* tp = dtac_tape_make(m, d, 4, 0);
  ASSERT_TRUE(tp);
  dtac_tape_step(tp);
  xb[0] = NAN;
  EXPECT_EQ(dtac_tape_backward(tp, nullptr, xb.data(), x0.data(), nullptr, nullptr), -1);
  xb[0] = 1;
  EXPECT_EQ(dtac_tape_backward(tp, nullptr, xb.data(), x0.data(), nullptr, nullptr), 0);
  // blow the gel up: absurd node velocities make the step non-finite (MuJoCo resets the state)
  int gel = dtac_gel_find(m, "gel");
  dtac_gel_info info;
  dtac_gel_get_info(m, d, gel, &info);
  for (int k = 0; k < 3 * info.nnode; k++) {
    d->plugin_state[m->plugin_stateadr[gel] + 3 * info.nnode + k] = 1e300;
  }
  dtac_tape_step(tp);
  EXPECT_EQ(dtac_tape_backward(tp, nullptr, xb.data(), x0.data(), nullptr, nullptr), -1);
  dtac_tape_reset(tp);
  dtac_tape_step(tp);
  EXPECT_EQ(dtac_tape_backward(tp, nullptr, xb.data(), x0.data(), nullptr, nullptr), 0);
  for (double v : x0) EXPECT_TRUE(std::isfinite(v));
  dtac_tape_free(tp);
}

// a model without difftac plugins: the tape and dtac_transition are MuJoCo's rigid step alone
TEST(Transition, PlainModelMatchesTransitionFD) {
  Scene s = Scene::FromString(R"(
<mujoco>
  <option timestep="0.002"/>
  <worldbody>
    <body pos="0 0 1">
      <joint name="hinge" type="hinge" axis="0 1 0" damping="0.1"/>
      <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.02" mass="1"/>
      <body pos="0.3 0 0">
        <joint type="ball" damping="0.05"/>
        <geom type="box" size="0.05 0.03 0.02" pos="0.05 0 0" mass="0.3"/>
      </body>
    </body>
  </worldbody>
  <actuator><motor joint="hinge" gear="1"/></actuator>
  <sensor><jointpos joint="hinge"/><framequat objtype="body" objname="world"/></sensor>
</mujoco>)");
  ASSERT_TRUE(s.m) << s.err;
  const mjModel* m = s.m;
  mjData* d = s.d;
  d->qvel[0] = 0.7;
  d->qvel[2] = -0.3;
  d->ctrl[0] = 0.2;
  for (int t = 0; t < 20; t++) mj_step(m, d);
  EXPECT_EQ(dtac_param_count(m), 0);
  int ndx = 2 * m->nv + m->na, nu = m->nu, nsd = m->nsensordata;
  std::vector<double> A(ndx * ndx), B(ndx * nu), C(nsd * ndx), D(nsd * nu);
  std::vector<double> Af(ndx * ndx), Bf(ndx * nu), Cf(nsd * ndx), Df(nsd * nu);
  ASSERT_EQ(dtac_transition(m, d, A.data(), B.data(), C.data(), D.data()), 0);
  mjd_transitionFD(m, d, 1e-6, 1, Af.data(), Bf.data(), Cf.data(), Df.data());
  auto maxdiff = [](const std::vector<double>& a, const std::vector<double>& b) {
    double e = 0;
    for (size_t k = 0; k < a.size(); k++) e = std::fmax(e, std::fabs(a[k] - b[k]));
    return e;
  };
  EXPECT_LT(maxdiff(A, Af), 1e-6);
  EXPECT_LT(maxdiff(B, Bf), 1e-6);
  EXPECT_LT(maxdiff(C, Cf), 1e-6);
  EXPECT_LT(maxdiff(D, Df), 1e-6);
}

// the tactile sensors' JVP (used for the C rows of dtac_transition) is the transpose of their
// VJP (checked against finite differences in test_tactile_adj.cc): <y_bar, J u> = <J^T y_bar, u>
extern "C" int dtac_tactile_vjp(const mjModel* m, mjData* d, int instance, const mjtNum* y_bar,
                                double* x_bar, double* f_bar, double* param_bar, double* site_bar);
extern "C" int dtac_tactile_jvp(const mjModel* m, mjData* d, int instance, const double dsite[12],
                                const double* df, mjtNum* dy);

TEST(Transition, TactileJvpIsTheTransposeOfTheVjp) {
  Scene s = Scene::FromString(PressTactile());
  ASSERT_TRUE(s.m) << s.err;
  const mjModel* m = s.m;
  mjData* d = s.d;
  PressDeep(m, d);
  mj_forward(m, d);
  int gel = dtac_gel_find(m, "gel");
  dtac_gel_info info;
  dtac_gel_get_info(m, d, gel, &info);
  ASSERT_GT(info.ncontact, 5);
  std::mt19937 rng(5);
  std::normal_distribution<double> n01(0, 1);
  for (int sn = 0; sn < m->nsensor; sn++) {
    if (m->sensor_type[sn] != mjSENS_PLUGIN) continue;
    int inst = m->sensor_plugin[sn], nout = m->sensor_dim[sn];
    std::vector<double> yb(nout), dy(nout), xb(3 * info.nnode, 0.0), fb(3 * info.nnode, 0.0);
    std::vector<double> df(3 * info.nnode), sb(12, 0.0), ds(12);
    for (double& v : yb) v = n01(rng);
    for (double& v : df) v = n01(rng);
    for (double& v : ds) v = 1e-3 * n01(rng);
    ASSERT_EQ(dtac_tactile_vjp(m, d, inst, yb.data(), xb.data(), fb.data(), nullptr, sb.data()), 0);
    ASSERT_EQ(dtac_tactile_jvp(m, d, inst, ds.data(), df.data(), dy.data()), 0);
    double lhs = 0, rhs = 0, scale = 0;
    for (int k = 0; k < nout; k++) {
      lhs += yb[k] * dy[k];
      scale += std::fabs(yb[k] * dy[k]);
    }
    for (int k = 0; k < 12; k++) rhs += sb[k] * ds[k];
    for (int k = 0; k < 3 * info.nnode; k++) rhs += fb[k] * df[k];
    EXPECT_NEAR(lhs, rhs, 1e-10 * scale) << "sensor " << sn;
    EXPECT_GT(scale, 0) << "sensor " << sn;
  }
}

// C's tactile rows (analytic) against fourth-order central differences of the forward pass
TEST(Transition, TactileRowsMatchFiniteDifferences) {
  Scene s = Scene::FromString(PressTactile());
  ASSERT_TRUE(s.m) << s.err;
  const mjModel* m = s.m;
  mjData* d = s.d;
  PressDeep(m, d);
  int nv = m->nv, ndx = 2 * nv + m->na, nsd = m->nsensordata;
  std::vector<double> C(nsd * ndx), D(nsd * m->nu), s0(mj_stateSize(m, mjSTATE_INTEGRATION));
  mj_getState(m, d, s0.data(), mjSTATE_INTEGRATION);
  ASSERT_EQ(dtac_transition(m, d, nullptr, nullptr, C.data(), D.data()), 0);
  const double e = 1e-7;
  double err = 0, cmax = 0;
  std::vector<double> y[4];
  for (int j = 0; j < ndx; j++) {
    const double at[4] = {e, -e, 2 * e, -2 * e};
    for (int i = 0; i < 4; i++) {
      mj_setState(m, d, s0.data(), mjSTATE_INTEGRATION);
      std::vector<double> dq(nv, 0.0);
      if (j < nv) {
        dq[j] = at[i];
        mj_integratePos(m, d->qpos, dq.data(), 1);
      } else {
        d->qvel[j - nv] += at[i];
      }
      mj_forward(m, d);
      y[i].assign(d->sensordata, d->sensordata + nsd);
    }
    for (int sn = 0; sn < m->nsensor; sn++) {
      if (m->sensor_type[sn] != mjSENS_PLUGIN) continue;
      for (int k = m->sensor_adr[sn]; k < m->sensor_adr[sn] + m->sensor_dim[sn]; k++) {
        double fd = (8 * (y[0][k] - y[1][k]) - (y[2][k] - y[3][k])) / (12 * e);
        cmax = std::fmax(cmax, std::fabs(fd));
        err = std::fmax(err, std::fabs(fd - C[k * ndx + j]));
      }
    }
  }
  printf("  tactile rows of C: max |analytic - fd| %.2e of max |entry| %.2e\n", err, cmax);
  EXPECT_LT(err, 1e-4 * cmax);
  for (double v : D) EXPECT_TRUE(std::isfinite(v));
}

// the checkpoint interval changes what the reverse pass recomputes, not its result: every state
// kept (the default for a short rollout), a checkpoint every 3 steps, one for the whole rollout
// give the same bits, with either integrator (implicit: the finger solved with the gel)
TEST(Tape, CheckpointIntervalDoesNotChangeTheGradient) {
  for (int implicit = 0; implicit < 2; implicit++) {
    Scene s = Scene::FromString(implicit ? ImplicitCoupledPress() : ReadModelFile("press_small.xml"));
    ASSERT_TRUE(s.m) << s.err;
    const mjModel* m = s.m;
    mjData* d = s.d;
    const int T = 7, nx = dtac_grad_state_size(m);
    mj_forward(m, d);
    for (int t = 0; t < 40; t++) {
      d->ctrl[1] = -0.0035 * std::fmin(t / 30.0, 1.0);
      mj_step(m, d);
    }
    std::vector<double> s0(mj_stateSize(m, mjSTATE_INTEGRATION));
    mj_getState(m, d, s0.data(), mjSTATE_INTEGRATION);
    std::vector<double> ref;
    for (int every : {0, 3, T}) {
      mj_setState(m, d, s0.data(), mjSTATE_INTEGRATION);
      dtac_tape* tp = dtac_tape_make(m, d, T, every);
      ASSERT_TRUE(tp);
      for (int t = 0; t < T; t++) {
        d->ctrl[0] = 0.0002 * t;
        dtac_tape_step(tp);
      }
      std::vector<double> xb(nx), x0(nx), ub(T * m->nu), pb(dtac_param_count(m));
      for (int k = 0; k < nx; k++) xb[k] = 1e-3 * ((k * 7919) % 13 - 6);
      ASSERT_EQ(0, dtac_tape_backward(tp, nullptr, xb.data(), x0.data(), ub.data(), pb.data()));
      dtac_tape_free(tp);
      x0.insert(x0.end(), ub.begin(), ub.end());
      x0.insert(x0.end(), pb.begin(), pb.end());
      if (ref.empty()) {
        ref = x0;
      } else {
        EXPECT_EQ(ref, x0) << (implicit ? "implicit" : "explicit") << ", every " << every;
      }
    }
  }
}

// tapes of different mjData in different threads give what they give one after another: no
// hidden shared state (RL runs many environments in threads)
TEST(Tape, ThreadsShareNothing) {
  Scene s = Scene::FromString(ReadModelFile("press_small.xml"));
  ASSERT_TRUE(s.m) << s.err;
  const mjModel* m = s.m;
  const int nthread = 3, T = 8, nx = dtac_grad_state_size(m);
  auto run = [&](mjData* d, int k, std::vector<double>* out) {
    mj_resetData(m, d);
    mj_forward(m, d);
    for (int t = 0; t < 30; t++) {
      d->ctrl[1] = -0.0015 - 0.0005 * k - 0.002 * std::fmin(t * 0.002 / 0.06, 1.0);
      mj_step(m, d);
    }
    dtac_tape* tp = dtac_tape_make(m, d, T, 3);
    for (int t = 0; t < T; t++) dtac_tape_step(tp);
    std::vector<double> xb(nx, 1e-3), x0(nx), ub(T * m->nu), pb(dtac_param_count(m));
    dtac_tape_backward(tp, nullptr, xb.data(), x0.data(), ub.data(), pb.data());
    dtac_tape_free(tp);
    *out = x0;
    out->insert(out->end(), ub.begin(), ub.end());
    out->insert(out->end(), pb.begin(), pb.end());
  };
  std::vector<std::vector<double>> seq(nthread), par(nthread);
  std::vector<mjData*> ds(nthread);
  for (int k = 0; k < nthread; k++) ds[k] = mj_makeData(m);
  for (int k = 0; k < nthread; k++) run(ds[k], k, &seq[k]);
  std::vector<std::thread> th;
  for (int k = 0; k < nthread; k++) th.emplace_back(run, ds[k], k, &par[k]);
  for (auto& t : th) t.join();
  for (int k = 0; k < nthread; k++) {
    EXPECT_EQ(seq[k], par[k]) << "thread " << k;
    mj_deleteData(ds[k]);
  }
  EXPECT_NE(seq[0], seq[1]);
}

}  // namespace
