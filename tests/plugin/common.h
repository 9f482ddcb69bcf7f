// common.h: helpers for plugin tests: load libdifftac once, load scenes from files or strings.
#ifndef DTAC_TESTS_PLUGIN_COMMON_H_
#define DTAC_TESTS_PLUGIN_COMMON_H_

#include <difftac/difftac.h>
#include <mujoco/mujoco.h>

#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <string>

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
