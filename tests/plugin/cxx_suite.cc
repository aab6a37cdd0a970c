// cxx_suite.cc — a Check suite in C++: clean tests that use what C++ tests use (iostreams,
// exceptions, containers, std::regex, threads, a function-local static), each of which must pass,
// and leaks through new, each of which must fail at its line, named as C++ names its functions.
// test_plugin_cxx.c runs it in both fork modes. "site:NAME" marks a failure's line.
#include <iostream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

// Check's header after the standard library's: it defines macros (fail) that C++ headers use.
#include <check.h>
#include <tracemalloc-check.h>

namespace {

struct Node {
  std::string name;
  Node *next;
};

Node *make_node(const char *name) {
  return new Node{name, nullptr}; // site:make_node
}

} // namespace

// A function template whose demangled name starts with its return type.
struct Box {
  explicit Box(long v) : value(v) {}
  long value;
};
template <typename T> __attribute__((noinline)) std::unique_ptr<T> make_boxed(long v) {
  return std::unique_ptr<T>(new T(v)); // site:make_boxed
}

static Node *volatile kept;

START_TEST(t_iostream) {
  std::ostringstream out;
  out << "value " << 42 << ' ' << 3.5;
  std::cout << out.str() << std::endl;
}
END_TEST

START_TEST(t_exception) {
  try {
    throw std::runtime_error("boom");
  } catch (const std::exception &e) {
    ck_assert_str_eq(e.what(), "boom");
  }
}
END_TEST

START_TEST(t_containers) {
  std::vector<std::string> v{"a", "bb", std::string(100, 'c')};
  std::map<int, std::string> m{{1, "one"}};
  auto shared = std::make_shared<std::vector<int>>(100, 7);
  ck_assert_int_eq((int)v.size() + (int)m.size() + (*shared)[0], 11);
}
END_TEST

START_TEST(t_regex) {
  std::regex re("a+b");
  ck_assert(std::regex_match("aab", re));
}
END_TEST

START_TEST(t_thread) {
  std::thread t([] { std::string s(100, 'x'); });
  t.join();
}
END_TEST

START_TEST(t_static_local) {
  static const std::string cache(200, 'c');
  ck_assert_int_eq((int)cache.size(), 200);
}
END_TEST

START_TEST(l_new) {
  kept = nullptr;
  std::string *volatile s = new std::string(100, 'l'); // site:new
  (void)s;
}
END_TEST

START_TEST(l_template) {
  Box *volatile b = make_boxed<Box>(7).release();
  (void)b;
}
END_TEST

// A shared_ptr cycle through std::make_shared, whose inlined frame is named without a parameter
// list but with parentheses in its template argument.
START_TEST(l_shared_cycle) {
  struct C {
    std::shared_ptr<C> self;
  };
  std::shared_ptr<C> c = std::make_shared<C>(); // site:make_shared
  c->self = c;
}
END_TEST

// A class with its own operator new on malloc: the site is the new expression, not the operator.
struct Pooled {
  char data[24];
  static void *operator new(std::size_t n) {
    void *p = std::malloc(n);
    if (p == nullptr)
      throw std::bad_alloc();
    return p;
  }
  static void operator delete(void *p) { std::free(p); }
};

START_TEST(l_class_new) {
  Pooled *volatile p = new Pooled(); // site:class_new
  (void)p;
}
END_TEST

START_TEST(l_helper) {
  kept = nullptr;
  Node *volatile n = make_node("a name longer than the small-string buffer");
  (void)n;
}
END_TEST

int main() {
  Suite *s = suite_create("Cxx");
  TCase *c = tcase_create("Clean");
  tcase_add_checked_fixture(c, TM_LEAK_FIXTURE);
  tcase_add_test(c, t_iostream);
  tcase_add_test(c, t_exception);
  tcase_add_test(c, t_containers);
  tcase_add_test(c, t_regex);
  tcase_add_test(c, t_thread);
  tcase_add_test(c, t_static_local);
  suite_add_tcase(s, c);
  TCase *l = tcase_create("Leaks");
  tcase_add_checked_fixture(l, TM_LEAK_FIXTURE);
  tcase_add_test(l, l_new);
  tcase_add_test(l, l_helper);
  tcase_add_test(l, l_template);
  tcase_add_test(l, l_shared_cycle);
  tcase_add_test(l, l_class_new);
  suite_add_tcase(s, l);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 5 ? 0 : 1;
}
