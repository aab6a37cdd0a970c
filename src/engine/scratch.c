/* scratch.c — the per-thread working block (see scratch.h). */
#include <pthread.h>
#include <string.h>

#include "guard.h"
#include "scratch.h"

__thread tm__scratch *tm__scratch_self __attribute__((tls_model("initial-exec")));

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static bool scratch_key_ok;

/* Thread exit: the block goes back to the tracer's free lists. A hook that runs later in the
 * exit (another key's destructor that allocates) maps a new one and registers it again; glibc
 * calls destructors again for keys set during destruction (up to PTHREAD_DESTRUCTOR_ITERATIONS). */
static void scratch_release(void *p) {
  tm__scratch *s = p;
  if (tm__scratch_self == s)
    tm__scratch_self = NULL;
  tm__unmap(s->stack_cache, s->stack_cache_bytes); /* the stack cache's table, mapped apart */
  tm__unmap(s, sizeof(tm__scratch));
}

static void scratch_key_create(void) {
  scratch_key_ok = pthread_key_create(&scratch_key, scratch_release) == 0;
}

tm__scratch *tm__scratch_slow(void) {
  pthread_once(&scratch_once, scratch_key_create);
  tm__scratch *s = tm__map(sizeof *s);
  if (s == NULL)
    return NULL;
  /* pthread_setspecific allocates nothing for the first keys of a process (glibc keeps 32 in
   * the thread descriptor); the guard is held, so an allocation would be the tracer's own. */
  if (scratch_key_ok)
    pthread_setspecific(scratch_key, s);
  tm__scratch_self = s;
  return s;
}
