/* leak_verdict.c — the verdict on one test window: a pure function of what was charged and the
 * test's rules, so that it can be tested on hand-made numbers. */
#include <stdint.h>

#include "leak_internal.h"

unsigned tm__leak_judge(const tm__leak_growth *growth, const tm__leak_rules *rules) {
  unsigned verdict = TM__LEAK_PASS;

  if (rules->ignore)
    return TM__LEAK_PASS;
  /* With no allowance at all (the default), nothing may be lost: an empty block (malloc(0)) is
   * a block lost too, as Valgrind and LeakSanitizer count it. */
  bool none_allowed = rules->allowance == 0 && rules->allowance_blocks == SIZE_MAX;
  if (growth->size > rules->allowance || growth->blocks > rules->allowance_blocks ||
      (none_allowed && growth->blocks > 0))
    verdict |= TM__LEAK_LEAKED;
  if (rules->peak_limit != 0 && growth->peak > rules->peak_limit)
    verdict |= TM__LEAK_PEAK_EXCEEDED;
  return verdict;
}
