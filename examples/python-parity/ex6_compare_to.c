/* ex6_compare_to.c — Example 6 of the tutorial: Snapshot.compare_to().
 *
 *   tm.start()
 *   listOne = [n for n in range(15000)]
 *   listTwo = [n*n for n in range(15000)]
 *   listThree = [n*n*n for n in range(15000)]
 *   ss_1 = tm.take_snapshot()
 *   print("SNAPSHOT - ONE"); ...statistics of ss_1...
 *   listFour = [n*n*n*n for n in range(15000)]
 *   listFive = [n*n*n*n*n for n in range(15000)]
 *   print("\nSNAPSHOT - TWO")
 *   ss_2 = tm.take_snapshot(); ...statistics of ss_2...
 *   print("\nDIFFERENCE")
 *   for diff in ss_2.compare_to(ss_1, "lineno"):
 *       print(diff)
 *
 * As Python's shows lines of tracemalloc.py, allocated by its own printing and snapshotting, the
 * second snapshot here shows what the C library allocated for printing: the stdout buffer.
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

  print_statistics(ss_2, TM_KEY_LINENO);

  printf("\nDIFFERENCE\n");
  print_diffs(ss_2, ss_1, TM_KEY_LINENO);

  tm_snapshot_free(ss_1);
  tm_snapshot_free(ss_2);
  list_free(list_one, 15000);
  list_free(list_two, 15000);
  list_free(list_three, 15000);
  list_free(list_four, 15000);
  list_free(list_five, 15000);
  return 0;
}
