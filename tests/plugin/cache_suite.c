/* cache_suite.c — the one-time caches the default filters remove, each beside its twin that
 * fills the same cache and also leaks a real block through GLib (g_strdup, 5 bytes).
 * test_plugin_filters.c runs it in both fork modes, and once with TM_LEAK_DEFAULT_FILTERS=0 to
 * show that each cache really is allocated inside the window (so that the filter is not vacuous).
 * "site:NAME" marks the line each twin's failure must name.
 */
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <locale.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include <glib-object.h>
#include <tracemalloc-check.h>

#include "lose.h"

static void stdio_cache(void) {
  (void)fgetc(stdin); /* the first read allocates stdin's buffer */
}

static void tz_cache(void) {
  char buf[128];
  struct tm tm;
  time_t t = 1700000000;
  tzset();
  localtime_r(&t, &tm);
  strftime(buf, sizeof buf, "%c %Z", &tm);
}

/* localtime() with TZ unset: glibc frees its copy of the old TZ value, made before the window,
 * and keeps a new one. gmtime_r hands straight to the same conversion. */
static void localtime_cache(void) {
  time_t t = 1700000000;
  struct tm tm;
  unsetenv("TZ");
  (void)localtime(&t);
  (void)gmtime_r(&t, &tm);
}

/* gettext's catalog cache, filled by strerror in a UTF-8 locale. */
static void strerror_cache(void) {
  setlocale(LC_ALL, "C.UTF-8");
  (void)strerror(ENOENT);
  setlocale(LC_ALL, "C");
}

/* getaddrinfo keeps what it learnt about the interfaces (glibc's check_pf.c). */
static void getaddrinfo_cache(void) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  struct addrinfo *res = NULL;
  if (getaddrinfo("localhost", "80", &hints, &res) == 0)
    freeaddrinfo(res);
}

static void locale_cache(void) {
  setlocale(LC_ALL, "C.UTF-8");
  setlocale(LC_ALL, "C");
}

static void nss_cache(void) {
  struct passwd *pw = getpwuid(getuid());
  (void)pw;
}

static void loader_cache(void) {
  void *h = dlopen("libz.so.1", RTLD_NOW); /* kept loaded, as a program would */
  (void)h;
  (void)dlopen("libtm-check-no-such-library.so", RTLD_NOW);
  (void)dlerror();
}

static void *idle_thread(void *arg) {
  return arg;
}

static void thread_cache(void) {
  pthread_t t[4];
  for (int i = 0; i < 4; i++)
    pthread_create(&t[i], NULL, idle_thread, NULL);
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
}

static void quark_cache(void) {
  (void)g_quark_from_string("tm-check-quark");
  (void)g_quark_from_static_string("tm-check-static-quark");
  (void)g_intern_string("tm-check-interned-string");
}

/* A GObject type of our own: registering it and creating its class are one-time work. */
typedef struct { GObject parent; int value; } TmCheckThing;
typedef struct { GObjectClass parent_class; } TmCheckThingClass;
GType tm_check_thing_get_type(void);
G_DEFINE_TYPE(TmCheckThing, tm_check_thing, G_TYPE_OBJECT)
static void tm_check_thing_class_init(TmCheckThingClass *klass) {
  (void)klass;
}
static void tm_check_thing_init(TmCheckThing *self) {
  self->value = 1;
}

static void type_cache(void) {
  g_object_unref(g_object_new(tm_check_thing_get_type(), NULL));
}

static void gslice_cache(void) {
  GSList *l = NULL;
  for (int i = 0; i < 200; i++)
    l = g_slist_prepend(l, GINT_TO_POINTER(i));
  g_slist_free(l);
}

/* A wide-oriented stderr: its wide buffer, and the locale's conversion functions it loads. */
static void wide_cache(void) {
  fwprintf(stderr, L"%ls\n", L"wide stderr");
}

/* The text of an unknown errno and of an unknown signal value: a buffer per thread. */
static void errno_text_cache(void) {
  (void)strerror(9999);
  (void)strsignal(45);
}

static void check_file_cache(void) {
  /* Nothing: in CK_FORK=no mode Check itself replaces its message FILE inside the window. */
}

#define CACHE_TESTS(name)                                                                          \
  START_TEST(test_##name) {                                                                        \
    name##_cache();                                                                                \
  }                                                                                                \
  END_TEST

CACHE_TESTS(stdio)
CACHE_TESTS(tz)
CACHE_TESTS(locale)
CACHE_TESTS(nss)
CACHE_TESTS(loader)
CACHE_TESTS(thread)
CACHE_TESTS(quark)
CACHE_TESTS(type)
CACHE_TESTS(gslice)
CACHE_TESTS(check_file)
CACHE_TESTS(localtime)
CACHE_TESTS(strerror)
CACHE_TESTS(getaddrinfo)
CACHE_TESTS(errno_text)
CACHE_TESTS(wide)

/* The twins: one per line, so that each site marker names its own line. */
START_TEST(test_stdio_leak) { stdio_cache(); lose(g_strdup("leak")); /* site:stdio */ }
END_TEST
START_TEST(test_tz_leak) { tz_cache(); lose(g_strdup("leak")); /* site:tz */ }
END_TEST
START_TEST(test_locale_leak) { locale_cache(); lose(g_strdup("leak")); /* site:locale */ }
END_TEST
START_TEST(test_nss_leak) { nss_cache(); lose(g_strdup("leak")); /* site:nss */ }
END_TEST
START_TEST(test_loader_leak) { loader_cache(); lose(g_strdup("leak")); /* site:loader */ }
END_TEST
START_TEST(test_thread_leak) { thread_cache(); lose(g_strdup("leak")); /* site:thread */ }
END_TEST
START_TEST(test_quark_leak) { quark_cache(); lose(g_strdup("leak")); /* site:quark */ }
END_TEST
START_TEST(test_type_leak) { type_cache(); lose(g_strdup("leak")); /* site:type */ }
END_TEST
START_TEST(test_gslice_leak) { gslice_cache(); lose(g_strdup("leak")); /* site:gslice */ }
END_TEST
START_TEST(test_check_file_leak) { check_file_cache(); lose(g_strdup("leak")); /* site:check_file */ }
END_TEST
START_TEST(test_localtime_leak) { localtime_cache(); lose(g_strdup("leak")); /* site:localtime */ }
END_TEST
START_TEST(test_strerror_leak) { strerror_cache(); lose(g_strdup("leak")); /* site:strerror */ }
END_TEST
START_TEST(test_getaddrinfo_leak) { getaddrinfo_cache(); lose(g_strdup("leak")); /* site:getaddrinfo */ }
END_TEST
START_TEST(test_errno_text_leak) { errno_text_cache(); lose(g_strdup("leak")); /* site:errno_text */ }
END_TEST
START_TEST(test_wide_leak) { wide_cache(); lose(g_strdup("leak")); /* site:wide */ }
END_TEST

int main(void) {
  Suite *s = suite_create("Caches");
  TCase *tc = tcase_create("Caches");
  SRunner *sr;
  int failed;

  tcase_add_checked_fixture(tc, TM_LEAK_FIXTURE);
  /* Each cache first, then its twin (in CK_FORK=no mode the twin finds the cache filled). */
  tcase_add_test(tc, test_stdio);
  tcase_add_test(tc, test_stdio_leak);
  tcase_add_test(tc, test_tz);
  tcase_add_test(tc, test_tz_leak);
  tcase_add_test(tc, test_locale);
  tcase_add_test(tc, test_locale_leak);
  tcase_add_test(tc, test_nss);
  tcase_add_test(tc, test_nss_leak);
  tcase_add_test(tc, test_loader);
  tcase_add_test(tc, test_loader_leak);
  tcase_add_test(tc, test_thread);
  tcase_add_test(tc, test_thread_leak);
  tcase_add_test(tc, test_quark);
  tcase_add_test(tc, test_quark_leak);
  tcase_add_test(tc, test_type);
  tcase_add_test(tc, test_type_leak);
  tcase_add_test(tc, test_gslice);
  tcase_add_test(tc, test_gslice_leak);
  tcase_add_test(tc, test_check_file);
  tcase_add_test(tc, test_check_file_leak);
  tcase_add_test(tc, test_localtime);
  tcase_add_test(tc, test_localtime_leak);
  tcase_add_test(tc, test_strerror);
  tcase_add_test(tc, test_strerror_leak);
  tcase_add_test(tc, test_getaddrinfo);
  tcase_add_test(tc, test_getaddrinfo_leak);
  tcase_add_test(tc, test_errno_text);
  tcase_add_test(tc, test_errno_text_leak);
  /* Last: in CK_FORK=no mode stderr stays wide-oriented for every later test. */
  tcase_add_test(tc, test_wide);
  tcase_add_test(tc, test_wide_leak);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
