/* parity.h — what the seven ports of the Python tracemalloc tutorial share.
 *
 * Python's `listOne = [n*n for n in range(15000)]` allocates 15000 int objects and one list on a
 * single line; LIST() does the same in C: one array of pointers and `len` boxed numbers, all
 * allocated on the line where LIST() is used, so statistics by line name that line as Python's
 * name the line of the list comprehension. A box is 32 bytes, close to a Python int.
 */
#ifndef PARITY_H
#define PARITY_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tracemalloc.h>

typedef struct box {
  long value;
  long pad[3];
} box;

/* A list of len boxes holding expr, evaluated with n = 0 .. len - 1. Python's integers never
 * overflow; here n is unsigned so that n*n*n*n*n wraps (defined) instead of overflowing. */
#define LIST(len, expr)                                                                            \
  ({                                                                                               \
    box **list_ = malloc((len) * sizeof(box *));                                                   \
    for (unsigned long n = 0; n < (unsigned long)(len); n++) {                                     \
      list_[n] = malloc(sizeof(box));                                                              \
      list_[n]->value = (long)(expr);                                                              \
    }                                                                                              \
    list_;                                                                                         \
  })

static inline void list_free(box **list, long len) {
  for (long i = 0; list != NULL && i < len; i++)
    free(list[i]);
  free(list);
}

/* Exits with a message when err is set: the examples have no other error path. */
static inline void die_on_error(GError *err) {
  if (err != NULL) {
    fprintf(stderr, "error: %s\n", err->message);
    exit(1);
  }
}

/* Python's `for stat in snapshot.statistics(key): print(stat)`. */
static inline void print_statistics(tm_snapshot *snap, tm_key_type key) {
  GError *err = NULL;
  tm_statistics *stats = tm_snapshot_statistics(snap, key, false, &err);
  die_on_error(err);
  for (size_t i = 0; i < tm_statistics_length(stats); i++) {
    char *line = tm_statistic_format(tm_statistics_get(stats, i));
    printf("%s\n", line);
    g_free(line);
  }
  tm_statistics_free(stats);
}

/* Python's `for diff in new.compare_to(old, key): print(diff)`. */
static inline void print_diffs(tm_snapshot *snap, tm_snapshot *old, tm_key_type key) {
  GError *err = NULL;
  tm_statistic_diffs *diffs = tm_snapshot_compare_to(snap, old, key, false, &err);
  die_on_error(err);
  for (size_t i = 0; i < tm_statistic_diffs_length(diffs); i++) {
    char *line = tm_statistic_diff_format(tm_statistic_diffs_get(diffs, i));
    printf("%s\n", line);
    g_free(line);
  }
  tm_statistic_diffs_free(diffs);
}

/* Prints a string as Python's repr() does: single quotes unless the string holds a single quote
 * and no double quote, backslashes and the chosen quote escaped. */
static inline void print_repr(const char *s) {
  char q = strchr(s, '\'') != NULL && strchr(s, '"') == NULL ? '"' : '\'';
  putchar(q);
  for (; *s != '\0'; s++) {
    if (*s == '\\' || *s == q)
      putchar('\\');
    putchar(*s);
  }
  putchar(q);
}

/* Prints a NULL-terminated array of lines as Python prints a list of str, then frees it. */
static inline void print_lines_list(char **lines) {
  putchar('[');
  for (size_t i = 0; lines[i] != NULL; i++) {
    if (i > 0)
      printf(", ");
    print_repr(lines[i]);
  }
  printf("]\n");
  g_strfreev(lines);
}

#endif /* PARITY_H */
