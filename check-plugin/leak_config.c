/* leak_config.c — the plugin's settings: built-in defaults, the TM_LEAK_CONFIG key file, the
 * TM_LEAK_* environment, and per-test rules matched by glob on the test name.
 *
 * Key file (every key optional; an unknown group or key is an error, so that typos show; a group
 * may appear once: GKeyFile would merge a repeated one silently). Only a regular file is read:
 * a FIFO, a directory or a device is an error (opened without blocking).
 *   [defaults]
 *   threshold = 4 KiB              # bytes each test may leave allocated
 *   peak-limit = 8 MiB             # 0: none
 *   nframe = 32                    # frames per traceback when the plugin starts tracing
 *   top = 10                       # lines of each section of the stderr report
 *   default-filters = true
 *   ignore-functions = my_cache_*;lazy_init   # a trace with a frame in one of these is ignored
 *   ignore-files = *.generated.c
 *   ignore-modules = *libfoo.so*     # matched on the module path
 *   allocators = xmalloc;xstrdup   # wrappers the allocation site looks through
 *   suppressions = valgrind.supp;lsan.txt  # LSan/Valgrind files (leak_suppress.c), relative to
 *                                          # this file; TM_LEAK_SUPPRESSIONS=a.supp:b.txt adds more
 *   threshold-blocks = 2           # blocks each test may leave allocated (default: any number)
 *   reachable = charge             # charge still-reachable growth too (default: ignore)
 *   [suite:Money*]                 # glob on the Suite name
 *   [tcase:Limits]                 # glob on the TCase name
 *   [test:test_big_*]              # glob on the test name (START_TEST's name)
 *   threshold = 64 KiB
 *   threshold-blocks = 10
 *   peak-limit = 16 MiB
 *   reachable = charge
 *   ignore = true
 * Precedence: the test's own calls, then [test:], [tcase:], [suite:] sections (the most specific
 * wins), then the environment, then [defaults]. A '#' after blanks starts a comment, also at the
 * end of a line (config_strip_comments()).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

#include "leak_internal.h"

/* The kinds of per-test section, from the least to the most specific. */
typedef enum rule_kind { RULE_SUITE, RULE_TCASE, RULE_TEST, NRULE_KINDS } rule_kind;
static const char *const rule_prefixes[NRULE_KINDS] = {"suite:", "tcase:", "test:"};

/* One [suite:GLOB], [tcase:GLOB] or [test:GLOB] section. */
typedef struct test_rule {
  rule_kind kind;
  GPatternSpec *glob;
  bool has_threshold, has_threshold_blocks, has_peak_limit, has_ignore, has_reachable;
  size_t threshold, threshold_blocks, peak_limit;
  bool ignore, charge_reachable;
} test_rule;

static void test_rule_free(gpointer data) {
  test_rule *rule = data;
  g_pattern_spec_free(rule->glob);
  g_free(rule);
}

/* Accepts 1/0, yes/no, true/false, on/off in any case. */
static bool parse_bool(const char *what, const char *text, bool *out, GError **error) {
  static const char *const yes[] = {"1", "yes", "true", "on"};
  static const char *const no[] = {"0", "no", "false", "off"};
  char *t = g_strstrip(g_strdup(text));

  for (size_t i = 0; i < G_N_ELEMENTS(yes); i++) {
    if (g_ascii_strcasecmp(t, yes[i]) == 0 || g_ascii_strcasecmp(t, no[i]) == 0) {
      *out = g_ascii_strcasecmp(t, yes[i]) == 0;
      g_free(t);
      return true;
    }
  }
  g_free(t);
  g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
              "%s='%s' is not a boolean: write 1 or 0, yes or no, true or false", what, text);
  return false;
}

static bool parse_int(const char *what, const char *text, long min, long max, long *out,
                      GError **error) {
  char *end;
  long value;

  errno = 0;
  value = strtol(text, &end, 10);
  while (g_ascii_isspace(*end))
    end++;
  if (errno != 0 || end == text || *end != '\0' || value < min || value > max) {
    g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                "%s='%s' is not a whole number from %ld to %ld", what, text, min, max);
    return false;
  }
  *out = value;
  return true;
}

/* The settings that both the [defaults] group and the environment can give. */
typedef struct settings {
  const char *threshold, *threshold_blocks, *peak_limit, *nframe, *top, *default_filters,
    *disable, *reachable, *accept_unchecked;
} settings;

/* "ignore" or "charge": whether still-reachable growth is charged. */
static bool parse_reachable(const char *what, const char *text, bool *charge, GError **error) {
  char *t = g_strstrip(g_strdup(text));
  bool ok = g_ascii_strcasecmp(t, "charge") == 0 || g_ascii_strcasecmp(t, "ignore") == 0;
  if (ok)
    *charge = g_ascii_strcasecmp(t, "charge") == 0;
  else
    g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                "%s='%s' is not a reachability rule: write charge or ignore", what, text);
  g_free(t);
  return ok;
}

/* A number of blocks: a whole number from 0. */
static bool parse_blocks(const char *what, const char *text, size_t *out, GError **error) {
  long n = 0;
  char *t = g_strstrip(g_strdup(text));
  bool ok = parse_int(what, t, 0, G_MAXINT, &n, error);
  g_free(t);
  if (ok)
    *out = (size_t)n;
  return ok;
}

/* Names a setting in errors: the variable, or the key file and key. g_free(). */
static char *setting_name(const char *path, const char *envname, const char *key) {
  return path == NULL ? g_strdup(envname)
                      : g_strdup_printf("TM_LEAK_CONFIG=%s: [defaults] %s", path, key);
}

/* Applies the settings that are set. `path` is the key file they come from, or NULL for the
 * environment. */
static bool apply_settings(tm__leak_config *config, const settings *s, const char *path,
                           bool *default_filters, GError **error) {
  char *what = NULL;
  long n = 0;
  bool ok = true;

  if (ok && s->threshold != NULL) {
    what = setting_name(path, "TM_LEAK_THRESHOLD", "threshold");
    ok = tm__leak_parse_size(what, s->threshold, &config->defaults.allowance, error);
    g_clear_pointer(&what, g_free);
  }
  if (ok && s->threshold_blocks != NULL) {
    what = setting_name(path, "TM_LEAK_THRESHOLD_BLOCKS", "threshold-blocks");
    ok = parse_blocks(what, s->threshold_blocks, &config->defaults.allowance_blocks, error);
    g_clear_pointer(&what, g_free);
  }
  if (ok && s->reachable != NULL) {
    what = setting_name(path, "TM_LEAK_REACHABLE", "reachable");
    ok = parse_reachable(what, s->reachable, &config->defaults.charge_reachable, error);
    g_clear_pointer(&what, g_free);
  }
  if (ok && s->accept_unchecked != NULL) {
    what = setting_name(path, "TM_LEAK_ACCEPT_UNCHECKED", "accept-unchecked");
    ok = parse_bool(what, s->accept_unchecked, &config->accept_foreign, error);
    g_clear_pointer(&what, g_free);
  }
  if (ok && s->peak_limit != NULL) {
    what = setting_name(path, "TM_LEAK_PEAK_LIMIT", "peak-limit");
    ok = tm__leak_parse_size(what, s->peak_limit, &config->defaults.peak_limit, error);
    g_clear_pointer(&what, g_free);
  }
  if (ok && s->nframe != NULL) {
    what = setting_name(path, "TM_LEAK_NFRAME", "nframe");
    ok = parse_int(what, s->nframe, 1, TM_MAX_NFRAME, &n, error);
    config->nframe = ok ? (int)n : config->nframe;
    g_clear_pointer(&what, g_free);
  }
  if (ok && s->top != NULL) {
    what = setting_name(path, "TM_LEAK_TOP", "top");
    ok = parse_int(what, s->top, 0, 100000, &n, error);
    config->top = ok ? (size_t)n : config->top;
    g_clear_pointer(&what, g_free);
  }
  if (ok && s->default_filters != NULL) {
    what = setting_name(path, "TM_LEAK_DEFAULT_FILTERS", "default-filters");
    ok = parse_bool(what, s->default_filters, default_filters, error);
    g_clear_pointer(&what, g_free);
  }
  if (ok && s->disable != NULL) {
    what = setting_name(path, "TM_LEAK_DISABLE", "disable");
    ok = parse_bool(what, s->disable, &config->disabled, error);
    g_clear_pointer(&what, g_free);
  }
  return ok;
}

/* Whether a pattern holds what a shell or fnmatch() would read as a character class or an escape:
 * a '\\', or a '[' not followed at once by ']' ("operator[]" is a C++ name, matched as written). */
static bool pattern_has_class(const char *pattern) {
  for (const char *c = pattern; *c != '\0'; c++)
    if (*c == '\\' || (*c == '[' && c[1] != ']'))
      return true;
  return false;
}

/* Adds every pattern of a list key to a filter set. A pattern takes '*' and '?' (GPatternSpec),
 * and everything else as written: one that looks like a class or an escape (pattern_has_class())
 * is an error naming it, rather than a filter that silently never matches. */
static bool add_list(const char *path, GKeyFile *kf, const char *group, const char *key,
                     tm__leak_filters *filters, void (*add)(tm__leak_filters *, const char *),
                     GError **error) {
  gsize n = 0;
  GError *local = NULL;
  char **list = g_key_file_get_string_list(kf, group, key, &n, &local);
  bool ok = true;

  if (list == NULL && local != NULL && !g_error_matches(local, G_KEY_FILE_ERROR,
                                                        G_KEY_FILE_ERROR_KEY_NOT_FOUND)) {
    /* A value GKeyFile cannot read (an escape it does not know): not a silent empty list. */
    g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                "TM_LEAK_CONFIG=%s: [%s] %s: %s", path, group, key, local->message);
    ok = false;
  }
  g_clear_error(&local);
  for (gsize i = 0; ok && i < n; i++) {
    g_strstrip(list[i]);
    if (pattern_has_class(list[i])) {
      g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                  "TM_LEAK_CONFIG=%s: [%s] %s='%s' is not a pattern: patterns take * (any text) "
                  "and ? (one character), and no [class] or \\ escape", path, group, key,
                  list[i]);
      ok = false;
    } else if (list[i][0] != '\0') {
      add(filters, list[i]);
    }
  }
  g_strfreev(list);
  return ok;
}

static bool unknown_key(const char *path, const char *group, const char *key, GError **error) {
  g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND,
              "TM_LEAK_CONFIG=%s: [%s] has an unknown key '%s'", path, group, key);
  return false;
}

/* [defaults] suppressions = a.supp;lsan.txt: files relative to the key file's folder. */
static bool load_suppressions_key(tm__leak_config *config, GKeyFile *kf, GError **error) {
  char *list = g_key_file_get_value(kf, "defaults", "suppressions", NULL);
  char *dir = g_path_get_dirname(config->path);
  char *what = g_strdup_printf("TM_LEAK_CONFIG=%s: [defaults] suppressions", config->path);
  bool ok = list == NULL ||
            tm__leak_filters_load_suppressions(config->filters, what, list, ';', dir, error);

  g_free(what);
  g_free(dir);
  g_free(list);
  return ok;
}

static bool load_defaults_group(tm__leak_config *config, GKeyFile *kf, bool *default_filters,
                                GError **error) {
  static const char *const list_keys[] = {"ignore-functions", "ignore-files", "ignore-modules",
                                          "allocators", "suppressions"};
  settings s = {0};
  gsize nkeys = 0;
  char **keys = g_key_file_get_keys(kf, "defaults", &nkeys, NULL);
  char **values = g_new0(char *, nkeys + 1); /* may have holes: freed one by one */
  bool ok = true;

  for (size_t i = 0; ok && keys[i] != NULL; i++) {
    const char *k = keys[i];
    const char **slot = g_str_equal(k, "threshold")          ? &s.threshold
                        : g_str_equal(k, "threshold-blocks") ? &s.threshold_blocks
                        : g_str_equal(k, "reachable")       ? &s.reachable
                        : g_str_equal(k, "accept-unchecked") ? &s.accept_unchecked
                        : g_str_equal(k, "peak-limit")      ? &s.peak_limit
                        : g_str_equal(k, "nframe")          ? &s.nframe
                        : g_str_equal(k, "top")             ? &s.top
                        : g_str_equal(k, "default-filters") ? &s.default_filters
                        : g_str_equal(k, "disable")         ? &s.disable
                                                            : NULL;
    if (slot != NULL) {
      values[i] = g_key_file_get_value(kf, "defaults", k, NULL);
      *slot = values[i];
      continue;
    }
    ok = false;
    for (size_t j = 0; j < G_N_ELEMENTS(list_keys); j++)
      ok = ok || g_str_equal(k, list_keys[j]);
    if (!ok)
      unknown_key(config->path, "defaults", k, error);
  }
  if (ok)
    ok = apply_settings(config, &s, config->path, default_filters, error);
  if (ok) {
    const char *path = config->path;
    tm__leak_filters *f = config->filters;
    ok = add_list(path, kf, "defaults", "ignore-functions", f, tm__leak_filters_add_function,
                  error) &&
         add_list(path, kf, "defaults", "ignore-files", f, tm__leak_filters_add_file, error) &&
         add_list(path, kf, "defaults", "ignore-modules", f, tm__leak_filters_add_module, error) &&
         add_list(path, kf, "defaults", "allocators", f, tm__leak_filters_add_allocator, error) &&
         load_suppressions_key(config, kf, error);
  }
  for (gsize i = 0; i < nkeys; i++)
    g_free(values[i]);
  g_free(values);
  g_strfreev(keys);
  return ok;
}

static bool load_test_group(tm__leak_config *config, GKeyFile *kf, const char *group,
                            rule_kind kind, GError **error) {
  const char *glob = group + strlen(rule_prefixes[kind]);
  char **keys = g_key_file_get_keys(kf, group, NULL, NULL);
  test_rule *rule = g_new0(test_rule, 1);
  bool ok = true;

  rule->kind = kind;
  for (size_t i = 0; ok && keys[i] != NULL; i++) {
    char *value = g_key_file_get_value(kf, group, keys[i], NULL);
    char *what = g_strdup_printf("TM_LEAK_CONFIG=%s: [%s] %s", config->path, group, keys[i]);
    if (g_str_equal(keys[i], "threshold"))
      ok = rule->has_threshold = tm__leak_parse_size(what, value, &rule->threshold, error);
    else if (g_str_equal(keys[i], "threshold-blocks"))
      ok = rule->has_threshold_blocks = parse_blocks(what, value, &rule->threshold_blocks, error);
    else if (g_str_equal(keys[i], "reachable"))
      ok = rule->has_reachable = parse_reachable(what, value, &rule->charge_reachable, error);
    else if (g_str_equal(keys[i], "peak-limit"))
      ok = rule->has_peak_limit = tm__leak_parse_size(what, value, &rule->peak_limit, error);
    else if (g_str_equal(keys[i], "ignore"))
      ok = rule->has_ignore = parse_bool(what, value, &rule->ignore, error);
    else
      ok = unknown_key(config->path, group, keys[i], error);
    g_free(what);
    g_free(value);
  }
  g_strfreev(keys);
  if (!ok || *glob == '\0') {
    if (ok)
      g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND,
                  "TM_LEAK_CONFIG=%s: [%s] needs a name glob after '%s'", config->path,
                  group, rule_prefixes[kind]);
    g_free(rule);
    return false;
  }
  rule->glob = g_pattern_spec_new(glob);
  g_ptr_array_add(config->test_rules, rule);
  return true;
}

/* Largest key file read: a config is a few lines, so anything bigger is a wrong path. */
#define CONFIG_MAX_BYTES (1u << 20)

/* Reads the key file at path into a new string (g_free()). O_NONBLOCK keeps the open of a FIFO
 * from blocking, and only a regular file is read, so that a FIFO or a device named by mistake is
 * an error rather than a hang. Returns NULL with a message that names the file. */
static char *config_read(const char *path, gsize *length, GError **error) {
  struct stat st;
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  char *text = NULL;
  gsize got = 0;

  if (fd < 0) {
    g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_NOT_FOUND, "TM_LEAK_CONFIG=%s: %s",
                path, g_strerror(errno));
    return NULL;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE,
                "TM_LEAK_CONFIG=%s: not a regular file", path);
    close(fd);
    return NULL;
  }
  if (st.st_size > CONFIG_MAX_BYTES) {
    g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE,
                "TM_LEAK_CONFIG=%s: larger than %u bytes", path, CONFIG_MAX_BYTES);
    close(fd);
    return NULL;
  }
  text = g_malloc((gsize)st.st_size + 1);
  while (got < (gsize)st.st_size) {
    ssize_t n = read(fd, text + got, (gsize)st.st_size - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (gsize)n;
  }
  text[got] = '\0';
  close(fd);
  *length = got;
  return text;
}

/* GKeyFile merges groups that appear twice, so a second [defaults] would silently add to the
 * first: scans the group headers ("[name]" lines) and reports the first repeated one. */
static bool config_check_groups(const char *path, const char *text, GError **error) {
  GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  GHashTable *keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  char **lines = g_strsplit(text, "\n", -1);
  const char *group = NULL; /* the current group's name, owned by seen */
  bool ok = true;

  for (size_t i = 0; ok && lines[i] != NULL; i++) {
    const char *line = lines[i];
    while (*line == ' ' || *line == '\t')
      line++;
    const char *end = line[0] == '[' ? strrchr(line, ']') : NULL;
    const char *eq = end == NULL && line[0] != '#' ? strchr(line, '=') : NULL;
    if (eq != NULL && group != NULL) { /* a key: once per group, or GKeyFile keeps the last */
      char *key = g_strstrip(g_strndup(line, (gsize)(eq - line)));
      if (g_hash_table_contains(keys, key)) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE,
                    "TM_LEAK_CONFIG=%s: [%s] sets '%s' twice: keep one", path, group, key);
        ok = false;
        g_free(key);
      } else {
        g_hash_table_add(keys, key);
      }
      continue;
    }
    if (end == NULL)
      continue;
    g_hash_table_remove_all(keys);
    char *name = g_strndup(line + 1, (gsize)(end - line - 1));
    group = name;
    if (g_hash_table_contains(seen, name)) {
      g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE,
                  "TM_LEAK_CONFIG=%s: group [%s] appears twice: merge them into one", path,
                  name);
      ok = false;
      g_free(name);
    } else {
      g_hash_table_add(seen, name);
    }
  }
  g_strfreev(lines);
  g_hash_table_unref(keys);
  g_hash_table_unref(seen);
  return ok;
}

/* Cuts the comment off each "key = value   # comment" line of text, in place (the text is NUL
 * terminated; *length is updated): GKeyFile takes comments only on lines of their own, and would
 * read "charge   # this suite's caches" as the value, or a pattern with the comment in it. A '#'
 * is a comment when blanks precede it; one inside a value ("a#b") stays. */
static void config_strip_comments(char *text, gsize *length) {
  char *out = text;
  for (char *line = text; *line != '\0';) {
    char *end = strchr(line, '\n');
    size_t n = end != NULL ? (size_t)(end - line) : strlen(line);
    size_t keep = n;
    const char *first = line + strspn(line, " \t");
    if (*first != '#' && *first != '[' && memchr(line, '=', n) != NULL) {
      const char *eq = memchr(line, '=', n);
      for (const char *c = eq + 1; c < line + n; c++) {
        if (*c == '#' && (c[-1] == ' ' || c[-1] == '\t')) {
          keep = (size_t)(c - line);
          break;
        }
      }
    }
    memmove(out, line, keep);
    out += keep;
    if (end == NULL)
      break;
    *out++ = '\n';
    line = end + 1;
  }
  *out = '\0';
  *length = (gsize)(out - text);
}

static bool load_key_file(tm__leak_config *config, bool *default_filters, GError **error) {
  GKeyFile *kf = NULL;
  GError *local = NULL;
  char **groups = NULL;
  gsize length = 0;
  char *text = config_read(config->path, &length, error);
  bool ok;

  if (text == NULL)
    return false;
  if (!config_check_groups(config->path, text, error)) {
    g_free(text);
    return false;
  }
  config_strip_comments(text, &length);
  kf = g_key_file_new();
  ok = g_key_file_load_from_data(kf, text, length, G_KEY_FILE_NONE, &local);
  g_free(text);
  if (!ok) {
    g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE, "TM_LEAK_CONFIG=%s: %s",
                config->path, local->message);
    g_error_free(local);
    g_key_file_free(kf);
    return false;
  }
  groups = g_key_file_get_groups(kf, NULL);
  for (size_t i = 0; ok && groups[i] != NULL; i++) {
    rule_kind kind = NRULE_KINDS;
    for (int k = 0; k < NRULE_KINDS; k++)
      if (g_str_has_prefix(groups[i], rule_prefixes[k]))
        kind = (rule_kind)k;
    if (g_str_equal(groups[i], "defaults"))
      ok = load_defaults_group(config, kf, default_filters, error);
    else if (kind != NRULE_KINDS)
      ok = load_test_group(config, kf, groups[i], kind, error);
    else {
      g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND,
                  "TM_LEAK_CONFIG=%s: unknown group [%s]: use [defaults], [suite:GLOB], "
                  "[tcase:GLOB] or [test:GLOB]",
                  config->path, groups[i]);
      ok = false;
    }
  }
  g_strfreev(groups);
  g_key_file_free(kf);
  return ok;
}

const char *tm__leak_env_get(char **env, const char *name) {
  const char *value = g_environ_getenv(env, name);
  return value != NULL && value[0] != '\0' ? value : NULL;
}

tm__leak_config *tm__leak_config_load(char **envp, GError **error) {
  tm__leak_config *config = g_new0(tm__leak_config, 1);
  /* A setuid or setgid program (AT_SECURE) ignores the environment, as secure_getenv() does: a
   * config error quoting a file the caller could not read would leak its lines. */
  static char *no_env[] = {NULL};
  bool secure = envp == NULL && getauxval(AT_SECURE) != 0;
  char **own_env = envp == NULL && !secure ? g_get_environ() : NULL;
  char **env = envp != NULL ? envp : secure ? no_env : own_env;
  const char *path = tm__leak_env_get(env, "TM_LEAK_CONFIG");
  const char *suppressions = tm__leak_env_get(env, "TM_LEAK_SUPPRESSIONS");
  bool default_filters = true;
  settings s = {
    .threshold = tm__leak_env_get(env, "TM_LEAK_THRESHOLD"),
    .threshold_blocks = tm__leak_env_get(env, "TM_LEAK_THRESHOLD_BLOCKS"),
    .reachable = tm__leak_env_get(env, "TM_LEAK_REACHABLE"),
    .accept_unchecked = tm__leak_env_get(env, "TM_LEAK_ACCEPT_UNCHECKED"),
    .peak_limit = tm__leak_env_get(env, "TM_LEAK_PEAK_LIMIT"),
    .nframe = tm__leak_env_get(env, "TM_LEAK_NFRAME"),
    .top = tm__leak_env_get(env, "TM_LEAK_TOP"),
    .default_filters = tm__leak_env_get(env, "TM_LEAK_DEFAULT_FILTERS"),
    .disable = tm__leak_env_get(env, "TM_LEAK_DISABLE"),
  };
  bool ok = true;

  config->top = TM__LEAK_DEFAULT_TOP;
  config->defaults.allowance_blocks = SIZE_MAX;
  config->filters = tm__leak_filters_new();
  config->test_rules = g_ptr_array_new_with_free_func(test_rule_free);
  if (path != NULL && path[0] != '\0') {
    config->path = g_strdup(path);
    ok = load_key_file(config, &default_filters, error);
  }
  if (ok)
    ok = apply_settings(config, &s, NULL, &default_filters, error);
  if (ok && suppressions != NULL)
    ok = tm__leak_filters_load_suppressions(config->filters, "TM_LEAK_SUPPRESSIONS", suppressions,
                                            ':', NULL, error);
  if (ok && default_filters)
    tm__leak_filters_add_defaults(config->filters);
  /* The peak watch is armed in every window at the lowest limit any rule sets: which rule applies
   * is known only at the teardown (the test's name is unknown to a setup). */
  config->watch_peak = config->defaults.peak_limit;
  for (guint i = 0; ok && i < config->test_rules->len; i++) {
    const test_rule *rule = g_ptr_array_index(config->test_rules, i);
    if (rule->has_peak_limit && rule->peak_limit != 0 &&
        (config->watch_peak == 0 || rule->peak_limit < config->watch_peak))
      config->watch_peak = rule->peak_limit;
  }
  g_strfreev(own_env);
  if (!ok) {
    tm__leak_config_free(config);
    return NULL;
  }
  return config;
}

void tm__leak_config_free(tm__leak_config *config) {
  if (config == NULL)
    return;
  tm__leak_filters_free(config->filters);
  g_ptr_array_unref(config->test_rules);
  g_free(config->path);
  g_free(config);
}

void tm__leak_config_rules_for(const tm__leak_config *config, const tm__leak_test_id *id,
                               tm__leak_rules *out) {
  const char *names[NRULE_KINDS] = {id->suite, id->tcase, id->test};

  *out = config->defaults;
  for (int kind = 0; kind < NRULE_KINDS; kind++) {
    if (names[kind] == NULL)
      continue;
    for (guint i = 0; i < config->test_rules->len; i++) {
      const test_rule *rule = g_ptr_array_index(config->test_rules, i);
      if (rule->kind != (rule_kind)kind || !g_pattern_spec_match_string(rule->glob, names[kind]))
        continue;
      if (rule->has_threshold)
        out->allowance = rule->threshold;
      if (rule->has_threshold_blocks)
        out->allowance_blocks = rule->threshold_blocks;
      if (rule->has_peak_limit)
        out->peak_limit = rule->peak_limit;
      if (rule->has_ignore)
        out->ignore = rule->ignore;
      if (rule->has_reachable)
        out->charge_reachable = rule->charge_reachable;
    }
  }
}
