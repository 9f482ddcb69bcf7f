// Grasp: a parallel gripper with a gel pad on each finger (models/grasp.xml) closes on a 50 g
// box, lifts it 4 cm and holds it; the box hangs in the pads by difftac's contact alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common.h"

namespace {

// the control sequence of models/grasp.xml, times in s
constexpr double kCloseAt = 0.1;     // open until here, then close
constexpr double kLiftAt = 0.5;      // squeezed; lift starts
constexpr double kLiftTime = 0.6;    // lift ramp duration
constexpr double kHoldAt = kLiftAt + kLiftTime + 0.1;  // hold phase measured from here
constexpr double kHoldEnd = 2.2;
constexpr double kLift = 0.04;       // m
constexpr double kClosed = 0.02;     // grip tendon target beyond contact (contact at ~0.01)

struct GraspIds {
  int left = -1, right = -1;    // gel instances
  int object = -1, base = -1;   // bodies
  int lift = -1, grip = -1;     // actuators
};

GraspIds Ids(const mjModel* m) {
  GraspIds g;
  g.left = dtac_gel_find(m, "left_gel");
  g.right = dtac_gel_find(m, "right_gel");
  g.object = mj_name2id(m, mjOBJ_BODY, "object");
  g.base = mj_name2id(m, mjOBJ_BODY, "gripper");
  g.lift = mj_name2id(m, mjOBJ_ACTUATOR, "lift");
  g.grip = mj_name2id(m, mjOBJ_ACTUATOR, "grip");
  return g;
}

// lift target at time t: 0 before kLiftAt, smoothstep to kLift over kLiftTime
double LiftTarget(double t) {
  double s = std::clamp((t - kLiftAt) / kLiftTime, 0.0, 1.0);
  return kLift * s * s * (3 - 2 * s);
}

// every qpos, qvel and gel node finite
bool AllFinite(const mjModel* m, const mjData* d, const GraspIds& g) {
  for (int i = 0; i < m->nq; i++) {
    if (!std::isfinite(d->qpos[i])) return false;
  }
  for (int i = 0; i < m->nv; i++) {
    if (!std::isfinite(d->qvel[i])) return false;
  }
  for (int gel : {g.left, g.right}) {
    dtac_gel_info info;
    if (dtac_gel_get_info(m, d, gel, &info) != 0) return false;
    const mjtNum* x = dtac_gel_positions(m, d, gel);
    for (int i = 0; i < 3 * info.nnode; i++) {
      if (!std::isfinite(x[i])) return false;
    }
  }
  return true;
}

// normal force on a gel: the scene's contact force on it along the site's -z (into the gel)
double NormalForce(const mjModel* m, const mjData* d, int gel) {
  dtac_gel_info info;
  dtac_gel_get_info(m, d, gel, &info);
  mjtNum w[6];
  dtac_gel_contact_wrench(m, d, gel, w);
  const mjtNum* R = d->site_xmat + 9 * info.site;
  return -(w[0] * R[2] + w[1] * R[5] + w[2] * R[8]);
}

void RelPos(const mjData* d, const GraspIds& g, mjtNum r[3]) {
  mju_sub3(r, d->xpos + 3 * g.object, d->xpos + 3 * g.base);
}

}  // namespace

TEST(Grasp, HoldsObjectTwoSecondsWithoutSlip) {
  Scene s(DTAC_MODELS "/grasp.xml");
  ASSERT_TRUE(s.m) << s.err;
  const mjModel* m = s.m;
  mjData* d = s.d;
  GraspIds g = Ids(m);
  ASSERT_GE(g.left, 0);
  ASSERT_GE(g.right, 0);
  ASSERT_GE(g.object, 0);
  ASSERT_GE(g.base, 0);
  ASSERT_GE(g.lift, 0);
  ASSERT_GE(g.grip, 0);
  ASSERT_NEAR(m->opt.timestep, 0.002, 1e-12);
  mj_forward(m, d);
  const double z0 = d->xpos[3 * g.object + 2];

  mjtNum rel0[3] = {0, 0, 0};
  bool holding = false;
  double slip = 0, fmin_hold = INFINITY, fmax_hold = 0;
  int ncontact_min[2] = {1 << 30, 1 << 30};
  int nstep = (int)std::lround(kHoldEnd / m->opt.timestep);
  for (int i = 0; i < nstep; i++) {
    double t = d->time;
    d->ctrl[g.lift] = LiftTarget(t);
    d->ctrl[g.grip] = t < kCloseAt ? 0 : kClosed;
    mj_step(m, d);
    ASSERT_TRUE(AllFinite(m, d, g)) << "non-finite state at t = " << d->time;
    if (d->time >= kHoldAt - 1e-9) {
      mjtNum rel[3];
      RelPos(d, g, rel);
      if (!holding) mju_copy3(rel0, rel);
      holding = true;
      mjtNum dr[3];
      mju_sub3(dr, rel, rel0);
      slip = std::max(slip, (double)mju_norm3(dr));
      int k = 0;
      for (int gel : {g.left, g.right}) {
        dtac_gel_info info;
        dtac_gel_get_info(m, d, gel, &info);
        ncontact_min[k] = std::min(ncontact_min[k], info.ncontact);
        double fn = NormalForce(m, d, gel);
        fmin_hold = std::min(fmin_hold, fn);
        fmax_hold = std::max(fmax_hold, fn);
        k++;
      }
    }
  }
  const double rise = d->xpos[3 * g.object + 2] - z0;
  std::printf("[grasp] t=%.2f s: rise %.2f mm (lift %.0f mm), slip in hold %.4f mm, "
              "pad normal force in hold %.2f..%.2f N, ncontact min %d/%d\n",
              d->time, 1e3 * rise, 1e3 * kLift, 1e3 * slip, fmin_hold, fmax_hold,
              ncontact_min[0], ncontact_min[1]);

  EXPECT_GE(d->time, 2.0 - 1e-9);
  for (int gel : {g.left, g.right}) {
    dtac_gel_info info;
    ASSERT_EQ(dtac_gel_get_info(m, d, gel, &info), 0);
    EXPECT_EQ(info.nwarning, 0) << "gel " << gel;
  }
  EXPECT_GE(rise, 0.8 * kLift);
  EXPECT_LT(slip, 1e-3);
  EXPECT_GT(ncontact_min[0], 0);
  EXPECT_GT(ncontact_min[1], 0);
  // the pads carry the weight with margin: mu * N on each pad above half the weight
  const double weight = m->body_subtreemass[g.object] * -m->opt.gravity[2];
  EXPECT_GT(fmin_hold, weight);
}
