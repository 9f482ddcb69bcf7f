// Adjoints of contact.h (collider frame maps, collider distance, contact force with the
// collider's pose and motion as inputs) and of the rotation-vector map in dtac_hd.h, against
// finite differences in double precision. Every scalar input is perturbed, including each entry
// of the collider matrix (treated as a generic 3x3), and the full VJP <bar, dout/din> is compared
// for random bars, with the cotangents pre-filled with junk so that a missing += shows.
//
// Units are O(1) (sizes ~1, width 0.1) so one step fits every input: fourth-order central
// differences, h = 1e-4 (truncation ~h^4; plain central differences at any h left ~1e-6 on
// components 1e-4 of the largest, from h^2 on one side and eps / h on the other). Branch margins
// are >= 0.02 and the contact force's branch is checked to stay the same across each stencil.
//
// Error per input i: |adj_i - fd_i| / (|fd_i| + 1e-8 max_j |fd_j|), tolerance kTol = 1e-6.
// Observed max: rotvec 9e-11, frame maps 4e-10, distance 4e-9, contact force 2e-8.
// Deliberately wrong adjoints (header edited in a scratch copy) fail by far: without the ddramp
// term 0.76, without keep_bar (slip) 18, without the s = 0 limit 11, without the n_bar gl^T mat
// term of the distance 5e2, without the Hessian term 5e2, without cb->angvel 1.0, angvel cross
// product reversed 2.0, without the a = x branch (L <= 0) 1.6, without pa->mu 1.0, without the
// ee e projection 1e3, clamp ignored 4e9, rotvec without -2 B tr 76, without dB 30.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "test_util.h"

extern "C" {
#include "contact.h"
#include "gel.h"
}

namespace {

const double kStep = 1e-4;
const double kTol = 1e-6;

// one scalar input: where it lives, and its cotangent from the adjoint under test
struct Slot {
  std::string name;
  double* val;
  double adj;
};

// finite differences of J over every slot against the slot's adjoint; returns the largest error.
// branch (optional) names the forward's branch: it must not change inside the stencil.
double CheckVjp(const std::vector<Slot>& slots, const std::function<double()>& J,
                const std::string& what, const std::function<int()>& branch = nullptr) {
  std::vector<double> fd(slots.size());
  double gmax = 0;
  int b0 = branch ? branch() : 0;
  for (size_t i = 0; i < slots.size(); i++) {
    // fourth-order central differences: (8 (J(h) - J(-h)) - (J(2h) - J(-2h))) / 12h
    double v0 = *slots[i].val, jv[4];
    const double off[4] = {kStep, -kStep, 2 * kStep, -2 * kStep};
    for (int m = 0; m < 4; m++) {
      *slots[i].val = v0 + off[m];
      jv[m] = J();
      if (branch) {
        EXPECT_EQ(branch(), b0) << what << " " << slots[i].name << " leaves its branch";
      }
    }
    *slots[i].val = v0;
    fd[i] = (8 * (jv[0] - jv[1]) - (jv[2] - jv[3])) / (12 * kStep);
    gmax = std::fmax(gmax, std::fabs(fd[i]));
  }
  double worst = 0;
  for (size_t i = 0; i < slots.size(); i++) {
    double err = std::fabs(slots[i].adj - fd[i]) / (std::fabs(fd[i]) + 1e-8 * gmax + 1e-300);
    worst = std::fmax(worst, err);
    EXPECT_LE(err, kTol) << what << " " << slots[i].name << ": adj " << slots[i].adj << " fd "
                         << fd[i];
  }
  return worst;
}

void Add3(std::vector<Slot>& s, const char* name, double* v, const double* adj) {
  for (int k = 0; k < 3; k++) s.push_back({std::string(name) + std::to_string(k), v + k, adj[k]});
}

// the collider's pose and motion as slots (mat entries independent)
void AddCollider(std::vector<Slot>& s, dtac_collider& c, const dtac_collider_bar& cb) {
  Add3(s, "pos", c.pos, cb.pos);
  for (int k = 0; k < 9; k++) s.push_back({"mat" + std::to_string(k), c.mat + k, cb.mat[k]});
  Add3(s, "vel", c.vel, cb.vel);
  Add3(s, "angvel", c.angvel, cb.angvel);
}

// cotangents start from junk so that a missing += shows; Sub removes it again
struct Junk {
  std::vector<double> v;
  explicit Junk(std::mt19937& rng, int n) : v(n) {
    std::normal_distribution<double> n01(0, 1);
    for (double& x : v) x = n01(rng);
  }
};

void Fill(double* a, int n, const Junk& j, int off) {
  for (int k = 0; k < n; k++) a[k] = j.v[off + k];
}
void Sub(double* a, int n, const Junk& j, int off) {
  for (int k = 0; k < n; k++) a[k] -= j.v[off + k];
}
void FillBar(dtac_collider_bar& cb, const Junk& j) {
  Fill(cb.pos, 3, j, 0);
  Fill(cb.mat, 9, j, 3);
  Fill(cb.vel, 3, j, 12);
  Fill(cb.angvel, 3, j, 15);
}
void SubBar(dtac_collider_bar& cb, const Junk& j) {
  Sub(cb.pos, 3, j, 0);
  Sub(cb.mat, 9, j, 3);
  Sub(cb.vel, 3, j, 12);
  Sub(cb.angvel, 3, j, 15);
}

void RandomVec(std::mt19937& rng, double* a, int n, double scale) {
  std::normal_distribution<double> n01(0, 1);
  for (int k = 0; k < n; k++) a[k] = scale * n01(rng);
}

// a generic 3x3 near a rotation (or the rotation itself)
void RandomMat(std::mt19937& rng, double m[9], bool generic) {
  RandomRotation(rng, m);
  if (!generic) return;
  std::normal_distribution<double> n01(0, 1);
  for (int k = 0; k < 9; k++) m[k] += 0.3 * n01(rng);
}

// ---- rotation vector

double RotvecJ(const double phi[3], const double Rb[9]) {
  double R[9];
  dtac_rotvec_mat(phi, R);
  return dtac_ddot33(R, Rb);
}

double CheckRotvec(std::mt19937& rng, double phi[3], const std::string& what) {
  double Rb[9], pb[3], j[3];
  RandomVec(rng, Rb, 9, 1);
  RandomVec(rng, j, 3, 1);
  for (int k = 0; k < 3; k++) pb[k] = j[k];
  dtac_rotvec_mat_adj(phi, Rb, pb);
  for (int k = 0; k < 3; k++) pb[k] -= j[k];
  std::vector<Slot> s;
  Add3(s, "phi", phi, pb);
  return CheckVjp(
      s, [&] { return RotvecJ(phi, Rb); }, what);
}

}  // namespace

TEST(Rotvec, ForwardMatchesFrameAtAndFormula) {
  std::mt19937 rng(11);
  std::normal_distribution<double> n01(0, 1);
  for (int trial = 0; trial < 40; trial++) {
    double scale = trial < 30 ? 1.0 : std::pow(10.0, -(trial - 28));  // down to 1e-10
    double phi[3] = {scale * n01(rng), scale * n01(rng), scale * n01(rng)};
    if (trial == 39) phi[0] = phi[1] = phi[2] = 0;
    double R[9];
    dtac_rotvec_mat(phi, R);

    // bitwise the Rodrigues block of dtac_frame_at (initial orientation I, t = 1)
    dtac_frame f0 = {};
    f0.mat[0] = f0.mat[4] = f0.mat[8] = 1;
    for (int k = 0; k < 3; k++) f0.angvel[k] = phi[k];
    double pos[3], M[9];
    dtac_frame_at(&f0, 1.0, pos, M);
    for (int k = 0; k < 9; k++) EXPECT_EQ(R[k], M[k]) << "trial " << trial << " entry " << k;

    // the explicit formula, a rotation, phi its axis
    double th = dtac_norm3(phi);
    if (th > 0) {
      double a[3] = {phi[0] / th, phi[1] / th, phi[2] / th};
      double c = std::cos(th), s = std::sin(th), C = 1 - c;
      double E[9] = {
          c + a[0] * a[0] * C,        a[0] * a[1] * C - a[2] * s, a[0] * a[2] * C + a[1] * s,
          a[1] * a[0] * C + a[2] * s, c + a[1] * a[1] * C,        a[1] * a[2] * C - a[0] * s,
          a[2] * a[0] * C - a[1] * s, a[2] * a[1] * C + a[0] * s, c + a[2] * a[2] * C};
      for (int k = 0; k < 9; k++) EXPECT_EQ(R[k], E[k]);
    } else {
      for (int k = 0; k < 9; k++) EXPECT_EQ(R[k], k % 4 == 0 ? 1.0 : 0.0);
    }
    double RRT[9], Rp[3];
    dtac_mul33T(RRT, R, R);
    for (int k = 0; k < 9; k++) EXPECT_NEAR(RRT[k], k % 4 == 0 ? 1.0 : 0.0, 1e-14);
    dtac_mulmv3(Rp, R, phi);
    for (int k = 0; k < 3; k++) EXPECT_NEAR(Rp[k], phi[k], 1e-14 * (1 + th));
  }
}

TEST(Rotvec, AdjointMatchesFiniteDifferences) {
  std::mt19937 rng(12);
  std::normal_distribution<double> n01(0, 1);
  double worst = 0;
  // angles: generic, past pi and 2 pi, either side of the series switch (0.25), small, 1e-9, 0
  const double ths[] = {0.7, 1.5, 2.9, 3.3, 5.0, 7.5, 0.26, 0.2499, 0.1, 1e-3, 1e-9, 0};
  for (double th : ths) {
    for (int rep = 0; rep < 3; rep++) {
      double phi[3] = {n01(rng), n01(rng), n01(rng)}, l = dtac_norm3(phi);
      for (int k = 0; k < 3; k++) phi[k] *= th / l;
      worst = std::fmax(worst, CheckRotvec(rng, phi, "th " + std::to_string(th)));
    }
  }
  EXPECT_LT(worst, kTol);
  std::printf("rotvec adjoint: max rel err %.2e\n", worst);

  // at phi = 0 the adjoint is the vee of the antisymmetric part of R_bar: (dR/dphi_m)(0) = [e_m]x
  double Rb[9], pb[3] = {0, 0, 0}, zero[3] = {0, 0, 0};
  RandomVec(rng, Rb, 9, 1);
  dtac_rotvec_mat_adj(zero, Rb, pb);
  EXPECT_EQ(pb[0], Rb[7] - Rb[5]);
  EXPECT_EQ(pb[1], Rb[2] - Rb[6]);
  EXPECT_EQ(pb[2], Rb[3] - Rb[1]);
}

TEST(Rotvec, AdjointContinuousAtSeriesSwitch) {
  // series (th < 0.25) and closed forms agree where they meet
  std::mt19937 rng(13);
  for (int rep = 0; rep < 10; rep++) {
    double dir[3], Rb[9];
    RandomVec(rng, dir, 3, 1);
    RandomVec(rng, Rb, 9, 1);
    double l = dtac_norm3(dir), lo[3], hi[3], blo[3] = {0, 0, 0}, bhi[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) {
      lo[k] = dir[k] / l * 0.25 * (1 - 1e-15);
      hi[k] = dir[k] / l * 0.25 * (1 + 1e-15);
    }
    ASSERT_LT(dtac_norm3(lo), 0.25);
    ASSERT_GE(dtac_norm3(hi), 0.25);
    dtac_rotvec_mat_adj(lo, Rb, blo);
    dtac_rotvec_mat_adj(hi, Rb, bhi);
    double scale = dtac_norm3(bhi);
    for (int k = 0; k < 3; k++) EXPECT_NEAR(blo[k], bhi[k], 1e-14 * scale);
  }
}

// ---- collider frame maps and distance

TEST(ColliderAdj, FrameMapsMatchFiniteDifferences) {
  std::mt19937 rng(21);
  double worst = 0;
  for (int trial = 0; trial < 20; trial++) {
    dtac_collider c = {};
    RandomMat(rng, c.mat, trial % 2 == 1);
    RandomVec(rng, c.pos, 3, 1);
    double in[3], ob[3];
    RandomVec(rng, in, 3, 1);
    RandomVec(rng, ob, 3, 1);
    Junk j(rng, 21);
    for (int world = 0; world < 2; world++) {
      dtac_collider_bar cb;
      double ib[3];
      FillBar(cb, j);
      Fill(ib, 3, j, 18);
      if (world) {
        dtac_collider_to_world_adj(&c, in, ob, ib, &cb);
      } else {
        dtac_collider_to_local_adj(&c, in, ob, ib, &cb);
      }
      SubBar(cb, j);
      Sub(ib, 3, j, 18);
      std::vector<Slot> s;
      Add3(s, "in", in, ib);
      AddCollider(s, c, cb);
      auto J = [&] {
        double out[3];
        if (world) {
          dtac_collider_to_world(&c, in, out);
        } else {
          dtac_collider_to_local(&c, in, out);
        }
        return dtac_dot3(out, ob);
      };
      worst = std::fmax(worst, CheckVjp(s, J, world ? "to_world" : "to_local"));
    }
  }
  std::printf("frame maps adjoint: max rel err %.2e\n", worst);
}

namespace {

// distance of p to the nearest branch boundary of the sdf of type (where FD is not valid)
double SdfMargin(const dtac_collider& c, const double p[3]) {
  const double* sz = c.size;
  switch (c.type) {
    case DTAC_GEOM_SPHERE:
      return dtac_norm3(p);
    case DTAC_GEOM_CAPSULE: {
      double zc = std::fmax(-sz[1], std::fmin(sz[1], p[2]));
      double d[3] = {p[0], p[1], p[2] - zc};
      return std::fmin(std::fabs(std::fabs(p[2]) - sz[1]), dtac_norm3(d));
    }
    case DTAC_GEOM_ELLIPSOID:
      return std::fmax(std::fabs(p[0]), std::fmax(std::fabs(p[1]), std::fabs(p[2])));
    case DTAC_GEOM_CYLINDER: {
      double r = std::hypot(p[0], p[1]), w0 = r - sz[0], w1 = std::fabs(p[2]) - sz[1];
      double m = std::fmin(std::fmin(r, std::fabs(p[2])), std::fmin(std::fabs(w0), std::fabs(w1)));
      if (w0 < 0 && w1 < 0) m = std::fmin(m, std::fabs(w0 - w1));
      return m;
    }
    case DTAC_GEOM_BOX: {
      double q[3], m = 1e30;
      for (int i = 0; i < 3; i++) {
        q[i] = std::fabs(p[i]) - sz[i];
        m = std::fmin(m, std::fmin(std::fabs(p[i]), std::fabs(q[i])));
      }
      if (q[0] < 0 && q[1] < 0 && q[2] < 0) {
        m = std::fmin(m, std::fmin(std::fabs(q[0] - q[1]),
                                   std::fmin(std::fabs(q[0] - q[2]), std::fabs(q[1] - q[2]))));
      }
      return m;
    }
    case DTAC_GEOM_MESH: {
      double v1 = -1e30, v2 = -1e30;
      for (int k = 0; k < c.nplane; k++) {
        double v = dtac_dot3(c.planes + 4 * k, p) - c.planes[4 * k + 3];
        if (v > v1) {
          v2 = v1;
          v1 = v;
        } else if (v > v2) {
          v2 = v;
        }
      }
      return v1 - v2;
    }
    default:
      return 1e30;
  }
}

}  // namespace

TEST(ColliderAdj, DistMatchesFiniteDifferencesAllTypes) {
  std::mt19937 rng(22);
  std::normal_distribution<double> n01(0, 1);
  std::uniform_real_distribution<double> u11(-1, 1);
  // a convex hull: 10 planes with random unit normals (plus the 6 axis ones, so it is bounded)
  std::vector<double> planes;
  for (int k = 0; k < 16; k++) {
    double nrm[3] = {0, 0, 0};
    if (k < 6) {
      nrm[k / 2] = k % 2 ? -1 : 1;
    } else {
      RandomVec(rng, nrm, 3, 1);
    }
    double l = dtac_norm3(nrm);
    for (int i = 0; i < 3; i++) planes.push_back(nrm[i] / l);
    planes.push_back(k < 6 ? 1.0 : 0.8 + 0.2 * std::fabs(n01(rng)));
  }
  const int types[] = {DTAC_GEOM_PLANE,    DTAC_GEOM_SPHERE, DTAC_GEOM_CAPSULE, DTAC_GEOM_ELLIPSOID,
                       DTAC_GEOM_CYLINDER, DTAC_GEOM_BOX,    DTAC_GEOM_MESH};
  double worst = 0;
  for (int type : types) {
    int checked = 0, inside = 0, curved = 0;
    for (int trial = 0; trial < 200 && checked < 24; trial++) {
      dtac_collider c = {};
      c.type = type;
      c.size[0] = 1.0;
      c.size[1] = type == DTAC_GEOM_CAPSULE ? 1.0 : 0.7;
      c.size[2] = 0.5;
      if (type == DTAC_GEOM_MESH) {
        c.planes = planes.data();
        c.nplane = 16;
      }
      RandomMat(rng, c.mat, trial % 2 == 1);
      RandomVec(rng, c.pos, 3, 1);
      // a point in the shape's neighbourhood, away from every branch boundary of its sdf
      double ext[3] = {1.6, 1.6, 1.6};  // sampled box, half-extents
      if (type == DTAC_GEOM_CAPSULE) ext[2] = 3.2;
      if (type == DTAC_GEOM_MESH) ext[0] = ext[1] = ext[2] = 1.1;
      if (type == DTAC_GEOM_BOX || type == DTAC_GEOM_ELLIPSOID || type == DTAC_GEOM_CYLINDER) {
        for (int i = 0; i < 3; i++)
          ext[i] = 1.4 * c.size[type == DTAC_GEOM_CYLINDER && i ? i - 1 : i];
      }
      double q[3] = {ext[0] * u11(rng), ext[1] * u11(rng), ext[2] * u11(rng)}, x[3], pl[3];
      dtac_collider_to_world(&c, q, x);
      dtac_collider_to_local(&c, x, pl);
      if (SdfMargin(c, pl) < 0.02) continue;
      double nb[3], db = n01(rng), xb[3], n[3];
      RandomVec(rng, nb, 3, 1);
      Junk j(rng, 21);
      dtac_collider_bar cb;
      FillBar(cb, j);
      Fill(xb, 3, j, 18);
      dtac_collider_dist_adj(&c, x, db, nb, xb, &cb);
      SubBar(cb, j);
      Sub(xb, 3, j, 18);
      inside += dtac_collider_dist(&c, x, n) < 0;
      double H[9];
      dtac_sdf_hess(type, c.size, c.planes, c.nplane, pl, H);
      curved += dtac_ddot33(H, H) > 0;
      std::vector<Slot> s;
      Add3(s, "x", x, xb);
      AddCollider(s, c, cb);
      auto J = [&] {
        double nn[3];
        double d = dtac_collider_dist(&c, x, nn);
        return db * d + dtac_dot3(nb, nn);
      };
      worst = std::fmax(worst, CheckVjp(s, J, "type " + std::to_string(type)));
      checked++;
    }
    EXPECT_EQ(checked, 24) << "type " << type;
    EXPECT_GT(inside, 2) << "type " << type;
    EXPECT_LT(inside, checked - 2) << "type " << type;
    // box and cylinder: flat (faces) and curved (edges, corners, rim, side) regions both seen
    if (type == DTAC_GEOM_BOX || type == DTAC_GEOM_CYLINDER) {
      EXPECT_GT(curved, 2) << "type " << type;
      EXPECT_LT(curved, checked - 2) << "type " << type;
    }
  }
  std::printf("collider dist adjoint: max rel err %.2e\n", worst);
}

// ---- contact force

namespace {

enum Regime { kStick, kSlip, kS0, kClamped, kMu0, kApart };

struct ForceCase {
  dtac_contact_node_param p;
  dtac_collider c;
  double dist, n[3], x[3], v[3], anchor[3];
};

// inputs in the given regime, ramp (pen < width) or linear region, with margins to every branch
ForceCase MakeForceCase(std::mt19937& rng, Regime reg, bool ramp) {
  std::uniform_real_distribution<double> u01(0, 1);
  std::normal_distribution<double> n01(0, 1);
  ForceCase k;
  k.c = {};
  RandomRotation(rng, k.c.mat);
  RandomVec(rng, k.c.pos, 3, 1);
  RandomVec(rng, k.c.vel, 3, 1);
  RandomVec(rng, k.c.angvel, 3, 0.5);
  k.c.mu = reg == kMu0 ? 0.0 : 0.5 + u01(rng);
  k.p.kn = 1 + u01(rng);
  k.p.cn = 0.1 + 0.2 * u01(rng);
  k.p.kt = 1 + u01(rng);
  k.p.width = 0.1;
  if (reg == kS0) {
    // n along a signed axis so that dt = da - (da . n) n is exactly 0
    for (double& v : k.n) v = 0;
    k.n[rng() % 3] = rng() % 2 ? 1.0 : -1.0;
  } else {
    RandomVec(rng, k.n, 3, 1);
    double l = dtac_norm3(k.n);
    for (double& v : k.n) v /= l;
  }
  RandomVec(rng, k.x, 3, 1);
  double pen = reg == kApart
                   ? -0.2 * (1 + u01(rng))
                   : (ramp ? (0.3 + 0.4 * u01(rng)) * k.p.width : (2 + 3 * u01(rng)) * k.p.width);
  k.dist = -pen;

  // relative velocity: random tangential part, normal part approaching (or separating fast)
  double dramp, rmp = dtac_contact_ramp(pen, k.p.width, &dramp);
  double vn = -(0.5 + 0.5 * u01(rng));
  if (reg == kClamped) vn = 2 * k.p.kn * rmp / (k.p.cn * dramp) + 1 + u01(rng);
  double vt[3];
  RandomVec(rng, vt, 3, 1);
  double vtn = dtac_dot3(vt, k.n);
  double r[3], w[3];
  dtac_sub3(r, k.x, k.c.pos);
  dtac_cross3(w, k.c.angvel, r);
  for (int i = 0; i < 3; i++) k.v[i] = vt[i] - vtn * k.n[i] + vn * k.n[i] + k.c.vel[i] + w[i];
  double fn = std::fmax(0.0, k.p.kn * rmp - k.p.cn * dramp * vn);

  // anchor: tangential offset s giving u = kt s / (mu fn) in (0.3, 2.5) stick, (3.5, 6) slip
  double u = reg == kSlip ? 3.5 + 2.5 * u01(rng) : 0.3 + 2.2 * u01(rng);
  double L = k.c.mu * fn, s = L > 0 ? u * L / k.p.kt : 0.3 * (1 + u01(rng));
  if (reg == kS0) s = 0;
  double t[3];
  RandomVec(rng, t, 3, 1);
  double tn = dtac_dot3(t, k.n);
  for (int i = 0; i < 3; i++) t[i] -= tn * k.n[i];
  double tl = dtac_norm3(t), an = 0.5 * n01(rng);
  for (int i = 0; i < 3; i++) k.anchor[i] = k.x[i] - an * k.n[i] - s * t[i] / tl;
  return k;
}

double ForceJ(const ForceCase& k, const double fb[3], const double ab[3]) {
  double f[3], a[3];
  dtac_contact_force(&k.p, &k.c, k.dist, k.n, k.x, k.v, k.anchor, f, a);
  return dtac_dot3(f, fb) + dtac_dot3(a, ab);
}

// the regime the forward actually takes, with its distance to the nearest branch boundary
double ForceMargin(const ForceCase& k, Regime reg) {
  double pen = -k.dist, dramp, rmp = dtac_contact_ramp(pen, k.p.width, &dramp);
  double r[3], w[3], vrel[3];
  dtac_sub3(r, k.x, k.c.pos);
  dtac_cross3(w, k.c.angvel, r);
  for (int i = 0; i < 3; i++) vrel[i] = k.v[i] - k.c.vel[i] - w[i];
  double fn = k.p.kn * rmp - k.p.cn * dramp * dtac_dot3(vrel, k.n);
  double da[3], dt[3];
  dtac_sub3(da, k.x, k.anchor);
  double an = dtac_dot3(da, k.n);
  for (int i = 0; i < 3; i++) dt[i] = da[i] - an * k.n[i];
  double s = dtac_norm3(dt), L = k.c.mu * fn;
  double m = std::fmin(std::fabs(pen), std::fabs(pen - k.p.width));
  if (reg == kApart) return pen < 0 ? m : -1;
  m = std::fmin(m, std::fabs(fn));
  if (reg == kClamped) return fn < 0 ? m : -1;
  if (reg == kMu0) return k.c.mu == 0 && fn > 0 ? m : -1;
  if (reg == kS0) return fn > 0 && s == 0 ? m : -1;
  double u = k.p.kt * s / L;
  if (reg == kStick) return fn > 0 && u < DTAC_SLIP_RATIO ? std::fmin(m, DTAC_SLIP_RATIO - u) : -1;
  return fn > 0 && u > DTAC_SLIP_RATIO ? std::fmin(m, u - DTAC_SLIP_RATIO) : -1;
}

// the branches dtac_contact_force takes, as bits
int ForceBranch(const ForceCase& k) {
  double pen = -k.dist, dramp, rmp = dtac_contact_ramp(pen, k.p.width, &dramp);
  double r[3], w[3], vrel[3];
  dtac_sub3(r, k.x, k.c.pos);
  dtac_cross3(w, k.c.angvel, r);
  for (int i = 0; i < 3; i++) vrel[i] = k.v[i] - k.c.vel[i] - w[i];
  double fn = k.p.kn * rmp - k.p.cn * dramp * dtac_dot3(vrel, k.n);
  double da[3], dt[3];
  dtac_sub3(da, k.x, k.anchor);
  double an = dtac_dot3(da, k.n);
  for (int i = 0; i < 3; i++) dt[i] = da[i] - an * k.n[i];
  double s = dtac_norm3(dt), L = k.c.mu * (fn < 0 ? 0 : fn);
  return (pen > 0) | (pen < k.p.width) << 1 | (fn < 0) << 2 | (L > 0) << 3 |
         (L > 0 && k.p.kt * s / L > DTAC_SLIP_RATIO) << 4;
}

const char* kRegimeName[] = {"stick", "slip", "s=0", "clamped", "mu=0", "apart"};

}  // namespace

TEST(ContactForceAdj, RegimesMatchFiniteDifferences) {
  std::mt19937 rng(31);
  double worst = 0;
  for (int reg = kStick; reg <= kApart; reg++) {
    for (int trial = 0; trial < 12; trial++) {
      bool ramp = trial % 2 == 0;
      ForceCase k = MakeForceCase(rng, (Regime)reg, ramp);
      std::string what = std::string(kRegimeName[reg]) + (ramp ? " ramp" : " linear") + " trial " +
                         std::to_string(trial);
      ASSERT_GT(ForceMargin(k, (Regime)reg), 0.02) << what;
      double fb[3], ab[3];
      RandomVec(rng, fb, 3, 1);
      RandomVec(rng, ab, 3, 1);

      Junk j(rng, 40);
      dtac_collider_bar cb;
      dtac_contact_param_adj pa;
      double db, nb[3], xb[3], vb[3], anb[3];
      FillBar(cb, j);
      Fill(&db, 1, j, 18);
      Fill(nb, 3, j, 19);
      Fill(xb, 3, j, 22);
      Fill(vb, 3, j, 25);
      Fill(anb, 3, j, 28);
      Fill(&pa.kn, 1, j, 31);
      Fill(&pa.cn, 1, j, 32);
      Fill(&pa.kt, 1, j, 33);
      Fill(&pa.mu, 1, j, 34);
      dtac_contact_force_adj(&k.p, &k.c, k.dist, k.n, k.x, k.v, k.anchor, fb, ab, &db, nb, xb, vb,
                             anb, &cb, &pa);
      SubBar(cb, j);
      Sub(&db, 1, j, 18);
      Sub(nb, 3, j, 19);
      Sub(xb, 3, j, 22);
      Sub(vb, 3, j, 25);
      Sub(anb, 3, j, 28);
      Sub(&pa.kn, 1, j, 31);
      Sub(&pa.cn, 1, j, 32);
      Sub(&pa.kt, 1, j, 33);
      Sub(&pa.mu, 1, j, 34);

      std::vector<Slot> s;
      s.push_back({"dist", &k.dist, db});
      Add3(s, "n", k.n, nb);
      Add3(s, "x", k.x, xb);
      Add3(s, "v", k.v, vb);
      Add3(s, "anchor", k.anchor, anb);
      AddCollider(s, k.c, cb);
      s.push_back({"kn", &k.p.kn, pa.kn});
      s.push_back({"cn", &k.p.cn, pa.cn});
      s.push_back({"kt", &k.p.kt, pa.kt});
      // mu = 0 sits on the kink L = 0 (friction appears for mu > 0 only): not differentiable
      if (reg != kMu0) s.push_back({"mu", &k.c.mu, pa.mu});
      for (int m = 0; m < 9; m++) EXPECT_EQ(cb.mat[m], 0.0) << what;
      worst = std::fmax(
          worst, CheckVjp(
                     s, [&] { return ForceJ(k, fb, ab); }, what, [&] { return ForceBranch(k); }));
    }
  }
  std::printf("contact force adjoint: max rel err %.2e\n", worst);
}

TEST(ContactForceAdj, NullArgumentsAreZeroCotangents) {
  std::mt19937 rng(32);
  for (int reg = kStick; reg <= kS0; reg++) {
    ForceCase k = MakeForceCase(rng, (Regime)reg, reg == kSlip);
    double fb[3], zero[3] = {0, 0, 0};
    RandomVec(rng, fb, 3, 1);
    double out[2][16] = {};
    for (int null = 0; null < 2; null++) {
      double* o = out[null];
      dtac_collider_bar cb = {};
      dtac_contact_param_adj pa = {0, 0, 0, 0};
      dtac_contact_force_adj(&k.p, &k.c, k.dist, k.n, k.x, k.v, k.anchor, fb, null ? 0 : zero, o,
                             o + 1, o + 4, o + 7, o + 10, &cb, null ? 0 : &pa);
      o[13] = cb.pos[0];
      o[14] = cb.vel[1];
      o[15] = cb.angvel[2];
    }
    for (int i = 0; i < 16; i++) EXPECT_EQ(out[0][i], out[1][i]) << kRegimeName[reg] << " " << i;
  }
}

TEST(ContactForceAdj, ComposedWithDistEqualsNodeForceAdj) {
  // dtac_contact_node_force = dtac_contact_force(dist(x), n(x), x, ...): dist_adj after
  // contact_force_adj must reproduce dtac_contact_node_force_adj (contact.h), s > 0
  std::mt19937 rng(33);
  std::uniform_real_distribution<double> u01(0, 1);
  int checked = 0;
  for (int trial = 0; trial < 30; trial++) {
    dtac_collider c = {};
    c.type = trial % 2 ? DTAC_GEOM_SPHERE : DTAC_GEOM_ELLIPSOID;
    c.size[0] = 1;
    c.size[1] = 0.8;
    c.size[2] = 0.6;
    RandomRotation(rng, c.mat);
    RandomVec(rng, c.pos, 3, 1);
    RandomVec(rng, c.vel, 3, 1);
    RandomVec(rng, c.angvel, 3, 0.5);
    c.mu = 0.5 + u01(rng);
    dtac_contact_node_param p = {1 + u01(rng), 0.1 + 0.2 * u01(rng), 1 + u01(rng), 0.1};
    double q[3], x[3], v[3], an[3], fb[3], n[3];
    RandomVec(rng, q, 3, 1);
    double l = dtac_norm3(q), depth = trial % 3 == 0 ? 0.05 : 0.3;
    for (int i = 0; i < 3; i++) q[i] *= (0.6 - depth) / l;
    dtac_collider_to_world(&c, q, x);
    RandomVec(rng, v, 3, 0.3);
    RandomVec(rng, an, 3, 0.2);
    for (int i = 0; i < 3; i++) an[i] += x[i];
    RandomVec(rng, fb, 3, 1);
    double d = dtac_collider_dist(&c, x, n), f[3];
    if (d >= 0 || dtac_contact_force(&p, &c, d, n, x, v, an, f, 0) <= 0) continue;

    double xb[3] = {0, 0, 0}, vb[3] = {0, 0, 0}, ab[3] = {0, 0, 0}, db = 0, nb[3] = {0, 0, 0};
    dtac_collider_bar cb = {};
    dtac_contact_param_adj pa = {0, 0, 0, 0};
    dtac_contact_force_adj(&p, &c, d, n, x, v, an, fb, 0, &db, nb, xb, vb, ab, &cb, &pa);
    dtac_collider_dist_adj(&c, x, db, nb, xb, &cb);
    double xr[3] = {0, 0, 0}, vr[3] = {0, 0, 0}, ar[3] = {0, 0, 0};
    dtac_contact_param_adj pr = {0, 0, 0, 0};
    dtac_contact_node_force_adj(&p, &c, x, v, an, fb, xr, vr, ar, &pr);
    double sc = dtac_norm3(xr) + dtac_norm3(ar) + 1;
    for (int i = 0; i < 3; i++) {
      EXPECT_NEAR(xb[i], xr[i], 1e-12 * sc);
      EXPECT_NEAR(vb[i], vr[i], 1e-12 * sc);
      EXPECT_NEAR(ab[i], ar[i], 1e-12 * sc);
    }
    EXPECT_NEAR(pa.kn, pr.kn, 1e-12 * (1 + std::fabs(pr.kn)));
    EXPECT_NEAR(pa.cn, pr.cn, 1e-12 * (1 + std::fabs(pr.cn)));
    EXPECT_NEAR(pa.kt, pr.kt, 1e-12 * (1 + std::fabs(pr.kt)));
    EXPECT_NEAR(pa.mu, pr.mu, 1e-12 * (1 + std::fabs(pr.mu)));
    checked++;
  }
  EXPECT_GT(checked, 15);
}
