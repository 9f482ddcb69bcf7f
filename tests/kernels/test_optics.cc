// Optics kernels: the lighting basis vanishes at rest (background image), the lighting model is
// linear in its parameters, barycentric interpolation reproduces linear fields, and the default
// lights brighten the side of a slope that faces them.
#include <gtest/gtest.h>

#include <cmath>

extern "C" {
#include "optics.h"
}

TEST(Optics, BasisVanishesAtRestSoFlatGelShowsBackground) {
  double phi[DTAC_OPTICS_NBASIS], n[3] = {0, 0, 1};
  dtac_optics_basis(n, 0.0, phi);
  for (double p : phi) EXPECT_EQ(p, 0);
  double bg[3], coef[3 * DTAC_OPTICS_NBASIS], rgb[3];
  dtac_optics_default(bg, coef);
  dtac_optics_shade(bg, coef, n, 0.0, rgb);
  for (int c = 0; c < 3; c++) EXPECT_EQ(rgb[c], bg[c]);
}

TEST(Optics, ShadeIsLinearInParameters) {
  double n[3];
  dtac_optics_normal_from_slope(0.2, -0.1, n);
  double bg1[3] = {0.1, 0.2, 0.3}, bg2[3] = {0.3, 0.1, 0.2}, c1[30], c2[30], cs[30], bgs[3];
  for (int k = 0; k < 30; k++) {
    c1[k] = std::sin(k + 1.0);
    c2[k] = std::cos(2.0 * k);
    cs[k] = 0.3 * c1[k] + 0.7 * c2[k];
  }
  for (int c = 0; c < 3; c++) bgs[c] = 0.3 * bg1[c] + 0.7 * bg2[c];
  double r1[3], r2[3], rs[3];
  dtac_optics_shade_raw(bg1, c1, n, 3e-4, r1);
  dtac_optics_shade_raw(bg2, c2, n, 3e-4, r2);
  dtac_optics_shade_raw(bgs, cs, n, 3e-4, rs);
  for (int c = 0; c < 3; c++) EXPECT_NEAR(rs[c], 0.3 * r1[c] + 0.7 * r2[c], 1e-14);
}

TEST(Optics, BarycentricReproducesLinearFieldsAndRejectsOutside) {
  double a[2] = {0.3, 0.2}, b[2] = {5.1, 1.0}, c[2] = {2.0, 4.7}, w[3];
  auto f = [](const double p[2]) { return 2.0 * p[0] - 3.0 * p[1] + 0.5; };
  double p[2] = {2.4, 2.0};
  ASSERT_TRUE(dtac_barycentric(a, b, c, p, w));
  EXPECT_NEAR(w[0] + w[1] + w[2], 1.0, 1e-15);
  EXPECT_NEAR(w[0] * f(a) + w[1] * f(b) + w[2] * f(c), f(p), 1e-12);
  // the same with the triangle's orientation reversed
  ASSERT_TRUE(dtac_barycentric(a, c, b, p, w));
  EXPECT_NEAR(w[0] * f(a) + w[1] * f(c) + w[2] * f(b), f(p), 1e-12);
  double q[2] = {5.0, 4.0};
  EXPECT_FALSE(dtac_barycentric(a, b, c, q, w));
}

TEST(Optics, DefaultRedLightBrightensSlopesFacingPlusX) {
  double bg[3], coef[3 * DTAC_OPTICS_NBASIS], n[3], up[3], down[3];
  dtac_optics_default(bg, coef);
  dtac_optics_normal_from_slope(0.2, 0, n);
  dtac_optics_shade(bg, coef, n, 0, up);
  dtac_optics_normal_from_slope(-0.2, 0, n);
  dtac_optics_shade(bg, coef, n, 0, down);
  EXPECT_GT(up[0], bg[0] + 0.05);
  EXPECT_LT(down[0], bg[0] - 0.05);
}

TEST(Optics, OrthographicCameraPutsPixelCentresAtHalfIntegers) {
  dtac_camera cam = {320, 240, 6.5e-5, -160 * 6.5e-5, -120 * 6.5e-5};
  double p[3] = {0.5 * 6.5e-5, 0.5 * 6.5e-5, 0.004}, uv[2];
  dtac_camera_project(&cam, p, uv);
  EXPECT_NEAR(uv[0], 160.5, 1e-9);
  EXPECT_NEAR(uv[1], 120.5, 1e-9);
}
