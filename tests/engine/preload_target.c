/* preload_target.c — an ordinary program that knows nothing of tracemalloc. Run under
 * LD_PRELOAD=libtracemalloc.so TRACEMALLOC=N, it finds the tracer at run time and prints what the
 * tracer saw of its allocations. Without the preload it says so. */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  void (*get_traced)(size_t *, size_t *) =
      (void (*)(size_t *, size_t *))dlsym(RTLD_DEFAULT, "tm_get_traced_memory");
  bool (*is_tracing)(void) = (bool (*)(void))dlsym(RTLD_DEFAULT, "tm_is_tracing");
  if (get_traced == NULL || is_tracing == NULL) {
    printf("no tracer\n");
    return 0;
  }
  size_t before, after, freed;
  get_traced(&before, NULL);
  char *s = strdup("preloaded");      /* allocated inside libc */
  void *p = calloc(10, 100);
  __asm__ volatile("" : : "g"(p), "g"(s) : "memory");
  get_traced(&after, NULL);
  free(p);
  free(s);
  get_traced(&freed, NULL);
  printf("tracing=%d grew=%zu back=%d\n", is_tracing(), after - before, freed == before);
  return 0;
}
