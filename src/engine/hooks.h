/* hooks.h — the malloc-family interposition (hooks.c). Internal. */
#ifndef TM_HOOKS_H
#define TM_HOOKS_H

#include <stdbool.h>
#include <stddef.h>

/* Resolves the real allocator functions with dlsym(RTLD_NEXT) (idempotent, thread-safe). */
void tm__hooks_resolve(void);

/* Whether this library's hooks serve the program's malloc: allocates a probe block through the
 * dynamic symbol `malloc` with the guard held, and looks for it among the tracer's own blocks. When
 * another tool (valgrind, a sanitizer) replaced malloc, the probe never reaches the hooks. Call
 * with the hooks active (tm__hooks_active non-zero). The answer is kept for the process and its
 * forks. */
bool tm__hooks_own_malloc(void);

/* Names the tool that took malloc from the hooks, as far as it can tell: "valgrind",
 * "AddressSanitizer", ... or "another malloc interposer". Static string. */
const char *tm__hooks_malloc_owner(void);

/* The serving allocator's malloc_usable_size(ptr) for one of its blocks, or 0 when an allocator in
 * front of glibc's has none (glibc's would read a header that is not there). Thread-safe;
 * allocates nothing. */
size_t tm__hooks_usable_size(void *ptr);

#endif /* TM_HOOKS_H */
