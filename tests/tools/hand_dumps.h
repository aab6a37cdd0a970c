/* hand_dumps.h — two dumps of known shape, built with the library's internal API, for the tests of
 * `tracemalloc flamegraph`: new (13000 B in 9 blocks) and old (the same program earlier).
 *
 *   all 13000
 *     main (prog.c:10) 10000
 *       parse (parse.c:20) 4000 -> alloc_node (parse.c:30) 4000     4 x 1000; old 2 x 1000
 *       parse (parse.c:21) 6000 -> g_malloc (libglib-2.0.so.0) 6000 2 x 3000; old 3 x 3000
 *     main (prog.c:11) 2000 -> needle <script> (<a href="x">&'".c:5) 1 x 2000; old the same
 *     main (prog.c:12) 500 -> a function name with a control character and bad UTF-8
 *     [truncated] 500 -> deep (deep.c:1)                             a truncated traceback
 */
#ifndef TM_HAND_DUMPS_H
#define TM_HAND_DUMPS_H

#include <check.h>

#include "model.h"

#define HAND_HOSTILE_FILE "<a href=\"x\">&'\".c"
#define HAND_HOSTILE_FUNCTION "needle <script>alert(1)</script>]]>"
#define HAND_BAD_FUNCTION "bad\x01name\xff"

/* Writes DIR/new.dump and DIR/old.dump. */
static inline void hand_dumps_write(const char *dir) {
  const char *glib = "/usr/lib/x86_64-linux-gnu/libglib-2.0.so.0";
  const tm_frame main10 = {.filename = "/src/prog.c", .lineno = 10, .function = "main",
                           .module = "/bin/prog"};
  const tm_frame main11 = {.filename = "/src/prog.c", .lineno = 11, .function = "main",
                           .module = "/bin/prog"};
  const tm_frame main12 = {.filename = "/src/prog.c", .lineno = 12, .function = "main",
                           .module = "/bin/prog"};
  const tm_frame t1[] = {main10,
                         {.filename = "/src/parse.c", .lineno = 20, .function = "parse",
                          .module = "/bin/prog"},
                         {.filename = "/src/parse.c", .lineno = 30, .function = "alloc_node",
                          .module = "/bin/prog"}};
  const tm_frame t2[] = {main10,
                         {.filename = "/src/parse.c", .lineno = 21, .function = "parse",
                          .module = "/bin/prog"},
                         {.filename = "libglib-2.0.so.0", .function = "g_malloc", .module = glib,
                          .flags = TM_FRAME_NO_DEBUG_INFO}};
  const tm_frame t3[] = {main11,
                         {.filename = "/src/" HAND_HOSTILE_FILE, .lineno = 5,
                          .function = HAND_HOSTILE_FUNCTION, .module = "/bin/prog"}};
  const tm_frame t4[] = {main12,
                         {.filename = "/src/prog.c", .lineno = 40, .function = HAND_BAD_FUNCTION,
                          .module = "/bin/prog"}};
  const tm_frame t5[] = {{.filename = "/src/deep.c", .lineno = 1, .function = "deep",
                          .module = "/bin/prog"}};
  tm_traceback *tb[] = {tm__traceback_new_frames(t1, 3, 3, false),
                        tm__traceback_new_frames(t2, 3, 3, false),
                        tm__traceback_new_frames(t3, 2, 2, false),
                        tm__traceback_new_frames(t4, 2, 2, false),
                        tm__traceback_new_frames(t5, 1, 40, true)};
  tm_snapshot *now = tm__snapshot_new(8), *old = tm__snapshot_new(8);
  for (int i = 0; i < 4; i++)
    tm__snapshot_add(now, 0, 1000, tb[0]);
  for (int i = 0; i < 2; i++)
    tm__snapshot_add(now, 0, 3000, tb[1]);
  tm__snapshot_add(now, 0, 2000, tb[2]);
  tm__snapshot_add(now, 0, 500, tb[3]);
  tm__snapshot_add(now, 0, 500, tb[4]);
  for (int i = 0; i < 2; i++)
    tm__snapshot_add(old, 0, 1000, tb[0]);
  for (int i = 0; i < 3; i++)
    tm__snapshot_add(old, 0, 3000, tb[1]);
  tm__snapshot_add(old, 0, 2000, tb[2]);
  char *p_new = g_build_filename(dir, "new.dump", NULL);
  char *p_old = g_build_filename(dir, "old.dump", NULL);
  GError *error = NULL;
  ck_assert_msg(tm_snapshot_dump(now, p_new, &error), "%s", error ? error->message : "");
  ck_assert_msg(tm_snapshot_dump(old, p_old, &error), "%s", error ? error->message : "");
  g_free(p_new);
  g_free(p_old);
  tm_snapshot_free(now);
  tm_snapshot_free(old);
  for (size_t i = 0; i < G_N_ELEMENTS(tb); i++)
    tm_traceback_free(tb[i]);
}

#endif /* TM_HAND_DUMPS_H */
