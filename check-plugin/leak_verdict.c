/* leak_verdict.c — the verdict on one test window. Kept apart from the fixture's plumbing
 * so that later rules slot in here, and so that it can be tested on hand-made numbers. */
#include "leak_internal.h"

unsigned tm__leak_judge(const tm__leak_growth *growth, const tm__leak_rules *rules) {
  unsigned verdict = TM__LEAK_PASS;

  if (rules->ignore)
    return TM__LEAK_PASS;
  if (growth->size > rules->allowance)
    verdict |= TM__LEAK_LEAKED;
  if (rules->peak_limit != 0 && growth->peak > rules->peak_limit)
    verdict |= TM__LEAK_PEAK_EXCEEDED;
  return verdict;
}
