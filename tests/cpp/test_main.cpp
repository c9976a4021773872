#include <cstring>

#include "test_util.h"

namespace blitz_test {

std::vector<TestCase> &registry() {
  static std::vector<TestCase> tests;
  return tests;
}
int &failures() {
  static int n = 0;
  return n;
}

// Stops printing after a few failures per run so one broken invariant does not flood the log.
constexpr int kMaxReported = 40;

void report_failure(const char *file, int line, const std::string &what) {
  if (++failures() <= kMaxReported) std::fprintf(stderr, "%s:%d: FAILED %s\n", file, line, what.c_str());
}

}  // namespace blitz_test

int main(int argc, char **argv) {
  int run = 0;
  for (const auto &t : blitz_test::registry()) {
    if (argc > 1 && std::strstr(t.name, argv[1]) == nullptr) continue;
    const int before = blitz_test::failures();
    t.fn();
    ++run;
    std::printf("%-48s %s\n", t.name, blitz_test::failures() == before ? "ok" : "FAILED");
  }
  std::printf("%d tests, %d failed checks\n", run, blitz_test::failures());
  return blitz_test::failures() == 0 && run > 0 ? 0 : 1;
}
