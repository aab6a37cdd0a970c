/* leak_size.c — sizes as users write them in TM_LEAK_THRESHOLD and the config file. */
#include <ctype.h>
#include <stdint.h>
#include <string.h>

#include "leak_internal.h"

/* The units of Python's _format_size, so that a size the report prints can be pasted back. */
static const struct {
  const char *name;
  unsigned shift;
} units[] = {
  {"B", 0}, {"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40},
};

static bool fail(const char *what, const char *text, GError **error) {
  g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
              "%s='%s' is not a size: write a whole number of bytes, optionally followed by B, "
              "KiB, MiB, GiB or TiB, e.g. 512, 4KiB, 4 KiB or 1MiB",
              what, text);
  return false;
}

bool tm__leak_parse_size(const char *what, const char *text, size_t *out, GError **error) {
  const char *p, *end;
  uint64_t value = 0;
  size_t i;

  if (text == NULL)
    return fail(what, "", error);
  p = text;
  end = text + strlen(text);
  while (isspace((unsigned char)*p)) /* blanks, and the newline a YAML block leaves */
    p++;
  while (end > p && isspace((unsigned char)end[-1]))
    end--;
  if (p == end || !isdigit((unsigned char)*p))
    return fail(what, text, error);
  for (; p < end && isdigit((unsigned char)*p); p++) {
    uint64_t digit = (uint64_t)(*p - '0');
    if (value > (UINT64_MAX - digit) / 10)
      return fail(what, text, error);
    value = value * 10 + digit;
  }
  while (p < end && (*p == ' ' || *p == '\t'))
    p++;
  if (p < end) {
    size_t unit_len = (size_t)(end - p);
    for (i = 0; i < G_N_ELEMENTS(units); i++)
      if (strlen(units[i].name) == unit_len && strncmp(p, units[i].name, unit_len) == 0)
        break;
    if (i == G_N_ELEMENTS(units))
      return fail(what, text, error);
    if (value > (SIZE_MAX >> units[i].shift))
      return fail(what, text, error);
    value <<= units[i].shift;
  }
  if (value > SIZE_MAX)
    return fail(what, text, error);
  *out = (size_t)value;
  return true;
}
