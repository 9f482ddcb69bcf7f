// warning.c: dtac_warning (warning.h).
#include "warning.h"

#include <mujoco/mujoco.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

void dtac_warning(const char* fmt, ...) {
  static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;  // MuJoCo's logger is process-wide
  char msg[1000];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&lock);
  mju_warning("%s", msg);
  pthread_mutex_unlock(&lock);
}
