/* tracemalloc-check.h — a per-test leak assertion for Check suites.
 *
 *   #include <tracemalloc-check.h>
 *   TCase *tc = tcase_create("Core");
 *   tcase_add_checked_fixture(tc, TM_LEAK_FIXTURE);   first, so its window holds your fixtures
 *
 * Each test (each loop iteration) is a window: the setup forgets the traces of older memory; the
 * teardown fails the test when what the window allocated and can no longer reach (lost, and
 * indirectly lost through lost blocks), once the filters have removed what is not the test's
 * leak, passes the test's allowance. Memory still reachable from globals, stacks and thread-local
 * storage (a library's cache) is not charged unless TM_LEAK_REACHABLE=charge. Memory that existed
 * before the window is never charged, and freeing it never excuses a new leak. The allocations of
 * every thread count. A test that already failed is not charged again. The verdicts are the same
 * with CK_FORK=no. The program defines TM_HEAP_REGISTRY through this plugin: the tracer knows every
 * live block from the first allocation, as the reachability scan needs.
 *
 * The failure goes through Check's own channel at the site of the largest lost root, so the text,
 * XML and TAP logs read
 *   money.c:16:S:Limits:test_money_create_zero:0: leaked 16 B in 1 block (allowed 0 B): a 16 B
 *   block at money.c:16 in money_create() called from check_money.c:41; full report on stderr
 * and the full report (sections lost, indirectly lost, still reachable, filtered, with Python's
 * Statistic lines, tracebacks and source lines) goes to stderr. A failure without a site (a peak
 * limit, a configuration error) is reported at the test's own START_TEST line.
 *
 * Knobs, read once when the program starts (a bad value fails every test with a message naming it):
 *   TM_LEAK_THRESHOLD    bytes each test may lose: 512, 4KiB, 4 KiB, 1MiB (default 0)
 *   TM_LEAK_THRESHOLD_BLOCKS  blocks each test may lose (default: any number)
 *   TM_LEAK_PEAK_LIMIT   fail a test whose peak traced memory passes this size (default: no limit)
 *   TM_LEAK_REACHABLE    charge: still-reachable growth is charged too (default: ignore)
 *   TM_LEAK_NFRAME       frames kept per traceback when the plugin starts tracing (default 32)
 *   TM_LEAK_TOP          lines of each section of the stderr report (default 10)
 *   TM_LEAK_DEFAULT_FILTERS  0/no to keep the library caches the default filters remove (default 1)
 *   TM_LEAK_CONFIG       a GKeyFile: [defaults], extra filters, [suite:], [tcase:], [test:GLOB] rules
 *   TM_LEAK_ACCEPT_UNCHECKED  1/yes: under valgrind or a sanitizer, pass tests unchecked
 *   TM_LEAK_DISABLE      1/yes: the fixture does nothing
 * A [test:] rule beats a [tcase:] rule, which beats a [suite:] rule, which beats the environment,
 * which beats the config file's [defaults]; the calls below, made inside a test, beat everything
 * for that test.
 *
 * Link: meson `dependency('tracemalloc-check')` or pkg-config `tracemalloc-check`. The plugin is a
 * static archive linked into the test program, as Check itself is on Debian. The link flag
 * -Wl,--wrap=_ck_assert_failed, which both dependencies add, lets the plugin see that a test has
 * already failed (in CK_FORK=no mode Check still runs the teardowns then).
 * Zero-edit mode: `tracemalloc-check-auto` adds -Wl,--wrap=tcase_create, which adds the fixture
 * first to every TCase of an unmodified suite.
 */
#ifndef TRACEMALLOC_CHECK_H
#define TRACEMALLOC_CHECK_H

#include <stddef.h>

#include <check.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The checked fixture: tcase_add_checked_fixture(tc, TM_LEAK_FIXTURE). */
#define TM_LEAK_FIXTURE tm_leak_setup, tm_leak_teardown

/* Opens the test's window: starts tracing when nobody has (TM_LEAK_NFRAME frames), forgets the
 * traces of older memory and resets the peak. An invalid configuration, or tracing that cannot
 * start (valgrind or a sanitizer serves malloc), is reported by the teardown, at the test's own
 * line. Call only as a Check fixture. */
void tm_leak_setup(void);

/* Closes the window and judges it (see the top of this file). Fails the test through Check with
 * the site of the largest lost root as file:line when it leaked, or the test's START_TEST line
 * when it passed its peak limit; the full report is written to stderr and flushed first. Does nothing when no window is open, when the test already
 * failed or called tm_leak_ignore(). Call only as a Check fixture. */
void tm_leak_teardown(void);

/* Raises the running test's allowance to at least `bytes`: the test passes while what it loses
 * (after the filters) is at most that many bytes. Lasts until the test's teardown.
 * Allocates nothing; call it from the test (any of its threads). This and the three calls below
 * do nothing with no window open (from main(), or in a TCase without TM_LEAK_FIXTURE), and the
 * first such call of the process says so on stderr. */
void tm_leak_allow(size_t bytes);

/* Raises the running test's allowance in blocks to at least `blocks`: the test fails when it
 * loses more blocks than that, whatever their size. Allocates nothing. */
void tm_leak_allow_blocks(size_t blocks);

/* Skips the leak and peak checks for the running test. Allocates nothing. */
void tm_leak_ignore(void);

/* Sets the running test's peak limit: the test fails when its peak traced memory (every block the
 * window allocated and still held at that moment, unfiltered) passes `bytes`. 0 removes the limit.
 * Allocates nothing. */
void tm_leak_limit_peak(size_t bytes);

#ifdef __cplusplus
}
#endif

#endif /* TRACEMALLOC_CHECK_H */
