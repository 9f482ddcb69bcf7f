// optics_fit.c: calibration of the lighting model (kernels/optics.h) from pairs of depth map and
// rgb image. The model rgb_c = bg_c + sum_k coef[c][k] phi_k is linear in (bg, coef), so the fit
// is linear least squares: one (1 + NBASIS)-square normal-equation system shared by the three
// channels, solved by Cholesky.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "raster.h"

#define NP (1 + DTAC_OPTICS_NBASIS)

// unit normal at pixel (r, c) of a depth map: central differences inside, one-sided at the border
static void pixel_normal(int width, int height, double pitch, const double* dm, int r, int c,
                         double n[3]) {
  int cl = c > 0 ? c - 1 : c, cr = c < width - 1 ? c + 1 : c;
  int ru = r > 0 ? r - 1 : r, rd = r < height - 1 ? r + 1 : r;
  double ddx = cr > cl ? (dm[r * width + cr] - dm[r * width + cl]) / ((cr - cl) * pitch) : 0;
  double ddy = rd > ru ? (dm[rd * width + c] - dm[ru * width + c]) / ((rd - ru) * pitch) : 0;
  dtac_optics_normal_from_slope(ddx, ddy, n);
}

void dtac_optics_normals_from_depth(int width, int height, double pitch, const double* depth,
                                    double* nrm) {
  for (int r = 0; r < height; r++) {
    for (int c = 0; c < width; c++) {
      pixel_normal(width, height, pitch, depth, r, c, nrm + 3 * (r * width + c));
    }
  }
}

void dtac_optics_render_depth(int width, int height, double pitch, const double* depth,
                              const double bg[3], const double* coef, double* rgb) {
  for (int r = 0; r < height; r++) {
    for (int c = 0; c < width; c++) {
      double n[3];
      pixel_normal(width, height, pitch, depth, r, c, n);
      int k = r * width + c;
      dtac_optics_shade(bg, coef, n, depth[k], rgb + 3 * k);
    }
  }
}

// Cholesky solve of the SPD system A x = b (n x n, in place); 0 on success
static int chol_solve(double* A, double* b, int n, int nrhs) {
  for (int j = 0; j < n; j++) {
    double s = A[j * n + j];
    for (int k = 0; k < j; k++) s -= A[j * n + k] * A[j * n + k];
    if (!(s > 0)) return 1;
    double ljj = sqrt(s);
    A[j * n + j] = ljj;
    for (int i = j + 1; i < n; i++) {
      double t = A[i * n + j];
      for (int k = 0; k < j; k++) t -= A[i * n + k] * A[j * n + k];
      A[i * n + j] = t / ljj;
    }
  }
  for (int r = 0; r < nrhs; r++) {
    double* x = b + r * n;
    for (int i = 0; i < n; i++) {
      double t = x[i];
      for (int k = 0; k < i; k++) t -= A[i * n + k] * x[k];
      x[i] = t / A[i * n + i];
    }
    for (int i = n - 1; i >= 0; i--) {
      double t = x[i];
      for (int k = i + 1; k < n; k++) t -= A[k * n + i] * x[k];
      x[i] = t / A[i * n + i];
    }
  }
  return 0;
}

double dtac_optics_fit_depth(int nimage, int width, int height, double pitch, const double* depth,
                             const double* rgb, double bg[3], double* coef, char* err, int errlen) {
  double AtA[NP * NP], Atb[3 * NP], scale[NP];
  memset(AtA, 0, sizeof(AtA));
  memset(Atb, 0, sizeof(Atb));
  const int npix = width * height;
  long nused = 0;
  for (int pass = 0; pass < 2; pass++) {
    double sse = 0;
    for (int im = 0; im < nimage; im++) {
      const double* dm = depth + (size_t)im * npix;
      const double* img = rgb + (size_t)im * npix * 3;
      for (int r = 0; r < height; r++) {
        for (int c = 0; c < width; c++) {
          int k = r * width + c;
          const double* y = img + 3 * k;
          if (y[0] <= 0 || y[0] >= 1 || y[1] <= 0 || y[1] >= 1 || y[2] <= 0 || y[2] >= 1) continue;
          double n[3], f[NP];
          pixel_normal(width, height, pitch, dm, r, c, n);
          f[0] = 1;
          dtac_optics_basis(n, dm[k], f + 1);
          if (pass == 0) {
            nused++;
            for (int i = 0; i < NP; i++) {
              for (int j = 0; j <= i; j++) AtA[i * NP + j] += f[i] * f[j];
              for (int ch = 0; ch < 3; ch++) Atb[ch * NP + i] += f[i] * y[ch];
            }
          } else {
            double pred[3];
            dtac_optics_shade_raw(bg, coef, n, dm[k], pred);
            for (int ch = 0; ch < 3; ch++) sse += (pred[ch] - y[ch]) * (pred[ch] - y[ch]);
          }
        }
      }
    }
    if (pass == 0) {
      if (nused < NP) {
        snprintf(err, errlen, "%ld unsaturated pixels, need at least %d", nused, NP);
        return -1;
      }
      // symmetric fill, then Jacobi scaling so that the basis's different magnitudes do not
      // make the normal equations look singular
      for (int i = 0; i < NP; i++) {
        for (int j = i + 1; j < NP; j++) AtA[i * NP + j] = AtA[j * NP + i];
      }
      for (int i = 0; i < NP; i++) scale[i] = AtA[i * NP + i] > 0 ? 1.0 / sqrt(AtA[i * NP + i]) : 0;
      for (int i = 0; i < NP; i++) {
        if (scale[i] == 0) {
          snprintf(err, errlen,
                   "basis function %d is zero on every pixel: the depth maps need slopes in both "
                   "x and y and some indentation",
                   i);
          return -1;
        }
        for (int j = 0; j < NP; j++) AtA[i * NP + j] *= scale[i] * scale[j];
        for (int ch = 0; ch < 3; ch++) Atb[ch * NP + i] *= scale[i];
      }
      if (chol_solve(AtA, Atb, NP, 3)) {
        snprintf(err, errlen,
                 "the depth maps do not determine the lighting parameters (singular "
                 "normal equations); use more varied contact shapes");
        return -1;
      }
      for (int ch = 0; ch < 3; ch++) {
        bg[ch] = Atb[ch * NP] * scale[0];
        for (int k = 0; k < DTAC_OPTICS_NBASIS; k++) {
          coef[ch * DTAC_OPTICS_NBASIS + k] = Atb[ch * NP + 1 + k] * scale[1 + k];
        }
      }
    } else {
      return sqrt(sse / (3.0 * nused));
    }
  }
  return -1;
}
