// Loading: the plugin registers, models load, bad config is a clear load error.
#include <gtest/gtest.h>

#include <string>

#include "common.h"

TEST(Load, PressSceneLoadsAndSteps) {
  Scene s(DTAC_MODELS "/press.xml");
  ASSERT_TRUE(s.m) << s.err;
  int gel = dtac_gel_find(s.m, "gel");
  ASSERT_GE(gel, 0);
  dtac_gel_info info;
  ASSERT_EQ(dtac_gel_get_info(s.m, s.d, gel, &info), 0);
  EXPECT_GT(info.nnode, 0);
  EXPECT_GE(info.nsub, 1);
  for (int i = 0; i < 10; i++) mj_step(s.m, s.d);
  const mjtNum* x = dtac_gel_positions(s.m, s.d, gel);
  for (int i = 0; i < 3 * info.nnode; i++) ASSERT_TRUE(std::isfinite(x[i]));
}
