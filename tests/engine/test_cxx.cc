// test_cxx.cc — C++ new/delete reach the tracer through libstdc++'s use of malloc, and C++
// frames are named as C++ programmers write them (demangled).
#include <check.h>

#include <cstdlib>
#include <cstring>
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

namespace shapes {
struct circle {
  // Allocates from a member function of a namespaced class: a mangled symbol (_ZN6shapes6circle...).
  __attribute__((noinline)) static int *make(int r) { return escape(new int(r)); }
};
} // namespace shapes

START_TEST(test_frames_are_demangled) {
  ck_assert_int_eq(tm_start(25), 0);
  int *p = shapes::circle::make(3);
  tm_traceback *tb = tm_get_object_traceback(p);
  ck_assert_ptr_nonnull(tb);
  bool found = false;
  for (size_t i = 0; i < tm_traceback_length(tb); i++) {
    const tm_frame *f = tm_traceback_get(tb, i);
    if (f->function == nullptr)
      continue;
    ck_assert_msg(std::strncmp(f->function, "_Z", 2) != 0, "frame %zu is mangled: %s", i,
                  f->function);
    found = found || std::strcmp(f->function, "shapes::circle::make(int)") == 0;
  }
  ck_assert_msg(found, "no frame named shapes::circle::make(int)");
  // operator new, in libstdc++, is named too
  const tm_frame *recent = tm_traceback_get(tb, tm_traceback_length(tb) - 1);
  ck_assert_ptr_nonnull(recent->function);
  ck_assert_str_eq(recent->function, "operator new(unsigned long)");
  tm_traceback_free(tb);
  delete p;
  tm_stop();
}
END_TEST

int main() {
  Suite *s = suite_create("cxx");
  TCase *tc = tcase_create("new_delete");
  tcase_add_test(tc, test_new_delete_are_traced);
  tcase_add_test(tc, test_frames_are_demangled);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
