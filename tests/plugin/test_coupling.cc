// Coupling: a light free box squeezed between two stiff gel pads at MuJoCo's 2 ms step. The
// pads' stiffness (about 3e4 N/m each) puts dt sqrt(2k/m) = 2.2 above the explicit limit of 2:
// explicit coupling must grow, substep coupling must stay bounded.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "common.h"

namespace {

std::string Squeeze(const std::string& coupling) {
  std::string pad = R"(<config key="size" value="0.02 0.02 0.004"/>
        <config key="resolution" value="0.002"/>
        <config key="coupling" value=")" + coupling + R"("/>)";
  return R"(
<mujoco>
  <option timestep="0.002" gravity="0 0 0"/>
  <extension>
    <plugin plugin="difftac.elastomer">
      <instance name="left"><config key="site" value="ls"/>)" + pad + R"(</instance>
      <instance name="right"><config key="site" value="rs"/>)" + pad + R"(</instance>
    </plugin>
  </extension>
  <worldbody>
    <body name="lpad" pos="-0.0192 0 0"><site name="ls" zaxis="1 0 0"/></body>
    <body name="rpad" pos="0.0192 0 0"><site name="rs" zaxis="-1 0 0"/></body>
    <body name="box">
      <freejoint/>
      <geom type="box" size="0.015 0.015 0.015" mass="0.05"/>
    </body>
  </worldbody>
</mujoco>)";
}

// largest box speed over the last 0.1 s of a 0.8 s squeeze (pads 0.2 mm from the box, pushed)
double MaxSpeed(const std::string& coupling, int* nwarning) {
  Scene s = Scene::FromString(Squeeze(coupling));
  EXPECT_TRUE(s.m) << s.err;
  if (!s.m) return NAN;
  s.d->qvel[0] = 0.05;  // a push toward the right pad
  double vmax = 0;
  for (int i = 0; i < 400; i++) {
    mj_step(s.m, s.d);
    if (i >= 350) vmax = std::fmax(vmax, std::fabs(s.d->qvel[0]));
    if (!std::isfinite(s.d->qvel[0])) return INFINITY;
  }
  dtac_gel_info a, b;
  dtac_gel_get_info(s.m, s.d, 0, &a);
  dtac_gel_get_info(s.m, s.d, 1, &b);
  *nwarning = a.nwarning + b.nwarning;
  return vmax;
}

}  // namespace

TEST(Coupling, SubstepCouplingHoldsStiffSqueezeThatExplicitCouplingCannot) {
  int warn_sub = 0, warn_exp = 0;
  double v_sub = MaxSpeed("substep", &warn_sub);
  double v_exp = MaxSpeed("explicit", &warn_exp);
  std::printf("box speed over 0.7-0.8 s: substep %.3g m/s, explicit %.3g m/s\n", v_sub, v_exp);
  EXPECT_EQ(warn_sub, 0);
  EXPECT_LT(v_sub, 0.1);          // bounded: no faster than a fraction of the push
  EXPECT_GT(v_exp, 10 * v_sub);   // the explicit scheme grows
}

TEST(Errors, UnknownCouplingIsLoadError) {
  std::string xml = Squeeze("implicit");
  Scene s = Scene::FromString(xml);
  ASSERT_EQ(s.m, nullptr);
  EXPECT_NE(s.err.find("coupling"), std::string::npos) << s.err;
  EXPECT_NE(s.err.find("implicit"), std::string::npos) << s.err;
}
