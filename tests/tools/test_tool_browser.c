/* test_tool_browser.c — the flame graph's script in a real browser: headless Chromium opens the
 * SVG with a fragment that clicks a frame and types in the search box (the script replays
 * file.svg#zoom=ID&search=TEXT through real DOM events), and the DOM it dumps shows the zoom and
 * the matches. Skipped (exit 77) when no Chromium is installed: set TM_CHROMIUM to use another. */
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#include "hand_dumps.h"
#include "run_suite.h"
#include "svg_frames.h"
#include "tool_harness.h"

static const char *tool;
static char *chromium;
static char *dir, *svg_path;

/* Opens the SVG with fragment in headless Chromium; returns the parsed DOM after the script. */
static svg_doc *browse(const char *fragment) {
  char *profile = g_build_filename(dir, "profile", NULL);
  char *user_dir = g_strdup_printf("--user-data-dir=%s", profile);
  char *url = g_strdup_printf("file://%s#%s", svg_path, fragment);
  const char *argv[] = {chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", "--disable-dev-shm-usage", user_dir, "--dump-dom", url,
                        NULL};
  tool_run r = tool_spawn(NULL, argv);
  ck_assert_msg(r.status == 0, "chromium: status %d: %s", r.status, r.err);
  GError *error = NULL;
  svg_doc *doc = svg_doc_parse(r.out, &error);
  ck_assert_msg(doc != NULL, "the dumped DOM is not XML: %s\n%s", error ? error->message : "",
                r.out);
  tool_run_clear(&r);
  g_free(url);
  g_free(user_dir);
  g_free(profile);
  return doc;
}

static const svg_frame *frame(const svg_doc *doc, const char *label) {
  const svg_frame *f = svg_doc_find(doc, label);
  ck_assert_msg(f != NULL, "no frame '%s'", label);
  return f;
}

static bool hidden(const svg_frame *f) {
  return f->style != NULL && strstr(f->style, "display: none") != NULL;
}

START_TEST(test_zoom) {
  svg_doc *before = browse("");
  const svg_frame *target = frame(before, "parse (/src/parse.c:21)");
  ck_assert_ptr_null(before->zoomed);
  char *fragment = g_strdup_printf("zoom=%s", target->id);
  svg_doc *doc = browse(fragment);
  ck_assert_str_eq(doc->zoomed, target->id);
  const svg_frame *z = frame(doc, "parse (/src/parse.c:21)");
  /* The frame clicked fills the width, and so does its only callee. */
  ck_assert_double_eq_tol(z->x, 10, 1e-3);
  ck_assert_double_eq_tol(z->width, 1200, 1e-3);
  const svg_frame *callee = frame(doc, "g_malloc (libglib-2.0.so.0)");
  ck_assert(!hidden(callee));
  ck_assert_double_eq_tol(callee->width, 1200, 1e-3);
  ck_assert_str_eq(callee->text, "g_malloc (libglib-2.0.so.0)");
  /* Callers become full-width bars; everything else is hidden. */
  const char *callers[] = {"all", "main (/src/prog.c:10)"};
  for (size_t i = 0; i < G_N_ELEMENTS(callers); i++) {
    const svg_frame *c = frame(doc, callers[i]);
    ck_assert_msg(!hidden(c) && strstr(c->klass, "anc") != NULL, "%s: %s", callers[i], c->klass);
    ck_assert_double_eq_tol(c->width, 1200, 1e-3);
  }
  const char *others[] = {"parse (/src/parse.c:20)", "alloc_node (/src/parse.c:30)",
                          "main (/src/prog.c:11)", "[truncated]", "deep (/src/deep.c:1)"};
  for (size_t i = 0; i < G_N_ELEMENTS(others); i++)
    ck_assert_msg(hidden(frame(doc, others[i])), "%s is shown", others[i]);
  svg_doc_free(doc);
  g_free(fragment);

  /* A click on the root undoes it. */
  fragment = g_strdup_printf("zoom=%s&zoom=%s", target->id, frame(before, "all")->id);
  doc = browse(fragment);
  ck_assert_ptr_null(doc->zoomed);
  for (guint i = 0; i < doc->frames->len; i++) {
    const svg_frame *f = doc->frames->pdata[i], *b = before->frames->pdata[i];
    ck_assert(!hidden(f));
    ck_assert_double_eq_tol(f->width, b->width, 1e-3);
    ck_assert_double_eq_tol(f->x, b->x, 1e-3);
  }
  svg_doc_free(doc);
  g_free(fragment);
  svg_doc_free(before);
}
END_TEST

START_TEST(test_search) {
  svg_doc *doc = browse("search=needle");
  const svg_frame *hit = frame(doc, HAND_HOSTILE_FUNCTION " (/src/" HAND_HOSTILE_FILE ":5)");
  ck_assert_str_eq(hit->fill, "rgb(230,0,230)");
  ck_assert_str_ne(frame(doc, "main (/src/prog.c:11)")->fill, "rgb(230,0,230)");
  ck_assert_str_eq(doc->matched_bytes, "2000");
  ck_assert_str_eq(doc->matched_text, "Matched: 1 frame, 15.4% of the bytes");
  svg_doc_free(doc);
  /* "parse" names both parse frames and the file of alloc_node, which is under one of them:
   * its bytes count once. Case does not matter. */
  doc = browse("search=PARSE");
  ck_assert_str_eq(doc->matched_bytes, "10000");
  ck_assert_str_eq(doc->matched_text, "Matched: 3 frames, 76.9% of the bytes");
  ck_assert_str_eq(frame(doc, "alloc_node (/src/parse.c:30)")->fill, "rgb(230,0,230)");
  svg_doc_free(doc);
  /* Search and zoom together; a search that matches nothing. */
  doc = browse("search=zzz-nothing");
  ck_assert_str_eq(doc->matched_bytes, "0");
  ck_assert_str_eq(doc->matched_text, "Matched: 0 frames, 0.0% of the bytes");
  svg_doc_free(doc);
}
END_TEST

static void setup(void) {
  dir = tool_tmpdir();
  hand_dumps_write(dir);
  char *dump = g_build_filename(dir, "new.dump", NULL);
  svg_path = g_build_filename(dir, "graph.svg", NULL);
  const char *argv[] = {tool, "flamegraph", dump, "-o", svg_path, NULL};
  tool_run r = tool_spawn(NULL, argv);
  ck_assert_msg(r.status == 0, "%s", r.err);
  tool_run_clear(&r);
  g_free(dump);
}

static void teardown(void) {
  char *cmd = g_strdup_printf("rm -rf '%s'", dir); /* the browser profile is a tree */
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
  g_free(cmd);
  g_free(svg_path);
  g_free(dir);
}

int main(void) {
  tool = getenv("TRACEMALLOC_TOOL");
  if (tool == NULL) {
    fprintf(stderr, "TRACEMALLOC_TOOL must be set (meson test does)\n");
    return 99;
  }
  const char *env = getenv("TM_CHROMIUM");
  chromium = env != NULL && env[0] != '\0' ? g_strdup(env) : g_find_program_in_path("chromium");
  if (chromium == NULL)
    chromium = g_find_program_in_path("chromium-browser");
  if (chromium == NULL) {
    printf("SKIP: no chromium in PATH (Debian package chromium, or set TM_CHROMIUM): the flame "
           "graph's zoom and search are not tested in a browser\n");
    return 77;
  }
  Suite *s = suite_create("tool_browser");
  TCase *tc = tcase_create("browser");
  tcase_set_timeout(tc, 120);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_zoom);
  tcase_add_test(tc, test_search);
  suite_add_tcase(s, tc);
  int rc = run_suite(s);
  g_free(chromium);
  return rc;
}
