// implicit_joint.c: the Newton iteration of the implicit step (implicit.h), for one gel or for
// several gels together with the rigid bodies they touch. A coupled body's unknown is its
// correction delta (displacement of its point, rotation vector) from where MuJoCo's step moved
// it, in the range of its inverse effective mass W = U diag(lam) U^T (its null space is what its
// joints forbid): delta = U z, and the potential gains
//   E_b(z) = z' diag(1/lam) z / (2 h^2) + (U z) . wrench_app,
// backward Euler of the body under the gel's wrench at the step end in place of the wrench the
// rigid step already applied. Its colliders move with it (dtac_imp_rel_pos), so the gels'
// contact energies depend on z. Newton directions by CG on [gels' dofs, z] preconditioned by
// each gel's kept factor and a dense Cholesky of each body's block: the coupling is of rank at
// most 2 dim(z), which bounds the extra CG iterations it costs.

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "implicit_internal.h"


dtac_implicit_joint* dtac_implicit_joint_make(void) {
  return (dtac_implicit_joint*)calloc(1, sizeof(dtac_implicit_joint));
}

void dtac_implicit_joint_free(dtac_implicit_joint* J) {
  free(J);
}

int dtac_implicit_joint_ncoupled(const dtac_implicit_joint* J) {
  return J ? J->ncoupled : 0;
}

int dtac_implicit_joint_coupled(const dtac_implicit_joint* J, int i) {
  return J && i >= 0 && i < J->ncoupled ? J->cg_of[i] : -1;
}

// ---- products and the preconditioner of the joint system ---------------------------------------

// qx[i] += H_(x, delta) dl over each gel i's free dofs: the contact pairs (a node against a
// collider moved by B dl) and the back faces (placed with their body's correction), from the
// last assembly
void dtac_imp_cross_x(const dtac_implicit_joint* J, const dtac_implicit_gel* g, int ngel,
                      const double dl[][6], double* const* qx) {
  for (int i = 0; i < ngel; i++) {
    const dtac_implicit* im = g[i].im;
    double* q = qx[i];
    for (int n = 0; n < im->npair; n++) {
      int a = im->pair_a[n], k = im->pair_k[n];
      const double* r = im->pair_r + 3 * n;
      // the collider's point at the node moves by u = dl + dw x r: -H u on the node
      double u[3], wr[3], Hu[3];
      dtac_cross3(wr, dl[k] + 3, r);
      for (int c = 0; c < 3; c++) u[c] = dl[k][c] + wr[c];
      dtac_mulmv3(Hu, im->pair_H + 9 * n, u);
      for (int c = 0; c < 3; c++) {
        int d = im->dof[3 * a + c];
        if (d >= 0) q[d] -= Hu[c];
      }
    }
    // the back face: H_(x, back) B_b dl (dtac_imp_bodies_block's backC)
    int k = im->site_k;
    for (int n = 0; n < im->nback_row && k >= 0; n++) {
      const double* C = im->backC + 6 * n;
      double s = 0;
      for (int c = 0; c < 6; c++) s += C[c] * dl[k][c];
      q[im->back_row[n]] += s;
    }
  }
}

// out[k] += H_(delta_k, x) px over each gel i's free dofs px[i] (the transpose of the above)
void dtac_imp_cross_d(const dtac_implicit_joint* J, const dtac_implicit_gel* g, int ngel,
                      const double* const* px, double out[][6]) {
  for (int i = 0; i < ngel; i++) {
    const dtac_implicit* im = g[i].im;
    const double* p = px[i];
    for (int n = 0; n < im->npair; n++) {
      int a = im->pair_a[n], k = im->pair_k[n];
      const double* r = im->pair_r + 3 * n;
      double pa[3], Hp[3], rHp[3];
      for (int c = 0; c < 3; c++) {
        int d = im->dof[3 * a + c];
        pa[c] = d >= 0 ? p[d] : 0;
      }
      // -B^T H pa = -[Hp; r x Hp]
      dtac_mulmv3(Hp, im->pair_H + 9 * n, pa);
      dtac_cross3(rHp, r, Hp);
      for (int c = 0; c < 3; c++) {
        out[k][c] -= Hp[c];
        out[k][3 + c] -= rHp[c];
      }
    }
    // the back rows: B_b^T H_(back, x) p
    int k = im->site_k;
    for (int n = 0; n < im->nback_row && k >= 0; n++) {
      const double* C = im->backC + 6 * n;
      double v = p[im->back_row[n]];
      for (int c = 0; c < 6; c++) out[k][c] += C[c] * v;
    }
  }
}

// y = H p over [each gel's dofs (its own p, q arrays), z (zp -> zq)]
static void joint_hvp(dtac_implicit_joint* J, dtac_implicit_gel* g, int ngel, const double* zp,
                      double* zq) {
  // the bodies' own block and the z-z parts of the contact pairs and back faces: L L^T zp
  {
    int n = J->nz;
    const double* L = J->Kc;
    double t[NZ];
    for (int a = 0; a < n; a++) {
      double s = 0;
      for (int m = a; m < n; m++) s += L[m * NZ + a] * zp[m];
      t[a] = s;
    }
    for (int a = 0; a < n; a++) {
      double s = 0;
      for (int m = 0; m <= a; m++) s += L[a * NZ + m] * t[m];
      zq[a] = s;
    }
  }
  double dl[NB][6], w[NB][6];
  double* qx[NB];
  const double* px[NB];
  dtac_imp_bodies_delta(J, zp, dl);
  for (int i = 0; i < ngel; i++) {
    dtac_implicit* im = g[i].im;
    dtac_imp_spmv(im, (const double*)im->A->x, im->p, im->q);
    qx[i] = im->q;
    px[i] = im->p;
  }
  dtac_imp_cross_x(J, g, ngel, dl, qx);
  memset(w, 0, sizeof(double) * 6 * J->nslot);
  dtac_imp_cross_d(J, g, ngel, px, w);
  for (int k = 0; k < J->nslot; k++) dtac_imp_reduce_add(J, k, w[k], zq);
}

// preconditioner: each gel's kept factor on its r (into its z), each body's block on zr -> zs
static int joint_prec(dtac_implicit_joint* J, dtac_implicit_gel* g, int ngel) {
  for (int i = 0; i < ngel; i++) {
    if (dtac_imp_prec(g[i].im, g[i].im->r, g[i].im->z)) return -1;
  }
  int n = J->nz;
  const double* L = J->Kc;
  double t[NZ];
  for (int a = 0; a < n; a++) {
    double s = J->zr[a];
    for (int m = 0; m < a; m++) s -= L[a * NZ + m] * t[m];
    t[a] = s / L[a * NZ + a];
  }
  for (int a = n - 1; a >= 0; a--) {
    double s = t[a];
    for (int m = a + 1; m < n; m++) s -= L[m * NZ + a] * J->zs[m];
    J->zs[a] = s / L[a * NZ + a];
  }
  return 0;
}

// the joint system H [dx; dz] = [b; zb] by preconditioned CG (each gel's b into its dx); returns
// iterations, -1 unconverged or failed, -2 on negative curvature
int dtac_imp_joint_pcg(dtac_implicit_joint* J, dtac_implicit_gel* g, int ngel, double tol,
                       int maxit) {
  int nz = J->nz;
  double bb = 0;
  for (int i = 0; i < ngel; i++) {
    dtac_implicit* im = g[i].im;
    for (int d = 0; d < im->ndof; d++) bb += im->b[d] * im->b[d];
    memset(im->dx, 0, sizeof(double) * im->ndof);
    memcpy(im->r, im->b, sizeof(double) * im->ndof);
  }
  for (int d = 0; d < nz; d++) bb += J->zb[d] * J->zb[d];
  memset(J->zdx, 0, sizeof(double) * nz);
  memcpy(J->zr, J->zb, sizeof(double) * nz);
  if (bb == 0) return 0;
  if (joint_prec(J, g, ngel)) return -1;
  double rz = 0;
  for (int i = 0; i < ngel; i++) {
    dtac_implicit* im = g[i].im;
    memcpy(im->p, im->z, sizeof(double) * im->ndof);
    for (int d = 0; d < im->ndof; d++) rz += im->r[d] * im->z[d];
  }
  memcpy(J->zp, J->zs, sizeof(double) * nz);
  for (int d = 0; d < nz; d++) rz += J->zr[d] * J->zs[d];
  for (int it = 1; it <= maxit; it++) {
    joint_hvp(J, g, ngel, J->zp, J->zq);
    double pq = 0;
    for (int i = 0; i < ngel; i++) {
      dtac_implicit* im = g[i].im;
      for (int d = 0; d < im->ndof; d++) pq += im->p[d] * im->q[d];
    }
    for (int d = 0; d < nz; d++) pq += J->zp[d] * J->zq[d];
    if (!(pq > 0)) return -2;
    double alpha = rz / pq, rr = 0;
    for (int i = 0; i < ngel; i++) {
      dtac_implicit* im = g[i].im;
      for (int d = 0; d < im->ndof; d++) {
        im->dx[d] += alpha * im->p[d];
        im->r[d] -= alpha * im->q[d];
        rr += im->r[d] * im->r[d];
      }
    }
    for (int d = 0; d < nz; d++) {
      J->zdx[d] += alpha * J->zp[d];
      J->zr[d] -= alpha * J->zq[d];
      rr += J->zr[d] * J->zr[d];
    }
    if (rr <= tol * tol * bb) return it;
    if (joint_prec(J, g, ngel)) return -1;
    double rz1 = 0;
    for (int i = 0; i < ngel; i++) {
      dtac_implicit* im = g[i].im;
      for (int d = 0; d < im->ndof; d++) rz1 += im->r[d] * im->z[d];
    }
    for (int d = 0; d < nz; d++) rz1 += J->zr[d] * J->zs[d];
    double beta = rz1 / rz;
    rz = rz1;
    for (int i = 0; i < ngel; i++) {
      dtac_implicit* im = g[i].im;
      for (int d = 0; d < im->ndof; d++) im->p[d] = im->z[d] + beta * im->p[d];
    }
    for (int d = 0; d < nz; d++) J->zp[d] = J->zs[d] + beta * J->zp[d];
  }
  return -1;
}

// the joint Newton direction at the iterate (each gel's im->x, J->z); 0, or nonzero on failure.
// The true Hessian first, the projected one where it is found indefinite; a kept factor that no
// longer preconditions is renewed (every gel's, at its iterate) and CG run once more.
static int joint_dir(dtac_implicit_joint* J, dtac_implicit_gel* g, int ngel,
                     const dtac_implicit_params* p, double rel, double h) {
  for (int i = 0; i < ngel; i++) {
    dtac_implicit* im = g[i].im;
    for (int d = 0; d < im->ndof; d++) im->b[d] = -im->g[im->dof_node[d]];
  }
  for (int d = 0; d < J->nz; d++) J->zb[d] = -J->gz[d];
  double tol = fmax(1e-10, fmin(p->cg_tolerance, rel));
  dtac_implicit_report* rep0 = &g[0].rep;
  for (int project = p->project ? 1 : 0; project <= 1; project++) {
    int indefinite = 0;
    for (int renew = 0; renew <= 1 && !indefinite; renew++) {
      for (int i = 0; i < ngel && !indefinite; i++) {
        dtac_implicit* im = g[i].im;
        double t0 = dtac_imp_now_s();
        dtac_imp_assemble(im, g[i].gm, im->x, project, (double*)im->A->x, 0);
        dtac_imp_pairs(im, g[i].gm, im->x, project);
        g[i].rep.nproject = im->nproject;
        rep0->t_assemble += dtac_imp_now_s() - t0;
        int nu = 0;
        if (!renew && im->factor_ok && p->contact_update) {
          t0 = dtac_imp_now_s();
          nu = dtac_imp_contact_update(im, g[i].gm, im->x);
          rep0->t_factor += dtac_imp_now_s() - t0;
          if (nu > 0) rep0->nupdate += nu;
        }
        if (renew || !im->factor_ok || nu < 0) {
          if (dtac_imp_factorize_at(im, g[i].gm, im->x, &rep0->t_factor, &rep0->nfactor)) {
            if (project) return -1;
            indefinite = 1;
          }
        }
      }
      if (indefinite || dtac_imp_bodies_block(J, g, ngel, h)) {
        if (project) return -1;
        indefinite = 1;
        break;
      }
      double t0 = dtac_imp_now_s();
      // the coupling adds at most 2 nz iterations (its rank) to what the gels alone take
      int maxit = p->cg_iterations + 2 * J->nz;
      int it = dtac_imp_joint_pcg(J, g, ngel, tol, renew ? 4 * maxit : maxit);
      rep0->t_solve += dtac_imp_now_s() - t0;
      rep0->ncg += it >= 0 ? it : maxit;
      if (it >= 0) return 0;
      if (it == -2 && !project) indefinite = 1;
    }
  }
  return -1;
}

// ---- the Newton iteration -----------------------------------------------------------------------

// E of all gels and bodies at the iterate (trial = 0: im->x, J->z) or the trial (1: im->xt,
// J->zt), gradients into im->g / im->gt and J->gz / J->gzt when grad; J->scale and every
// im->scale updated. J NULL: one gel, no bodies.
static double joint_energy(dtac_implicit_joint* J, const dtac_body* slots, dtac_implicit_gel* g,
                           int ngel, int trial, int grad, double h) {
  double e = 0;
  double(*delta)[6] = NULL;
  double(*gb)[6] = NULL;
  if (J) {
    delta = trial ? J->delta_t : J->delta;
    gb = trial ? J->gb_t : J->gb;
    dtac_imp_bodies_delta(J, trial ? J->zt : J->z, delta);
    memset(gb, 0, sizeof(double) * 6 * J->nslot);
  }
  for (int i = 0; i < ngel; i++) {
    dtac_implicit* im = g[i].im;
    if (J) {
      im->delta = &delta[0][0];
      im->gbody = &gb[0][0];
    }
    double* x = trial ? im->xt : im->x;
    double* gr = grad ? (trial ? im->gt : im->g) : NULL;
    if (J && im->site_k >= 0) dtac_imp_back_place(J, im, g[i].gm, x, delta);
    e += dtac_imp_energy_grad(im, g[i].gm, x, gr);
    if (J && im->site_k >= 0 && gr) dtac_imp_back_grad(J, im, g[i].gm, gr, gb);
  }
  if (J) e += dtac_imp_bodies_energy(J, trial ? J->zt : J->z, delta, gb, grad ? (trial ? J->gzt : J->gz) : NULL, h);
  (void)slots;
  return e;
}

// |gradient|^2 over the free dofs and z, and |forces in balance|
static double joint_grad2(const dtac_implicit_joint* J, const dtac_implicit_gel* g, int ngel,
                          int trial, double* scale) {
  double gg = 0, sc = 0;
  for (int i = 0; i < ngel; i++) {
    const dtac_implicit* im = g[i].im;
    const double* gr = trial ? im->gt : im->g;
    for (int d = 0; d < im->ndof; d++) gg += gr[im->dof_node[d]] * gr[im->dof_node[d]];
    sc += im->scale;
  }
  if (J) {
    const double* gz = trial ? J->gzt : J->gz;
    for (int d = 0; d < J->nz; d++) gg += gz[d] * gz[d];
    sc += J->scale;
  }
  if (scale) *scale = sc;
  return gg;
}

static void swap(double** a, double** b) {
  double* t = *a;
  *a = *b;
  *b = t;
}

// the Newton iteration over gels g (each begun by dtac_imp_begin) and, with J, the bodies;
// returns the status, the final relative residual in *rel_out (each report's energy set)
static int newton(dtac_implicit_joint* J, const dtac_body* slots, dtac_implicit_gel* g, int ngel,
                  double h, const dtac_implicit_params* p, double* rel_out) {
  dtac_implicit_report* rep = &g[0].rep;
  *rel_out = INFINITY;
  double t0 = dtac_imp_now_s();
  double e = joint_energy(J, slots, g, ngel, 0, 1, h);
  rep->t_grad += dtac_imp_now_s() - t0;
  int finite = isfinite(e);
  for (int i = 0; i < ngel && finite; i++)
    finite = dtac_imp_all_finite(g[i].im->g, 3 * g[i].gm->nnode);
  if (!finite) return DTAC_IMPLICIT_NONFINITE;
  int nz = J ? J->nz : 0;
  int status = DTAC_IMPLICIT_MAXITER;
  double rel = INFINITY;
  for (int it = 0;; it++) {
    double scale;
    double gg = joint_grad2(J, g, ngel, 0, &scale);
    rel = sqrt(gg) / fmax(scale, 1e-300);
    if (rel <= p->tolerance) {
      status = DTAC_IMPLICIT_OK;
      break;
    }
    if (it >= p->iterations) break;
    for (int i = 0; i < ngel; i++) g[i].rep.iterations = it + 1;
    // the direction: one gel alone by its own solver, else jointly
    double slope = 0, dxmax = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
      dtac_implicit_params pp = *p;
      if (attempt) pp.project = 1;
      int fail = J ? joint_dir(J, g, ngel, &pp, rel, h)
                   : dtac_imp_newton_dir(g[0].im, g[0].gm, g[0].im->x, &pp, rel, rep);
      if (fail) return DTAC_IMPLICIT_SOLVE;
      slope = 0;
      for (int i = 0; i < ngel; i++) {
        const dtac_implicit* im = g[i].im;
        for (int d = 0; d < im->ndof; d++) slope += im->g[im->dof_node[d]] * im->dx[d];
      }
      for (int d = 0; d < nz; d++) slope += J->gz[d] * J->zdx[d];
      // the true Hessian gave no descent direction (indefinite without CG noticing): project
      if (slope < 0 || p->project) break;
    }
    for (int i = 0; i < ngel; i++) {
      const dtac_implicit* im = g[i].im;
      for (int d = 0; d < im->ndof; d++) dxmax = fmax(dxmax, fabs(im->dx[d]));
    }
    // Armijo backtracking on E along the direction
    double alpha = 1, et = INFINITY;
    int ok = 0;
    t0 = dtac_imp_now_s();
    for (int ls = 0; ls < 30; ls++) {
      for (int i = 0; i < ngel; i++) {
        dtac_implicit* im = g[i].im;
        memcpy(im->xt, im->x, 3 * g[i].gm->nnode * sizeof(double));
        for (int d = 0; d < im->ndof; d++) im->xt[im->dof_node[d]] += alpha * im->dx[d];
      }
      for (int d = 0; d < nz; d++) J->zt[d] = J->z[d] + alpha * J->zdx[d];
      et = joint_energy(J, slots, g, ngel, 1, 1, h);
      if (isfinite(et) && et <= e + 1e-4 * alpha * slope) {
        ok = 1;
        break;
      }
      // near the minimum E no longer resolves the decrease (its rounding is ~1e-16 |E| while
      // the decrease is ~|g|^2/H): accept a full step that reduces the gradient instead
      if (ls == 0 && isfinite(et) && fabs(et - e) <= 1e-12 * (fabs(e) + fabs(et))) {
        int fin = 1;
        for (int i = 0; i < ngel && fin; i++)
          fin = dtac_imp_all_finite(g[i].im->gt, 3 * g[i].gm->nnode);
        if (fin && joint_grad2(J, g, ngel, 1, NULL) < gg) {
          ok = 1;
          break;
        }
      }
      // rounding: below a femtometre the energy no longer resolves the step
      if (alpha * dxmax < 1e-15) break;
      alpha *= 0.5;
    }
    rep->t_grad += dtac_imp_now_s() - t0;
    if (!ok) {
      // at the rounding floor the iterate is as converged as double allows
      status = alpha * dxmax < 1e-15 ? DTAC_IMPLICIT_OK : DTAC_IMPLICIT_LINESEARCH;
      // the gradient passes left the trial's delta in the gels: the iterate's back
      if (J) joint_energy(J, slots, g, ngel, 0, 1, h);
      break;
    }
    for (int i = 0; i < ngel; i++) {
      dtac_implicit* im = g[i].im;
      memcpy(im->x, im->xt, 3 * g[i].gm->nnode * sizeof(double));
      swap(&im->g, &im->gt);
    }
    if (J) {
      memcpy(J->z, J->zt, sizeof(double) * nz);
      memcpy(J->gz, J->gzt, sizeof(double) * nz);
      memcpy(J->delta, J->delta_t, sizeof(double) * 6 * J->nslot);
      memcpy(J->gb, J->gb_t, sizeof(double) * 6 * J->nslot);
      for (int i = 0; i < ngel; i++) g[i].im->delta = &J->delta[0][0];
    }
    e = et;
  }
  *rel_out = rel;
  for (int i = 0; i < ngel; i++) g[i].rep.energy = e;
  return status;
}

// the back face's wrench on the site's body at the gel's last gradient pass (its internal
// forces), about point q, added to w
static void site_wrench(const dtac_implicit* im, const dtac_gel_model* gm, const double q[3],
                        double w[6]) {
  for (int i = 0; i < gm->nfixed; i++) {
    int a = gm->fixed_id[i];
    double f[3] = {-im->gel[3 * a], -im->gel[3 * a + 1], -im->gel[3 * a + 2]};
    dtac_wrench_add(w, f, (const double[3]){0, 0, 0}, im->x + 3 * a, q);
  }
}

int dtac_implicit_joint_step(dtac_implicit_gel* g, int ngel, dtac_body* slots,
                             dtac_implicit_joint* J, int nslot, const double* Wfull,
                             const double gravity[3], double h, const dtac_implicit_params* p) {
  if (!J || nslot < 0) nslot = 0;
  if (nslot > NB) nslot = NB;
  int worst = DTAC_IMPLICIT_OK;
  if (nslot > 0) {
    dtac_imp_bodies_setup(J, slots, nslot, Wfull, h);
    memset(J->z, 0, sizeof(double) * J->nz);
    memset(J->delta, 0, sizeof(J->delta));
  }
  // the gels touching a body with unknowns are solved together (in J->cg), the others alone
  int ncoupled = 0;
  for (int i = 0; i < ngel; i++) {
    dtac_implicit_gel* gi = g + i;
    dtac_implicit* im = gi->im;
    int coupled = 0;
    int nc = gi->ncol < im->maxcol ? gi->ncol : im->maxcol;
    for (int c = 0; c < nc; c++) {
      int k = gi->col_slot && nslot > 0 ? gi->col_slot[c] : -1;
      im->cslot[c] = k >= 0 && k < nslot ? k : -1;
      coupled |= im->cslot[c] >= 0 && J->has[im->cslot[c]];
    }
    im->delta = NULL;
    im->gbody = NULL;
    im->slot_pos = nslot > 0 ? &J->pos[0][0] : NULL;
    int ks = gi->site_slot;
    im->site_k = ks >= 0 && ks < nslot && J->has[ks] ? ks : -1;
    coupled |= im->site_k >= 0;
    dtac_implicit_params pg = *p;
    pg.material = gi->material;
    int st = dtac_imp_begin(im, gi->gm, gi->state, gi->site0, gi->site1, gi->col, gi->ncol,
                            gravity, h, &pg, &gi->rep);
    if (st != DTAC_IMPLICIT_OK) {
      gi->rep.status = st;
      continue;
    }
    if (coupled && ncoupled < NB) {
      J->cg[ncoupled] = *gi;
      J->cg_of[ncoupled++] = i;
      continue;
    }
    double rel;
    gi->rep.status = newton(NULL, NULL, gi, 1, h, p, &rel);
    gi->rep.residual = rel;
  }
  if (J) J->ncoupled = ncoupled;
  if (ncoupled > 0) {
    double rel;
    dtac_implicit_gel* cg = J->cg;
    int st = newton(J, slots, cg, ncoupled, h, p, &rel);
    for (int i = 0; i < ncoupled; i++) {
      cg[i].rep.status = st;
      cg[i].rep.residual = rel;
      g[J->cg_of[i]].rep = cg[i].rep;
    }
  }

  // the bodies' impulses beyond what the rigid step applied, about their step-start points,
  // from every gel's contact and back-face wrenches at the step end (one more gradient pass)
  if (nslot > 0) {
    double wend[NB][6];
    memset(wend, 0, sizeof(wend));
    memset(J->gb, 0, sizeof(double) * 6 * nslot);
    int blown = 0;
    for (int i = 0; i < ngel; i++) {
      dtac_implicit* im = g[i].im;
      // a gel that blew up or stopped short of the tolerance hands no correction to the bodies:
      // its forces at an unconverged iterate (a pad started deep inside a geom) can be anything
      blown |= g[i].rep.status != DTAC_IMPLICIT_OK;
      if (blown) break;
      im->delta = &J->delta[0][0];
      im->gbody = &J->gb[0][0];
      dtac_imp_energy_grad(im, g[i].gm, im->x, im->gt);
      int k = g[i].site_slot;
      if (im->site_k >= 0) {
        dtac_imp_back_grad(J, im, g[i].gm, im->gt, J->gb);
      } else if (k >= 0 && k < nslot) {
        site_wrench(im, g[i].gm, slots[k].frame.pos, wend[k]);
      }
    }
    J->blown = blown;
    for (int k = 0; k < nslot; k++) {
      double f[3] = {-J->gb[k][0], -J->gb[k][1], -J->gb[k][2]};
      double t[3] = {-J->gb[k][3], -J->gb[k][4], -J->gb[k][5]};
      dtac_wrench_add(wend[k], f, t, J->pos[k], slots[k].frame.pos);
      for (int i = 0; i < 6; i++) {
        slots[k].dP[i] = blown ? 0 : h * (wend[k][i] - slots[k].wrench_app[i]);
        slots[k].dQ[i] = h * slots[k].dP[i];
      }
    }
  }
  // the new states, after the pass above: it reads the start states (the levers of the bodies'
  // torques) that the gels are stepped from in place; a coupled gel's anchors and back face move
  // with its bodies' corrections (im->delta, still set)
  for (int i = 0; i < ngel; i++) {
    dtac_implicit_gel* gi = g + i;
    int st = gi->rep.status;
    if (st != DTAC_IMPLICIT_NONFINITE && st != DTAC_IMPLICIT_SOLVE)
      dtac_imp_finish(gi->im, gi->gm, gi->state, gi->site1, h, &gi->rep);
    if (gi->rep.status > worst) worst = gi->rep.status;
    gi->im->delta = NULL;
    gi->im->gbody = NULL;
    gi->im->site_k = -1;
  }
  return worst;
}
