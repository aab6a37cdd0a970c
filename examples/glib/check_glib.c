/* check_glib.c — GLib containers under the leak fixture.
 *
 * Filling and destroying GHashTable, GString, GPtrArray and GList is clean, even though GLib keeps
 * one-time data (quarks, GSlice magazines) on first use: the default filters know those caches.
 * One test forgets to destroy its table, and only that test fails, at the line that created it.
 */
#include <stdlib.h>

#include <check.h>
#include <glib.h>
#include <tracemalloc-check.h>

START_TEST(test_hash_table) {
  GHashTable *h = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);

  for (int i = 0; i < 1000; i++)
    g_hash_table_insert(h, g_strdup_printf("key%d", i), g_strdup_printf("value%d", i));
  ck_assert_uint_eq(g_hash_table_size(h), 1000);
  ck_assert_str_eq(g_hash_table_lookup(h, "key7"), "value7");
  g_hash_table_destroy(h);
}
END_TEST

START_TEST(test_string) {
  GString *s = g_string_new("numbers:");

  for (int i = 0; i < 1000; i++)
    g_string_append_printf(s, " %d", i);
  ck_assert(g_str_has_suffix(s->str, " 999"));
  g_string_free(s, TRUE);
}
END_TEST

START_TEST(test_ptr_array) {
  GPtrArray *a = g_ptr_array_new_with_free_func(g_free);

  for (int i = 0; i < 1000; i++)
    g_ptr_array_add(a, g_strdup_printf("item %d", i));
  ck_assert_str_eq(g_ptr_array_index(a, 10), "item 10");
  g_ptr_array_unref(a);
}
END_TEST

START_TEST(test_list_and_quarks) {
  GList *l = NULL;

  for (int i = 0; i < 100; i++)
    l = g_list_prepend(l, GINT_TO_POINTER(g_quark_from_string(i % 2 ? "odd" : "even")));
  ck_assert_uint_eq(g_list_length(l), 100);
  g_list_free(l);
}
END_TEST

/* The leak: a lookup table built for the test and never destroyed. */
START_TEST(test_forgotten_table) {
  GHashTable *names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

  g_hash_table_add(names, g_strdup("alice"));
  g_hash_table_add(names, g_strdup("bob"));
  ck_assert(g_hash_table_contains(names, "bob"));
}
END_TEST

int main(void) {
  Suite *s = suite_create("GLib");
  TCase *tc = tcase_create("Containers");
  SRunner *sr;
  int failed;

  tcase_add_checked_fixture(tc, TM_LEAK_FIXTURE);
  tcase_add_test(tc, test_hash_table);
  tcase_add_test(tc, test_string);
  tcase_add_test(tc, test_ptr_array);
  tcase_add_test(tc, test_list_and_quarks);
  tcase_add_test(tc, test_forgotten_table);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
