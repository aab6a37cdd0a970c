/* guard.c — the reentrancy guard and the tracer's mmap'd memory. */
#include <errno.h>
#include <sched.h>
#include <sys/mman.h>

#include "engine.h"
#include "guard.h"
#include "lock.h"

__thread int tm__guard_depth __attribute__((tls_model("initial-exec")));

/* Bytes currently mapped by tm__map(). */
atomic_size_t tm__mapped_bytes;

void tm__guard_enter(void) { tm__guard_depth++; }

void tm__guard_leave(void) { tm__guard_depth--; }

void *tm__map(size_t size) {
  int saved = errno;
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  errno = saved;
  if (p == MAP_FAILED)
    return NULL;
  atomic_fetch_add_explicit(&tm__mapped_bytes, size, memory_order_relaxed);
  return p;
}

void tm__unmap(void *ptr, size_t size) {
  if (ptr == NULL)
    return;
  int saved = errno;
  munmap(ptr, size);
  errno = saved;
  atomic_fetch_sub_explicit(&tm__mapped_bytes, size, memory_order_relaxed);
}

void tm__lock_slow(tm__lock *lock) {
  for (unsigned spins = 0;; spins++) {
    if (atomic_load_explicit(&lock->held, memory_order_relaxed) == 0 &&
        !atomic_exchange_explicit(&lock->held, 1, memory_order_acquire))
      return;
    if (spins < 128)
      __builtin_ia32_pause();
    else
      sched_yield();
  }
}
