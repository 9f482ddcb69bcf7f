// test_contact.cc: smooth penalty contact with a friction anchor (kernels/contact.h) and the gel's
// contact pass (dtac_gel_contact in src/step.c) against hand-made colliders.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

extern "C" {
#include "test_util.h"
#include "contact.h"
#include "gel.h"
}

namespace {

const double kI[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};

dtac_collider MakeCollider(int type, double size0, int geom) {
  dtac_collider c = {};
  c.type = type;
  c.geom = geom;
  c.body = 1;
  c.nplane = 0;
  c.planes = nullptr;
  c.size[0] = size0;
  c.size[1] = size0;
  c.size[2] = size0;
  c.rbound = type == DTAC_GEOM_PLANE ? 0 : 2 * size0;
  for (int k = 0; k < 3; k++) c.pos[k] = c.vel[k] = c.angvel[k] = 0;
  for (int k = 0; k < 9; k++) c.mat[k] = kI[k];
  c.mu = 0.8;
  return c;
}

dtac_contact_node_param Param() {
  dtac_contact_node_param p;
  p.kn = 100;
  p.cn = 0.5;
  p.kt = 80;
  p.width = 1e-4;
  return p;
}


// normal force on a resting node at penetration pen below the plane z = 0 (no friction)
double NormalForce(double pen, double f[3]) {
  dtac_collider c = MakeCollider(DTAC_GEOM_PLANE, 1, 0);
  dtac_contact_node_param p = Param();
  double x[3] = {0.3, -0.2, -pen}, v[3] = {0, 0, 0}, n[3];
  double d = dtac_collider_dist(&c, x, n);
  EXPECT_DOUBLE_EQ(d, -pen);
  if (d >= 0) {
    for (int k = 0; k < 3; k++) f[k] = 0;
    return 0;
  }
  return dtac_contact_force(&p, &c, d, n, x, v, x, f, nullptr);
}

double NormalForce(double pen) {
  double f[3];
  return NormalForce(pen, f);
}

TEST(Contact, NormalForceIsSmoothAndMonotone) {
  dtac_contact_node_param p = Param();
  const double w = p.width, kn = p.kn;
  // zero when separated or touching; directly from the kernel too (dist >= 0)
  dtac_collider c = MakeCollider(DTAC_GEOM_PLANE, 1, 0);
  double n[3] = {0, 0, 1}, x[3] = {0, 0, 0}, v[3] = {0, 0, -1}, f[3];
  for (double dist : {0.0, 1e-9, 1e-3}) {
    x[2] = dist;
    EXPECT_EQ(dtac_contact_force(&p, &c, dist, n, x, v, x, f, nullptr), 0.0) << dist;
    EXPECT_EQ(f[0] == 0 && f[1] == 0 && f[2] == 0, true) << dist;
  }
  // along the outward normal, equal to the returned magnitude
  double fn = NormalForce(0.7 * w, f);
  EXPECT_GT(fn, 0);
  EXPECT_EQ(f[0], 0);
  EXPECT_EQ(f[1], 0);
  EXPECT_DOUBLE_EQ(f[2], fn);
  // beyond the ramp: linear with the offset kn w / 2
  for (double pen : {w, 1.5 * w, 3 * w, 100 * w}) {
    EXPECT_NEAR(NormalForce(pen), kn * (pen - 0.5 * w), 1e-12 * kn * pen) << pen;
  }
  // inside the ramp: kn pen^2 / (2 w)
  EXPECT_NEAR(NormalForce(0.5 * w), kn * 0.125 * w, 1e-12 * kn * w);
  // monotone on a fine grid through 0 and w
  double prev = -1;
  for (int i = -50; i <= 400; i++) {
    double pen = i * w / 100;
    double fi = NormalForce(pen);
    EXPECT_GE(fi, prev) << pen;
    EXPECT_GE(fi, 0) << pen;
    if (pen <= 0) EXPECT_EQ(fi, 0) << pen;
    if (pen > 0) EXPECT_GT(fi, prev) << "strictly increasing in contact, pen " << pen;
    prev = fi;
  }
  // C0 and C1 at pen = 0 and pen = w: one-sided slopes agree (kn at w, 0 at 0)
  const double h = 1e-6 * w;
  for (double p0 : {0.0, w}) {
    double f0 = NormalForce(p0), fl = NormalForce(p0 - h), fr = NormalForce(p0 + h);
    EXPECT_NEAR(fr, f0, 1.01 * kn * h) << "C0 at " << p0;
    EXPECT_NEAR(fl, f0, 1.01 * kn * h) << "C0 at " << p0;
    double sl = (f0 - fl) / h, sr = (fr - f0) / h;
    double expect = p0 > 0 ? kn : 0;
    EXPECT_NEAR(sl, expect, 1e-4 * kn) << "left slope at " << p0;
    EXPECT_NEAR(sr, expect, 1e-4 * kn) << "right slope at " << p0;
  }
}

TEST(Contact, NoAdhesion) {
  dtac_collider c = MakeCollider(DTAC_GEOM_PLANE, 1, 4);
  dtac_contact_node_param p = Param();
  for (double pen : {0.3 * p.width, 3 * p.width}) {
    double x[3] = {0.01, 0.02, -pen}, n[3];
    double d = dtac_collider_dist(&c, x, n);
    double fstatic = p.kn * (pen < p.width ? 0.5 * pen * pen / p.width : pen - 0.5 * p.width);
    double dramp = std::min(1.0, pen / p.width);
    // anchor offset, so a pulling friction force would show up too
    double anchor[3] = {x[0] + 1e-3, x[1], x[2]}, aout[3], f[3];
    for (double vn : {1e-3, 1.0, 1e3}) {  // separating speeds
      double v[3] = {0.5, -0.1, vn};
      double fn = dtac_contact_force(&p, &c, d, n, x, v, anchor, f, aout);
      double expect = std::max(0.0, fstatic - p.cn * dramp * vn);
      EXPECT_NEAR(fn, expect, 1e-12 * fstatic) << "pen " << pen << " vn " << vn;
      EXPECT_GE(fn, 0);
      EXPECT_GE(f[2], 0) << "the normal force never pulls the node in";
      if (expect == 0) {
        EXPECT_EQ(f[0], 0);
        EXPECT_EQ(f[1], 0);
        EXPECT_EQ(f[2], 0);
        for (int k = 0; k < 3; k++) EXPECT_EQ(aout[k], x[k]) << "unloaded node re-anchors";
      }
    }
    // approaching: damping adds cn * dramp * |vn|
    double v[3] = {0, 0, -0.2};
    double fn = dtac_contact_force(&p, &c, d, n, x, v, x, f, nullptr);
    EXPECT_NEAR(fn, fstatic + p.cn * dramp * 0.2, 1e-12 * fn);
  }
}

TEST(Contact, StickSpringThenCoulombLimit) {
  std::mt19937 rng(11);
  dtac_collider c = MakeCollider(DTAC_GEOM_SPHERE, 0.01, 2);
  RandomRotation(rng, c.mat);
  c.pos[0] = 0.001;
  c.pos[1] = -0.002;
  c.pos[2] = 0.003;
  dtac_contact_node_param p = Param();
  // a node 2 widths inside the sphere, on a random direction
  std::normal_distribution<double> n01(0, 1);
  double dir[3] = {n01(rng), n01(rng), n01(rng)};
  double dn = dtac_norm3(dir);
  double x[3];
  for (int k = 0; k < 3; k++) x[k] = c.pos[k] + (c.size[0] - 2 * p.width) * dir[k] / dn;
  double n[3];
  double d = dtac_collider_dist(&c, x, n);
  ASSERT_NEAR(d, -2 * p.width, 1e-15);
  double v[3] = {0, 0, 0};
  const double fn0 = p.kn * 1.5 * p.width, L = c.mu * fn0;
  // a tangent direction t, and an anchor offset also along n (which must not matter)
  double t[3], tmp[3] = {n01(rng), n01(rng), n01(rng)};
  dtac_cross3(t, n, tmp);
  double tn = dtac_norm3(t);
  for (double& e : t) e /= tn;

  double prev = 0;
  for (double u : {1e-4, 1e-2, 0.5, 1.0, 2.0, 2.99, 3.01, 5.0, 50.0}) {
    double s = u * L / p.kt;  // tangential offset of the node from its anchor
    double anchor[3], f[3], aout[3];
    for (int k = 0; k < 3; k++) anchor[k] = x[k] - s * t[k] + 0.3 * p.width * n[k];
    double fn = dtac_contact_force(&p, &c, d, n, x, v, anchor, f, aout);
    EXPECT_NEAR(fn, fn0, 1e-12 * fn0);
    double ft[3];
    for (int k = 0; k < 3; k++) ft[k] = f[k] - fn * n[k];
    double ftn = dtac_norm3(ft);
    // opposes the offset x - anchor (along +t): points along -t
    EXPECT_NEAR(dtac_dot3(ft, t), -ftn, 1e-12 * ftn) << u;
    EXPECT_NEAR(dtac_dot3(f, n), fn, 1e-12 * fn) << "friction is tangential, u " << u;
    EXPECT_GT(ftn, prev) << "monotone in the offset, u " << u;
    EXPECT_LE(ftn, L * (1 + 1e-15)) << "Coulomb bound, u " << u;
    prev = ftn;
    if (u <= 1e-2) EXPECT_NEAR(ftn, p.kt * s, 0.5 * u * u * p.kt * s) << "stick spring, u " << u;
    if (u >= 50) EXPECT_NEAR(ftn, L, 1e-12 * L) << "Coulomb limit";
    EXPECT_NEAR(ftn, L * std::tanh(u), 1e-12 * L) << u;
    // anchor: kept while sticking, dragged to kt |dt| = 3 mu fn when slipping
    double da[3];
    dtac_sub3(da, x, aout);
    double an = dtac_dot3(da, n);
    double dtv[3];
    for (int k = 0; k < 3; k++) dtv[k] = da[k] - an * n[k];
    if (u <= DTAC_SLIP_RATIO) {
      for (int k = 0; k < 3; k++) EXPECT_EQ(aout[k], anchor[k]) << "sticking, u " << u;
    } else {
      EXPECT_NEAR(p.kt * dtac_norm3(dtv), DTAC_SLIP_RATIO * L, 1e-9 * L) << "slipping, u " << u;
      EXPECT_NEAR(dtac_dot3(dtv, t), dtac_norm3(dtv), 1e-9 * dtac_norm3(dtv))
          << "the anchor is dragged along the offset, u " << u;
      // the dragged anchor gives the force at the slip ratio, unchanged if applied again
      double f2[3], a2[3];
      dtac_contact_force(&p, &c, d, n, x, v, aout, f2, a2);
      double ft2[3];
      for (int k = 0; k < 3; k++) ft2[k] = f2[k] - fn * n[k];
      EXPECT_NEAR(dtac_norm3(ft2), L * std::tanh(DTAC_SLIP_RATIO), 1e-9 * L);
      for (int k = 0; k < 3; k++) EXPECT_NEAR(a2[k], aout[k], 1e-15) << "stable anchor";
    }
  }
  EXPECT_EQ(DTAC_SLIP_RATIO, 3.0);
}

// small fixed-back gel, the default contact constants
struct ContactGel {
  dtac_gel_model gm;
  std::vector<double> x, v, anchor;
  ContactGel() {
    dtac_gel_def def;
    dtac_gel_def_default(&def);
    def.size[0] = 0.004;
    def.size[1] = 0.005;
    def.size[2] = 0.003;
    def.resolution = 0.001;
    char err[DTAC_ERRLEN] = "";
    EXPECT_EQ(dtac_gel_model_make(&gm, &def, 0, 0, err, sizeof(err)), 0) << err;
    x.assign(gm.X, gm.X + 3 * gm.nnode);
    v.assign(3 * gm.nnode, 0.0);
    anchor.assign(4 * gm.nsurf, 0.0);
    for (int s = 0; s < gm.nsurf; s++) anchor[4 * s] = -1;
  }
  ~ContactGel() { dtac_gel_model_free(&gm); }
};

TEST(Contact, ReactionIsEqualAndOpposite) {
  ContactGel g;
  const dtac_gel_model& gm = g.gm;
  std::mt19937 rng(12);
  std::normal_distribution<double> n01(0, 1);
  const double T = gm.def.size[2];
  // a sphere pressed into the top face, a rotated box into the +x side face
  dtac_collider col[2] = {};
  col[0] = MakeCollider(DTAC_GEOM_SPHERE, 0.003, 7);
  col[0].pos[0] = 0.0004;
  col[0].pos[1] = -0.0003;
  col[0].pos[2] = T + 0.003 - 0.0004;
  RandomRotation(rng, col[0].mat);
  col[0].mu = 0.7;
  col[1] = MakeCollider(DTAC_GEOM_BOX, 0.002, 9);
  double th = 0.2;
  double Rz[9] = {std::cos(th), -std::sin(th), 0, std::sin(th), std::cos(th), 0, 0, 0, 1};
  for (int k = 0; k < 9; k++) col[1].mat[k] = Rz[k];
  col[1].pos[0] = 0.002 + 0.002 - 0.0002;
  col[1].pos[1] = 0.0005;
  col[1].pos[2] = 0.0015;
  col[1].rbound = 0.002 * std::sqrt(3.0);
  col[1].mu = 0.5;
  for (int c = 0; c < 2; c++) {
    for (int k = 0; k < 3; k++) {
      col[c].vel[k] = 0.01 * n01(rng);
      col[c].angvel[k] = n01(rng);
    }
  }
  for (double& e : g.v) e = 0.01 * n01(rng);
  // anchors of the top and +x nodes in each collider's frame, offset tangentially so that
  // friction acts (some sticking, some slipping)
  for (int s = 0; s < gm.nsurf; s++) {
    const double* xa = g.x.data() + 3 * gm.surf[s];
    int c = xa[0] > 0.002 - 1e-9 ? 1 : 0;
    double aw[3] = {xa[0] + 2e-5 * n01(rng), xa[1] + 2e-5 * n01(rng), xa[2] + 2e-5 * n01(rng)};
    g.anchor[4 * s] = col[c].geom;
    dtac_collider_to_local(col + c, aw, g.anchor.data() + 4 * s + 1);
  }
  for (int ncol = 1; ncol <= 2; ncol++) {
    std::vector<double> nf(3 * gm.nnode, 0.0), ft(6 * ncol, 0.0), aout(4 * gm.nsurf, 0.0);
    int nc = dtac_gel_contact(&gm, g.x.data(), g.v.data(), g.anchor.data(), aout.data(), col,
                              ncol, nf.data(), ft.data());
    EXPECT_GT(nc, ncol == 1 ? 4 : 8);
    // sums over nodes: force, torque about the world origin and about each collider origin
    double F[3] = {0, 0, 0}, Tw[3] = {0, 0, 0}, fscale = 0;
    for (int a = 0; a < gm.nnode; a++) {
      double t[3];
      dtac_cross3(t, g.x.data() + 3 * a, nf.data() + 3 * a);
      for (int k = 0; k < 3; k++) {
        F[k] += nf[3 * a + k];
        Tw[k] += t[k];
      }
      fscale += dtac_norm3(nf.data() + 3 * a);
    }
    ASSERT_GT(fscale, 0);
    double Fc[3] = {0, 0, 0}, Tc[3] = {0, 0, 0};
    for (int c = 0; c < ncol; c++) {
      double t[3];
      dtac_cross3(t, col[c].pos, ft.data() + 6 * c);
      for (int k = 0; k < 3; k++) {
        Fc[k] += ft[6 * c + k];
        Tc[k] += ft[6 * c + 3 + k] + t[k];  // shifted to the world origin
      }
    }
    for (int k = 0; k < 3; k++) {
      EXPECT_NEAR(Fc[k], -F[k], 1e-12 * fscale) << "force " << k << " ncol " << ncol;
      EXPECT_NEAR(Tc[k], -Tw[k], 1e-12 * fscale * 0.01) << "torque " << k << " ncol " << ncol;
    }
    if (ncol == 1) {
      // torque about the collider's own origin
      double Tp[3] = {0, 0, 0};
      for (int a = 0; a < gm.nnode; a++) {
        double r[3], t[3];
        dtac_sub3(r, g.x.data() + 3 * a, col[0].pos);
        dtac_cross3(t, r, nf.data() + 3 * a);
        for (int k = 0; k < 3; k++) Tp[k] += t[k];
      }
      for (int k = 0; k < 3; k++) EXPECT_NEAR(ft[3 + k], -Tp[k], 1e-14 * fscale) << k;
    }
    // friction acted: the reaction differs from the frictionless one
    std::vector<double> nf0(3 * gm.nnode, 0.0), ft0(6 * ncol, 0.0);
    col[0].mu = col[1].mu = 0;
    dtac_gel_contact(&gm, g.x.data(), g.v.data(), g.anchor.data(), nullptr, col, ncol,
                     nf0.data(), ft0.data());
    col[0].mu = 0.7;
    col[1].mu = 0.5;
    double diff = 0;
    for (int k = 0; k < 3; k++) diff = std::max(diff, std::fabs(ft[k] - ft0[k]));
    EXPECT_GT(diff, 1e-3 * fscale / gm.nsurf) << "friction must contribute, ncol " << ncol;
  }
}

TEST(Contact, MovingColliderDamping) {
  std::mt19937 rng(13);
  std::normal_distribution<double> n01(0, 1);
  dtac_contact_node_param p = Param();
  for (int type : {DTAC_GEOM_PLANE, DTAC_GEOM_SPHERE}) {
    for (int trial = 0; trial < 10; trial++) {
      dtac_collider c = MakeCollider(type, 0.01, 5);
      RandomRotation(rng, c.mat);
      for (int k = 0; k < 3; k++) {
        c.pos[k] = 0.01 * n01(rng);
        c.vel[k] = n01(rng);
        c.angvel[k] = 10 * n01(rng);
      }
      // a node 2 widths inside, at a random place on the surface
      double pl[3] = {0.005 * n01(rng), 0.005 * n01(rng), -2 * p.width};
      if (type == DTAC_GEOM_SPHERE) {
        double dn = std::sqrt(pl[0] * pl[0] + pl[1] * pl[1] + 1e-4);
        pl[0] *= (0.01 - 2 * p.width) / dn;
        pl[1] *= (0.01 - 2 * p.width) / dn;
        pl[2] = 0.01 * (0.01 - 2 * p.width) / dn;
      }
      double x[3], n[3];
      dtac_collider_to_world(&c, pl, x);
      double d = dtac_collider_dist(&c, x, n);
      ASSERT_NEAR(d, -2 * p.width, 1e-12);
      const double fstatic = p.kn * 1.5 * p.width;
      // node moving rigidly with the collider: no damping force, no friction
      double r[3], w[3], vr[3], f[3];
      dtac_sub3(r, x, c.pos);
      dtac_cross3(w, c.angvel, r);
      for (int k = 0; k < 3; k++) vr[k] = c.vel[k] + w[k];
      double fn = dtac_contact_force(&p, &c, d, n, x, vr, x, f, nullptr);
      EXPECT_NEAR(fn, fstatic, 1e-12 * fstatic) << "type " << type;
      for (int k = 0; k < 3; k++) EXPECT_NEAR(f[k], fstatic * n[k], 1e-12 * fstatic);
      // a tangential slide relative to the collider: still no normal damping
      double t[3], tmp[3] = {n01(rng), n01(rng), n01(rng)};
      dtac_cross3(t, n, tmp);
      double vs[3];
      for (int k = 0; k < 3; k++) vs[k] = vr[k] + t[k];
      EXPECT_NEAR(dtac_contact_force(&p, &c, d, n, x, vs, x, f, nullptr), fstatic,
                  1e-12 * fstatic);
      // approaching relative to the collider by 0.1 m/s: damping cn * 0.1
      double va[3];
      for (int k = 0; k < 3; k++) va[k] = vr[k] - 0.1 * n[k];
      EXPECT_NEAR(dtac_contact_force(&p, &c, d, n, x, va, x, f, nullptr), fstatic + p.cn * 0.1,
                  1e-9 * fstatic);
      // a node at rest in the world is damped by the collider's own normal motion
      double v0[3] = {0, 0, 0};
      double vn = -dtac_dot3(vr, n);  // node's normal velocity relative to the collider
      EXPECT_NEAR(dtac_contact_force(&p, &c, d, n, x, v0, x, f, nullptr),
                  std::max(0.0, fstatic - p.cn * vn), 1e-9 * fstatic);
    }
  }
}

}  // namespace
