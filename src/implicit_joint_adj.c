// implicit_joint_adj.c: the reverse of a joint implicit step (implicit_joint.c) for the gels solved
// together with the bodies they touch. The step's unknowns are the gels' free dofs x and the
// bodies' reduced corrections z (delta = U z); at its solution the gradient G of the potential
// vanishes, so the implicit function theorem gives every input's cotangent from one solve with
// the joint true Hessian, H [mu_x; mu_z] = d(outputs)/d(x, z)^T (outputs' cotangents):
//   theta_bar = d(outputs)/d theta^T bar - [mu_x; mu_z] . dG/d theta.
// The outputs are the gels' states and each slot's impulse dP = h (wend - app), wend the gels'
// wrench on the body (minus their energy's gradient gb in its correction), dQ = h dP. In delta
// (nu = U mu_z), the bodies' part of G is U^T (delta / (W h^2) + gb + app); written as the
// equivalent delta + h^2 W (gb + app) = 0, its multiplier rho = b_delta - H_(delta,x) mu_x -
// H_(delta,delta) nu gives W's cotangent -h^2 rho (gb + app)^T and app's -nu, smooth in W (no
// eigenvectors to differentiate). The gels' own terms are implicit_adj.c's with the contact
// nodes' multiplier less the collider's correction motion (nut = nu less gb's cotangent).

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "implicit_internal.h"

// per coupled gel: its cotangents and work (one allocation)
typedef struct gel_work_ {
  double *xb, *vb, *ab1, *lam, *mub;
  dtac_imp_adj w;
  dtac_implicit_bar out;
} gel_work;

static int work_make(const dtac_implicit_gel* g, gel_work* gw) {
  const dtac_gel_model* gm = g->gm;
  size_t n3 = 3 * (size_t)gm->nnode, ns = (size_t)gm->nsurf;
  size_t n = 4 * n3 + 4 * ns + 8 * ns + (size_t)g->ncol + 1;
  memset(gw, 0, sizeof(*gw));
  gw->xb = (double*)calloc(n, sizeof(double));
  if (!gw->xb) return -1;
  gw->vb = gw->xb + n3;
  gw->ab1 = gw->vb + n3;
  gw->lam = gw->ab1 + 4 * ns;
  gw->w.xbe = gw->lam + n3;
  gw->w.lag_bar = gw->w.xbe + n3;
  gw->mub = gw->w.lag_bar + 8 * ns;
  return 0;
}

int dtac_implicit_joint_adj(dtac_implicit_gel* g, int ngel, const dtac_implicit_gel_bar* gbar,
                            const dtac_body* slots, int nslot, dtac_implicit_joint* J,
                            const double* Wfull, const double gravity[3], double h,
                            const dtac_implicit_params* p, dtac_body_bar* bb, double* Wfull_bar) {
  if (ngel <= 0) return 0;
  if (!J || nslot != J->nslot || ngel > NB) return -1;
  gel_work gw[NB];
  int fail = 0;
  for (int i = 0; i < ngel; i++) fail |= work_make(g + i, gw + i);
  double dbar[NB][6], posb[NB][3], gbb[NB][6], nut[NB][6];
  memset(dbar, 0, sizeof(dbar));
  memset(posb, 0, sizeof(posb));
  memset(gbb, 0, sizeof(gbb));

  // 1. the slots' impulses: dP = h (wend - app) with wend = -gb moved from the slot's step-end
  // point to its step-start one, dQ = h dP (none when the step handed no corrections)
  for (int k = 0; k < nslot && !J->blown; k++) {
    double Pb[6], wb[6], r[3], f[3], fb[3], rb[3];
    for (int i = 0; i < 6; i++) {
      Pb[i] = bb[k].dP[i] + h * bb[k].dQ[i];
      wb[i] = h * Pb[i];
      bb[k].wrench_app[i] -= h * Pb[i];
    }
    dtac_sub3(r, J->pos[k], slots[k].frame.pos);
    for (int i = 0; i < 3; i++) f[i] = -J->gb[k][i];
    // torque t + r x f: f's cotangent gains t_bar x r, r's is f x t_bar
    dtac_cross3(fb, wb + 3, r);
    dtac_cross3(rb, f, wb + 3);
    for (int i = 0; i < 3; i++) {
      gbb[k][i] = -(wb[i] + fb[i]);
      gbb[k][3 + i] = -wb[3 + i];
      posb[k][i] += rb[i];
      bb[k].frame.pos[i] -= rb[i];
    }
  }

  // 2. each gel's context as the step had it, the direct cotangents of its outputs
  for (int i = 0; i < ngel && !fail; i++) {
    dtac_implicit* im = g[i].im;
    const dtac_gel_model* gm = g[i].gm;
    dtac_state_layout Ly = dtac_gel_state_layout(gm);
    int n3 = 3 * gm->nnode;
    const dtac_implicit_gel_bar* gi = gbar + i;
    dtac_imp_set_context(im, gm, gi->state0, g[i].col, g[i].ncol, gravity, h, g[i].material);
    memcpy(im->frame_R, g[i].site1->mat, sizeof(im->frame_R));
    im->delta = &J->delta[0][0];
    im->slot_pos = &J->pos[0][0];
    im->gbody = NULL;
    int ks = g[i].site_slot;
    im->site_k = ks >= 0 && ks < nslot && J->has[ks] ? ks : -1;
    for (int q = 0; q < gm->nfixed; q++) {
      int a = gm->fixed_id[q];
      double va[3];
      dtac_place_node(g[i].site1, gm->X + 3 * a, im->xback + 3 * a, va);
    }
    gel_work* w = gw + i;
    memcpy(w->xb, gi->sbar + Ly.x, sizeof(double) * n3);
    memcpy(w->vb, gi->sbar + Ly.v, sizeof(double) * n3);
    memcpy(w->ab1, gi->sbar + Ly.anchor, sizeof(double) * 4 * gm->nsurf);
    memset(gi->sbar, 0, sizeof(double) * Ly.size);
    w->out.x0 = gi->sbar + Ly.x;
    w->out.v0 = gi->sbar + Ly.v;
    w->out.col_mu = w->mub;
    w->out.anchor1 = w->ab1;
    w->out.anchor0 = gi->sbar + Ly.anchor;
    w->w.dbar = &dbar[0][0];
    w->w.posb = &posb[0][0];
    w->w.nut = &nut[0][0];
    dtac_imp_adj_rhs(im, gm, g[i].state, w->xb, &w->out, &w->w);
    // the back face moved with its body: x_b = xback_b + B_b delta, v_b gains B_b delta / h
    int k = im->site_k;
    for (int q = 0; q < gm->nfixed && k >= 0; q++) {
      int a = gm->fixed_id[q];
      double t[3], r[3], rt[3];
      for (int c = 0; c < 3; c++) t[c] = w->xb[3 * a + c] + w->vb[3 * a + c] / h;
      dtac_sub3(r, im->xback + 3 * a, J->pos[k]);
      dtac_cross3(rt, r, t);
      for (int c = 0; c < 3; c++) {
        dbar[k][c] += t[c];
        dbar[k][3 + c] += rt[c];
      }
    }
  }

  // 3. the joint true Hessian at the solution: each gel's free block, contact pairs and back-face
  // blocks, the bodies' block (each gel's kept factor preconditions)
  for (int i = 0; i < ngel && !fail; i++) {
    dtac_implicit* im = g[i].im;
    const dtac_gel_model* gm = g[i].gm;
    const double* x1 = g[i].state + dtac_gel_state_layout(gm).x;
    if (!im->factor_ok) {
      double tf = 0;
      int nf = 0;
      dtac_imp_assemble(im, gm, x1, 1, (double*)im->A->x, 0);
      fail |= dtac_imp_factorize_at(im, gm, x1, &tf, &nf);
    }
    dtac_imp_assemble(im, gm, x1, p->adj_projected ? 1 : 0, (double*)im->A->x, 0);
    dtac_imp_pairs(im, gm, x1, p->adj_projected ? 1 : 0);
  }
  if (!fail) fail = dtac_imp_bodies_block(J, g, ngel, h);

  // 4. the right side: the outputs' cotangents in (x, delta), gb's through H_(x|delta, delta)
  double bd[NB][6];
  if (!fail) {
    double* bx[NB];
    for (int i = 0; i < ngel; i++) {
      dtac_implicit* im = g[i].im;
      gel_work* w = gw + i;
      for (int d = 0; d < im->ndof; d++) {
        int n = im->dof_node[d];
        im->b[d] = w->w.xbe[n] + w->vb[n] / h;
      }
      bx[i] = im->b;
    }
    dtac_imp_cross_x(J, g, ngel, gbb, bx);
    memset(J->zb, 0, sizeof(double) * J->nz);
    for (int k = 0; k < nslot; k++) {
      for (int a = 0; a < 6; a++) {
        double s = dbar[k][a];
        for (int c = 0; c < 6; c++) s += J->K6[k][6 * a + c] * gbb[k][c];
        bd[k][a] = s;
      }
      dtac_imp_reduce_add(J, k, bd[k], J->zb);
    }
    // 5. the solve
    fail = dtac_imp_joint_pcg(J, g, ngel, p->adj_tolerance, 4000) < 0;
  }

  // 6. the bodies' inputs: rho = b_delta - H_(delta,x) mu_x - H_(delta,delta) nu
  if (!fail) {
    double nu[NB][6], hx[NB][6];
    const double* px[NB];
    dtac_imp_bodies_delta(J, J->zdx, nu);
    for (int i = 0; i < ngel; i++) px[i] = g[i].im->dx;
    memset(hx, 0, sizeof(hx));
    dtac_imp_cross_d(J, g, ngel, px, hx);
    int full = Wfull && nslot <= NB_JOINT;
    int n6 = 6 * nslot;
    for (int k = 0; k < nslot; k++) {
      double rho[6];
      for (int a = 0; a < 6; a++) {
        double s = bd[k][a] - hx[k][a];
        for (int c = 0; c < 6; c++) s -= J->K6[k][6 * a + c] * nu[k][c];
        rho[a] = s;
      }
      // W's cotangent -h^2 rho (gb + app)^T (the slot's block, or the joint W's row of blocks)
      for (int l = 0; l < nslot; l++) {
        if (!full && l != k) continue;
        for (int a = 0; a < 6; a++) {
          for (int c = 0; c < 6; c++) {
            double v = -h * h * rho[a] * (J->gb[l][c] + J->app[l][c]);
            if (full && Wfull_bar) {
              Wfull_bar[(size_t)(6 * k + a) * n6 + 6 * l + c] += v;
            } else if (!full) {
              bb[k].Winv[6 * a + c] += v;
            }
          }
        }
      }
      // app (the applied wrench moved to the step-end point)'s cotangent -nu
      double ab[6], r[3], fb[3], rb[3];
      for (int a = 0; a < 6; a++) ab[a] = -nu[k][a];
      dtac_sub3(r, slots[k].frame.pos, J->pos[k]);
      dtac_cross3(fb, ab + 3, r);
      dtac_cross3(rb, slots[k].wrench_app, ab + 3);
      for (int a = 0; a < 3; a++) {
        bb[k].wrench_app[a] += ab[a] + fb[a];
        bb[k].wrench_app[3 + a] += ab[3 + a];
        bb[k].frame.pos[a] += rb[a];
        posb[k][a] -= rb[a];
      }
      for (int a = 0; a < 6; a++) nut[k][a] = nu[k][a] - gbb[k][a];
    }
  }

  // 7. each gel's inputs with the multiplier mu_x (B_b nut on a back face that moves)
  for (int i = 0; i < ngel && !fail; i++) {
    dtac_implicit* im = g[i].im;
    const dtac_gel_model* gm = g[i].gm;
    const dtac_implicit_gel_bar* gi = gbar + i;
    gel_work* w = gw + i;
    int n3 = 3 * gm->nnode;
    const double* x1 = g[i].state + dtac_gel_state_layout(gm).x;
    for (int c = 0; c < n3; c++) w->lam[c] = im->dof[c] >= 0 ? im->dx[im->dof[c]] : 0;
    int k = im->site_k;
    for (int q = 0; q < gm->nfixed && k >= 0; q++) {
      int a = gm->fixed_id[q];
      double r[3], wr[3];
      dtac_sub3(r, im->xback + 3 * a, J->pos[k]);
      dtac_cross3(wr, nut[k] + 3, r);
      for (int c = 0; c < 3; c++) w->lam[3 * a + c] = nut[k][c] + wr[c];
    }
    double* gfull = im->gt;
    dtac_imp_energy_grad(im, gm, x1, gfull);
    dtac_imp_adj_theta(im, gm, x1, g[i].site1, w->w.xbe, w->vb, w->lam, gfull, &w->w, &w->out);
    fail |= dtac_imp_adj_rest(im, gm, gi->state0, x1, g[i].site0, gi->col0, g[i].col, g[i].ncol,
                              h, w->lam, &nut[0][0], w->ab1, w->mub, &w->out, gi->site0_bar,
                              gi->col0_bar, gi->pb);
  }

  // 8. the slots' step-end points: pos + h vel
  for (int k = 0; k < nslot && !fail; k++) {
    for (int a = 0; a < 3; a++) {
      bb[k].frame.pos[a] += posb[k][a];
      bb[k].frame.vel[a] += h * posb[k][a];
    }
  }
  for (int i = 0; i < ngel; i++) {
    g[i].im->delta = NULL;
    g[i].im->site_k = -1;
    free(gw[i].xb);
  }
  return fail ? -1 : 0;
}
