// test_util.h: helpers shared by the kernel tests.
#ifndef DTAC_TESTS_KERNELS_TEST_UTIL_H_
#define DTAC_TESTS_KERNELS_TEST_UTIL_H_

#include <cmath>
#include <random>

// rotation matrix (row-major) from a random unit quaternion
inline void RandomRotation(std::mt19937& rng, double R[9]) {
  std::normal_distribution<double> n01(0, 1);
  double q[4], n = 0;
  for (double& c : q) {
    c = n01(rng);
    n += c * c;
  }
  n = std::sqrt(n);
  for (double& c : q) c /= n;
  double w = q[0], x = q[1], y = q[2], z = q[3];
  double r[9] = {1 - 2 * (y * y + z * z), 2 * (x * y - w * z),     2 * (x * z + w * y),
                 2 * (x * y + w * z),     1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                 2 * (x * z - w * y),     2 * (y * z + w * x),     1 - 2 * (x * x + y * y)};
  for (int k = 0; k < 9; k++) R[k] = r[k];
}

#endif  // DTAC_TESTS_KERNELS_TEST_UTIL_H_
