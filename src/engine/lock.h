/* lock.h — the tracer's short-hold lock. Internal.
 *
 * Every critical section behind it is a handful of loads and stores (a hash-table probe), so a
 * test-and-set lock beats pthread_mutex_t on the malloc hot path: one atomic exchange to take it,
 * a plain release store to drop it, no call into libc. A waiter spins briefly, then yields the CPU
 * so that a holder preempted on these 2-core machines can run. Zero-filled memory is an unlocked
 * lock, so static and mmap'd tables need no initialization.
 */
#ifndef TM_LOCK_H
#define TM_LOCK_H

#include <stdatomic.h>

typedef struct tm__lock {
  atomic_int held;
} tm__lock;

/* Waits until the lock is free, then takes it. Called by tm__lock_acquire() when the fast try
 * failed; defined in lock.c. Thread-safe; async-signal-safe; allocates nothing. */
void tm__lock_slow(tm__lock *lock);

/* Takes the lock: one atomic exchange when it is free, tm__lock_slow() otherwise. Not reentrant:
 * a thread that takes a lock it holds spins forever. */
static inline void tm__lock_acquire(tm__lock *lock) {
  if (__builtin_expect(atomic_exchange_explicit(&lock->held, 1, memory_order_acquire), 0))
    tm__lock_slow(lock);
}

/* Drops a lock the calling thread holds. */
static inline void tm__lock_release(tm__lock *lock) {
  atomic_store_explicit(&lock->held, 0, memory_order_release);
}

#endif /* TM_LOCK_H */
