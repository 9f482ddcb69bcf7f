// implicit_body.c: the rigid bodies of a joint implicit step (implicit_joint.c): the range of
// their joint inverse effective mass as unknowns, their potential, the back faces and contact
// pairs that couple them to the gels, and the bodies' block of the Newton system.

#include <math.h>
#include <string.h>

#include "implicit_internal.h"

// ---- the bodies' block --------------------------------------------------------------------------

// the eigenvectors of the n x n W (rows r0.. of U, a block of it) with eigenvalues above 1e-9 of
// its largest, as new columns of U
void dtac_imp_range_add(dtac_implicit_joint* J, int n, int r0, const double* W) {
  memcpy(J->A, W, sizeof(double) * n * n);
  double w[NZ];
  dtac_sym_eig(J->A, J->V, n);
  for (int i = 0; i < n; i++) w[i] = J->A[n * i + i];
  double wmax = 0;
  for (int i = 0; i < n; i++) wmax = fmax(wmax, w[i]);
  for (int i = 0; i < n; i++) {
    if (!(w[i] > 1e-9 * wmax) || !isfinite(w[i]) || J->nz >= NZ) continue;
    for (int j = 0; j < n; j++) J->U[(r0 + j) * NZ + J->nz] = J->V[j * n + i];
    J->lam[J->nz++] = w[i];
  }
}

// the bodies' unknowns: the range of their joint inverse effective mass W (Wfull: 6 nslot
// square, the cross terms of slots sharing joints; NULL or too many slots: each slot's own), each
// slot's point at the step end and the wrench the rigid step applied about it
void dtac_imp_bodies_setup(dtac_implicit_joint* J, const dtac_body* slots, int nslot,
                         const double* Wfull, double h) {
  J->nslot = nslot;
  J->nz = 0;
  int n6 = 6 * nslot;
  for (int i = 0; i < n6; i++) memset(J->U + i * NZ, 0, sizeof(double) * NZ);
  if (Wfull && nslot <= NB_JOINT) {
    dtac_imp_range_add(J, n6, 0, Wfull);
  } else {
    for (int k = 0; k < nslot; k++) dtac_imp_range_add(J, 6, 6 * k, slots[k].Winv);
  }
  for (int k = 0; k < nslot; k++) {
    const dtac_body* B = slots + k;
    J->has[k] = 0;
    for (int i = 0; i < 6; i++) {
      for (int r = 0; r < J->nz; r++) J->has[k] |= J->U[(6 * k + i) * NZ + r] != 0;
    }
    for (int i = 0; i < 3; i++) J->pos[k][i] = B->frame.pos[i] + h * B->frame.vel[i];
    // the wrench the rigid step applied, about the step-end point
    memset(J->app[k], 0, sizeof(J->app[k]));
    dtac_wrench_add(J->app[k], B->wrench_app, B->wrench_app + 3, B->frame.pos, J->pos[k]);
  }
}

// delta of each slot from z
void dtac_imp_bodies_delta(const dtac_implicit_joint* J, const double* z, double delta[][6]) {
  for (int k = 0; k < J->nslot; k++) {
    for (int i = 0; i < 6; i++) {
      const double* u = J->U + (6 * k + i) * NZ;
      double s = 0;
      for (int r = 0; r < J->nz; r++) s += u[r] * z[r];
      delta[k][i] = s;
    }
  }
}

// out += U_k^T w (w: 6, slot k's components)
void dtac_imp_reduce_add(const dtac_implicit_joint* J, int k, const double w[6], double* out) {
  for (int i = 0; i < 6; i++) {
    if (w[i] == 0) continue;
    const double* u = J->U + (6 * k + i) * NZ;
    for (int r = 0; r < J->nz; r++) out[r] += u[r] * w[i];
  }
}

// the back face of a gel whose site's body is an unknown, moved with its correction: x_b =
// xback_b + dl + dw x r_b, r_b from the body's point to the predicted node (held over the step)
void dtac_imp_back_place(const dtac_implicit_joint* J, const dtac_implicit* im,
                       const dtac_gel_model* gm, double* x, double delta[][6]) {
  const double* dl = delta[im->site_k];
  for (int i = 0; i < gm->nfixed; i++) {
    const double* xb = im->xback + 3 * gm->fixed_id[i];
    double r[3], wr[3];
    dtac_sub3(r, xb, J->pos[im->site_k]);
    dtac_cross3(wr, dl + 3, r);
    double* xa = x + 3 * gm->fixed_id[i];
    for (int k = 0; k < 3; k++) xa[k] = xb[k] + dl[k] + wr[k];
  }
}

// the back face's share of the gradient in its body's correction: sum of [g_b; r_b x g_b]
void dtac_imp_back_grad(const dtac_implicit_joint* J, const dtac_implicit* im,
                      const dtac_gel_model* gm, const double* g, double gb[][6]) {
  double* out = gb[im->site_k];
  for (int i = 0; i < gm->nfixed; i++) {
    const double* ga = g + 3 * gm->fixed_id[i];
    double r[3], rg[3];
    dtac_sub3(r, im->xback + 3 * gm->fixed_id[i], J->pos[im->site_k]);
    dtac_cross3(rg, r, ga);
    for (int k = 0; k < 3; k++) {
      out[k] += ga[k];
      out[3 + k] += rg[k];
    }
  }
}

// E_b(z) and its gradient gz (with the gels' gradient gb in delta); J->scale
double dtac_imp_bodies_energy(dtac_implicit_joint* J, const double* z, double delta[][6],
                            double gb[][6], double* gz, double h) {
  double e = 0;
  double ga[NZ], gg[NZ];
  memset(ga, 0, sizeof(double) * J->nz);
  memset(gg, 0, sizeof(double) * J->nz);
  for (int k = 0; k < J->nslot; k++) {
    for (int i = 0; i < 6; i++) e += delta[k][i] * J->app[k][i];
    dtac_imp_reduce_add(J, k, J->app[k], ga);
    dtac_imp_reduce_add(J, k, gb[k], gg);
  }
  double s_app = 0, s_gel = 0;
  for (int r = 0; r < J->nz; r++) {
    e += 0.5 * z[r] * z[r] / (J->lam[r] * h * h);
    if (gz) gz[r] = z[r] / (J->lam[r] * h * h) + ga[r] + gg[r];
    s_app += ga[r] * ga[r];
    s_gel += gg[r] * gg[r];
  }
  J->scale = sqrt(s_app) + sqrt(s_gel);
  return e;
}

// each slot's reduced block diag(1/(lam h^2)) + U^T (sum of B^T H B over its contact pairs) U,
// factored (Cholesky) into J->Kc (the gels' part, sum of B^T H B, kept in J->K6); nonzero if a block is not positive definite
int dtac_imp_bodies_block(dtac_implicit_joint* J, dtac_implicit_gel* g, int ngel, double h) {
  double(*K6)[36] = J->K6;
  memset(K6, 0, sizeof(double) * 36 * J->nslot);
  for (int i = 0; i < ngel; i++) {
    const dtac_implicit* im = g[i].im;
    for (int q = 0; q < im->npair; q++) {
      int k = im->pair_k[q];
      const double* H = im->pair_H + 9 * q;
      const double* r = im->pair_r + 3 * q;
      // B = [I, -[r]x]: B^T H B = [H, -H[r]x; [r]x H, -[r]x H [r]x]
      double R[9] = {0, -r[2], r[1], r[2], 0, -r[0], -r[1], r[0], 0};
      double HR[9], RH[9], RHR[9];
      dtac_mul33(HR, H, R);
      dtac_mul33(RH, R, H);
      dtac_mul33(RHR, R, HR);
      for (int a = 0; a < 3; a++) {
        for (int b = 0; b < 3; b++) {
          K6[k][6 * a + b] += H[3 * a + b];
          K6[k][6 * a + 3 + b] -= HR[3 * a + b];
          K6[k][6 * (3 + a) + b] += RH[3 * a + b];
          K6[k][6 * (3 + a) + 3 + b] -= RHR[3 * a + b];
        }
      }
    }
  }
  // the back faces: B_a^T K_ab B_b over each element's pairs of back-face nodes, and the free
  // rows' H_ab B_b (the coupling block, kept for the products: backC)
  for (int i = 0; i < ngel; i++) {
    dtac_implicit* im = g[i].im;
    const dtac_gel_model* gm = g[i].gm;
    int k = im->site_k;
    if (k < 0) continue;
    memset(im->backC, 0, sizeof(double) * 6 * im->nback_row);
    for (int q = 0; q < im->nptet; q++) {
      const int* tv = gm->tet + 4 * im->ptet[q];
      const double* H = im->ptetH + 144 * q;
      for (int a = 0; a < 4; a++) {
        if (gm->fixed[tv[a]]) continue;
        for (int c = 0; c < 3; c++) {
          int d = im->dof[3 * tv[a] + c];
          if (d < 0) continue;
          double* C = im->backC + 6 * im->back_of[d];
          const double* row = H + 12 * (3 * a + c);
          for (int b = 0; b < 4; b++) {
            if (!gm->fixed[tv[b]]) continue;
            // a row h of H_ab times B_b = [I, -[r_b]x]: [h, r_b x h]
            double r[3], rh[3];
            dtac_sub3(r, im->xback + 3 * tv[b], J->pos[k]);
            dtac_cross3(rh, r, row + 3 * b);
            for (int m = 0; m < 3; m++) {
              C[m] += row[3 * b + m];
              C[3 + m] += rh[m];
            }
          }
        }
      }
      for (int a = 0; a < 4; a++) {
        if (!gm->fixed[tv[a]]) continue;
        double ra[3];
        dtac_sub3(ra, im->xback + 3 * tv[a], J->pos[k]);
        for (int b = 0; b < 4; b++) {
          if (!gm->fixed[tv[b]]) continue;
          double rb[3];
          dtac_sub3(rb, im->xback + 3 * tv[b], J->pos[k]);
          // B = [I, -[r]x]: column j of B_b (6) maps to a 3-vector; K6 += B_a^T H_ab B_b
          for (int cj = 0; cj < 6; cj++) {
            double col[3] = {0, 0, 0};
            if (cj < 3) {
              col[cj] = 1;
            } else {
              double e[3] = {0, 0, 0}, c[3];
              e[cj - 3] = 1;
              dtac_cross3(c, e, rb);  // dw x r
              for (int m = 0; m < 3; m++) col[m] = c[m];
            }
            double hc[3];
            for (int m = 0; m < 3; m++) {
              hc[m] = 0;
              for (int l = 0; l < 3; l++) hc[m] += H[12 * (3 * a + m) + 3 * b + l] * col[l];
            }
            double rh[3];
            dtac_cross3(rh, ra, hc);
            for (int m = 0; m < 3; m++) {
              K6[k][6 * m + cj] += hc[m];
              K6[k][6 * (3 + m) + cj] += rh[m];
            }
          }
        }
      }
    }
  }
  // U^T (blockdiag K6) U + diag(1/(lam h^2)), factored in place (lower)
  int n = J->nz;
  double* L = J->Kc;
  for (int a = 0; a < n; a++) {
    for (int b = 0; b < n; b++) L[a * NZ + b] = a == b ? 1 / (J->lam[a] * h * h) : 0;
  }
  for (int k = 0; k < J->nslot; k++) {
    int zero = 1;
    for (int i = 0; i < 36; i++) zero &= K6[k][i] == 0;
    if (zero) continue;
    double KU[6][NZ];
    for (int i = 0; i < 6; i++) {
      for (int b = 0; b < n; b++) {
        double s = 0;
        for (int j = 0; j < 6; j++) s += K6[k][6 * i + j] * J->U[(6 * k + j) * NZ + b];
        KU[i][b] = s;
      }
    }
    for (int i = 0; i < 6; i++) {
      const double* u = J->U + (6 * k + i) * NZ;
      for (int a = 0; a < n; a++) {
        if (u[a] == 0) continue;
        for (int b = 0; b < n; b++) L[a * NZ + b] += u[a] * KU[i][b];
      }
    }
  }
  for (int j = 0; j < n; j++) {
    double d = L[j * NZ + j];
    for (int m = 0; m < j; m++) d -= L[j * NZ + m] * L[j * NZ + m];
    if (!(d > 0)) return -1;
    L[j * NZ + j] = sqrt(d);
    for (int i = j + 1; i < n; i++) {
      double s = L[i * NZ + j];
      for (int m = 0; m < j; m++) s -= L[i * NZ + m] * L[j * NZ + m];
      L[i * NZ + j] = s / L[j * NZ + j];
    }
  }
  return 0;
}

