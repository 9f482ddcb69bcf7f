// grasp.c: a parallel gripper with a gel pad on each finger closes on a 50 g box, lifts it and
// holds it; prints the box height, the pads' normal forces and the slip, phase by phase.
//   ./build/examples/grasp [models/grasp.xml]
#include <math.h>
#include <stdio.h>

#include <difftac/difftac.h>
#include <mujoco/mujoco.h>

// the control sequence documented in models/grasp.xml (times in s, lengths in m)
static double lift_target(double t) {
  double s = (t - 0.5) / 0.6;
  s = s < 0 ? 0 : (s > 1 ? 1 : s);
  return 0.04 * s * s * (3 - 2 * s);
}

int main(int argc, char** argv) {
  const char* path = argc > 1 ? argv[1] : DTAC_MODELS "/grasp.xml";
  mj_loadPluginLibrary(DTAC_LIB);
  char err[1000] = "";
  mjModel* m = mj_loadXML(path, NULL, err, sizeof(err));
  if (!m) {
    fprintf(stderr, "could not load %s: %s\n", path, err);
    return 1;
  }
  mjData* d = mj_makeData(m);
  int gel[2] = {dtac_gel_find(m, "left_gel"), dtac_gel_find(m, "right_gel")};
  int box = mj_name2id(m, mjOBJ_BODY, "object");
  int base = mj_name2id(m, mjOBJ_BODY, "gripper");
  int lift = mj_name2id(m, mjOBJ_ACTUATOR, "lift");
  int grip = mj_name2id(m, mjOBJ_ACTUATOR, "grip");
  if (gel[0] < 0 || gel[1] < 0 || box < 0 || base < 0 || lift < 0 || grip < 0) {
    fprintf(stderr, "%s lacks the gels, bodies or actuators of models/grasp.xml\n", path);
    return 1;
  }
  dtac_gel_info info;
  dtac_gel_get_info(m, d, gel[0], &info);
  printf("two gels of %d nodes, %d tets, %d substeps per %.3g s step\n", info.nnode, info.ntet,
         info.nsub, m->opt.timestep);
  printf("%6s %-8s %10s %12s %12s %10s %9s\n", "t_s", "phase", "box_z_mm", "left_Fn_N",
         "right_Fn_N", "slip_mm", "contacts");

  double rel0 = NAN;
  int nstep = (int)lround(2.6 / m->opt.timestep);
  for (int i = 1; i <= nstep; i++) {
    double t = d->time;
    d->ctrl[lift] = lift_target(t);
    d->ctrl[grip] = (t < 0.1 || t >= 2.2) ? 0 : 0.02;
    mj_step(m, d);
    // the box's height relative to the gripper base, fixed once the hold starts
    double rel = d->xpos[3 * box + 2] - d->xpos[3 * base + 2];
    if (d->time >= 1.2 && isnan(rel0)) rel0 = rel;
    if (i % 100 == 0) {
      const char* phase = t < 0.1 ? "open" : t < 0.5 ? "close" : t < 1.1 ? "lift" : t < 2.2 ? "hold"
                                                                                           : "release";
      mjtNum w[2][6];
      int nc = 0;
      for (int k = 0; k < 2; k++) {
        dtac_gel_contact_wrench(m, d, gel[k], w[k]);
        dtac_gel_get_info(m, d, gel[k], &info);
        nc += info.ncontact;
      }
      printf("%6.2f %-8s %10.2f %12.3f %12.3f %10.4f %9d\n", d->time, phase,
             1e3 * d->xpos[3 * box + 2], fabs(w[0][0]), fabs(w[1][0]),
             isnan(rel0) || t >= 2.2 ? 0.0 : 1e3 * (rel - rel0), nc);
      fflush(stdout);
    }
  }
  mj_deleteData(d);
  mj_deleteModel(m);
  return 0;
}
