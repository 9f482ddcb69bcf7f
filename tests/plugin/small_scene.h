// small_scene.h: a small, fast scene for plugin tests: a 10 x 10 x 4 mm gel at 2 mm resolution
// on a finger pressed by a position actuator onto a sphere that can slide sideways.
#ifndef DTAC_TESTS_PLUGIN_SMALL_SCENE_H_
#define DTAC_TESTS_PLUGIN_SMALL_SCENE_H_

#include <string>

// extra: additional <config> lines for the gel instance
inline std::string SmallScene(const std::string& extra = "", const std::string& site = "gel_site") {
  auto given = [&](const char* key) {
    return extra.find(std::string("key=\"") + key + "\"") != std::string::npos;
  };
  std::string size = given("size") ? "" : R"(<config key="size" value="0.01 0.01 0.004"/>)";
  std::string res = given("resolution") ? "" : R"(<config key="resolution" value="0.002"/>)";
  return R"(
<mujoco model="small">
  <option timestep="0.002"/>
  <extension>
    <plugin plugin="difftac.elastomer">
      <instance name="gel">
        <config key="site" value=")" + site + R"("/>
        )" + size + res + R"(
        <config key="contype" value="0"/>
        <config key="conaffinity" value="2"/>
)" + extra + R"(
      </instance>
    </plugin>
  </extension>
  <worldbody>
    <geom name="floor" type="plane" size="0.1 0.1 0.01"/>
    <body name="ball" pos="0 0 0.005">
      <joint name="bx" type="slide" axis="1 0 0" stiffness="20" damping="0.5"/>
      <geom name="ball" type="sphere" size="0.005" mass="0.01" contype="2" conaffinity="0"/>
    </body>
    <body name="finger" pos="0 0 0.0145" gravcomp="1">
      <joint name="fz" type="slide" axis="0 0 1" damping="2"/>
      <joint name="fx" type="slide" axis="1 0 0" damping="2"/>
      <geom name="holder" type="box" size="0.006 0.006 0.001" pos="0 0 0.001" mass="0.05"/>
      <site name="gel_site" euler="180 0 0"/>
    </body>
  </worldbody>
  <actuator>
    <position name="fz" joint="fz" kp="500"/>
    <position name="fx" joint="fx" kp="500"/>
  </actuator>
</mujoco>)";
}

#endif  // DTAC_TESTS_PLUGIN_SMALL_SCENE_H_
