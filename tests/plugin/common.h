// common.h: helpers for plugin tests: load libdifftac once, load scenes from files or strings.
#ifndef DTAC_TESTS_PLUGIN_COMMON_H_
#define DTAC_TESTS_PLUGIN_COMMON_H_

#include <difftac/difftac.h>
#include <mujoco/mujoco.h>

#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <vector>

inline void dtac_test_load_library() {
  static bool loaded = false;
  if (!loaded) {
    mj_loadPluginLibrary(DTAC_LIB);
    loaded = true;
  }
}

// the text of models/<name> ("" if it cannot be read)
inline std::string ReadModelFile(const char* name) {
  std::string path = std::string(DTAC_MODELS) + "/" + name, xml;
  FILE* f = fopen(path.c_str(), "rb");
  if (!f) return xml;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) xml.append(buf, n);
  fclose(f);
  return xml;
}

// xml with `device` set on every elastomer (before each instance's `site` key)
inline std::string WithDevice(std::string xml, const std::string& device) {
  const std::string key = "<config key=\"site\"";
  for (size_t p = xml.find(key); p != std::string::npos; p = xml.find(key, p + 1)) {
    std::string cfg = "<config key=\"device\" value=\"" + device + "\"/>";
    xml.insert(p, cfg);
    p += cfg.size();
  }
  return xml;
}

// models/press_small.xml with one difftac.tactile sensor per output on its pad: images of
// size x size pixels at pitch (m), a markers x markers grid
inline std::string PressSmallTactile(std::initializer_list<const char*> outputs, int size,
                                     const char* pitch, int markers) {
  std::string xml = ReadModelFile("press_small.xml"), sensors;
  for (const char* out : outputs) {
    std::string o = out;
    sensors += "<plugin name=\"" + o +
               "\" plugin=\"difftac.tactile\" objtype=\"site\" objname=\"gel_site\">"
               "<config key=\"elastomer\" value=\"gel\"/><config key=\"output\" value=\"" +
               o + "\"/>";
    if (o == "markers") {
      std::string n = std::to_string(markers);
      sensors += "<config key=\"markers\" value=\"" + n + " " + n + "\"/>";
    } else if (o != "force") {
      std::string n = std::to_string(size);
      sensors += "<config key=\"size\" value=\"" + n + " " + n + "\"/><config key=\"pitch\" value=\"" +
                 pitch + "\"/>";
    }
    sensors += "</plugin>";
  }
  xml.insert(xml.find("<sensor>") + 8, sensors);
  xml.insert(xml.find("  </extension>"), "    <plugin plugin=\"difftac.tactile\"/>\n");
  return xml;
}

// a 10 x 10 x 4 mm gel (instance `gel` at site `s` of the slider `finger`, actuated in z), the
// finger driven 0.5 mm into `geom` (whose top is at z = 0.01) by ctrl[0] = -0.0007
inline std::string PressOnGeom(const std::string& geom, const std::string& asset = "") {
  return R"(
<mujoco>
  <option timestep="0.002"/>
  <asset>)" + asset + R"(</asset>
  <extension>
    <plugin plugin="difftac.elastomer">
      <instance name="gel">
        <config key="site" value="s"/>
        <config key="size" value="0.01 0.01 0.004"/>
        <config key="resolution" value="0.001"/>
      </instance>
    </plugin>
  </extension>
  <worldbody>
    )" + geom + R"(
    <body name="finger" pos="0 0 0.0142" gravcomp="1">
      <joint name="z" type="slide" axis="0 0 1" damping="5"/>
      <geom type="box" size="0.006 0.006 0.001" pos="0 0 0.001" mass="0.05" contype="0" conaffinity="0"/>
      <site name="s" euler="180 0 0"/>
    </body>
  </worldbody>
  <actuator><position joint="z" kp="2000"/></actuator>
</mujoco>)";
}

// a geom of every type the gel collides with, each with its top at z = 0.01 under PressOnGeom's
// gel; the mesh is the box's 6 x 6 x 4 mm block given by its 8 corners (its convex hull)
struct GeomCase {
  const char* name;
  std::string geom, asset;
};
inline std::vector<GeomCase> GeomCases() {
  return {
      {"plane", R"(<geom type="plane" size="0.05 0.05 0.01" pos="0 0 0.01"/>)", ""},
      {"sphere", R"(<geom type="sphere" size="0.004" pos="0 0 0.006"/>)", ""},
      {"capsule", R"(<geom type="capsule" size="0.003 0.004" pos="0 0 0.007" euler="90 0 0"/>)", ""},
      {"ellipsoid", R"(<geom type="ellipsoid" size="0.004 0.003 0.002" pos="0 0 0.008"/>)", ""},
      {"cylinder", R"(<geom type="cylinder" size="0.003 0.004" pos="0 0 0.007" euler="90 0 0"/>)",
       ""},
      {"box", R"(<geom type="box" size="0.003 0.003 0.002" pos="0 0 0.008"/>)", ""},
      {"mesh", R"(<geom type="mesh" mesh="block" pos="0 0 0.008"/>)",
       R"(<mesh name="block" vertex="-0.003 -0.003 -0.002  0.003 -0.003 -0.002
      0.003 0.003 -0.002  -0.003 0.003 -0.002  -0.003 -0.003 0.002  0.003 -0.003 0.002
      0.003 0.003 0.002  -0.003 0.003 0.002"/>)"},
  };
}

// a model and data loaded from an MJCF file or string; err holds the load error
struct Scene {
  mjModel* m = nullptr;
  mjData* d = nullptr;
  std::string err;
  explicit Scene(const char* path) {
    dtac_test_load_library();
    char buf[2000] = "";
    m = mj_loadXML(path, nullptr, buf, sizeof(buf));
    err = buf;
    if (m) d = mj_makeData(m);
  }
  static Scene FromString(const std::string& xml) {
    dtac_test_load_library();
    Scene s;
    char buf[2000] = "";
    mjSpec* spec = mj_parseXMLString(xml.c_str(), nullptr, buf, sizeof(buf));
    if (spec) {
      s.m = mj_compile(spec, nullptr);
      if (!s.m) s.err = mjs_getError(spec);
      mj_deleteSpec(spec);
    } else {
      s.err = buf;
    }
    if (s.m) s.d = mj_makeData(s.m);
    return s;
  }
  Scene(Scene&& o) noexcept : m(o.m), d(o.d), err(o.err) { o.m = nullptr; o.d = nullptr; }
  Scene(const Scene&) = delete;
  ~Scene() {
    if (d) mj_deleteData(d);
    if (m) mj_deleteModel(m);
  }

 private:
  Scene() = default;
};

#endif  // DTAC_TESTS_PLUGIN_COMMON_H_
