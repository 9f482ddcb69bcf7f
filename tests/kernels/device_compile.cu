// device_compile.cu: every per-element function of kernels/ compiled as device code by nvcc (a
// build check: one source for host and device holds only if the functions the CPU alone calls
// today, the tactile optics and the adjoints, compile for the GPU too). Each kernel calls its
// header's functions on its arguments, so nvcc must generate them; nothing launches these
// kernels: a function that cannot run on a GPU (a host-only call, a non-device global) fails the
// build here.
#include "contact.h"
#include "fem.h"
#include "gel_dev.h"
#include "optics.h"

__global__ void dtac_check_optics(const dtac_camera* cam, const double* in, double* out) {
  double bg[3], coef[3 * DTAC_OPTICS_NBASIS], rgb[3], n[3], uv[2], w[3], nb[3], db = 0;
  double bgb[3] = {0, 0, 0}, cb[3 * DTAC_OPTICS_NBASIS] = {0};
  dtac_optics_default(bg, coef);
  dtac_optics_normal_from_slope(in[0], in[1], n);
  dtac_optics_shade(bg, coef, n, in[2], rgb);
  dtac_optics_shade_adj(bg, coef, n, in[2], rgb, nb, &db, bgb, cb);
  dtac_optics_normal_from_slope_adj(in[0], in[1], nb, out + 3, out + 4);
  dtac_camera_project(cam, in, uv);
  out[0] = dtac_barycentric(in, in + 2, in + 4, uv, w) + rgb[0] + db + bgb[0] + cb[0] + w[0];
  double m[3] = {in[0], in[1], in[2]}, mb[3] = {0, 0, 0};
  dtac_normalize3(m, n);
  dtac_normalize3_adj(m, nb, mb);
  out[1] = mb[0];
}

__global__ void dtac_check_contact_adj(const dtac_contact_node_param* p, const dtac_collider* c,
                                       const double* in, double* out) {
  double xb[3] = {0, 0, 0}, vb[3] = {0, 0, 0}, ab[3] = {0, 0, 0}, db = 0, nb[3] = {0, 0, 0};
  dtac_collider_bar cb = {{0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0}, {0, 0, 0}};
  dtac_contact_param_adj pa;
  memset(&pa, 0, sizeof(pa));
  dtac_contact_node_force_adj(p, c, in, in + 3, in + 6, in + 9, xb, vb, ab, &pa);
  dtac_collider_dist_adj(c, in, in[12], in + 13, xb, &cb);
  dtac_collider_to_world_adj(c, in, in + 3, xb, &cb);
  dtac_collider_to_local_adj(c, in, in + 3, xb, &cb);
  double H[9];
  dtac_sdf_hess(c->type, c->size, c->planes, c->nplane, in, H);
  double fb[3] = {0, 0, 0}, tb[3] = {0, 0, 0}, pb[3] = {0, 0, 0}, qb[3] = {0, 0, 0};
  dtac_wrench_add_adj(in, in + 3, in + 6, in + 9, fb, tb, pb, qb);
  double kb = 0, cnb = 0;
  dtac_imp_record_adj(p, in[0], in[1], in + 2, &db, nb, &kb, &cnb);
  out[0] = xb[0] + vb[0] + ab[0] + db + nb[0] + cb.pos[0] + H[0] + fb[0] + kb + cnb;
}

__global__ void dtac_check_fem_adj(const dtac_material* mat, const double* x, const double* v,
                                   const double* Dm_inv, const double* f_bar, double* out) {
  double xb[12] = {0}, vb[12] = {0};
  dtac_material_adj ma;
  memset(&ma, 0, sizeof(ma));
  dtac_tet_force_adj(mat, x, x + 3, x + 6, x + 9, v, v + 3, v + 6, v + 9, Dm_inv, 1.0, f_bar, xb,
                     vb, &ma);
  out[0] = xb[0] + vb[0];
}

__global__ void dtac_check_frames_adj(const dtac_frame* F, const dtac_body* B, const double* in,
                                      double* out) {
  dtac_frame Fb = *F, Bb = *F;
  double dPb[6] = {0}, dQb[6] = {0}, wbb[6], lb[12] = {0}, phib[3] = {0, 0, 0};
  dtac_body_bar bb;
  memset(&bb, 0, sizeof(bb));
  dtac_body_substep_adj(B, F, in, 1e-3, &Fb, dPb, dQb, wbb, &bb);
  dtac_frame_at_adj(F, 1e-3, in, in + 3, &Bb);
  dtac_frame_on_body_adj(F, in, in + 3, F, &Bb, lb, lb + 3);
  dtac_rotvec_mat_adj(in, in + 3, phib);
  out[0] = Fb.pos[0] + Bb.pos[0] + wbb[0] + lb[0] + phib[0] + bb.Winv[0];
}
