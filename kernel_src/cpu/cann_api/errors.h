// Status and message plumbing shared by every export: a thread-local "most recent error"
// message (read by aclGetRecentErrMsg), an internal exception that carries a CANN status, and
// guarded(), which every extern "C" body runs in so no C++ exception crosses the ABI.
#pragma once

#include <cstdint>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "aclnnop/aclnn_blitz_sparse_attention.h"
#include "blitz_acl/blitz_cpu.h"

namespace blitz::cpu::cann_api {

// Thrown inside the library only; guarded() turns it into its status and message.
class StatusError : public std::exception {
 public:
  StatusError(int status, std::string message) : status_(status), message_(std::move(message)) {}
  int status() const noexcept { return status_; }
  const char *what() const noexcept override { return message_.c_str(); }

 private:
  int status_;
  std::string message_;
};

[[noreturn]] inline void fail(int status, const std::string &message) {
  throw StatusError(status, message);
}

inline void require(bool ok, int status, const std::string &message) {
  if (!ok) fail(status, message);
}

// Records message as this thread's most recent error and returns status.
int set_error(int status, const std::string &message);

// Runs body (returning a status) and converts any exception into a status and a message.
template <class Body>
int guarded(const char *function, Body &&body) noexcept {
  try {
    return body();
  } catch (const StatusError &e) {
    return set_error(e.status(), std::string(function) + ": " + e.what());
  } catch (const std::bad_alloc &) {
    return set_error(ACL_ERROR_BAD_ALLOC, std::string(function) + ": out of host memory");
  } catch (const std::exception &e) {
    return set_error(ACL_ERROR_INTERNAL_ERROR, std::string(function) + ": internal error: " + e.what());
  } catch (...) {
    return set_error(ACL_ERROR_INTERNAL_ERROR, std::string(function) + ": unknown internal error");
  }
}

}  // namespace blitz::cpu::cann_api

namespace blitz::cpu::cann_api {

// The integer a C caller passed for a CANN enum parameter. Read through its bytes: a value
// outside the enum's range (a bad caller's 99) must not be loaded as the enum type, which is
// undefined behaviour in C++ (UBSan flags it).
template <class Enum>
int32_t raw_enum(const Enum *value) {
  static_assert(sizeof(Enum) == sizeof(int32_t), "CANN enums are int-sized");
  int32_t raw;
  std::memcpy(&raw, value, sizeof raw);
  return raw;
}

}  // namespace blitz::cpu::cann_api
