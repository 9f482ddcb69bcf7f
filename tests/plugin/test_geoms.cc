// Geoms: the gel presses on every supported geom type with a force that pushes back, and a mesh
// (its convex hull) acts like the primitive of the same shape.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "common.h"

namespace {

// contact wrench (z) after pressing; also checks everything stayed finite
double Press(const std::string& xml, int* ncontact) {
  Scene s = Scene::FromString(xml);
  EXPECT_TRUE(s.m) << s.err;
  if (!s.m) return NAN;
  int gel = dtac_gel_find(s.m, "gel");
  for (int i = 0; i < 60; i++) {
    s.d->ctrl[0] = -0.0007;  // face 0.5 mm below the geom's top
    mj_step(s.m, s.d);
  }
  for (int i = 0; i < s.m->npluginstate; i++) EXPECT_TRUE(std::isfinite(s.d->plugin_state[i]));
  dtac_gel_info info;
  dtac_gel_get_info(s.m, s.d, gel, &info);
  *ncontact = info.ncontact;
  mjtNum w[6];
  dtac_gel_contact_wrench(s.m, s.d, gel, w);
  return w[2];
}

}  // namespace

TEST(Geoms, EverySupportedTypePushesBack) {
  for (const GeomCase& c : GeomCases()) {
    int nc = 0;
    double fz = Press(PressOnGeom(c.geom, c.asset), &nc);
    std::printf("%-10s contact nodes %3d  force %.4f N\n", c.name, nc, fz);
    EXPECT_GT(nc, 0) << c.name;
    EXPECT_GT(fz, 0.01) << c.name;
  }
}

TEST(Geoms, MeshActsLikeItsPrimitive) {
  // the same 6 x 6 x 4 mm block as a box geom and as a mesh of its 8 corners
  std::vector<GeomCase> cases = GeomCases();
  auto find = [&](const char* name) {
    for (const GeomCase& c : cases) {
      if (std::string(c.name) == name) return c;
    }
    return GeomCase{name, "", ""};
  };
  GeomCase box = find("box"), mesh = find("mesh");
  int nb = 0, nm = 0;
  double fb = Press(PressOnGeom(box.geom, box.asset), &nb);
  double fm = Press(PressOnGeom(mesh.geom, mesh.asset), &nm);
  std::printf("box %.5f N (%d nodes), mesh %.5f N (%d nodes)\n", fb, nb, fm, nm);
  EXPECT_EQ(nb, nm);
  EXPECT_NEAR(fm, fb, 1e-6 * fb);
}

// draws the scene of s into scn (made here; the caller frees it), as a viewer would
static void Draw(const Scene& s, mjvScene* scn) {
  mjv_defaultScene(scn);
  mjv_makeScene(s.m, scn, 5000);
  mjvOption opt;
  mjv_defaultOption(&opt);
  mjvCamera cam;
  mjv_defaultCamera(&cam);
  mjvPerturb pert;
  mjv_defaultPerturb(&pert);
  mjv_updateScene(s.m, s.d, &opt, &pert, &cam, mjCAT_ALL, scn);
}

TEST(Visualize, DrawsDeformedFaceColouredByIndentation) {
  Scene s = Scene::FromString(PressOnGeom(R"(<geom type="sphere" size="0.004" pos="0 0 0.006"/>)"));
  ASSERT_TRUE(s.m) << s.err;
  for (int i = 0; i < 60; i++) {
    s.d->ctrl[0] = -0.0007;
    mj_step(s.m, s.d);
  }
  mjvScene scn;
  Draw(s, &scn);
  int ntri = 0;
  float rmin = 1, rmax = 0;
  for (int i = 0; i < scn.ngeom; i++) {
    const mjvGeom& g = scn.geoms[i];
    if (g.type == mjGEOM_TRIANGLE && g.objtype == mjOBJ_PLUGIN) {
      ntri++;
      rmin = std::fmin(rmin, g.rgba[0]);
      rmax = std::fmax(rmax, g.rgba[0]);
    }
  }
  dtac_gel_info info;
  dtac_gel_get_info(s.m, s.d, dtac_gel_find(s.m, "gel"), &info);
  EXPECT_EQ(ntri, 2 * info.ncell[0] * info.ncell[1]);
  EXPECT_GT(rmax - rmin, 0.05f);  // the dent is coloured differently from the flat face
  mjv_freeScene(&scn);
}

TEST(Visualize, DrawingBeforeTheFirstForwardLeavesTheGelAlone) {
  // a viewer may draw a fresh mjData before any kinematics; the gel must not be placed at a
  // site that has no pose yet (it then blew up on the first step)
  Scene s = Scene::FromString(PressOnGeom(R"(<geom type="sphere" size="0.004" pos="0 0 0.006"/>)"));
  ASSERT_TRUE(s.m) << s.err;
  mjvScene scn;
  Draw(s, &scn);
  for (int i = 0; i < 5; i++) mj_step(s.m, s.d);
  dtac_gel_info info;
  dtac_gel_get_info(s.m, s.d, dtac_gel_find(s.m, "gel"), &info);
  EXPECT_EQ(info.nwarning, 0);
  for (int i = 0; i < s.m->npluginstate; i++) ASSERT_TRUE(std::isfinite(s.d->plugin_state[i]));
  EXPECT_LT(dtac_gel_kinetic_energy(s.m, s.d, dtac_gel_find(s.m, "gel")), 1e-9);
  mjv_freeScene(&scn);
}
