// gel_scratch.c: the work arrays of a gel's step and its reverse pass (dtac_gel_scratch).
#include <stdlib.h>
#include <string.h>

#include "gel.h"

int dtac_gel_scratch_make(dtac_gel_scratch* s, const dtac_gel_model* gm, int maxcol) {
  memset(s, 0, sizeof(*s));
  s->tet_force = (double*)malloc(sizeof(double) * 12 * gm->ntet);
  s->force = (double*)malloc(sizeof(double) * 3 * gm->nnode);
  s->tet_J = (double*)malloc(sizeof(double) * gm->ntet);
  s->maxcol = maxcol;
  int mc = maxcol > 0 ? maxcol : 1;
  s->col_t = (dtac_collider*)malloc(sizeof(dtac_collider) * mc);
  s->col_local = (double*)malloc(sizeof(double) * 12 * mc);
  s->col_ft = (double*)malloc(sizeof(double) * 6 * mc);
  s->imp = (double*)malloc(sizeof(double) * DTAC_IMP_SIZE * (gm->nsurf > 0 ? gm->nsurf : 1));
  int nn = gm->nnode, ns = gm->nsurf > 0 ? gm->nsurf : 1;
  s->react = (dtac_node_react*)malloc(sizeof(dtac_node_react) * ns);
  s->react_t = (double*)malloc(sizeof(double) * 3 * DTAC_NODE_MAXCOL * ns);
  s->fint = (double*)malloc(sizeof(double) * 3 * nn);
  s->vimp = (double*)malloc(sizeof(double) * 6 * ns);
  s->state_tmp = (double*)malloc(sizeof(double) * dtac_gel_state_layout(gm).size);
  s->fbar = (double*)malloc(sizeof(double) * 3 * nn);
  s->imp_bar = (double*)malloc(sizeof(double) * DTAC_IMP_SIZE * ns);
  s->col_ft_bar = (double*)malloc(sizeof(double) * 6 * mc);
  s->col_bar = (dtac_collider_bar*)malloc(sizeof(dtac_collider_bar) * mc);
  if (!s->fint || !s->vimp || !s->state_tmp || !s->fbar || !s->imp_bar || !s->col_ft_bar ||
      !s->col_bar || !s->imp || !s->tet_force || !s->force || !s->tet_J || !s->col_t ||
      !s->col_local || !s->col_ft || !s->react || !s->react_t) {
    dtac_gel_scratch_free(s);
    return 1;
  }
  return 0;
}

void dtac_gel_scratch_free(dtac_gel_scratch* s) {
  free(s->tet_force);
  free(s->force);
  free(s->tet_J);
  free(s->col_t);
  free(s->col_local);
  free(s->col_ft);
  free(s->imp);
  free(s->react);
  free(s->react_t);
  free(s->fint);
  free(s->vimp);
  free(s->state_tmp);
  free(s->fbar);
  free(s->imp_bar);
  free(s->col_ft_bar);
  free(s->col_bar);
  memset(s, 0, sizeof(*s));
}
