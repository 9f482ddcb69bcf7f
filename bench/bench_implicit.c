// bench_implicit: the implicit gel step (src/implicit.c) against the explicit step
// (dtac_gel_advance with dtac_gel_substeps) on the default pad (dtac_gel_def_default: 1 mm,
// 2860 nodes, 12600 tets) pressed by a sphere, in one process, one thread: each linear-solve
// strategy of issue #13 and the linear material, with a profile of where the time goes.
// stdout: one JSON object per line; stderr: a short table.
//   bench_implicit [nramp nhold]   (default 10 10: the sphere ramps down 0.5 mm, then is held)
// Timing: CLOCK_MONOTONIC wall clock over each gel step alone (no MuJoCo), and the process's CPU
// time (the ratio to quote on a machine shared with other work: cpu_ratio_to_explicit).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gel.h"
#include "implicit.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

// this process's CPU time: on a shared machine it leaves out the time other processes ran
static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

#define TIMESTEP 0.002  // MuJoCo's default step, s
#define RADIUS 0.006    // sphere radius, m
#define DEPTH 0.0005    // press depth, m

// the sphere's centre height at step i (1-based) of the press
static double ball_z(const dtac_gel_model* gm, int i, int nramp) {
  double f = i < nramp ? (double)i / nramp : 1;
  return gm->def.size[2] + RADIUS - f * DEPTH;
}

static void make_ball(const dtac_gel_model* gm, dtac_collider* b) {
  memset(b, 0, sizeof(*b));
  b->type = 2;  // mjGEOM_SPHERE
  b->geom = 1;
  b->size[0] = RADIUS;
  b->rbound = RADIUS;
  b->mat[0] = b->mat[4] = b->mat[8] = 1;
  b->mu = gm->def.friction;
  b->pos[2] = ball_z(gm, 0, 1);
}

// contact force on the ball, N (z)
static double ball_force(const dtac_gel_model* gm, const double* st, const dtac_collider* b) {
  dtac_state_layout L = dtac_gel_state_layout(gm);
  double ft[6] = {0, 0, 0, 0, 0, 0};
  double* v0 = (double*)calloc(3 * gm->nnode, sizeof(double));
  dtac_gel_contact(gm, st, v0, st + L.anchor, NULL, b, 1, NULL, ft);
  free(v0);
  return ft[2];
}

int main(int argc, char** argv) {
  int nramp = argc > 1 ? atoi(argv[1]) : 10;
  int nhold = argc > 2 ? atoi(argv[2]) : 10;
  int nstep = nramp + nhold;
  dtac_gel_def def;
  dtac_gel_def_default(&def);
  dtac_gel_model gm;
  char err[512];
  if (dtac_gel_model_make(&gm, &def, 0, TIMESTEP, err, sizeof(err))) {
    fprintf(stderr, "bench_implicit: %s\n", err);
    return 1;
  }
  dtac_gel_scratch s;
  dtac_gel_scratch_make(&s, &gm, 1);
  dtac_state_layout L = dtac_gel_state_layout(&gm);
  double* st = (double*)malloc(sizeof(double) * L.size);
  dtac_frame site = {{0, 0, 0}, {1, 0, 0, 0, 1, 0, 0, 0, 1}, {0, 0, 0}, {0, 0, 0}};
  const double grav[3] = {0, 0, -9.81};
  dtac_collider ball;
  int nsub = dtac_gel_substeps(&gm, TIMESTEP);
  fprintf(stderr,
          "bench_implicit: default pad %d nodes, %d tets, %d substeps per %g s step; "
          "%d ramp + %d hold steps, sphere R %g mm to %g mm\n",
          gm.nnode, gm.ntet, nsub, TIMESTEP, nramp, nhold, 1e3 * RADIUS, 1e3 * DEPTH);

  // explicit reference
  dtac_gel_state_rest(&gm, &site, st);
  make_ball(&gm, &ball);
  double t_exp = 0, c_exp = 0;
  for (int i = 1; i <= nstep; i++) {
    double z = ball_z(&gm, i, nramp);
    ball.vel[2] = (z - ball.pos[2]) / TIMESTEP;
    double t0 = now_s(), c0 = cpu_s();
    dtac_gel_advance(&gm, &s, st, &site, &ball, 1, grav, TIMESTEP, nsub, NULL);
    t_exp += now_s() - t0;
    c_exp += cpu_s() - c0;
    ball.pos[2] = z;
    ball.vel[2] = 0;
  }
  double exp_ms = 1e3 * t_exp / nstep, exp_cpu_ms = 1e3 * c_exp / nstep;
  double f_exp = ball_force(&gm, st, &ball);
  printf(
      "{\"bench\":\"implicit\",\"case\":\"explicit\",\"nnode\":%d,\"ntet\":%d,\"nsub\":%d,"
      "\"step_ms\":%.3f,\"cpu_ms\":%.3f,\"rtf\":%.4f,\"force_n\":%.6g}\n",
      gm.nnode, gm.ntet, nsub, exp_ms, exp_cpu_ms, 1e3 * TIMESTEP / exp_ms, f_exp);
  fprintf(stderr, "%-34s %9.2f ms/step (cpu %.2f)  RTF %.4f  force %.5g N\n", "explicit", exp_ms,
          exp_cpu_ms, 1e3 * TIMESTEP / exp_ms, f_exp);

  // implicit, each strategy
  struct {
    const char* name;
    int solver, material, project;
  } cases[] = {
      {"factor_every_iteration", DTAC_SOLVE_FACTOR, DTAC_MAT_NEOHOOKEAN, 1},
      {"pcg_kept_factor", DTAC_SOLVE_PCG, DTAC_MAT_NEOHOOKEAN, 1},
      {"matfree_kept_factor", DTAC_SOLVE_MATFREE, DTAC_MAT_NEOHOOKEAN, 1},
      {"pcg_kept_factor_true_hessian", DTAC_SOLVE_PCG, DTAC_MAT_NEOHOOKEAN, 0},
      {"matfree_kept_factor_true_hessian", DTAC_SOLVE_MATFREE, DTAC_MAT_NEOHOOKEAN, 0},
      {"linear_pcg_kept_factor", DTAC_SOLVE_PCG, DTAC_MAT_LINEAR, 1},
  };
  for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
    // DTAC_ONLY=substring runs only the matching cases
    if (getenv("DTAC_ONLY") && !strstr(cases[c].name, getenv("DTAC_ONLY"))) continue;
    double t_make = now_s();
    dtac_implicit* im = dtac_implicit_make(&gm, 1, err, sizeof(err));
    t_make = now_s() - t_make;
    if (!im) {
      fprintf(stderr, "bench_implicit: %s\n", err);
      return 1;
    }
    dtac_implicit_params p;
    dtac_implicit_params_default(&p);
    p.solver = cases[c].solver;
    p.material = cases[c].material;
    p.project = cases[c].project;
    if (getenv("DTAC_CG_ITER")) p.cg_iterations = atoi(getenv("DTAC_CG_ITER"));
    if (getenv("DTAC_TOL")) p.tolerance = atof(getenv("DTAC_TOL"));
    if (getenv("DTAC_NO_UPDATE")) p.contact_update = 0;
    if (getenv("DTAC_CGTOL")) p.cg_tolerance = atof(getenv("DTAC_CGTOL"));
    dtac_gel_state_rest(&gm, &site, st);
    make_ball(&gm, &ball);
    double t = 0, ct = 0, tg = 0, ta = 0, tf = 0, ts = 0, tc = 0, res = 0;
    int nit = 0, ncg = 0, nfac = 0, nbad = 0, nupd = 0;
    for (int i = 1; i <= nstep; i++) {
      ball.pos[2] = ball_z(&gm, i, nramp);
      dtac_implicit_report r;
      double t0 = now_s(), c0 = cpu_s();
      dtac_implicit_step(im, &gm, st, &site, &site, &ball, 1, grav, TIMESTEP, &p, &r);
      t += now_s() - t0;
      ct += cpu_s() - c0;
      if (getenv("DTAC_PERSTEP"))
        fprintf(stderr, "  step %2d: %7.2f ms newton %d cg %d upd %d fact %d residual %.2g\n", i,
                1e3 * (now_s() - t0), r.iterations, r.ncg, r.nupdate, r.nfactor, r.residual);
      tg += r.t_grad;
      ta += r.t_assemble;
      tf += r.t_factor;
      ts += r.t_solve;
      tc += r.t_contact;
      nit += r.iterations;
      ncg += r.ncg;
      nfac += r.nfactor;
      nupd += r.nupdate;
      nbad += r.status != DTAC_IMPLICIT_OK;
      res = fmax(res, r.residual);
    }
    double ms = 1e3 * t / nstep, cms = 1e3 * ct / nstep;
    double f = ball_force(&gm, st, &ball);
    // the reverse pass of the rollout (default solver only): one VJP per step, from the states
    double adj_ms = 0;
    if (cases[c].solver == DTAC_SOLVE_PCG && !cases[c].project &&
        cases[c].material == DTAC_MAT_NEOHOOKEAN) {
      int n3 = 3 * gm.nnode;
      double* traj = (double*)malloc(sizeof(double) * L.size * (nstep + 1));
      double* xb = (double*)calloc(n3, sizeof(double));
      double* vb = (double*)calloc(n3, sizeof(double));
      double* x0b = (double*)calloc(n3, sizeof(double));
      double* v0b = (double*)calloc(n3, sizeof(double));
      dtac_gel_state_rest(&gm, &site, traj);
      make_ball(&gm, &ball);
      for (int i = 1; i <= nstep; i++) {
        memcpy(traj + L.size * i, traj + L.size * (i - 1), sizeof(double) * L.size);
        ball.pos[2] = ball_z(&gm, i, nramp);
        dtac_implicit_step(im, &gm, traj + L.size * i, &site, &site, &ball, 1, grav, TIMESTEP, &p,
                           NULL);
      }
      for (int i = 0; i < n3; i++) xb[i] = (i % 3 == 2) ? 1 : 0;  // d (sum of z) / d everything
      double t0 = now_s();
      for (int i = nstep; i >= 1; i--) {
        memset(x0b, 0, sizeof(double) * n3);
        memset(v0b, 0, sizeof(double) * n3);
        dtac_implicit_bar bar;
        memset(&bar, 0, sizeof(bar));
        bar.x0 = x0b;
        bar.v0 = v0b;
        ball.pos[2] = ball_z(&gm, i, nramp);
        dtac_implicit_step_adj(im, &gm, traj + L.size * (i - 1), traj + L.size * i, &site, &ball, 1,
                               grav, TIMESTEP, &p, xb, vb, &bar);
        memcpy(xb, x0b, sizeof(double) * n3);
        memcpy(vb, v0b, sizeof(double) * n3);
      }
      adj_ms = 1e3 * (now_s() - t0) / nstep;
      free(traj);
      free(xb);
      free(vb);
      free(x0b);
      free(v0b);
    }
    printf(
        "{\"bench\":\"implicit\",\"case\":\"%s\",\"step_ms\":%.3f,\"rtf\":%.4f,"
        "\"ratio_to_explicit\":%.3f,\"cpu_ms\":%.3f,\"cpu_ratio_to_explicit\":%.3f,"
        "\"newton_per_step\":%.2f,\"cg_per_step\":%.2f,"
        "\"factorizations\":%d,\"rank1_updates\":%d,\"not_converged\":%d,\"max_residual\":%.3g,"
        "\"ms_grad\":%.3f,\"ms_assemble\":%.3f,\"ms_factor\":%.3f,\"ms_solve\":%.3f,"
        "\"ms_contact\":%.3f,\"adjoint_ms\":%.3f,\"adjoint_over_forward\":%.3f,\"make_ms\":%.1f,"
        "\"force_n\":%.6g,\"force_vs_explicit\":%.5f}\n",
        cases[c].name, ms, 1e3 * TIMESTEP / ms, exp_ms / ms, cms, exp_cpu_ms / cms,
        (double)nit / nstep, (double)ncg / nstep, nfac, nupd, nbad, res, 1e3 * tg / nstep,
        1e3 * ta / nstep, 1e3 * tf / nstep, 1e3 * ts / nstep, 1e3 * tc / nstep, adj_ms, adj_ms / ms,
        1e3 * t_make, f, f / f_exp);
    fprintf(stderr,
            "%-34s %9.2f ms/step  RTF %.4f  x%.1f (cpu x%.1f)  newton %.2f cg %.1f fact %d upd %d  "
            "[grad %.1f asm %.1f fact %.1f solve %.1f] ms  force %.5g N\n",
            cases[c].name, ms, 1e3 * TIMESTEP / ms, exp_ms / ms, exp_cpu_ms / cms,
            (double)nit / nstep, (double)ncg / nstep, nfac, nupd, 1e3 * tg / nstep,
            1e3 * ta / nstep, 1e3 * tf / nstep, 1e3 * ts / nstep, f);
    if (adj_ms > 0) {
      fprintf(stderr, "%-34s %9.2f ms/step  (reverse / forward %.2f)\n", "  its VJP (reverse pass)",
              adj_ms, adj_ms / ms);
    }
    dtac_implicit_free(im);
  }
  free(st);
  dtac_gel_scratch_free(&s);
  dtac_gel_model_free(&gm);
  return 0;
}
