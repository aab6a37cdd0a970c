/* dwfl_reference.h — libdw's own reading of an ELF file on disk, the reference that the
 * symbolizer's tests compare our answers with. For test programs only (it asserts with Check). */
#ifndef TM_TESTS_DWFL_REFERENCE_H
#define TM_TESTS_DWFL_REFERENCE_H

#include <check.h>
#include <elfutils/libdwfl.h>

static char *dwfl_reference_debuginfo_path;
static const Dwfl_Callbacks dwfl_reference_callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_build_id_find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = &dwfl_reference_debuginfo_path,
};

/* Reports the ELF file at path, alone, to a new Dwfl stored in *dwfl (the caller dwfl_end()s it),
 * and returns its module; a file libdw cannot open fails the calling test. */
static inline Dwfl_Module *dwfl_reference_open(const char *path, Dwfl **dwfl) {
  *dwfl = dwfl_begin(&dwfl_reference_callbacks);
  ck_assert_ptr_nonnull(*dwfl);
  Dwfl_Module *mod = dwfl_report_offline(*dwfl, path, path, -1);
  ck_assert_msg(mod != NULL, "%s: %s", path, dwfl_errmsg(-1));
  ck_assert_int_eq(dwfl_report_end(*dwfl, NULL, NULL), 0);
  return mod;
}

#endif /* TM_TESTS_DWFL_REFERENCE_H */
