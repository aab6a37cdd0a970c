/* secure_env_probe.c — reports what the tracer and the plugin took from the environment, for
 * test_secure_environment, which runs a setgid copy of it. Prints one line:
 *   "secure=<AT_SECURE> tracing=<0|1> config=<ok|error message>"
 * Linked statically with the engine and the plugin's configuration: a setgid program ignores the
 * build tree's $ORIGIN run paths. */
#include <stdio.h>
#include <sys/auxv.h>

#include "leak_internal.h"
#include "tracemalloc.h"

int main(void) {
  GError *error = NULL;
  tm__leak_config *config = tm__leak_config_load(NULL, &error);
  printf("secure=%lu tracing=%d config=%s\n", getauxval(AT_SECURE), tm_is_tracing() ? 1 : 0,
         config != NULL ? "ok" : error->message);
  tm__leak_config_free(config);
  g_clear_error(&error);
  return 0;
}
