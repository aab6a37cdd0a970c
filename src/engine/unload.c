/* unload.c — remembers where unloaded libraries were, so that a stack captured while one was
 * mapped is not resolved against whatever the loader put at its addresses later.
 *
 * dlclose() is interposed like malloc: before the real call, the object's PT_LOAD segments are
 * read; when the object is gone after it, its address range is recorded with a new sequence
 * number. Every interned stack keeps the sequence number current when it was interned
 * (tm__unload_seq_now()); a return address of that stack inside a range recorded later belonged
 * to a module that was unloaded before resolution: its frame is unknown. The log keeps the last
 * UNLOAD_LOG ranges; past that, the oldest are forgotten (their addresses resolve as before).
 */
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "engine.h"
#include "frame_rules.h"

#define UNLOAD_LOG 4096
#define TM_HOOK __attribute__((visibility("default")))

typedef struct unload_record {
  uintptr_t lo, hi; /* [lo, hi): the object's segments */
  uint32_t seq;     /* numbered from 1 */
} unload_record;

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static unload_record unload_log[UNLOAD_LOG]; /* ring, protected by log_lock */
static atomic_uint unload_seq;               /* the last number given */

/* Bumped after each unload, once the frame rules of its range are forgotten (runtime.h). */
atomic_uint tm__unload_count;

/* What the search for an object found: its range, or whether it is still mapped. */
typedef struct object_query {
  uintptr_t base;
  const char *name;
  uintptr_t lo, hi;
  bool found;
} object_query;

static int object_find_cb(struct dl_phdr_info *info, size_t size, void *data) {
  object_query *q = data;
  (void)size;
  if (info->dlpi_addr != q->base || info->dlpi_name == NULL || strcmp(info->dlpi_name, q->name) != 0)
    return 0;
  q->found = true;
  q->lo = UINTPTR_MAX;
  q->hi = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD)
      continue;
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
    q->lo = lo < q->lo ? lo : q->lo;
    q->hi = hi > q->hi ? hi : q->hi;
  }
  return 1;
}

uint32_t tm__unload_seq_now(void) { return atomic_load_explicit(&unload_seq, memory_order_relaxed); }

bool tm__ip_unloaded_since(uintptr_t ip, uint32_t seq) {
  uint32_t last = atomic_load(&unload_seq);
  bool unloaded = false;
  if (last == seq)
    return false;
  pthread_mutex_lock(&log_lock);
  for (uint32_t s = last; s > seq && last - s < UNLOAD_LOG && !unloaded; s--) {
    const unload_record *r = &unload_log[s % UNLOAD_LOG];
    unloaded = r->seq == s && ip >= r->lo && ip < r->hi;
  }
  pthread_mutex_unlock(&log_lock);
  return unloaded;
}

TM_HOOK int dlclose(void *handle) {
  static int (*real_dlclose)(void *);
  if (real_dlclose == NULL)
    real_dlclose = (int (*)(void *))dlsym(RTLD_NEXT, "dlclose");
  struct link_map *map = NULL;
  object_query q = {0};
  char name[4096] = "";
  if (dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map != NULL &&
      map->l_name != NULL && strlen(map->l_name) < sizeof name) {
    strcpy(name, map->l_name);
    q.base = map->l_addr;
    q.name = name;
    dl_iterate_phdr(object_find_cb, &q);
  }
  int rc = real_dlclose(handle);
  if (rc == 0 && q.found && q.lo < q.hi) {
    object_query still = {.base = q.base, .name = name};
    dl_iterate_phdr(object_find_cb, &still);
    if (!still.found) {
      pthread_mutex_lock(&log_lock);
      uint32_t seq = atomic_load(&unload_seq) + 1;
      unload_log[seq % UNLOAD_LOG] = (unload_record){q.lo, q.hi, seq};
      atomic_store(&unload_seq, seq);
      pthread_mutex_unlock(&log_lock);
      /* Code loaded later at these addresses must not be walked with the rules read from the
       * unloaded one, nor its stacks taken for the ones the stack caches learned there. */
      tm__frame_rules_forget(q.lo, q.hi);
      atomic_fetch_add(&tm__unload_count, 1);
    }
  }
  return rc;
}
