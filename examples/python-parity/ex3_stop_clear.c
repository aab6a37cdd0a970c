/* ex3_stop_clear.c — Example 3 of the tutorial: clear_traces() and stop().
 *
 *   tm.start()
 *   listOne = [n for n in range(1500000)]
 *   listTwo = [n*n for n in range(15000)]
 *   listThree = [n*n*n for n in range(15000)]
 *   ss_1 = tm.take_snapshot()                  # printed as SNAPSHOT ONE
 *   listFour = [n*n*n*n for n in range(15000)]
 *   ss_2 = tm.take_snapshot()                  # printed as SNAPSHOT 2
 *   tm.clear_traces()
 *   listFive = [n*2 for n in range(15000)]
 *   ss_3 = tm.take_snapshot()                  # printed as SNAPSHOT 3: listFive only
 *   print(tm.is_tracing()); tm.stop(); print(tm.is_tracing())
 *   tm.take_snapshot()                         # raises: not tracing
 */
#include "parity.h"

static tm_snapshot *take(void) {
  GError *err = NULL;
  tm_snapshot *snap = tm_take_snapshot(&err);
  die_on_error(err);
  return snap;
}

int main(void) {
  tm_start(1);

  box **list_one = LIST(1500000, n);
  box **list_two = LIST(15000, n * n);
  box **list_three = LIST(15000, n * n * n);

  tm_snapshot *ss_1 = take();

  printf("================ SNAPSHOT ONE =================\n");
  print_statistics(ss_1, TM_KEY_LINENO);

  box **list_four = LIST(15000, n * n * n * n);

  tm_snapshot *ss_2 = take();

  printf("\n================ SNAPSHOT 2 =================\n");
  print_statistics(ss_2, TM_KEY_LINENO);

  tm_clear_traces();

  box **list_five = LIST(15000, n * 2);

  tm_snapshot *ss_3 = take();

  printf("\n================ SNAPSHOT 3 =================\n");
  print_statistics(ss_3, TM_KEY_LINENO);

  printf("\nTracing Status :  %s\n", tm_is_tracing() ? "True" : "False");

  tm_stop();

  printf("\nTracing Status :  %s\n", tm_is_tracing() ? "True" : "False");

  printf("\nTrying to Take Snapshot After Tracing is Stopped.\n");
  GError *err = NULL;
  tm_snapshot *the_snap = tm_take_snapshot(&err);
  if (the_snap == NULL)
    printf("Exception :  %s\n", err->message);
  g_clear_error(&err);
  tm_snapshot_free(the_snap);

  tm_snapshot_free(ss_1);
  tm_snapshot_free(ss_2);
  tm_snapshot_free(ss_3);
  list_free(list_one, 1500000);
  list_free(list_two, 15000);
  list_free(list_three, 15000);
  list_free(list_four, 15000);
  list_free(list_five, 15000);
  return 0;
}
