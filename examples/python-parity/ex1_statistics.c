/* ex1_statistics.c — Example 1 of the tutorial: start(), take_snapshot(), statistics("lineno").
 *
 *   import tracemalloc as tm
 *   tm.start()
 *   listOne = [n for n in range(15000)]
 *   listTwo = [n*n for n in range(15000)]
 *   listThree = [n*n*n for n in range(15000)]
 *   ss = tm.take_snapshot()
 *   for stats in ss.statistics("lineno"):
 *       print(stats)
 */
#include "parity.h"

int main(void) {
  tm_start(1);

  box **list_one = LIST(15000, n);
  box **list_two = LIST(15000, n * n);
  box **list_three = LIST(15000, n * n * n);

  GError *err = NULL;
  tm_snapshot *ss = tm_take_snapshot(&err);
  die_on_error(err);

  print_statistics(ss, TM_KEY_LINENO);

  tm_snapshot_free(ss);
  list_free(list_one, 15000);
  list_free(list_two, 15000);
  list_free(list_three, 15000);
  return 0;
}
