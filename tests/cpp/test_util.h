// A minimal test harness: TEST(name) registers a function; CHECK records a failure with its
// location and keeps going; main runs every test (or those whose name contains argv[1]).
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace blitz_test {

struct TestCase {
  const char *name;
  void (*fn)();
};
std::vector<TestCase> &registry();
int &failures();

struct Registrar {
  Registrar(const char *name, void (*fn)()) { registry().push_back({name, fn}); }
};

void report_failure(const char *file, int line, const std::string &what);

}  // namespace blitz_test

#define TEST(name)                                                        \
  static void test_##name();                                              \
  static blitz_test::Registrar registrar_##name(#name, test_##name);      \
  static void test_##name()

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) blitz_test::report_failure(__FILE__, __LINE__, "CHECK(" #cond ")"); \
  } while (0)

#define CHECK_MSG(cond, msg)                                                       \
  do {                                                                             \
    if (!(cond)) blitz_test::report_failure(__FILE__, __LINE__, std::string(msg)); \
  } while (0)
