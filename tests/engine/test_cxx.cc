// test_cxx.cc — C++ new/delete reach the tracer through libstdc++'s use of malloc.
#include <check.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "run_suite.h"
#include "tracemalloc.h"

// Keeps the compiler from eliding a new/delete pair whose object is never used.
template <typename T> static T *escape(T *p) {
  __asm__ volatile("" : : "g"(p) : "memory");
  return p;
}

static size_t traced() {
  size_t current;
  tm_get_traced_memory(&current, nullptr);
  return current;
}

START_TEST(test_new_delete_are_traced) {
  ck_assert_int_eq(tm_start(4), 0);
  size_t base = traced();
  int *one = escape(new int(7));
  ck_assert_uint_eq(traced() - base, sizeof(int));
  auto *array = escape(new double[100]);
  ck_assert_uint_ge(traced() - base, sizeof(int) + 100 * sizeof(double));
  delete one;
  delete[] array;
  ck_assert_uint_eq(traced(), base);
  {
    std::vector<std::string> words;
    for (int i = 0; i < 100; i++)
      words.push_back(std::string(40, 'x'));
    std::map<int, std::unique_ptr<int>> m;
    m[1] = std::make_unique<int>(1);
    ck_assert_uint_gt(traced(), base + 100 * 40);
  }
  ck_assert_uint_eq(traced(), base);
  tm_stop();
}
END_TEST

int main() {
  Suite *s = suite_create("cxx");
  TCase *tc = tcase_create("new_delete");
  tcase_add_test(tc, test_new_delete_are_traced);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
