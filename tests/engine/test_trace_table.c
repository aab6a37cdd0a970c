/* test_trace_table.c — the sharded table of live blocks: every key found again through growth
 * (small arrays hash the whole address, large ones group a heap window's blocks), removals that
 * shift probe runs back, replacement, keys closer than glibc's chunks, and the byte counts. Links
 * the internal archive. Fake addresses are fine: the table never dereferences its keys. */
#include <check.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine.h"
#include "guard.h"
#include "run_suite.h"
#include "trace_table.h"

/* Static: zero-filled is an empty table with unlocked locks. */
static tm__table table;

static void teardown(void) {
  for (size_t i = 0; i < TM_TABLE_SHARDS; i++)
    tm__shard_clear_unlocked(&table.shards[i]);
  tm__tables_small_again();
}

static bool put(uintptr_t key, size_t size, uint32_t tb) {
  uint64_t hash = tm__hash_ptr(key), old = 0;
  bool failed = false;
  bool replaced =
      tm__shard_put_unlocked(tm__table_shard(&table, hash), key, hash, tm__meta_pack(size, tb),
                             &old, &failed);
  ck_assert(!failed);
  return replaced;
}

static bool get(uintptr_t key, uint64_t *meta) {
  uint64_t hash = tm__hash_ptr(key);
  return tm__shard_get_unlocked(tm__table_shard(&table, hash), key, hash, meta);
}

static bool removed(uintptr_t key) {
  uint64_t hash = tm__hash_ptr(key), meta;
  return tm__shard_remove_unlocked(tm__table_shard(&table, hash), key, hash, &meta);
}

static size_t total_bytes(void) {
  size_t n = 0;
  for (size_t i = 0; i < TM_TABLE_SHARDS; i++)
    n += table.shards[i].bytes;
  return n;
}

/* Checks every key of [base, base + n * step) against whether it should be there (every other one
 * once odd ones were removed, when odd_gone), with the size and id it was put with. */
static void check_keys(uintptr_t base, size_t n, uintptr_t step, bool odd_gone) {
  size_t wrong = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t meta = 0;
    bool want = !(odd_gone && (i & 1));
    bool found = get(base + i * step, &meta);
    if (found != want || (found && (tm__meta_size(meta) != 16 + i % 97 ||
                                    tm__meta_tb(meta) != 1 + (uint32_t)(i % 1000))))
      wrong++;
  }
  ck_assert_uint_eq(wrong, 0);
}

/* Enough keys that the shards' arrays pass TM_WINDOW_MIN_ENTRIES and change how a home slot is
 * chosen: every key is found after each growth, and after half of them were removed. */
static void fill_check_remove(uintptr_t base, size_t n, uintptr_t step) {
  size_t bytes = 0;
  for (size_t i = 0; i < n; i++) {
    ck_assert(!put(base + i * step, 16 + i % 97, 1 + (uint32_t)(i % 1000)));
    bytes += 16 + i % 97;
  }
  ck_assert_uint_eq(tm__table_count_unlocked(&table), n);
  ck_assert_uint_eq(total_bytes(), bytes);
  check_keys(base, n, step, false);
  size_t gone = 0;
  for (size_t i = 1; i < n; i += 2) {
    ck_assert(removed(base + i * step));
    bytes -= 16 + i % 97;
    gone++;
  }
  ck_assert_uint_eq(tm__table_count_unlocked(&table), n - gone);
  ck_assert_uint_eq(total_bytes(), bytes);
  check_keys(base, n, step, true);
  ck_assert(!removed(base + step)); /* removed already */
}

START_TEST(test_glibc_spacing_through_growth) {
  /* 48-byte chunks, as consecutive malloc(40) calls get them: 600,000 keys, arrays of 16 entries
   * up to 16,384 per shard. */
  size_t n = 600000;
  ck_assert_uint_gt(n / TM_TABLE_SHARDS, TM_WINDOW_MIN_ENTRIES);
  fill_check_remove(0x55550000a010, n, 48);
}
END_TEST

START_TEST(test_small_table) {
  /* A test's few blocks: every shard's array stays small, the address hashed whole, and the hooks
   * are told not to prefetch. */
  fill_check_remove(0x55550000a010, 3000, 48);
  ck_assert_uint_lt(table.shards[0].mask + 1, TM_WINDOW_MIN_ENTRIES);
  ck_assert(!atomic_load(&tm__tables_large));
}
END_TEST

/* A shard grown to TM_WINDOW_MIN_ENTRIES tells the hooks to prefetch, until the tables are
 * cleared. */
START_TEST(test_large_table_flag) {
  size_t n = (size_t)TM_TABLE_SHARDS * TM_WINDOW_MIN_ENTRIES;
  for (size_t i = 0; i < n && !atomic_load(&tm__tables_large); i++)
    put(0x55550000a010 + i * 48, 32, 1);
  ck_assert(atomic_load(&tm__tables_large));
  size_t largest = 0;
  for (size_t i = 0; i < TM_TABLE_SHARDS; i++)
    if (table.shards[i].mask + 1 > largest)
      largest = table.shards[i].mask + 1;
  ck_assert_uint_eq(largest, TM_WINDOW_MIN_ENTRIES);
  tm__tables_small_again();
  ck_assert(!atomic_load(&tm__tables_large));
}
END_TEST

/* Counts the resident pages of [p, p + size). */
static size_t resident_pages(void *p, size_t size) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE), n = 0;
  unsigned char vec[2048];
  ck_assert_uint_le(size / page, sizeof vec);
  ck_assert_int_eq(mincore(p, size, vec), 0);
  for (size_t i = 0; i < size / page; i++)
    n += vec[i] & 1;
  return n;
}

/* A table's array comes back resident and writable before it is touched (one system call, not a
 * fault or two per page): in the size classes of the tracer's regions and in the huge-page path. */
START_TEST(test_arrays_prefaulted) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  void *probe = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ck_assert_ptr_ne(probe, MAP_FAILED);
#ifdef MADV_POPULATE_WRITE
  bool supported = madvise(probe, page, MADV_POPULATE_WRITE) == 0;
#else
  bool supported = false;
#endif
  munmap(probe, page);
  if (!supported)
    return; /* a kernel before 5.14: the arrays fault in as they are touched */
  size_t sizes[] = {64 * 1024, 1024 * 1024, 4 * 1024 * 1024};
  for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
    int saved = errno = 1234;
    void *p = tm__map_huge(sizes[k]);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(errno, saved);
    ck_assert_uint_eq(resident_pages(p, sizes[k]), sizes[k] / page);
    tm__unmap_huge(p, sizes[k]);
  }
}
END_TEST

/* Arrays of 256 KiB to 1 MiB are pieces of one 2 MiB chunk (on a huge-page boundary, listed as the
 * tracer's), disjoint and zeroed, a reused piece zeroed again; the chunk goes back to the system
 * with its last piece, and the mapped-bytes count returns to where it was. */
START_TEST(test_array_pieces_share_a_chunk) {
  const size_t huge = (size_t)2 << 20, size = (size_t)256 << 10;
  enum { N = 8 }; /* 2 MiB of 256 KiB pieces */
  size_t mapped = atomic_load(&tm__mapped_bytes);
  unsigned char *p[N];
  for (int i = 0; i < N; i++) {
    p[i] = tm__map_huge(size);
    ck_assert_ptr_nonnull(p[i]);
    ck_assert_uint_eq((uintptr_t)p[i] % size, 0);
    ck_assert_uint_eq((uintptr_t)p[i] & ~(huge - 1), (uintptr_t)p[0] & ~(huge - 1));
    ck_assert(tm__mapped_by_tracer((uintptr_t)p[i], (uintptr_t)p[i] + 1));
    for (int j = 0; j < i; j++)
      ck_assert_ptr_ne(p[i], p[j]);
    ck_assert_uint_eq(p[i][0] | p[i][size / 2] | p[i][size - 1], 0);
    memset(p[i], 0xa5, size);
  }
  ck_assert_uint_eq(atomic_load(&tm__mapped_bytes), mapped + N * size);
  unsigned char *again = p[3];
  tm__unmap_huge(p[3], size);
  p[3] = tm__map_huge(size);
  ck_assert_ptr_eq(p[3], again);
  ck_assert_uint_eq(p[3][0] | p[3][size / 2] | p[3][size - 1], 0);
  uintptr_t chunk = (uintptr_t)p[0] & ~(huge - 1);
  for (int i = 0; i < N; i++)
    tm__unmap_huge(p[i], size);
  ck_assert_uint_eq(atomic_load(&tm__mapped_bytes), mapped);
  ck_assert(!tm__mapped_by_tracer(chunk, chunk + huge));
  unsigned char vec[1];
  errno = 0;
  ck_assert_int_eq(mincore((void *)chunk, (size_t)sysconf(_SC_PAGESIZE), vec), -1);
  ck_assert_int_eq(errno, ENOMEM); /* unmapped */
}
END_TEST

START_TEST(test_keys_closer_than_a_granule) {
  /* A custom allocator's 8-byte objects, tracked in a domain: four keys per 32-byte granule
   * share a home slot, sixty-four per window share a block of them. */
  fill_check_remove(0x7f0000001000, 400000, 8);
}
END_TEST

START_TEST(test_scattered_keys) {
  /* Blocks far apart (large blocks, separate mappings): one per window. */
  fill_check_remove(0x7f1000000000, 300000, 1u << 20);
}
END_TEST

START_TEST(test_replace_keeps_one_entry) {
  uintptr_t key = 0x555500001230;
  ck_assert(!put(key, 100, 7));
  ck_assert(put(key, 200, 9));
  uint64_t meta;
  ck_assert(get(key, &meta));
  ck_assert_uint_eq(tm__meta_size(meta), 200);
  ck_assert_uint_eq(tm__meta_tb(meta), 9);
  ck_assert_uint_eq(tm__table_count_unlocked(&table), 1);
  ck_assert_uint_eq(total_bytes(), 200);
}
END_TEST

int main(void) {
  Suite *s = suite_create("trace_table");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_glibc_spacing_through_growth);
  tcase_add_test(tc, test_small_table);
  tcase_add_test(tc, test_large_table_flag);
  tcase_add_test(tc, test_arrays_prefaulted);
  tcase_add_test(tc, test_array_pieces_share_a_chunk);
  tcase_add_test(tc, test_keys_closer_than_a_granule);
  tcase_add_test(tc, test_scattered_keys);
  tcase_add_test(tc, test_replace_keeps_one_entry);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
