// The CPU device's settings (which kernel path, how many threads), read at the top of the stack
// and passed down: the kernel (kernel/) takes both as arguments and reads no environment.
//
// Who sets them: the Python binding reads BLITZ_ACL_CPU_PATH / BLITZ_ACL_NUM_THREADS at each
// call (blitz_acl/devices/cpu_settings.py) and hands them to blitzCpuSetKernelSettings, which
// sets them for the calling thread; GetWorkspaceSize copies the thread's settings into the
// plan, so the stream's worker runs with the settings of the thread that planned the call.
// A pure-C caller that never sets them (a CANN program knows nothing of blitz*) gets the
// library default: the same two variables, read once, at the first call that needs them.
#pragma once

#include <string>

#include "kernel/cpu_features.h"

namespace blitz::cpu {

struct KernelSettings {
  KernelPath path = KernelPath::kAuto;  // kAuto: the fastest path this CPU has
  int num_threads = 1;                  // >= 1
};

// Settings from a path name (NULL, "" or "auto": kAuto; else one of path_names()) and a thread
// count (<= 0: default_num_threads()). False, with *error naming `what` and every path, for an
// unknown name.
bool parse_kernel_settings(const char *path_name, int num_threads, const char *what, KernelSettings *settings,
                           std::string *error);

// This thread's settings for the calls it makes next (blitzCpuSetKernelSettings).
void set_thread_kernel_settings(const KernelSettings &settings);

// This thread's settings if it set any, else the library default. False, with *error, when the
// library default is needed and BLITZ_ACL_CPU_PATH names no path.
bool current_kernel_settings(KernelSettings *settings, std::string *error);

}  // namespace blitz::cpu
