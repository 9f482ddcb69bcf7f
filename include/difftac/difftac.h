// difftac.h: the public C API of difftac, a MuJoCo plugin library for differentiable FEM gels
// (the elastomer of GelSight/DIGIT-style tactile sensors), penalty contact and tactile sensors.
//
// Loading libdifftac.so (mj_loadPluginLibrary) registers the plugins `difftac.elastomer` and
// `difftac.tactile`. The functions below read an elastomer instance of a model and its data.
#ifndef DIFFTAC_DIFFTAC_H_
#define DIFFTAC_DIFFTAC_H_

#include <mujoco/mujoco.h>

#if defined(DTAC_BUILDING)
#define DTAC_API __attribute__((visibility("default")))
#else
#define DTAC_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define DTAC_VERSION_STRING "0.1.0"

// library version and the MuJoCo header version it was built against (mjVERSION_HEADER)
DTAC_API const char* dtac_version(void);
DTAC_API int dtac_mujoco_header_version(void);

// plugin instance id of the elastomer named `name` (the <instance name=...>), or -1
DTAC_API int dtac_gel_find(const mjModel* m, const char* name);

// description of one elastomer instance in one mjData
typedef struct dtac_gel_info_ {
  int nnode;              // mesh nodes
  int ntet;               // tetrahedra
  int nsurf;              // contact (surface) nodes
  int ncell[3];           // grid cells along x y z of the pad
  int nsub;               // explicit substeps per MuJoCo step
  double dt_sub;          // substep, s
  double dt_stable;       // largest stable substep, s
  double omega_max;       // highest elastic angular frequency at rest, rad/s
  double mass;            // gel mass, kg
  int site;               // MuJoCo site id of the gel frame
  int body;               // MuJoCo body id the back face is attached to
  int ncontact;           // surface nodes in contact after the last step
  int nwarning;           // blow-ups detected and recovered from (gel reset to rest)
} dtac_gel_info;

// fills info; returns 0, or -1 if `instance` is not a difftac elastomer
DTAC_API int dtac_gel_get_info(const mjModel* m, const mjData* d, int instance,
                               dtac_gel_info* info);

// node positions in the world (nnode x 3), pointing into d->plugin_state; NULL if not an elastomer
DTAC_API const mjtNum* dtac_gel_positions(const mjModel* m, const mjData* d, int instance);

// rest positions in the gel (site) frame (nnode x 3); NULL if not an elastomer
DTAC_API const mjtNum* dtac_gel_rest_positions(const mjModel* m, const mjData* d, int instance);

// net contact force and torque the scene exerts on the gel, world frame, torque about the site
// origin, as of the last passive-force evaluation (mj_forward / mj_step); returns 0 or -1
DTAC_API int dtac_gel_contact_wrench(const mjModel* m, const mjData* d, int instance,
                                     mjtNum wrench[6]);

// elastic strain energy and kinetic energy of the gel, J
DTAC_API mjtNum dtac_gel_elastic_energy(const mjModel* m, const mjData* d, int instance);
DTAC_API mjtNum dtac_gel_kinetic_energy(const mjModel* m, const mjData* d, int instance);

#ifdef __cplusplus
}
#endif

#endif  // DIFFTAC_DIFFTAC_H_
