// press.c: presses a GelSight-Mini-sized gel into a sphere, a cylinder and a box edge and prints
// force against indentation.
//   ./build/examples/press [models/press.xml]
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <difftac/difftac.h>
#include <mujoco/mujoco.h>

// settles the finger at (x, z) for `t` seconds
static void hold(const mjModel* m, mjData* d, double x, double z, double t) {
  d->ctrl[0] = x;
  d->ctrl[1] = z;
  int n = (int)ceil(t / m->opt.timestep);
  for (int i = 0; i < n; i++) mj_step(m, d);
}

int main(int argc, char** argv) {
  const char* path = argc > 1 ? argv[1] : DTAC_MODELS "/press.xml";
  mj_loadPluginLibrary(DTAC_LIB);
  char err[1000] = "";
  mjModel* m = mj_loadXML(path, NULL, err, sizeof(err));
  if (!m) {
    fprintf(stderr, "could not load %s: %s\n", path, err);
    return 1;
  }
  mjData* d = mj_makeData(m);
  int gel = dtac_gel_find(m, "gel");
  dtac_gel_info info;
  dtac_gel_get_info(m, d, gel, &info);
  printf("difftac %s on MuJoCo %s\n", dtac_version(), mj_versionString());
  printf("gel: %d nodes, %d tets, %d substeps of %.3g s per %.3g s step (mass %.3g g)\n",
         info.nnode, info.ntet, info.nsub, info.dt_sub, m->opt.timestep, 1e3 * info.mass);

  const char* names[3] = {"sphere", "cylinder", "edge"};
  const double xs[3] = {-0.05, 0, 0.05};
  const double top = 0.02, thick = 0.004;
  int site = info.site;
  for (int k = 0; k < 3; k++) {
    printf("\n%-8s %14s %12s %12s\n", names[k], "indentation_mm", "force_N", "contacts");
    mj_resetData(m, d);
    d->qpos[0] = xs[k];
    d->qpos[1] = -0.006;  // gel face at the indenter top
    hold(m, d, xs[k], -0.006, 0.02);
    for (int s = 0; s <= 6; s++) {
      // commanded gel face 0 .. 1.2 mm below the indenter top: face = 0.026 + qz
      double target = -0.006 - 0.0002 * s;
      hold(m, d, xs[k], target, 0.06);
      double face = d->site_xpos[3 * site + 2] - thick;
      mjtNum w[6];
      dtac_gel_contact_wrench(m, d, gel, w);
      dtac_gel_get_info(m, d, gel, &info);
      printf("%-8s %14.3f %12.4f %12d\n", "", 1e3 * (top - face), w[2], info.ncontact);
    }
  }
  mj_deleteData(d);
  mj_deleteModel(m);
  return 0;
}
