/* ex7_compare_filtered.c — Example 7 of the tutorial: compare_to() after a filter that removes
 * the traces the library made for itself.
 *
 *   ...as Example 6, then:
 *   ss_2 = tm.take_snapshot()
 *   filterSS = tm.Filter(inclusive = False, filename_pattern = tm.__file__)
 *   ss_2 = ss_2.filter_traces([filterSS])
 *   ...statistics of ss_2, then ss_2.compare_to(ss_1, "lineno")...
 *
 * Python's own allocations here are tracemalloc.py's; this tracer's own allocations are never
 * traced, so what remains to remove is the C library's: the stdout buffer printf() allocates.
 * Its frame reads "./libio/filedoalloc.c" where libc's debug information is installed and
 * "libc.so.6" where it is not; exclusive filters are AND-ed, so a trace must escape both.
 */
#include "parity.h"

int main(void) {
  tm_start(1);

  box **list_one = LIST(15000, n);
  box **list_two = LIST(15000, n * n);
  box **list_three = LIST(15000, n * n * n);

  GError *err = NULL;
  tm_snapshot *ss_1 = tm_take_snapshot(&err);
  die_on_error(err);

  printf("SNAPSHOT - ONE\n");
  print_statistics(ss_1, TM_KEY_LINENO);

  box **list_four = LIST(15000, n * n * n * n);
  box **list_five = LIST(15000, n * n * n * n * n);

  printf("\nSNAPSHOT - TWO\n");
  tm_snapshot *ss_2 = tm_take_snapshot(&err);
  die_on_error(err);
  tm_filter *filter_ss[2];
  filter_ss[0] = tm_filter_new(false, "*/libio/*", 0, false, -1, &err);
  die_on_error(err);
  filter_ss[1] = tm_filter_new(false, "libc.so.6", 0, false, -1, &err);
  die_on_error(err);
  tm_snapshot *filtered = tm_snapshot_filter_traces(ss_2, filter_ss, 2, &err);
  die_on_error(err);
  tm_snapshot_free(ss_2);
  ss_2 = filtered;

  print_statistics(ss_2, TM_KEY_LINENO);

  printf("\nDIFFERENCE\n");
  print_diffs(ss_2, ss_1, TM_KEY_LINENO);

  tm_filter_free(filter_ss[0]);
  tm_filter_free(filter_ss[1]);
  tm_snapshot_free(ss_1);
  tm_snapshot_free(ss_2);
  list_free(list_one, 15000);
  list_free(list_two, 15000);
  list_free(list_three, 15000);
  list_free(list_four, 15000);
  list_free(list_five, 15000);
  return 0;
}
