// The CPU device's settings: parsed from the caller's values, kept per calling thread, with a
// library default for pure-C callers (kernel_settings.h says who sets what).
#include "backend/kernel_settings.h"

#include <cstdlib>
#include <optional>

#include "kernel/attention_problem.h"

namespace blitz::cpu {
namespace {

constexpr const char kPathEnv[] = "BLITZ_ACL_CPU_PATH";
constexpr const char kThreadsEnv[] = "BLITZ_ACL_NUM_THREADS";

thread_local std::optional<KernelSettings> thread_settings;  // set by blitzCpuSetKernelSettings

struct LibraryDefault {
  KernelSettings settings;
  bool ok = true;
  std::string error;
};

// Read once (a function-local static: thread-safe), only by callers that never set their own.
const LibraryDefault &library_default() {
  static const LibraryDefault value = [] {
    LibraryDefault d;
    const char *threads = std::getenv(kThreadsEnv);
    // As the binding does: a count that is not a positive integer means "the default".
    d.ok = parse_kernel_settings(std::getenv(kPathEnv), threads != nullptr ? std::atoi(threads) : 0, kPathEnv,
                                 &d.settings, &d.error);
    return d;
  }();
  return value;
}

}  // namespace

bool parse_kernel_settings(const char *path_name, int num_threads, const char *what, KernelSettings *settings,
                           std::string *error) {
  KernelSettings s;
  if (path_name != nullptr && *path_name != '\0' && std::string(path_name) != "auto" &&
      !path_from_name(path_name, &s.path)) {
    *error = std::string(what) + " must be one of " + path_names() + " (or auto), got '" + path_name + "'";
    return false;
  }
  s.num_threads = num_threads > 0 ? num_threads : default_num_threads();
  *settings = s;
  return true;
}

void set_thread_kernel_settings(const KernelSettings &settings) { thread_settings = settings; }

bool current_kernel_settings(KernelSettings *settings, std::string *error) {
  if (thread_settings) {
    *settings = *thread_settings;
    return true;
  }
  const LibraryDefault &d = library_default();
  if (!d.ok) {
    *error = d.error;
    return false;
  }
  *settings = d.settings;
  return true;
}

}  // namespace blitz::cpu
