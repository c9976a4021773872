// A stream: an in-order queue of tasks run asynchronously by one worker thread (the kernel then
// spreads each task over its own threads). Synchronize waits for the queue to drain and returns
// the first error since the last synchronize. As on an NPU, the caller's buffers (workspace,
// tensors) must stay alive until then.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "aclnnop/aclnn_blitz_sparse_attention.h"

namespace blitz::cpu::cann_api {

struct TaskStatus {
  int status = ACL_SUCCESS;
  std::string message;
};
using StreamJob = std::function<TaskStatus()>;

class Stream {
 public:
  Stream();
  ~Stream();  // waits for queued tasks, then joins the worker
  Stream(const Stream &) = delete;
  Stream &operator=(const Stream &) = delete;

  void enqueue(StreamJob task);
  // Waits until every task queued so far has run; returns (and clears) the first failure.
  TaskStatus synchronize();
  // As synchronize, for at most `limit`: false (nothing cleared) if tasks are still queued then.
  bool synchronize_for(std::chrono::milliseconds limit, TaskStatus *result);

 private:
  void worker_loop();

  std::mutex mutex_;
  std::condition_variable work_ready_, idle_;
  std::deque<StreamJob> queue_;
  bool running_task_ = false;
  bool stopping_ = false;
  TaskStatus first_error_;
  std::thread worker_;  // last: starts after the members it uses exist
};

// The Stream behind a handle: nullptr = the process's default stream. Fails (StatusError,
// ACL_ERROR_INVALID_PARAM) for a handle that is not a live stream.
Stream &stream_from_handle(aclrtStream handle);
int64_t live_streams();

}  // namespace blitz::cpu::cann_api
