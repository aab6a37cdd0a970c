/* leak_assert.c — learns that the running test has failed, so that its teardown does not charge
 * it with the leftovers of the aborted test.
 *
 * In CK_FORK=no mode Check still runs the checked teardowns after a failed test
 * (docs/check-internals.md#failing-teardown), and nothing in Check's API tells a teardown that the
 * test failed. The ck_* macros expand in the user's objects, so linking with
 * -Wl,--wrap=_ck_assert_failed (which both plugin dependencies add) sends their calls here first
 * (docs/check-internals.md#injecting-the-fixture). This object is in its own archive member: it is linked
 * only when the wrap flag asks for it, so a link without the flag still works (without the
 * detection).
 */
#include <stdarg.h>
#include <stdio.h>

#include <check.h>

#include "leak_internal.h"

void __real__ck_assert_failed(const char *file, int line, const char *expr, const char *msg, ...)
  CK_ATTRIBUTE_NORETURN;
void __wrap__ck_assert_failed(const char *file, int line, const char *expr, const char *msg, ...)
  CK_ATTRIBUTE_NORETURN CK_ATTRIBUTE_FORMAT(printf, 4, 5);

void __wrap__ck_assert_failed(const char *file, int line, const char *expr, const char *msg, ...) {
  char buf[BUFSIZ]; /* Check formats into the same size (docs/check-internals.md#message-limits) */
  va_list ap;

  if (!tm__leak_test_failed)
    tm__leak_records_test_failed(); /* leak_record.c: a CK_FORK=yes child exits below */
  tm__leak_test_failed = 1;
  if (msg == NULL)
    __real__ck_assert_failed(file, line, expr, NULL);
  /* A va_list cannot be forwarded: format here and pass the result through "%s". */
  va_start(ap, msg);
  vsnprintf(buf, sizeof buf, msg, ap);
  va_end(ap);
  __real__ck_assert_failed(file, line, expr, "%s", buf);
}
