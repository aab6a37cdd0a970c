/* nodebug_lib.c — a project's library built without debug information (-g0, meson.build):
 * leak_suite's blocks allocated here have a site with a function but no line. */
#include <stdlib.h>

void *nodebug_make(size_t n);

/* Not a tail call: the frame stays on the stack, as the site. */
__attribute__((noinline)) void *nodebug_make(size_t n) {
  char *p = malloc(n);
  if (p != NULL)
    p[0] = 0;
  return p;
}
