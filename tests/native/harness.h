// A few lines of test harness for the native (ctest) tests: no framework to download.
// Include from exactly one .cpp per test executable; it provides main().
#pragma once

#include <c10/util/Exception.h>

#include <cstdio>
#include <exception>
#include <functional>
#include <string>
#include <vector>

namespace wm_test {

struct Case {
  const char* name;
  void (*fn)();
};

inline std::vector<Case>& registry() {
  static std::vector<Case> cases;
  return cases;
}

inline int& failures_in_case() {
  static int n = 0;
  return n;
}

struct Registrar {
  Registrar(const char* name, void (*fn)()) { registry().push_back({name, fn}); }
};

inline void fail(const char* file, int line, const std::string& what) {
  std::fprintf(stderr, "  %s:%d: %s\n", file, line, what.c_str());
  ++failures_in_case();
}

// Runs `fn`, which must throw a c10::Error whose message contains `needle`.
inline bool throws_with(const std::function<void()>& fn, const std::string& needle, std::string* got) {
  try {
    fn();
  } catch (const c10::Error& e) {
    *got = e.what_without_backtrace();
    return got->find(needle) != std::string::npos;
  }
  *got = "(no exception)";
  return false;
}

}  // namespace wm_test

#define WM_TEST(name)                                              \
  static void name();                                              \
  static const wm_test::Registrar name##_registrar(#name, &name);  \
  static void name()

#define WM_EXPECT(cond)                                       \
  do {                                                        \
    if (!(cond)) wm_test::fail(__FILE__, __LINE__, #cond);    \
  } while (0)

#define WM_EXPECT_NEAR(a, b, tol)                                                                     \
  do {                                                                                                \
    const double wm_a_ = (a), wm_b_ = (b);                                                            \
    if (!(std::abs(wm_a_ - wm_b_) <= (tol)))                                                          \
      wm_test::fail(__FILE__, __LINE__,                                                               \
                    std::string(#a " = ") + std::to_string(wm_a_) + ", " #b " = " + std::to_string(wm_b_)); \
  } while (0)

#define WM_EXPECT_THROWS(stmt, needle)                                                      \
  do {                                                                                      \
    std::string wm_msg_;                                                                    \
    if (!wm_test::throws_with([&] { stmt; }, needle, &wm_msg_))                             \
      wm_test::fail(__FILE__, __LINE__, std::string(#stmt " should throw '") + (needle) +   \
                                            "', got: " + wm_msg_);                          \
  } while (0)

int main() {
  int passed = 0, failed = 0;
  for (const auto& c : wm_test::registry()) {
    wm_test::failures_in_case() = 0;
    try {
      c.fn();
    } catch (const std::exception& e) {
      wm_test::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
    }
    const bool ok = wm_test::failures_in_case() == 0;
    std::printf("%s %s\n", ok ? "PASS" : "FAIL", c.name);
    (ok ? passed : failed)++;
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
