// Bad input: every bad config stops model loading with a message naming the instance, the key
// and the value; a blown-up gel is detected, reported and recovered from.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "common.h"
#include "small_scene.h"

namespace {

struct BadCase {
  std::string config;  // <config> lines
  std::string key;
  std::string value;
  std::string site = "gel_site";
};

void ExpectLoadError(const BadCase& c) {
  Scene s = Scene::FromString(SmallScene(c.config, c.site));
  ASSERT_EQ(s.m, nullptr) << "loaded despite " << c.config;
  EXPECT_NE(s.err.find("gel"), std::string::npos) << s.err;
  EXPECT_NE(s.err.find(c.key), std::string::npos) << s.err;
  EXPECT_NE(s.err.find(c.value), std::string::npos) << s.err;
}

std::string Cfg(const std::string& key, const std::string& value) {
  return "<config key=\"" + key + "\" value=\"" + value + "\"/>";
}

}  // namespace

TEST(Errors, UnknownShapeIsLoadError) { ExpectLoadError({Cfg("shape", "dome"), "shape", "dome"}); }

TEST(Errors, NonPositiveOrNonFiniteYoungIsLoadError) {
  ExpectLoadError({Cfg("young", "-3e5"), "young", "-3"});
  ExpectLoadError({Cfg("young", "0"), "young", "0"});
  ExpectLoadError({Cfg("young", "nan"), "young", "nan"});
  ExpectLoadError({Cfg("young", "inf"), "young", "inf"});
}

TEST(Errors, NonPositiveDensityIsLoadError) {
  ExpectLoadError({Cfg("density", "0"), "density", "0"});
  ExpectLoadError({Cfg("density", "-1000"), "density", "-1000"});
}

TEST(Errors, PoissonOutsideOpenIntervalIsLoadError) {
  ExpectLoadError({Cfg("poisson", "0.5"), "poisson", "0.5"});
  ExpectLoadError({Cfg("poisson", "-1"), "poisson", "-1"});
  ExpectLoadError({Cfg("poisson", "0.7"), "poisson", "0.7"});
}

TEST(Errors, UnknownSiteIsLoadError) { ExpectLoadError({"", "site", "nosuch", "nosuch"}); }

TEST(Errors, TooFineResolutionIsLoadError) {
  ExpectLoadError({Cfg("resolution", "1e-5"), "resolution", "1e-05"});
}

TEST(Errors, MalformedNumbersAreLoadErrors) {
  ExpectLoadError({Cfg("young", "3e5x"), "young", "3e5x"});
  ExpectLoadError({Cfg("size", "0.01 0.01"), "size", "0.01 0.01"});
  ExpectLoadError({Cfg("size", "0.01 0.01 0.004 7"), "size", "0.01 0.01 0.004 7"});
}

TEST(Errors, EmptyValueMeansDefault) {
  Scene s = Scene::FromString(SmallScene(Cfg("friction", "")));
  EXPECT_NE(s.m, nullptr) << s.err;
}

TEST(Errors, NegativeFrictionAndDampingAreLoadErrors) {
  ExpectLoadError({Cfg("friction", "-0.5"), "friction", "-0.5"});
  ExpectLoadError({Cfg("damping", "-2"), "damping", "-2"});
  ExpectLoadError({Cfg("contact_stiffness", "-5"), "contact_stiffness", "-5"});
}

TEST(Errors, UnsupportedDeviceIsLoadError) {
  ExpectLoadError({Cfg("device", "tpu"), "device", "tpu"});
}

TEST(Errors, UnknownKeyIsLoadError) {
  Scene s = Scene::FromString(SmallScene(Cfg("yuong", "3e5")));
  ASSERT_EQ(s.m, nullptr);
  EXPECT_NE(s.err.find("yuong"), std::string::npos) << s.err;
}

namespace {
std::string g_warning;
void CaptureWarning(const char* msg) { g_warning += msg; }
}  // namespace

TEST(Errors, BlownUpGelIsReportedAndReset) {
  Scene s = Scene::FromString(SmallScene());
  ASSERT_TRUE(s.m) << s.err;
  int gel = dtac_gel_find(s.m, "gel");
  for (int i = 0; i < 5; i++) mj_step(s.m, s.d);
  // poison one node's velocity, as a diverging solve would
  dtac_gel_info info;
  dtac_gel_get_info(s.m, s.d, gel, &info);
  mjtNum* st = s.d->plugin_state + s.m->plugin_stateadr[gel];
  st[3 * info.nnode + 3 * (info.nnode - 1)] = NAN;
  g_warning.clear();
  void (*old)(const char*) = mju_user_warning;
  mju_user_warning = CaptureWarning;
  mj_step(s.m, s.d);
  mju_user_warning = old;
  dtac_gel_get_info(s.m, s.d, gel, &info);
  EXPECT_EQ(info.nwarning, 1);
  EXPECT_NE(g_warning.find("gel"), std::string::npos) << g_warning;
  EXPECT_NE(g_warning.find("non-finite"), std::string::npos) << g_warning;
  for (int i = 0; i < s.m->npluginstate; i++) ASSERT_TRUE(std::isfinite(s.d->plugin_state[i]));
  for (int i = 0; i < s.m->nq; i++) ASSERT_TRUE(std::isfinite(s.d->qpos[i]));
  // and it keeps running
  for (int i = 0; i < 20; i++) mj_step(s.m, s.d);
  for (int i = 0; i < s.m->npluginstate; i++) ASSERT_TRUE(std::isfinite(s.d->plugin_state[i]));
}

// the work of one step is bounded at load: 15,600 substeps over 103,000 tets is over the limit
// (DTAC_MAX_STEP_WORK), though each count alone is within its own
TEST(Errors, StepWorkOverTheLimitIsLoadError) {
  ExpectLoadError({Cfg("size", "0.02075 0.02525 0.004") + Cfg("resolution", "0.0005") +
                       Cfg("damping", "3e-4"),
                   "damping", "0.0003"});
}

// a stable substep of 0 or NaN (a 1e-300 m thin pad, damping 1e300) is a load error, never an
// overflowed substep count
TEST(Errors, DegenerateStableSubstepIsLoadError) {
  ExpectLoadError({Cfg("damping", "1e300"), "damping", "1e+300"});
}
