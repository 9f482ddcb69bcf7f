// test_step_adj.cc: the reverse pass of the gel step (dtac_gels_advance_adj) against central
// finite differences of the forward step, in double, on a gel in contact (sliding and stuck
// nodes) with a sphere on a coupled body, a kinematic box and a plane, its site on a coupled
// body or moving kinematically. Every input class is checked along a random direction: the gel
// state (positions, velocities, anchors), body frames, Winv, applied wrenches, collider and site
// frames, and each parameter.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <vector>

extern "C" {
#include "gel.h"
}
#include "test_util.h"

namespace {

struct Scene {
  dtac_gel_model gm;
  dtac_gel_scratch s;
  std::vector<double> state;  // step-start state
  dtac_frame site;
  dtac_collider col[3];
  int col_slot[3];
  int site_slot;
  dtac_body bodies[2];
  int nbody;
  double gravity[3] = {0, 0, -9.81};
  double h;
  dtac_frame site_run;  // what a run steps with
  dtac_collider col_run[3];
};

// a 9 x 9 x 3 mm pad pressed by a sphere sliding over it and the corner of a tilted box
void MakeScene(Scene* sc, bool coupled) {
  dtac_gel_def def;
  dtac_gel_def_default(&def);
  def.size[0] = def.size[1] = 0.009;
  def.size[2] = 0.003;
  def.resolution = 0.001;
  def.young = 3e5;
  def.poisson = 0.45;
  def.friction = 0.6;
  char err[256];
  ASSERT_EQ(dtac_gel_model_make(&sc->gm, &def, 0, 0.002, err, sizeof(err)), 0) << err;
  ASSERT_EQ(dtac_gel_scratch_make(&sc->s, &sc->gm, 3), 0);
  sc->h = 4 * sc->gm.dt_stable;

  // site at the origin, gel along +z (contact face at z = 3 mm)
  memset(&sc->site, 0, sizeof(sc->site));
  sc->site.mat[0] = sc->site.mat[4] = sc->site.mat[8] = 1;
  sc->site.vel[2] = 0.002;
  sc->site.angvel[0] = 0.05;
  memset(sc->col, 0, sizeof(sc->col));
  for (auto& c : sc->col) {
    c.mat[0] = c.mat[4] = c.mat[8] = 1;
    c.mu = def.friction;
    c.kscale = 1;
  }
  // sphere: 2.5 mm radius, 0.25 mm into the face, sliding along x
  dtac_collider* ball = sc->col;
  ball->type = DTAC_GEOM_SPHERE;
  ball->geom = 1;
  ball->size[0] = 0.0025;
  ball->rbound = 0.004;
  ball->pos[0] = -0.0007;
  ball->pos[1] = 0.0004;
  ball->pos[2] = 0.003 + 0.0025 - 0.0004;
  ball->vel[0] = 0.02;
  ball->vel[2] = -0.003;
  ball->angvel[1] = 0.5;
  // box corner near the pad's corner, tilted
  dtac_collider* box = sc->col + 1;
  box->type = DTAC_GEOM_BOX;
  box->geom = 2;
  box->size[0] = box->size[1] = box->size[2] = 0.002;
  std::mt19937 rng(7);
  RandomRotation(rng, box->mat);
  box->rbound = 0.0045;
  box->pos[0] = 0.0045;
  box->pos[1] = -0.0045;
  box->pos[2] = 0.003 + 0.0015;
  box->vel[1] = -0.01;
  box->kscale = 0.6;
  // plane below the back face: never touched (the broad phase keeps it)
  dtac_collider* plane = sc->col + 2;
  plane->type = DTAC_GEOM_PLANE;
  plane->geom = 3;
  plane->pos[2] = -0.01;

  sc->nbody = coupled ? 2 : 0;
  sc->site_slot = coupled ? 0 : -1;
  sc->col_slot[0] = coupled ? 1 : -1;
  sc->col_slot[1] = sc->col_slot[2] = -1;
  memset(sc->bodies, 0, sizeof(sc->bodies));
  if (coupled) {
    // the site's body: origin 5 mm behind the site; the ball's body at its centre
    dtac_frame* B0 = &sc->bodies[0].frame;
    *B0 = sc->site;
    B0->pos[2] = -0.005;
    B0->vel[2] = sc->site.vel[2];
    dtac_frame* B1 = &sc->bodies[1].frame;
    memcpy(B1->pos, ball->pos, sizeof(B1->pos));
    memcpy(B1->mat, ball->mat, sizeof(B1->mat));
    memcpy(B1->vel, ball->vel, sizeof(B1->vel));
    memcpy(B1->angvel, ball->angvel, sizeof(B1->angvel));
    // site velocity consistent with its body's motion (as the plugin gives it)
    double r[3] = {0, 0, 0.005}, w[3];
    dtac_cross3(w, B0->angvel, r);
    for (int k = 0; k < 3; k++) sc->site.vel[k] = B0->vel[k] + w[k];
    std::normal_distribution<double> n01(0, 1);
    for (int b = 0; b < 2; b++) {
      double m = b ? 0.05 : 0.2, I = b ? 2e-6 : 1e-4;
      double* W = sc->bodies[b].Winv;
      for (int i = 0; i < 6; i++) W[7 * i] = i < 3 ? 1 / m : 1 / I;
      for (int i = 0; i < 6; i++) {
        for (int j = 0; j < i; j++) {
          double o = 0.05 * n01(rng) * std::sqrt(W[7 * i] * W[7 * j]);
          W[6 * i + j] = W[6 * j + i] = o;
        }
      }
      for (int k = 0; k < 6; k++) sc->bodies[b].wrench_app[k] = 0.01 * n01(rng);
    }
  }

  // warm up with the colliders held: contact, anchors and velocities develop
  dtac_state_layout L = dtac_gel_state_layout(&sc->gm);
  sc->state.assign(L.size, 0);
  dtac_gel_state_rest(&sc->gm, &sc->site, sc->state.data());
  dtac_frame site0 = sc->site;
  memset(site0.vel, 0, sizeof(site0.vel));
  memset(site0.angvel, 0, sizeof(site0.angvel));
  for (int i = 0; i < 6; i++) {
    dtac_gel_advance(&sc->gm, &sc->s, sc->state.data(), &site0, sc->col, 3, sc->gravity, sc->h, 4,
                     nullptr);
  }
}

void FreeScene(Scene* sc) {
  dtac_gel_scratch_free(&sc->s);
  dtac_gel_model_free(&sc->gm);
}

// every input of the step, flattened: state, site, colliders (pos mat vel angvel), bodies'
// frames, Winv, wrench_app, parameters
struct Inputs {
  std::vector<double> state;
  dtac_frame site;
  dtac_collider col[3];
  dtac_body bodies[2];
  double param[DTAC_NPARAM];
};

struct Outputs {
  std::vector<double> state;
  double dP[2][6], dQ[2][6];
};

Inputs Capture(const Scene& sc) {
  Inputs in;
  in.state = sc.state;
  in.site = sc.site;
  memcpy(in.col, sc.col, sizeof(in.col));
  memcpy(in.bodies, sc.bodies, sizeof(in.bodies));
  for (int k = 0; k < DTAC_NPARAM; k++) in.param[k] = dtac_gel_param_get(&sc.gm, k);
  return in;
}

// runs the step from `in` (tape may be null)
void RunStep(Scene* sc, const Inputs& in, Outputs* out, std::vector<double>* tape,
             dtac_gel_step* gstep) {
  char err[256];
  for (int k = 0; k < DTAC_NPARAM; k++) {
    ASSERT_EQ(dtac_gel_param_set(&sc->gm, k, in.param[k], err, sizeof(err)), 0) << err;
  }
  out->state = in.state;
  memset(gstep, 0, sizeof(*gstep));
  gstep->gm = &sc->gm;
  gstep->s = &sc->s;
  gstep->state = out->state.data();
  sc->site_run = in.site;
  memcpy(sc->col_run, in.col, sizeof(sc->col_run));
  for (auto& c : sc->col_run) c.mu = in.param[DTAC_PARAM_FRICTION];
  gstep->site = &sc->site_run;
  gstep->site_slot = sc->site_slot;
  gstep->col = sc->col_run;
  gstep->col_slot = sc->col_slot;
  gstep->ncol = 3;
  gstep->nsub = 4;
  memcpy(sc->bodies, in.bodies, sizeof(sc->bodies));
  if (tape) tape->assign(dtac_gels_tape_size(gstep, 1, sc->nbody), 0);
  dtac_gels_advance_tape(gstep, 1, sc->bodies, sc->nbody, sc->gravity, sc->h,
                         tape ? tape->data() : nullptr);
  for (int b = 0; b < 2; b++) {
    memcpy(out->dP[b], sc->bodies[b].dP, sizeof(out->dP[b]));
    memcpy(out->dQ[b], sc->bodies[b].dQ, sizeof(out->dQ[b]));
  }
}

struct Bars {
  std::vector<double> state;
  double dP[2][6], dQ[2][6];
};

double Loss(const Bars& w, const Outputs& o, const dtac_gel_model& gm) {
  dtac_state_layout L = dtac_gel_state_layout(&gm);
  double l = 0;
  for (int i = 0; i < L.placed; i++) l += w.state[i] * o.state[i];
  for (int b = 0; b < 2; b++) {
    for (int k = 0; k < 6; k++) l += w.dP[b][k] * o.dP[b][k] + w.dQ[b][k] * o.dQ[b][k];
  }
  return l;
}

class StepAdj : public ::testing::TestWithParam<bool> {};

TEST_P(StepAdj, MatchesCentralDifferences) {
  bool coupled = GetParam();
  Scene sc;
  MakeScene(&sc, coupled);
  Inputs base = Capture(sc);
  dtac_state_layout L = dtac_gel_state_layout(&sc.gm);
  std::mt19937 rng(11);
  std::normal_distribution<double> n01(0, 1);

  // random output cotangents (anchor ids carry none)
  Bars w;
  w.state.assign(L.size, 0);
  for (int i = 0; i < L.placed; i++) w.state[i] = n01(rng);
  for (int s = 0; s < sc.gm.nsurf; s++) w.state[L.anchor + 4 * s] = 0;
  for (int i = L.x; i < L.x + 3 * sc.gm.nnode; i++) w.state[i] *= 1e3;  // per metre
  for (int b = 0; b < 2; b++) {
    for (int k = 0; k < 6; k++) {
      w.dP[b][k] = coupled ? 10 * n01(rng) : 0;
      w.dQ[b][k] = coupled ? 1e3 * n01(rng) : 0;
    }
  }

  // reverse pass
  Outputs out;
  std::vector<double> tape;
  dtac_gel_step gstep;
  RunStep(&sc, base, &out, &tape, &gstep);
  int ncontact = gstep.rep.ncontact;
  EXPECT_GT(ncontact, 3);
  std::vector<double> sbar = w.state;
  dtac_collider_bar cbar[3];
  memset(cbar, 0, sizeof(cbar));
  dtac_gel_step_bar gb;
  memset(&gb, 0, sizeof(gb));
  gb.state = sbar.data();
  gb.col = cbar;
  dtac_body_bar bb[2];
  memset(bb, 0, sizeof(bb));
  for (int b = 0; b < 2; b++) {
    memcpy(bb[b].dP, w.dP[b], sizeof(bb[b].dP));
    memcpy(bb[b].dQ, w.dQ[b], sizeof(bb[b].dQ));
  }
  dtac_gels_advance_adj(&gstep, 1, sc.bodies, sc.nbody, sc.gravity, sc.h, tape.data(), &gb, bb);

  // the stick anchors of nodes in contact are part of the state
  int nanchor = 0;
  for (int s = 0; s < sc.gm.nsurf; s++) nanchor += base.state[L.anchor + 4 * s] >= 0;
  EXPECT_GT(nanchor, 3);

  // a directional derivative per input class: perturb(in, e) moves along a random direction d,
  // dot(bars) = <input cotangent, d>
  int n_checked = 0;
  auto check = [&](const char* name, std::function<void(Inputs*, double)> perturb, double analytic,
                   double e) {
    if (getenv("DTAC_FD_SCALE")) e *= atof(getenv("DTAC_FD_SCALE"));
    // fourth-order central difference: (8 (L(e) - L(-e)) - (L(2e) - L(-2e))) / 12 e
    double l[4];
    const double at[4] = {e, -e, 2 * e, -2 * e};
    for (int i = 0; i < 4; i++) {
      Inputs p = base;
      perturb(&p, at[i]);
      Outputs o;
      dtac_gel_step gs;
      RunStep(&sc, p, &o, nullptr, &gs);
      l[i] = Loss(w, o, sc.gm);
    }
    double fd = (8 * (l[0] - l[1]) - (l[2] - l[3])) / (12 * e);
    double err = std::fabs(fd - analytic) / std::fmax(std::fabs(fd), 1e-300);
    EXPECT_LT(err, 1e-5) << name << ": analytic " << analytic << " fd " << fd;
    if (std::fabs(fd) < 1e-12) ADD_FAILURE() << name << ": no sensitivity, fd " << fd;
    n_checked++;
  };

  // gel state: positions, velocities, anchor coordinates of stuck nodes
  for (int part = 0; part < 3; part++) {
    std::vector<double> d(L.size, 0);
    double dot = 0;
    for (int i = 0; i < L.placed; i++) {
      bool in_x = i < L.v, in_v = i >= L.v && i < L.anchor;
      bool in_a = i >= L.anchor && (i - L.anchor) % 4 != 0 &&
                  base.state[L.anchor + 4 * ((i - L.anchor) / 4)] >= 0;
      if ((part == 0 && in_x) || (part == 1 && in_v) || (part == 2 && in_a)) {
        d[i] = n01(rng) * (part == 1 ? 1e-2 : 1e-4);
        dot += sbar[i] * d[i];
      }
    }
    const char* names[3] = {"state x", "state v", "state anchors"};
    check(
        names[part],
        [&](Inputs* in, double e) {
          for (int i = 0; i < L.size; i++) in->state[i] += e * d[i];
        },
        dot, 1e-4);
  }

  // colliders' and the site's frames: pos, mat, vel, angvel (slotted colliders: pos and mat)
  auto frame_dir = [&](double* d, double scale_pos) {
    for (int k = 0; k < 18; k++) d[k] = n01(rng) * (k < 3 ? scale_pos : (k < 12 ? 1e-2 : 1e-2));
  };
  // the plane behind the back face is a candidate but never touched: no cotangent
  for (int k = 0; k < 18; k++) EXPECT_EQ(((const double*)(cbar + 2))[k], 0);
  for (int c = 0; c < 2; c++) {
    double d[18];
    frame_dir(d, 1e-4);
    if (sc.col_slot[c] >= 0) {
      for (int k = 12; k < 18; k++) d[k] = 0;
    }
    double dot = 0;
    const double* cb = (const double*)(cbar + c);
    for (int k = 0; k < 18; k++) dot += cb[k] * d[k];
    std::string name = "collider " + std::to_string(c);
    check(
        name.c_str(),
        [&, c](Inputs* in, double e) {
          dtac_collider* cc = in->col + c;
          for (int k = 0; k < 3; k++) {
            cc->pos[k] += e * d[k];
            cc->vel[k] += e * d[12 + k];
            cc->angvel[k] += e * d[15 + k];
          }
          for (int k = 0; k < 9; k++) cc->mat[k] += e * d[3 + k];
        },
        dot, 1e-3);
  }
  {
    double d[18];
    frame_dir(d, 1e-4);
    double dot = 0;
    const double* sb = (const double*)&gb.site;
    for (int k = 0; k < 18; k++) dot += sb[k] * d[k];
    check(
        "site",
        [&](Inputs* in, double e) {
          double* f = (double*)&in->site;
          for (int k = 0; k < 18; k++) f[k] += e * d[k];
        },
        dot, 1e-3);
  }

  // bodies: frames, Winv, applied wrenches
  for (int b = 0; b < sc.nbody; b++) {
    double d[18];
    frame_dir(d, 1e-4);
    double dot = 0;
    const double* fb = (const double*)&bb[b].frame;
    for (int k = 0; k < 18; k++) dot += fb[k] * d[k];
    std::string name = "body frame " + std::to_string(b);
    check(
        name.c_str(),
        [&, b](Inputs* in, double e) {
          double* f = (double*)&in->bodies[b].frame;
          for (int k = 0; k < 18; k++) f[k] += e * d[k];
        },
        dot, 1e-3);
    double dW[36], dA[6], dotW = 0, dotA = 0;
    for (int k = 0; k < 36; k++) {
      dW[k] = n01(rng) * sc.bodies[b].Winv[7 * (k % 6)];
      dotW += bb[b].Winv[k] * dW[k];
    }
    for (int k = 0; k < 6; k++) {
      dA[k] = n01(rng) * 0.01;
      dotA += bb[b].wrench_app[k] * dA[k];
    }
    name = "body Winv " + std::to_string(b);
    check(
        name.c_str(),
        [&, b](Inputs* in, double e) {
          for (int k = 0; k < 36; k++) in->bodies[b].Winv[k] += e * dW[k];
        },
        dotW, 1e-4);
    name = "body wrench_app " + std::to_string(b);
    check(
        name.c_str(),
        [&, b](Inputs* in, double e) {
          for (int k = 0; k < 6; k++) in->bodies[b].wrench_app[k] += e * dA[k];
        },
        dotA, 1e-2);
  }

  // parameters, one at a time (relative perturbation)
  const double* pbar = (const double*)&gb.param;
  for (int k = 0; k < DTAC_NPARAM; k++) {
    double v = base.param[k];
    if (v == 0) continue;
    std::string name = std::string("param ") + dtac_gel_param_names[k];
    check(
        name.c_str(), [&, k, v](Inputs* in, double e) { in->param[k] += e * v; }, pbar[k] * v,
        1e-5);
  }
  EXPECT_EQ(n_checked, 3 + 2 + 1 + 3 * sc.nbody + DTAC_NPARAM);
  FreeScene(&sc);
}

INSTANTIATE_TEST_SUITE_P(Kinematic, StepAdj, ::testing::Values(false));
INSTANTIATE_TEST_SUITE_P(Coupled, StepAdj, ::testing::Values(true));

}  // namespace
