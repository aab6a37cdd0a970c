/* debug_link.c — finding the separate debug file a .gnu_debuglink section names. */
#include "debug_link.h"

#include <elfutils/libdwelf.h>
#include <fcntl.h>
#include <glib.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* The CRC-32 of the whole file behind fd (zlib's, the one .gnu_debuglink records), read from its
 * start; false on a read error. */
static bool file_crc(int fd, GElf_Word *out) {
  unsigned char buf[64 * 1024];
  uLong crc = crc32(0L, Z_NULL, 0);
  ssize_t n;
  off_t at = 0;
  while ((n = pread(fd, buf, sizeof buf, at)) > 0) {
    crc = crc32(crc, buf, (uInt)n);
    at += n;
  }
  *out = (GElf_Word)crc;
  return n == 0;
}

/* True when the file behind fd is the debug file of an object whose build-id is want (want_len
 * bytes; 0 when the object has none, and then crc decides). */
static bool debug_file_matches(int fd, const unsigned char *want, int want_len, GElf_Word crc) {
  if (want_len <= 0) {
    GElf_Word have;
    return file_crc(fd, &have) && have == crc;
  }
  Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
  const void *have = NULL;
  ssize_t have_len = elf != NULL ? dwelf_elf_gnu_build_id(elf, &have) : -1;
  bool same = have_len == want_len && memcmp(have, want, (size_t)want_len) == 0;
  elf_end(elf);
  return same;
}

int tm__debug_link_find(Dwfl_Module *mod, const char *file_name, const char *debug_name,
                        GElf_Word crc, char **path) {
  if (file_name == NULL || debug_name == NULL || debug_name[0] == '\0' || file_name[0] != '/')
    return -1;
  const unsigned char *want = NULL;
  GElf_Addr vaddr;
  int want_len = dwfl_module_build_id(mod, &want, &vaddr);
  char *dir = g_path_get_dirname(file_name);
  char *candidates[] = {g_build_filename(dir, debug_name, NULL),
                        g_build_filename(dir, ".debug", debug_name, NULL),
                        g_build_filename("/usr/lib/debug", dir, debug_name, NULL)};
  int found = -1;
  for (size_t i = 0; i < G_N_ELEMENTS(candidates) && found < 0; i++) {
    if (strcmp(candidates[i], file_name) == 0) /* a link that names the object itself */
      continue;
    int fd = open(candidates[i], O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      continue;
    if (debug_file_matches(fd, want, want_len, crc)) {
      found = fd;
      *path = strdup(candidates[i]);
    } else {
      close(fd);
    }
  }
  for (size_t i = 0; i < G_N_ELEMENTS(candidates); i++)
    g_free(candidates[i]);
  g_free(dir);
  return found;
}
