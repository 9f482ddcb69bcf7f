// register.c: registers difftac's plugins when the library is loaded (mj_loadPluginLibrary).
#include <mujoco/mujoco.h>

#include "config.h"
#include "derivative.h"

mjPLUGIN_LIB_INIT(difftac) {
  dtac_elastomer_register();
  dtac_tactile_register();
  dtac_elastomer_register_derivative();
  dtac_tactile_register_derivative(dtac_tactile_nparam);
}
