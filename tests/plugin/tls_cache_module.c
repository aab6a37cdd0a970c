/* tls_cache_module.c — a library that keeps a cache in a __thread variable, loaded with dlopen()
 * by world_suite's t_dlopen_tls: its TLS block comes from malloc on the thread's first access,
 * and only the thread's dynamic thread vector points to that block. */
#include <stdlib.h>
#include <string.h>

const char *tls_cache_get(void);

static __thread char *cache;

const char *tls_cache_get(void) {
  if (cache == NULL) {
    cache = malloc(200);
    if (cache != NULL)
      strcpy(cache, "cached");
  }
  return cache;
}
