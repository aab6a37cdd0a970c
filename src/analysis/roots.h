/* roots.h — where the reachability scan starts: the memory a program reaches without going
 * through the heap. Internal. */
#ifndef TM_ROOTS_H
#define TM_ROOTS_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

/* A range of memory [lo, hi) to scan word by word. */
typedef struct tm__range {
  uintptr_t lo, hi;
} tm__range;

/* Collects the roots of the calling process, readable and 8-byte aligned, into a new array of
 * tm__range (g_array_unref()): the writable segments of every loaded object except glibc's malloc
 * state, the calling thread's stack from stack_from up to its top, its static TLS and thread
 * descriptor, and the stacks of the other threads, whole. Call with the guard held, before
 * tm__blocks_lock(): it takes the dynamic loader's lock and reads /proc/self/maps. */
GArray *tm__roots_collect(const void *stack_from);

#endif /* TM_ROOTS_H */
