/* roots.h — where the reachability scan starts: the memory a program reaches without going
 * through the heap. Internal. */
#ifndef TM_ROOTS_H
#define TM_ROOTS_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "tracemalloc.h"

/* A range of memory [lo, hi) to scan word by word. */
typedef struct tm__range {
  uintptr_t lo, hi;
} tm__range;

/* Collects the roots of the calling process, readable and 8-byte aligned, into a new array of
 * tm__range (g_array_unref()): the writable segments of every loaded object except glibc's malloc
 * state, the calling thread's stack from stack_from up to its top, its alternate signal stack's
 * address, its static TLS and thread
 * descriptor, the stacks of the other threads from their stack pointers, and the resident pages of
 * the anonymous memory the program mapped itself (tm__program_maps_copy()); with forked (the
 * caller is a fork() child that reads only what it wrote since, tm_reach_options.since_fork), the
 * main thread's stack too when no thread of the child runs on it. Call with the guard
 * held, before
 * tm__blocks_lock(): it takes the dynamic loader's lock and reads /proc/self/maps. */
GArray *tm__roots_collect(const void *stack_from, bool forked);

/* Appends to ranges the registers of the threads that the last tm__roots_collect() found running
 * all along (computing, no system call to tell where their stack pointer is): each gets a signal
 * whose handler copies the registers of the context it interrupted, answered within 20 ms or never
 * asked again. Call with the guard held, right after tm__blocks_lock(), so that a block such a
 * thread allocates meanwhile is not in the scan without its registers. The copies stay valid
 * until the next call. Not thread-safe: one scan at a time. */
void tm__roots_registers_add(GArray *ranges);

/* The stack pointer of the innermost frame that the calling chain shares with mark's chain, at
 * its call into the part that differs; with skip_runner, main()'s when main() is further out
 * (tm_reach_options.runner_frames_skipped). 0 when the chains share nothing or cannot be aligned.
 * Walks the calling thread's stack with libunwind (a few microseconds a frame, and with
 * skip_runner a symbol lookup for each frame above the shared one). */
uintptr_t tm__stack_shared_sp(const tm_stack_mark *mark, bool skip_runner);

#endif /* TM_ROOTS_H */
