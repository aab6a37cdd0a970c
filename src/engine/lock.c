/* lock.c — the slow path of the tracer's short-hold lock (lock.h). */
#include <sched.h>

#include "lock.h"

/* Spins with a pause instruction for the first 128 tries, then yields the CPU on every try, so a
 * holder preempted on a busy machine gets to run and release the lock. */
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
