// The reverse of a joint implicit step (src/implicit_joint_adj.c): a gel whose back face is held
// by a body and a sphere on another body pressed into it with friction, both bodies unknowns of
// the step, against central differences of the whole step for every input (start state, frames,
// colliders, parameters, the bodies' points, velocities, applied wrenches and inverse masses).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <vector>

extern "C" {
#include "gel.h"
#include "implicit.h"
}

namespace {

struct Joint {
  dtac_gel_model gm;
  dtac_implicit* im = nullptr;
  dtac_implicit_joint* J = nullptr;
  dtac_state_layout L;
  dtac_implicit_params prm;
  double h = 0.002, grav[3] = {0, 0, -9.81};
  // inputs
  std::vector<double> s0;
  dtac_frame site0 = {{0, 0, 0}, {1, 0, 0, 0, 1, 0, 0, 0, 1}, {0, 0, 0}, {0, 0, 0}};
  dtac_collider ball0 = {};
  dtac_body slot[2] = {};
  std::vector<double> W;  // 12 x 12, or per slot (full = false)
  bool full;
  int col_slot[1] = {0};

  Joint(bool full_, bool site_on_body) : full(full_) {
    dtac_gel_def def;
    dtac_gel_def_default(&def);
    def.size[0] = def.size[1] = 0.006;
    def.size[2] = 0.003;
    def.resolution = 0.001;
    def.friction = 0.8;
    char err[512];
    EXPECT_EQ(0, dtac_gel_model_make(&gm, &def, 0, h, err, sizeof(err))) << err;
    im = dtac_implicit_make(&gm, 1, err, sizeof(err));
    EXPECT_NE(im, nullptr) << err;
    J = dtac_implicit_joint_make();
    L = dtac_gel_state_layout(&gm);
    dtac_implicit_params_default(&prm);
    prm.tolerance = 1e-12;
    prm.iterations = 60;
    prm.adj_tolerance = 1e-12;
    site0.vel[0] = 0.002;
    site0.angvel[2] = 0.05;
    double R = 0.004;
    ball0.type = DTAC_GEOM_SPHERE;
    ball0.geom = 3;
    ball0.size[0] = R;
    ball0.rbound = R;
    ball0.mat[0] = ball0.mat[4] = ball0.mat[8] = 1;
    ball0.mu = def.friction;
    ball0.pos[0] = 0.0002;
    ball0.pos[2] = 0.003 + R - 0.0004;
    ball0.vel[0] = 0.01;
    ball0.vel[2] = -0.05;
    // the sphere's body: its point 1 mm off the sphere's centre; the pad's body below the pad
    for (int i = 0; i < 3; i++) slot[0].frame.pos[i] = ball0.pos[i] + (i == 1 ? 0.001 : 0);
    for (int i = 0; i < 3; i++) slot[0].frame.vel[i] = ball0.vel[i];
    slot[1].frame.pos[2] = site_on_body ? -0.01 : 0;
    slot[1].frame.vel[0] = 0.002;
    for (int b = 0; b < 2; b++) {
      slot[b].frame.mat[0] = slot[b].frame.mat[4] = slot[b].frame.mat[8] = 1;
    }
    const double app[2][6] = {{0.02, -0.01, 0.3, 1e-4, -2e-4, 5e-5},
                              {-0.02, 0.01, -0.3, -1e-4, 3e-4, 0}};
    std::memcpy(slot[0].wrench_app, app[0], sizeof(app[0]));
    std::memcpy(slot[1].wrench_app, app[1], sizeof(app[1]));
    // a joint inverse effective mass D (B B^T) D: 20 g and 50 g bodies with their rotations, the
    // cross terms of two bodies on one arm
    std::mt19937 rng(5);
    std::uniform_real_distribution<double> u(-1, 1);
    double D[12], Bm[144];
    for (int i = 0; i < 12; i++) {
      int b = i / 6;
      D[i] = std::sqrt(i % 6 < 3 ? (b ? 20.0 : 50.0) : (b ? 3e3 : 1e4));
    }
    for (int i = 0; i < 144; i++) Bm[i] = (i / 12 == i % 12 ? 1 : 0) + 0.25 * u(rng);
    W.assign(144, 0);
    for (int i = 0; i < 12; i++) {
      for (int j = 0; j < 12; j++) {
        double s = 0;
        for (int k = 0; k < 12; k++) s += Bm[12 * i + k] * Bm[12 * j + k];
        W[12 * i + j] = D[i] * s * D[j];
      }
    }
    for (int b = 0; b < 2; b++) {
      for (int i = 0; i < 6; i++) {
        for (int j = 0; j < 6; j++) slot[b].Winv[6 * i + j] = W[12 * (6 * b + i) + 6 * b + j];
      }
    }
    site_slot = site_on_body ? 1 : -1;
    s0.assign(L.size, 0);
    dtac_gel_state_rest(&gm, &site0, s0.data());
    // three steps into the pad, so that contact nodes stick
    for (int i = 0; i < 3; i++) {
      Step(s0);
      ball0.pos[2] -= 0.0001;
    }
  }
  int site_slot = -1;
  ~Joint() {
    dtac_implicit_joint_free(J);
    dtac_implicit_free(im);
    dtac_gel_model_free(&gm);
  }
  // the step from state st (in place) with the current inputs; the bodies' impulses into dPQ
  int Step(std::vector<double>& st, double* dPQ = nullptr, dtac_implicit_gel* gout = nullptr) {
    dtac_frame site1 = site0;
    dtac_frame_at(&site0, h, site1.pos, site1.mat);
    site1_ = site1;
    dtac_collider_at(&ball0, -1, nullptr, nullptr, h, &ball1_);
    dtac_implicit_gel g = {im, &gm, st.data(), &site0, &site1_, &ball1_, 1, col_slot, site_slot,
                           DTAC_MAT_NEOHOOKEAN, {}};
    dtac_body sl[2] = {slot[0], slot[1]};
    int status = dtac_implicit_joint_step(&g, 1, sl, J, 2, full ? W.data() : nullptr, grav, h, &prm);
    if (gout) *gout = g;
    for (int b = 0; b < 2 && dPQ; b++) {
      std::memcpy(dPQ + 12 * b, sl[b].dP, sizeof(sl[b].dP));
      std::memcpy(dPQ + 12 * b + 6, sl[b].dQ, sizeof(sl[b].dQ));
    }
    return status;
  }
  dtac_frame site1_;
  dtac_collider ball1_;
};

void JointStepVjp(bool full, bool site_on_body) {
  Joint j(full, site_on_body);
  dtac_gel_model& gm = j.gm;
  int n3 = 3 * gm.nnode, ns = gm.nsurf;
  int nstuck = 0;
  for (int s = 0; s < ns; s++) nstuck += (int)j.s0[j.L.anchor + 4 * s] == j.ball0.geom;
  std::printf("%d contact nodes stuck at the step start\n", nstuck);
  EXPECT_GT(nstuck, 4);
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<double> sb(j.L.size, 0), dir(n3), vdir(n3), wPQ(24);
  for (int i = 0; i < n3; i++) {
    sb[j.L.x + i] = u(rng);
    sb[j.L.v + i] = 1e-3 * u(rng);
    dir[i] = u(rng);
    vdir[i] = u(rng);
  }
  for (int s = 0; s < ns; s++) {
    for (int k = 1; k < 4; k++) sb[j.L.anchor + 4 * s + k] = u(rng);
  }
  for (int i = 0; i < 24; i++) wPQ[i] = (i % 12 < 6 ? 1.0 : 300.0) * u(rng);
  auto loss = [&]() {
    std::vector<double> st = j.s0;
    double dPQ[24];
    EXPECT_EQ(DTAC_IMPLICIT_OK, j.Step(st, dPQ));
    double l = 0;
    for (int i = 0; i < j.L.size; i++) {
      // anchors of nodes out of contact (id -1) hold no coordinates
      int s = (i - j.L.anchor) / 4;
      if (i >= j.L.anchor && i < j.L.anchor + 4 * ns && st[j.L.anchor + 4 * s] < 0) continue;
      if (i >= j.L.anchor && i < j.L.anchor + 4 * ns && (i - j.L.anchor) % 4 == 0) continue;
      l += sb[i] * st[i];
    }
    for (int i = 0; i < 24; i++) l += wPQ[i] * dPQ[i];
    return l;
  };
  // the forward step and its reverse
  std::vector<double> s1 = j.s0;
  dtac_implicit_gel g;
  ASSERT_EQ(DTAC_IMPLICIT_OK, j.Step(s1, nullptr, &g));
  std::printf("forward: %d iterations, residual %.2e, %d contact nodes\n", g.rep.iterations,
              g.rep.residual, g.rep.ncontact);
  std::vector<double> sbar = sb;
  for (int s = 0; s < ns; s++) {
    if (s1[j.L.anchor + 4 * s] < 0) {
      for (int k = 1; k < 4; k++) sbar[j.L.anchor + 4 * s + k] = 0;
    }
  }
  dtac_frame site0_bar = {};
  dtac_collider_bar col0_bar = {};
  dtac_gel_param_bar pb = {};
  dtac_implicit_gel_bar gbar = {j.s0.data(), &j.ball0, sbar.data(), &site0_bar, &col0_bar, &pb};
  dtac_body_bar bb[2] = {};
  for (int b = 0; b < 2; b++) {
    std::memcpy(bb[b].dP, &wPQ[12 * b], sizeof(bb[b].dP));
    std::memcpy(bb[b].dQ, &wPQ[12 * b + 6], sizeof(bb[b].dQ));
  }
  std::vector<double> Wb(144, 0);
  ASSERT_EQ(1, dtac_implicit_joint_ncoupled(j.J));
  ASSERT_EQ(0, dtac_implicit_joint_adj(&g, 1, &gbar, j.slot, 2, j.J, full ? j.W.data() : nullptr,
                                       j.grav, j.h, &j.prm, bb, Wb.data()));
  int nfail = 0;
  auto check = [&](const char* what, double ad, const std::function<void(double)>& perturb,
                   double eps) {
    perturb(+eps);
    double lp = loss();
    perturb(-2 * eps);
    double lm = loss();
    perturb(+eps);
    double fd = (lp - lm) / (2 * eps);
    double rel = std::fabs(ad - fd) / std::fmax(std::fabs(fd), 1e-300);
    std::printf("%-22s adjoint %+.9e  central difference %+.9e  rel %.2e\n", what, ad, fd, rel);
    EXPECT_NEAR(ad, fd, 2e-5 * std::fabs(fd) + 1e-9) << what;
    nfail += !(std::fabs(ad - fd) <= 2e-5 * std::fabs(fd) + 1e-9);
  };
  double adx = 0, adv = 0;
  for (int i = 0; i < n3; i++) {
    adx += sbar[j.L.x + i] * dir[i];
    adv += sbar[j.L.v + i] * vdir[i];
  }
  check("start positions", adx, [&](double e) {
    for (int i = 0; i < n3; i++) j.s0[j.L.x + i] += e * dir[i];
  }, 1e-8);
  check("start velocities", adv, [&](double e) {
    for (int i = 0; i < n3; i++) j.s0[j.L.v + i] += e * vdir[i];
  }, 1e-6);
  double ada = 0;
  std::vector<double> adir(4 * ns, 0);
  for (int s = 0; s < ns; s++) {
    if ((int)j.s0[j.L.anchor + 4 * s] != j.ball0.geom) continue;
    for (int k = 1; k < 4; k++) {
      adir[4 * s + k] = u(rng);
      ada += sbar[j.L.anchor + 4 * s + k] * adir[4 * s + k];
    }
  }
  check("start anchors", ada, [&](double e) {
    for (int i = 0; i < 4 * ns; i++) j.s0[j.L.anchor + i] += e * adir[i];
  }, 1e-9);
  const char* xyz = "xyz";
  char name[64];
  for (int k = 0; k < 3; k++) {
    std::snprintf(name, sizeof(name), "sphere pos %c", xyz[k]);
    check(name, col0_bar.pos[k], [&](double e) { j.ball0.pos[k] += e; }, 1e-8);
    std::snprintf(name, sizeof(name), "sphere vel %c", xyz[k]);
    check(name, col0_bar.vel[k], [&](double e) { j.ball0.vel[k] += e; }, 1e-5);
    std::snprintf(name, sizeof(name), "site pos %c", xyz[k]);
    check(name, site0_bar.pos[k], [&](double e) { j.site0.pos[k] += e; }, 1e-8);
    std::snprintf(name, sizeof(name), "site vel %c", xyz[k]);
    check(name, site0_bar.vel[k], [&](double e) { j.site0.vel[k] += e; }, 1e-5);
    for (int b = 0; b < 2; b++) {
      std::snprintf(name, sizeof(name), "body %d pos %c", b, xyz[k]);
      check(name, bb[b].frame.pos[k], [&](double e) { j.slot[b].frame.pos[k] += e; }, 1e-7);
      std::snprintf(name, sizeof(name), "body %d vel %c", b, xyz[k]);
      check(name, bb[b].frame.vel[k], [&](double e) { j.slot[b].frame.vel[k] += e; }, 1e-5);
    }
  }
  for (int b = 0; b < 2; b++) {
    for (int i = 0; i < 6; i++) {
      std::snprintf(name, sizeof(name), "body %d wrench_app %d", b, i);
      check(name, bb[b].wrench_app[i], [&](double e) { j.slot[b].wrench_app[i] += e; },
            i < 3 ? 1e-5 : 1e-7);
    }
  }
  // the inverse mass, symmetric pairs of entries
  std::mt19937 rw(3);
  for (int t = 0; t < 8; t++) {
    int b = t % 2, l = full ? (t / 2) % 2 : b;
    int a = (int)(rw() % 6), c = (int)(rw() % 6);
    int I = 6 * b + a, K = 6 * l + c;
    double scale = std::sqrt(j.W[13 * I] * j.W[13 * K]);
    double ad = full ? Wb[12 * I + K] + (I != K ? Wb[12 * K + I] : 0)
                     : bb[b].Winv[6 * a + c] + (a != c ? bb[b].Winv[6 * c + a] : 0);
    std::snprintf(name, sizeof(name), "W %d,%d", I, K);
    check(name, ad * scale, [&](double e) {
      j.W[12 * I + K] += e * scale;
      if (I != K) j.W[12 * K + I] += e * scale;
      if (b == l) {
        j.slot[b].Winv[6 * a + c] += e * scale;
        if (a != c) j.slot[b].Winv[6 * c + a] += e * scale;
      }
    }, 1e-5);
  }
  char err[256];
  const int params[] = {DTAC_PARAM_YOUNG, DTAC_PARAM_CONTACT_STIFFNESS};
  const double pbar[] = {pb.young, pb.contact_stiffness};
  for (int q = 0; q < 2; q++) {
    double v0 = dtac_gel_param_get(&gm, params[q]);
    check(dtac_gel_param_names[params[q]], pbar[q] * v0, [&](double e) {
      double v = dtac_gel_param_get(&gm, params[q]);
      ASSERT_EQ(0, dtac_gel_param_set(&gm, params[q], v + e * v0, err, sizeof(err)));
    }, 1e-6);
  }
  check("friction", pb.friction * 0.8, [&](double e) { j.ball0.mu += e * 0.8; }, 1e-4);
  EXPECT_EQ(0, nfail);
}

}  // namespace

TEST(ImplicitJoint, StepVjpMatchesCentralDifferencesWithJointInverseMass) {
  JointStepVjp(true, true);
}

TEST(ImplicitJoint, StepVjpMatchesCentralDifferencesWithEachBodysInverseMass) {
  JointStepVjp(false, true);
}
