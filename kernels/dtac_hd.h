// dtac_hd.h: one source for host and device. Per-element functions are marked DTAC_HD and
// compiled by the C compiler for the CPU loops and by nvcc for the CUDA kernels.
#ifndef DTAC_KERNELS_HD_H_
#define DTAC_KERNELS_HD_H_

#include <math.h>

#if defined(__CUDACC__)
#define DTAC_HD __host__ __device__ static inline
#else
#define DTAC_HD static inline
#endif

#define DTAC_PI 3.14159265358979323846

// the physics real type: double, matching mjtNum
typedef double dtac_real;

// ---- 3-vectors
// -------------------------------------------------------------------------------------

DTAC_HD double dtac_dot3(const double a[3], const double b[3]) {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

DTAC_HD void dtac_cross3(double r[3], const double a[3], const double b[3]) {
  double x = a[1] * b[2] - a[2] * b[1];
  double y = a[2] * b[0] - a[0] * b[2];
  double z = a[0] * b[1] - a[1] * b[0];
  r[0] = x;
  r[1] = y;
  r[2] = z;
}

DTAC_HD double dtac_norm3(const double a[3]) {
  return sqrt(dtac_dot3(a, a));
}

DTAC_HD void dtac_sub3(double r[3], const double a[3], const double b[3]) {
  r[0] = a[0] - b[0];
  r[1] = a[1] - b[1];
  r[2] = a[2] - b[2];
}

DTAC_HD void dtac_addscl3(double r[3], const double a[3], const double b[3], double s) {
  r[0] = a[0] + s * b[0];
  r[1] = a[1] + s * b[1];
  r[2] = a[2] + s * b[2];
}

// ---- 3x3 matrices, row-major (as MuJoCo)
// -------------------------------------------------------------

// r = a * b
DTAC_HD void dtac_mul33(double r[9], const double a[9], const double b[9]) {
  double t[9];
  for (int i = 0; i < 3; i++) {
    for (int j = 0; j < 3; j++) {
      t[3 * i + j] = a[3 * i] * b[j] + a[3 * i + 1] * b[3 + j] + a[3 * i + 2] * b[6 + j];
    }
  }
  for (int k = 0; k < 9; k++) r[k] = t[k];
}

// r = a * b^T
DTAC_HD void dtac_mul33T(double r[9], const double a[9], const double b[9]) {
  double t[9];
  for (int i = 0; i < 3; i++) {
    for (int j = 0; j < 3; j++) {
      t[3 * i + j] =
          a[3 * i] * b[3 * j] + a[3 * i + 1] * b[3 * j + 1] + a[3 * i + 2] * b[3 * j + 2];
    }
  }
  for (int k = 0; k < 9; k++) r[k] = t[k];
}

// r = a^T * b
DTAC_HD void dtac_mulT33(double r[9], const double a[9], const double b[9]) {
  double t[9];
  for (int i = 0; i < 3; i++) {
    for (int j = 0; j < 3; j++) {
      t[3 * i + j] = a[i] * b[j] + a[3 + i] * b[3 + j] + a[6 + i] * b[6 + j];
    }
  }
  for (int k = 0; k < 9; k++) r[k] = t[k];
}

// r = m * v
DTAC_HD void dtac_mulmv3(double r[3], const double m[9], const double v[3]) {
  double x = m[0] * v[0] + m[1] * v[1] + m[2] * v[2];
  double y = m[3] * v[0] + m[4] * v[1] + m[5] * v[2];
  double z = m[6] * v[0] + m[7] * v[1] + m[8] * v[2];
  r[0] = x;
  r[1] = y;
  r[2] = z;
}

// r = m^T * v
DTAC_HD void dtac_mulmTv3(double r[3], const double m[9], const double v[3]) {
  double x = m[0] * v[0] + m[3] * v[1] + m[6] * v[2];
  double y = m[1] * v[0] + m[4] * v[1] + m[7] * v[2];
  double z = m[2] * v[0] + m[5] * v[1] + m[8] * v[2];
  r[0] = x;
  r[1] = y;
  r[2] = z;
}

DTAC_HD double dtac_det33(const double a[9]) {
  return a[0] * (a[4] * a[8] - a[5] * a[7]) - a[1] * (a[3] * a[8] - a[5] * a[6]) +
         a[2] * (a[3] * a[7] - a[4] * a[6]);
}

// cofactor matrix: cof(A) = det(A) A^{-T} = dJ/dA, defined for singular A too
DTAC_HD void dtac_cof33(double c[9], const double a[9]) {
  c[0] = a[4] * a[8] - a[5] * a[7];
  c[1] = a[5] * a[6] - a[3] * a[8];
  c[2] = a[3] * a[7] - a[4] * a[6];
  c[3] = a[2] * a[7] - a[1] * a[8];
  c[4] = a[0] * a[8] - a[2] * a[6];
  c[5] = a[1] * a[6] - a[0] * a[7];
  c[6] = a[1] * a[5] - a[2] * a[4];
  c[7] = a[2] * a[3] - a[0] * a[5];
  c[8] = a[0] * a[4] - a[1] * a[3];
}

// returns det; r = inverse (undefined if det == 0)
DTAC_HD double dtac_inv33(double r[9], const double a[9]) {
  double c[9];
  dtac_cof33(c, a);
  double det = a[0] * c[0] + a[1] * c[1] + a[2] * c[2];
  double s = 1.0 / det;
  for (int i = 0; i < 3; i++) {
    for (int j = 0; j < 3; j++) r[3 * i + j] = s * c[3 * j + i];
  }
  return det;
}

DTAC_HD double dtac_ddot33(const double a[9], const double b[9]) {
  double s = 0;
  for (int k = 0; k < 9; k++) s += a[k] * b[k];
  return s;
}

// ---- rotations from rotation vectors
// -----------------------------------------------------------------

// R = exp([phi]x): rotation by angle |phi| about phi (Rodrigues), row-major; identity for phi = 0
DTAC_HD void dtac_rotvec_mat(const double phi[3], double R[9]) {
  double th = dtac_norm3(phi);
  if (th < 1e-300) {
    for (int k = 0; k < 9; k++) R[k] = (k % 4 == 0) ? 1.0 : 0.0;
    return;
  }
  double a[3] = {phi[0] / th, phi[1] / th, phi[2] / th};
  double c = cos(th), s = sin(th), C = 1 - c;
  R[0] = c + a[0] * a[0] * C;
  R[1] = a[0] * a[1] * C - a[2] * s;
  R[2] = a[0] * a[2] * C + a[1] * s;
  R[3] = a[1] * a[0] * C + a[2] * s;
  R[4] = c + a[1] * a[1] * C;
  R[5] = a[1] * a[2] * C - a[0] * s;
  R[6] = a[2] * a[0] * C - a[1] * s;
  R[7] = a[2] * a[1] * C + a[0] * s;
  R[8] = c + a[2] * a[2] * C;
}

// coefficients of R = I + A K + B K^2 (K = [phi]x, th = |phi|): A = sin th / th,
// B = (1 - cos th) / th^2, dA = A'(th) / th, dB = B'(th) / th; Taylor series below th = 0.25
// (truncation < 1e-17 there, and the closed forms lose about eps / th^2 to cancellation)
DTAC_HD void dtac_rotvec_coef(double th, double* A, double* B, double* dA, double* dB) {
  double t2 = th * th;
  if (th < 0.25) {
    // A, B: sums of (-1)^k t2^k / (2k+1)!, / (2k+2)!; dA, dB: of (-1)^k 2k t2^(k-1) / the same,
    // k <= 6, nested (each factor the ratio of consecutive terms)
    *A = 1 - t2 / 6 * (1 - t2 / 20 * (1 - t2 / 42 * (1 - t2 / 72 * (1 - t2 / 110))));
    *B = 0.5 * (1 - t2 / 12 * (1 - t2 / 30 * (1 - t2 / 56 * (1 - t2 / 90 * (1 - t2 / 132)))));
    *dA = -1.0 / 3 * (1 - t2 / 10 * (1 - t2 / 28 * (1 - t2 / 54 * (1 - t2 / 88 * (1 - t2 / 130)))));
    *dB = -1.0 / 12 *
          (1 -
           t2 / 15 *
               (1 - t2 * (3.0 / 112) *
                        (1 - t2 * (4.0 / 270) * (1 - t2 * (5.0 / 528) * (1 - t2 * (6.0 / 910))))));
    return;
  }
  double c = cos(th), s = sin(th);
  *A = s / th;
  *B = (1 - c) / t2;
  *dA = (th * c - s) / (t2 * th);
  *dB = (th * s - 2 * (1 - c)) / (t2 * t2);
}

// VJP of dtac_rotvec_mat: phi_bar += (dR/dphi)^T R_bar (R_bar row-major 3x3); exact also at and
// near phi = 0 (series for small |phi|)
DTAC_HD void dtac_rotvec_mat_adj(const double phi[3], const double R_bar[9], double phi_bar[3]) {
  // R = I + A K + B (phi phi^T - th^2 I)
  double th = dtac_norm3(phi), A, B, dA, dB;
  dtac_rotvec_coef(th, &A, &B, &dA, &dB);
  const double* Rb = R_bar;
  // w_m = <R_bar, dK/dphi_m>, Rp = R_bar phi, RTp = R_bar^T phi
  double w[3] = {Rb[7] - Rb[5], Rb[2] - Rb[6], Rb[3] - Rb[1]};
  double Rp[3], RTp[3];
  dtac_mulmv3(Rp, Rb, phi);
  dtac_mulmTv3(RTp, Rb, phi);
  double tr = Rb[0] + Rb[4] + Rb[8];
  double RK = dtac_dot3(phi, w);                   // <R_bar, K>
  double RK2 = dtac_dot3(phi, Rp) - th * th * tr;  // <R_bar, K^2>
  double g = dA * RK + dB * RK2 - 2 * B * tr;      // coefficient of phi (dA, dB carry 1/th)
  for (int m = 0; m < 3; m++) phi_bar[m] += A * w[m] + B * (Rp[m] + RTp[m]) + g * phi[m];
}

#endif  // DTAC_KERNELS_HD_H_
