/* line_table.h — one compilation unit's DWARF line table, decoded by our own reader. Internal.
 *
 * libdw 0.188 decodes a line table with one malloc per row before it sorts them, and
 * dwarf_getsrcfiles() decodes the whole table too; a CU of 10,000 functions costs tens of
 * thousands of allocations, each counted by the tracer. line_table.c reads the line program
 * (DWARF 2 to 5) straight from the .debug_line bytes into one sorted array of compact rows, and its
 * file table into one array of paths. docs/symbolizer.md says how it answers like libdw.
 */
#ifndef TM_LINE_TABLE_H
#define TM_LINE_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <elfutils/libdw.h>

/* The sections a line program reads: .debug_line, and the string sections its DWARF 5 file table
 * points into (either may be empty). Borrowed: they must outlive every table decoded from them. */
typedef struct tm__line_sections {
  const uint8_t *line;
  size_t line_size;
  const uint8_t *str; /* .debug_str */
  size_t str_size;
  const uint8_t *line_str; /* .debug_line_str */
  size_t line_str_size;
} tm__line_sections;

typedef struct tm__line_table tm__line_table;

/* Fills sec with the sections of dw's ELF file (the separate debug file when there is one).
 * libdw has decompressed them in place (elfutils 0.188 does on opening); a section still
 * compressed, or compressed the old GNU way (.zdebug_line), is left out. Returns false when there
 * is no usable .debug_line: then libdw's own reader must serve. The pointers stay valid as long
 * as dw. Thread-safe as libelf is for one Elf: call it under the lock that guards dw. */
bool tm__line_sections_find(Dwarf *dw, tm__line_sections *sec);

/* Decodes the line program at offset (the CU's DW_AT_stmt_list) of sec->line. comp_dir is the
 * CU's DW_AT_comp_dir or NULL: DWARF 2-4 name it directory 0 (copied). Returns a new table the
 * caller frees with tm__line_table_free(), or NULL when the program is malformed or uses what this
 * reader does not know (a version outside 2..5, a string form other than string, strp and
 * line_strp): the caller then asks libdw. Allocates a few blocks, never one per row.
 * Thread-safe (touches nothing shared). */
tm__line_table *tm__line_table_new(const tm__line_sections *sec, uint64_t offset,
                                   const char *comp_dir);

/* Frees t and everything it owns. NULL is accepted. */
void tm__line_table_free(tm__line_table *t);

/* Finds the row for pc as libdw's dwarf_getsrc_die() does: the last row, in address order, at or
 * below pc, the later one in program order when several share an address, unless it ends a
 * sequence. Stores its file index and line (0 when the program gave none) and returns true; false
 * when pc is in no sequence. Read-only: thread-safe. */
bool tm__line_table_lookup(const tm__line_table *t, uint64_t pc, uint32_t *file, uint32_t *line);

/* The path of file index i as libdw's dwarf_filesrc() gives it: the file name, prefixed with its
 * directory (itself possibly relative to the compilation directory) unless absolute. NULL when
 * i is out of range. Owned by t. Read-only: thread-safe. */
const char *tm__line_table_file(const tm__line_table *t, uint64_t i);

/* The number of file indexes of t (those below it may still name no file). */
size_t tm__line_table_nfiles(const tm__line_table *t);

/* Bytes t holds. */
size_t tm__line_table_memory(const tm__line_table *t);

#endif /* TM_LINE_TABLE_H */
