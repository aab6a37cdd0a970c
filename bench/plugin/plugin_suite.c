/* plugin_suite.c — the suite the plugin benchmark times: 1000 tests, half trivial, half
 * allocation-heavy and balanced (every block freed). Built three times: plain; with
 * -DWITH_EMPTY_FIXTURE, which adds a checked fixture that does nothing (what Check itself charges
 * for any checked fixture); and with -DWITH_LEAK_FIXTURE, which adds TM_LEAK_FIXTURE and links
 * the plugin (so tracing is on).
 * Each loop iteration is a full Check test: its own fork, fixtures and verdict. */
#include <stdlib.h>
#include <string.h>

#include <check.h>
#ifdef WITH_LEAK_FIXTURE
#include <tracemalloc-check.h>
#endif

#define NTRIVIAL 500 /* PLUGIN_BENCH_TRIVIAL overrides, to time one half alone */
#define NHEAVY 500   /* PLUGIN_BENCH_HEAVY overrides */
#define HEAVY_ALLOCATIONS 1000 /* per heavy test, plus as many frees */
#define HEAVY_LIVE 64          /* blocks held at once */

#ifdef WITH_EMPTY_FIXTURE
static void empty_setup(void) {}
static void empty_teardown(void) {}
#endif

START_TEST(test_trivial) {
  ck_assert_int_eq(_i + 1, 1 + _i);
}
END_TEST

/* Churns a ring of live blocks of 16..2064 bytes, then frees what is left. */
START_TEST(test_heavy) {
  void *ring[HEAVY_LIVE] = {0};
  unsigned seed = (unsigned)_i * 2654435761u + 1;

  for (int n = 0; n < HEAVY_ALLOCATIONS; n++) {
    size_t slot = (size_t)n % HEAVY_LIVE;
    seed = seed * 1103515245u + 12345u;
    free(ring[slot]);
    ring[slot] = malloc(16 + (seed >> 16) % 2049);
    memset(ring[slot], n, 16);
  }
  for (size_t slot = 0; slot < HEAVY_LIVE; slot++)
    free(ring[slot]);
}
END_TEST

int main(void) {
  Suite *s = suite_create("Bench");
  TCase *tc = tcase_create("Thousand");
  SRunner *sr;
  int failed;

#ifdef WITH_LEAK_FIXTURE
  tcase_add_checked_fixture(tc, TM_LEAK_FIXTURE);
#endif
#ifdef WITH_EMPTY_FIXTURE
  tcase_add_checked_fixture(tc, empty_setup, empty_teardown);
#endif
  const char *trivial = getenv("PLUGIN_BENCH_TRIVIAL"), *heavy = getenv("PLUGIN_BENCH_HEAVY");
  tcase_add_loop_test(tc, test_trivial, 0, trivial ? atoi(trivial) : NTRIVIAL);
  tcase_add_loop_test(tc, test_heavy, 0, heavy ? atoi(heavy) : NHEAVY);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
