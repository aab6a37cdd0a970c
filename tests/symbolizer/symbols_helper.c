/* symbols_helper.c — a tiny library test_symbols dlopen()s after symbol resolution has begun.
 * Built several times by tests/symbolizer/meson.build: with debug information (gcc -O2, -O0 and
 * DWARF 4; clang -O2 and -O0 when clang is installed), with -g0 (no DWARF at all), and with
 * SYMBOLS_HELPER_NO_INLINE, a unit without any inlined call. */
#include <stdint.h>

uintptr_t symbols_helper_call(uintptr_t (*cb)(void), unsigned int *line);
uintptr_t symbols_helper_inline_call(uintptr_t (*cb)(void), unsigned int *inl_line,
                                     unsigned int *call_line);

/* Calls cb and returns what it returns: cb captures a return address inside this function.
 * Stores the line of the call in *line. Not a tail call, so the return address stays here. */
__attribute__((visibility("default"), noinline)) uintptr_t
symbols_helper_call(uintptr_t (*cb)(void), unsigned int *line) {
  uintptr_t ip = cb(); *line = __LINE__;
  __asm__ volatile("" ::: "memory");
  return ip;
}

#ifndef SYMBOLS_HELPER_NO_INLINE
/* Inlined at every optimization level: cb's return address is inside it. */
static inline __attribute__((always_inline)) uintptr_t
helper_inlined(uintptr_t (*cb)(void), unsigned int *line) {
  uintptr_t ip = cb(); *line = __LINE__;
  __asm__ volatile("" ::: "memory");
  return ip;
}

/* Calls cb through helper_inlined: the return address resolves to two frames, helper_inlined at
 * the line of the call (*inl_line), then this function at the line of the inlined call
 * (*call_line). */
__attribute__((visibility("default"), noinline)) uintptr_t
symbols_helper_inline_call(uintptr_t (*cb)(void), unsigned int *inl_line,
                           unsigned int *call_line) {
  uintptr_t ip = helper_inlined(cb, inl_line); *call_line = __LINE__;
  __asm__ volatile("" ::: "memory");
  return ip;
}
#endif
