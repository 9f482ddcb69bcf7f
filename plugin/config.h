// config.h: the MJCF config keys of both plugins (difftac.elastomer, difftac.tactile), parsed
// by one parser into their defs (src/elastomer.h, src/tactile.h) with the documented defaults.
// Every key is named in config.c only; docs/mjcf.md and docs/tactile.md document each.
#ifndef DTAC_PLUGIN_CONFIG_H_
#define DTAC_PLUGIN_CONFIG_H_

#include <mujoco/mujoco.h>

#include "elastomer.h"
#include "tactile.h"

extern const char* const dtac_elastomer_attributes[];
extern const int dtac_elastomer_nattribute;
extern const char* const dtac_tactile_attributes[];
extern const int dtac_tactile_nattribute;

// the config of elastomer instance `instance` over the defaults; nonzero with a message naming
// the key and value in err
int dtac_elastomer_parse(const mjModel* m, int instance, dtac_elastomer_def* def, char* err,
                         int errlen);
// the config of tactile instance `instance` over the defaults, checked against its elastomer
// (which must exist; *gel is its instance, edef its def) and the marker grid against the gel's
// top face; nonzero with a message in err
int dtac_tactile_parse(const mjModel* m, int instance, dtac_tactile_def* def, int* gel,
                       dtac_elastomer_def* edef, char* err, int errlen);

// the optics parameters of tactile instance `instance`: only rgb sensors have them
int dtac_tactile_nparam(const mjModel* m, int instance);

// an instance's name for messages ('#k' if it has none), and a sensor's
void dtac_instance_name(const mjModel* m, int instance, char* out, int len);
void dtac_sensor_name(const mjModel* m, int sensor, char* out, int len);
// the sensor that holds plugin instance `instance`, or -1
int dtac_sensor_of_instance(const mjModel* m, int instance);
// the plugins' registrations with MuJoCo (elastomer.c, tactile.c)
void dtac_elastomer_register(void);
void dtac_tactile_register(void);

// a plugin's init failed: the instances before it are destroyed, d is freed as MuJoCo frees
// the mjData of a failed init, and msg is raised with mju_error (which does not return)
void dtac_init_abort(const mjModel* m, mjData* d, int instance, const char* msg);

// nonzero (message in err) if the MuJoCo this library was built against is not the one loaded
int dtac_check_version(char* err, int errlen);

#endif  // DTAC_PLUGIN_CONFIG_H_
