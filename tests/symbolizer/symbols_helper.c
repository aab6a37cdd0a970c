/* symbols_helper.c — a tiny library test_symbols dlopen()s after symbol resolution has begun.
 * Built twice by tests/meson.build: with debug information and with -g0 (no DWARF at all). */
#include <stdint.h>

uintptr_t symbols_helper_call(uintptr_t (*cb)(void), unsigned int *line);

/* Calls cb and returns what it returns: cb captures a return address inside this function.
 * Stores the line of the call in *line. Not a tail call, so the return address stays here. */
__attribute__((visibility("default"), noinline)) uintptr_t
symbols_helper_call(uintptr_t (*cb)(void), unsigned int *line) {
  uintptr_t ip = cb(); *line = __LINE__;
  __asm__ volatile("" ::: "memory");
  return ip;
}
