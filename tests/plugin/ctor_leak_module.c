/* ctor_leak_module.c — a module whose constructor loses a block, loaded with dlopen() by
 * world_suite's l_module_ctor. The loader runs the constructor, but the code is the program's:
 * the lost block is a leak at the constructor's line, while the block it keeps in a global is
 * not. */
#include <stdlib.h>
#include <string.h>

char *ctor_leak_kept; /* exported: a store to an unread static may be optimized away */
char *volatile ctor_leak_sink;

__attribute__((constructor)) static void ctor_leak_init(void) {
  ctor_leak_kept = malloc(16);
  if (ctor_leak_kept != NULL)
    strcpy(ctor_leak_kept, "kept");
  ctor_leak_sink = malloc(40); /* site:ctor */
  if (ctor_leak_sink != NULL)
    memset(ctor_leak_sink, 1, 40);
  ctor_leak_sink = NULL;
}
