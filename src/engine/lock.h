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
#include <stdbool.h>
#if defined(__has_include)
#if __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>
#define TM__HAVE_SINGLE_THREADED 1
#endif
#endif

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

/* Whether the process has a single thread: glibc's __libc_single_threaded (2.32 and later), set
 * false before the first pthread_create() and never set back. Only the calling thread can create
 * another one, and it is not doing so while it runs the tracer's code, so a section it enters
 * alone stays alone to its end: glibc's malloc skips its own arena locks on the same flag. */
static inline bool tm__process_single_threaded(void) {
#ifdef TM__HAVE_SINGLE_THREADED
  return __libc_single_threaded != 0;
#else
  return false;
#endif
}

/* Takes the lock unless the process is single-threaded (tm__process_single_threaded()): the hooks'
 * table sections then cost no atomic instruction. Returns whether it took the lock; pass that to
 * tm__lock_release_if(). For the sections the hooks run; code that holds a lock across a call
 * that may create a thread must use tm__lock_acquire(). */
static inline bool tm__lock_acquire_if_threaded(tm__lock *lock) {
  if (tm__process_single_threaded())
    return false;
  tm__lock_acquire(lock);
  return true;
}

/* Drops the lock when tm__lock_acquire_if_threaded() took it. */
static inline void tm__lock_release_if(tm__lock *lock, bool taken) {
  if (taken)
    tm__lock_release(lock);
}

#endif /* TM_LOCK_H */
