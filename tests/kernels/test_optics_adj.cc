// Adjoints of the lighting model (shading with clamping, basis, normalisation, normal from slope)
// against central finite differences on random inputs, double precision.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "optics.h"

namespace {

double ShadeDot(const double* bg, const double* coef, const double* n, double depth,
                const double* wbar) {
  double rgb[3];
  dtac_optics_shade(bg, coef, n, depth, rgb);
  return rgb[0] * wbar[0] + rgb[1] * wbar[1] + rgb[2] * wbar[2];
}

}  // namespace

TEST(OpticsAdjoint, ShadeMatchesFiniteDifferences) {
  std::mt19937 rng(9);
  std::normal_distribution<double> n01(0, 1);
  double bg[3], coef[3 * DTAC_OPTICS_NBASIS];
  dtac_optics_default(bg, coef);
  int checked = 0;
  for (int trial = 0; trial < 200; trial++) {
    for (double& c : coef) c += 0.05 * n01(rng);
    double n[3] = {0.3 * n01(rng), 0.3 * n01(rng), 1}, depth = 2e-4 * std::fabs(n01(rng));
    double wbar[3] = {n01(rng), n01(rng), n01(rng)};
    double nb[3] = {0, 0, 0}, db = 0, bgb[3] = {0, 0, 0}, cb[3 * DTAC_OPTICS_NBASIS] = {0};
    dtac_optics_shade_adj(bg, coef, n, depth, wbar, nb, &db, bgb, cb);
    double raw[3];
    dtac_optics_shade_raw(bg, coef, n, depth, raw);
    bool nearclamp = false;
    for (double r : raw) nearclamp |= std::fabs(r) < 1e-4 || std::fabs(r - 1) < 1e-4;
    if (nearclamp) continue;
    const double h = 1e-7;
    for (int k = 0; k < 2; k++) {  // nz does not enter the basis
      double np[3] = {n[0], n[1], n[2]}, nm[3] = {n[0], n[1], n[2]};
      np[k] += h;
      nm[k] -= h;
      double fd = (ShadeDot(bg, coef, np, depth, wbar) - ShadeDot(bg, coef, nm, depth, wbar)) / (2 * h);
      EXPECT_NEAR(nb[k], fd, 1e-6 * (1 + std::fabs(fd)));
    }
    double hd = 1e-9;
    double fdd = (ShadeDot(bg, coef, n, depth + hd, wbar) - ShadeDot(bg, coef, n, depth - hd, wbar)) / (2 * hd);
    EXPECT_NEAR(db, fdd, 1e-5 * (1 + std::fabs(fdd)));
    for (int c = 0; c < 3; c++) {
      double bp[3] = {bg[0], bg[1], bg[2]}, bm[3] = {bg[0], bg[1], bg[2]};
      bp[c] += h;
      bm[c] -= h;
      double fd = (ShadeDot(bp, coef, n, depth, wbar) - ShadeDot(bm, coef, n, depth, wbar)) / (2 * h);
      EXPECT_NEAR(bgb[c], fd, 1e-6 * (1 + std::fabs(fd)));
    }
    for (int k = 0; k < 3 * DTAC_OPTICS_NBASIS; k++) {
      double cp[3 * DTAC_OPTICS_NBASIS], cm[3 * DTAC_OPTICS_NBASIS];
      std::copy(coef, coef + 3 * DTAC_OPTICS_NBASIS, cp);
      std::copy(coef, coef + 3 * DTAC_OPTICS_NBASIS, cm);
      cp[k] += h;
      cm[k] -= h;
      double fd = (ShadeDot(bg, cp, n, depth, wbar) - ShadeDot(bg, cm, n, depth, wbar)) / (2 * h);
      EXPECT_NEAR(cb[k], fd, 1e-6 * (1 + std::fabs(fd)));
    }
    checked++;
  }
  EXPECT_GT(checked, 100);
}

TEST(OpticsAdjoint, SaturatedChannelPassesNoGradient) {
  double bg[3] = {1.5, -0.5, 0.5}, coef[3 * DTAC_OPTICS_NBASIS] = {0};
  coef[0] = coef[DTAC_OPTICS_NBASIS] = coef[2 * DTAC_OPTICS_NBASIS] = 1;
  double n[3] = {0.1, 0, 1}, wbar[3] = {1, 1, 1}, nb[3] = {0, 0, 0}, db = 0;
  dtac_optics_shade_adj(bg, coef, n, 0, wbar, nb, &db, nullptr, nullptr);
  EXPECT_DOUBLE_EQ(nb[0], 1.0);  // only the unsaturated blue channel contributes d(nx)
}

TEST(OpticsAdjoint, NormalFromSlopeMatchesFiniteDifferences) {
  std::mt19937 rng(2);
  std::normal_distribution<double> n01(0, 1);
  for (int trial = 0; trial < 100; trial++) {
    double sx = 0.5 * n01(rng), sy = 0.5 * n01(rng), nbar[3] = {n01(rng), n01(rng), n01(rng)};
    double bx = 0, by = 0;
    dtac_optics_normal_from_slope_adj(sx, sy, nbar, &bx, &by);
    auto f = [&](double a, double b) {
      double n[3];
      dtac_optics_normal_from_slope(a, b, n);
      return n[0] * nbar[0] + n[1] * nbar[1] + n[2] * nbar[2];
    };
    const double h = 1e-7;
    EXPECT_NEAR(bx, (f(sx + h, sy) - f(sx - h, sy)) / (2 * h), 1e-7);
    EXPECT_NEAR(by, (f(sx, sy + h) - f(sx, sy - h)) / (2 * h), 1e-7);
  }
}
