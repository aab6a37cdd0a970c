/* dl_frame_lib.c — a library built twice, with FRAME_BYTES 256 and 2048: the same code at the
 * same offsets, but lib_alloc's frame of another size, so that the frame rules of one are wrong
 * for the other. test_stack_cache.c loads one where the other was unloaded. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef FRAME_BYTES
#error "FRAME_BYTES: the size of lib_alloc's frame"
#endif

void *lib_alloc(size_t size);

/* Allocates size bytes from a frame of FRAME_BYTES zeros: walked with the rules of a smaller
 * frame, the return address would be read from the zeros, and the stack would end there. */
__attribute__((noinline)) void *lib_alloc(size_t size) {
  volatile char pad[FRAME_BYTES];
  memset((char *)pad, 0, sizeof pad);
  void *p = malloc(size);
  pad[0] = (char)(uintptr_t)p;
  __asm__ volatile("" ::: "memory"); /* a real call, not a tail call */
  return p;
}
