/* lose.h — how the plugin's test suites leak a block for real. */
#ifndef TM_PLUGIN_LOSE_H
#define TM_PLUGIN_LOSE_H

/* Hands a block to a frame that is gone by the teardown: the volatile local keeps the compiler
 * from dropping the allocation, and once lose() returns nothing reachable points to the block, so
 * the fixture sees it lost. (A block kept in a global would be reachable: not a leak.) */
__attribute__((noinline, unused)) static void lose(void *p) {
  void *volatile sink = p;
  (void)sink;
}

#endif /* TM_PLUGIN_LOSE_H */
