/* leak_verdict.c — the verdict on one test window: a pure function of what was charged and the
 * test's rules, so that it can be tested on hand-made numbers. */
#include "leak_internal.h"

unsigned tm__leak_judge(const tm__leak_growth *growth, const tm__leak_rules *rules) {
  unsigned verdict = TM__LEAK_PASS;

  if (rules->ignore)
    return TM__LEAK_PASS;
  if (growth->size > rules->allowance || growth->blocks > rules->allowance_blocks)
    verdict |= TM__LEAK_LEAKED;
  if (rules->peak_limit != 0 && growth->peak > rules->peak_limit)
    verdict |= TM__LEAK_PEAK_EXCEEDED;
  return verdict;
}
