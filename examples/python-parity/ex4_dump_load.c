/* ex4_dump_load.c — Example 4 of the tutorial: Snapshot.dump() and Snapshot.load().
 *
 *   tm.start()
 *   listOne = [n for n in range(15000)]
 *   listTwo = [n*n for n in range(15000)]
 *   listThree = [n*n*n for n in range(15000)]
 *   ss = tm.take_snapshot()
 *   for stats in ss.statistics("lineno"):
 *       print(stats)
 *   ss.dump("snap.out")
 *   ssLoaded = tm.Snapshot.load("snap.out")
 *   print("\nLoaded Snapshot From File :")
 *   for stats in ssLoaded.statistics("lineno"):
 *       print(stats)
 *
 * The dump holds resolved frames: it can be loaded by another program, after this one is gone.
 * Usage: ex4_dump_load [PATH] (default "snap.out").
 */
#include "parity.h"

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : "snap.out";
  tm_start(1);

  box **list_one = LIST(15000, n);
  box **list_two = LIST(15000, n * n);
  box **list_three = LIST(15000, n * n * n);

  GError *err = NULL;
  tm_snapshot *ss = tm_take_snapshot(&err);
  die_on_error(err);

  print_statistics(ss, TM_KEY_LINENO);

  tm_snapshot_dump(ss, path, &err);
  die_on_error(err);

  tm_snapshot *ss_loaded = tm_snapshot_load(path, &err);
  die_on_error(err);

  printf("\nLoaded Snapshot From File :\n");
  print_statistics(ss_loaded, TM_KEY_LINENO);

  tm_snapshot_free(ss_loaded);
  tm_snapshot_free(ss);
  list_free(list_one, 15000);
  list_free(list_two, 15000);
  list_free(list_three, 15000);
  return 0;
}
