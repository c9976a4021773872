// aclGetRecentErrMsg and the thread-local message it returns.
#include "errors.h"

#include "exports.h"

namespace blitz::cpu::cann_api {
namespace {
// One message per thread, as in CANN: a failure on another thread never overwrites ours.
thread_local std::string recent_message;
}  // namespace

int set_error(int status, const std::string &message) {
  try {
    recent_message = message;
  } catch (...) {
    // Out of memory while recording the message: keep the status, lose the text.
  }
  return status;
}

}  // namespace blitz::cpu::cann_api

BLITZ_EXPORT const char *aclGetRecentErrMsg(void) {
  return blitz::cpu::cann_api::recent_message.c_str();
}
