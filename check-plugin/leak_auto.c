/* leak_auto.c — zero-edit mode: TM_LEAK_FIXTURE on every TCase of an unmodified suite.
 *
 * Check is linked statically, so LD_PRELOAD cannot reach it; -Wl,--wrap=tcase_create (added by
 * the tracemalloc-check-auto dependency) sends the suite's calls here
 * (docs/check-internals.md#injecting-the-fixture). The fixture is added before the suite can add its own, so its window holds them all. A suite that
 * also adds TM_LEAK_FIXTURE itself is judged once: the inner setup reopens the window, the inner
 * teardown judges and closes it, and the outer teardown finds it closed.
 */
#include <check.h>

#include "tracemalloc-check.h"

TCase *__real_tcase_create(const char *name);
TCase *__wrap_tcase_create(const char *name);

TCase *__wrap_tcase_create(const char *name) {
  TCase *tc = __real_tcase_create(name);

  if (tc != NULL)
    tcase_add_checked_fixture(tc, TM_LEAK_FIXTURE);
  return tc;
}
