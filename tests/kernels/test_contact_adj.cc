// Adjoint of the node contact force (penalty, damping, stick friction with its smooth Coulomb
// limit, signed distance and its Hessian) against central finite differences, double precision,
// random rotated and moving colliders of every smooth shape.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "test_util.h"
#include "contact.h"

namespace {

double Obj(const dtac_contact_node_param& p, const dtac_collider& c, const double* x,
           const double* v, const double* an, const double* fbar) {
  double f[3];
  dtac_contact_node_force(&p, &c, x, v, an, f);
  return f[0] * fbar[0] + f[1] * fbar[1] + f[2] * fbar[2];
}


}  // namespace

TEST(ContactAdjoint, NodeForceMatchesFiniteDifferences) {
  std::mt19937 rng(5);
  std::normal_distribution<double> n01(0, 1);
  std::uniform_real_distribution<double> u01(0, 1);
  const int types[] = {DTAC_GEOM_SPHERE, DTAC_GEOM_CAPSULE, DTAC_GEOM_ELLIPSOID, DTAC_GEOM_BOX,
                       DTAC_GEOM_CYLINDER, DTAC_GEOM_PLANE};
  int checked = 0;
  for (int trial = 0; trial < 120; trial++) {
    int type = types[trial % 6];
    dtac_collider c = {};
    c.type = type;
    c.size[0] = 0.005;
    c.size[1] = type == DTAC_GEOM_ELLIPSOID ? 0.004 : 0.006;
    c.size[2] = 0.003;
    RandomRotation(rng, c.mat);
    for (int k = 0; k < 3; k++) {
      c.pos[k] = 0.01 * n01(rng);
      c.vel[k] = 0.01 * n01(rng);
      c.angvel[k] = 0.5 * n01(rng);
    }
    c.mu = 0.5 + u01(rng);
    dtac_contact_node_param p;
    p.kn = 100 * (1 + u01(rng));
    p.cn = 0.02 * u01(rng);
    p.kt = 80 * (1 + u01(rng));
    p.width = 2e-5;
    // a point just inside a smooth part of the surface: along a face normal for box/cylinder
    double pl[3];
    if (type == DTAC_GEOM_BOX) {
      pl[0] = 0.6 * c.size[0] * (2 * u01(rng) - 1);
      pl[1] = 0.6 * c.size[1] * (2 * u01(rng) - 1);
      pl[2] = c.size[2];
    } else if (type == DTAC_GEOM_CYLINDER) {
      double a = 6.28 * u01(rng);
      pl[0] = c.size[0] * std::cos(a);
      pl[1] = c.size[0] * std::sin(a);
      pl[2] = 0.6 * c.size[1] * (2 * u01(rng) - 1);
    } else if (type == DTAC_GEOM_PLANE) {
      pl[0] = 0.01 * n01(rng);
      pl[1] = 0.01 * n01(rng);
      pl[2] = 0;
    } else {
      double dir[3] = {n01(rng), n01(rng), n01(rng)}, l = dtac_norm3(dir);
      for (int k = 0; k < 3; k++) pl[k] = dir[k] / l * (type == DTAC_GEOM_CAPSULE ? 0.005 : 0.004);
      if (type == DTAC_GEOM_CAPSULE) pl[2] = 0.6 * c.size[1] * (2 * u01(rng) - 1) + pl[2] * 0.2;
    }
    double g[3];
    dtac_sdf(type, c.size, nullptr, 0, pl, g);
    // move inside along the normal: penetration past the ramp (or inside it, every 3rd)
    double pen = trial % 3 == 0 ? 0.5 * p.width : 5e-5 + 1e-4 * u01(rng);
    double d0 = dtac_sdf(type, c.size, nullptr, 0, pl, g);
    for (int k = 0; k < 3; k++) pl[k] -= (d0 + pen) * g[k];
    double x[3], v[3], an[3], fbar[3];
    dtac_collider_to_world(&c, pl, x);
    double nw[3];
    if (dtac_collider_dist(&c, x, nw) >= 0) continue;
    for (int k = 0; k < 3; k++) {
      v[k] = c.vel[k] + 0.01 * n01(rng);
      an[k] = x[k] + 2e-4 * n01(rng);  // stick offset: some in the linear, some in the limit
      fbar[k] = n01(rng);
    }
    double f[3];
    if (dtac_contact_node_force(&p, &c, x, v, an, f) <= 1e-6) continue;  // clamped: skip
    double xb[3] = {0, 0, 0}, vb[3] = {0, 0, 0}, ab[3] = {0, 0, 0};
    dtac_contact_param_adj pa = {0, 0, 0, 0};
    dtac_contact_node_force_adj(&p, &c, x, v, an, fbar, xb, vb, ab, &pa);
    for (int i = 0; i < 3; i++) {
      double hx = 1e-10, hv = 1e-7;
      double xp[3] = {x[0], x[1], x[2]}, xm[3] = {x[0], x[1], x[2]};
      double vp[3] = {v[0], v[1], v[2]}, vm[3] = {v[0], v[1], v[2]};
      double ap[3] = {an[0], an[1], an[2]}, am[3] = {an[0], an[1], an[2]};
      xp[i] += hx;
      xm[i] -= hx;
      vp[i] += hv;
      vm[i] -= hv;
      ap[i] += hx;
      am[i] -= hx;
      double fdx = (Obj(p, c, xp, v, an, fbar) - Obj(p, c, xm, v, an, fbar)) / (2 * hx);
      double fdv = (Obj(p, c, x, vp, an, fbar) - Obj(p, c, x, vm, an, fbar)) / (2 * hv);
      double fda = (Obj(p, c, x, v, ap, fbar) - Obj(p, c, x, v, am, fbar)) / (2 * hx);
      EXPECT_NEAR(xb[i], fdx, 2e-5 * (std::fabs(fdx) + p.kn)) << "type " << type << " x" << i;
      EXPECT_NEAR(vb[i], fdv, 2e-5 * (std::fabs(fdv) + p.cn + 1e-9)) << "type " << type << " v" << i;
      EXPECT_NEAR(ab[i], fda, 2e-5 * (std::fabs(fda) + p.kt)) << "type " << type << " a" << i;
    }
    // contact constants
    auto with = [&](double dkn, double dcn, double dkt, double dmu) {
      dtac_contact_node_param q = p;
      dtac_collider cc = c;
      q.kn += dkn;
      q.cn += dcn;
      q.kt += dkt;
      cc.mu += dmu;
      return Obj(q, cc, x, v, an, fbar);
    };
    double e = 1e-6;
    EXPECT_NEAR(pa.kn, (with(e, 0, 0, 0) - with(-e, 0, 0, 0)) / (2 * e), 1e-6 * (1 + std::fabs(pa.kn)));
    EXPECT_NEAR(pa.cn, (with(0, e, 0, 0) - with(0, -e, 0, 0)) / (2 * e), 1e-5 * (1 + std::fabs(pa.cn)));
    EXPECT_NEAR(pa.kt, (with(0, 0, e, 0) - with(0, 0, -e, 0)) / (2 * e), 1e-6 * (1 + std::fabs(pa.kt)));
    EXPECT_NEAR(pa.mu, (with(0, 0, 0, e) - with(0, 0, 0, -e)) / (2 * e), 1e-6 * (1 + std::fabs(pa.mu)));
    checked++;
  }
  EXPECT_GT(checked, 80);
}
