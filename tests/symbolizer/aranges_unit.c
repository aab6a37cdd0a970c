/* aranges_unit.c — a unit with .debug_aranges. tests/symbolizer/meson.build links two of them
 * (ARANGES_UNIT_FN names each one's function) around the helper's unit stripped of its own:
 * the library mixes units as gcc and clang build them, as a clang-built test suite that links a
 * gcc-built library does. libdwfl's lookup through .debug_aranges then takes the helper's
 * addresses, in the gap between the two ranges, for the first unit's. */
#include <stdint.h>

#ifndef ARANGES_UNIT_FN
#define ARANGES_UNIT_FN aranges_unit
#endif

uintptr_t ARANGES_UNIT_FN(uintptr_t x);

__attribute__((visibility("default"), noinline)) uintptr_t ARANGES_UNIT_FN(uintptr_t x) {
  return x * 3 + 1;
}
