// Stream implementation and aclrtCreateStream / aclrtDestroyStream / aclrtSynchronizeStream(WithTimeout).
#include "stream.h"

#include <unordered_set>

#include "errors.h"
#include "exports.h"

namespace blitz::cpu::cann_api {

Stream::Stream() : worker_([this] { worker_loop(); }) {}

Stream::~Stream() {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    idle_.wait(lock, [this] { return queue_.empty() && !running_task_; });
    stopping_ = true;
  }
  work_ready_.notify_all();
  worker_.join();
}

void Stream::enqueue(StreamJob task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(task));
  }
  work_ready_.notify_one();
}

TaskStatus Stream::synchronize() {
  std::unique_lock<std::mutex> lock(mutex_);
  idle_.wait(lock, [this] { return queue_.empty() && !running_task_; });
  TaskStatus result = std::move(first_error_);
  first_error_ = TaskStatus{};
  return result;
}

bool Stream::synchronize_for(std::chrono::milliseconds limit, TaskStatus *result) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!idle_.wait_for(lock, limit, [this] { return queue_.empty() && !running_task_; })) return false;
  *result = std::move(first_error_);
  first_error_ = TaskStatus{};
  return true;
}

void Stream::worker_loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    work_ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping with nothing left
    StreamJob task = std::move(queue_.front());
    queue_.pop_front();
    running_task_ = true;
    lock.unlock();
    TaskStatus status;
    try {
      status = task();
    } catch (const std::exception &e) {
      status = {ACL_ERROR_INTERNAL_ERROR, std::string("stream task failed: ") + e.what()};
    } catch (...) {
      status = {ACL_ERROR_INTERNAL_ERROR, "stream task failed with an unknown exception"};
    }
    task = nullptr;  // release what the task holds (plan, buffers) before reporting idle
    lock.lock();
    running_task_ = false;
    if (status.status != ACL_SUCCESS && first_error_.status == ACL_SUCCESS) {
      first_error_ = std::move(status);
    }
    if (queue_.empty()) idle_.notify_all();
  }
}

namespace {

struct StreamRegistry {
  std::mutex mutex;
  std::unordered_set<const Stream *> live;
};

StreamRegistry &streams() {
  static StreamRegistry r;
  return r;
}

Stream &default_stream() {
  // Never destroyed: its worker may still be waiting when static destructors run at exit.
  static Stream *stream = new Stream();
  return *stream;
}

}  // namespace

Stream &stream_from_handle(aclrtStream handle) {
  if (handle == nullptr) return default_stream();
  auto *stream = static_cast<Stream *>(handle);
  auto &r = streams();
  std::lock_guard<std::mutex> lock(r.mutex);
  require(r.live.count(stream) == 1, ACL_ERROR_INVALID_PARAM,
          "stream is not a live aclrtStream (never created here, or already destroyed)");
  return *stream;
}

int64_t live_streams() {
  auto &r = streams();
  std::lock_guard<std::mutex> lock(r.mutex);
  return static_cast<int64_t>(r.live.size());
}

}  // namespace blitz::cpu::cann_api

using namespace blitz::cpu::cann_api;

BLITZ_EXPORT aclError aclrtCreateStream(aclrtStream *stream) {
  return guarded("aclrtCreateStream", [&] {
    require(stream != nullptr, ACL_ERROR_INVALID_PARAM, "stream is NULL");
    *stream = nullptr;
    auto created = std::make_unique<Stream>();
    auto &r = streams();
    {
      std::lock_guard<std::mutex> lock(r.mutex);
      r.live.insert(created.get());
    }
    *stream = created.release();
    return ACL_SUCCESS;
  });
}

BLITZ_EXPORT aclError aclrtDestroyStream(aclrtStream stream) {
  return guarded("aclrtDestroyStream", [&] {
    require(stream != nullptr, ACL_ERROR_INVALID_PARAM, "stream is NULL (the default stream is not destroyed)");
    auto *s = static_cast<Stream *>(stream);
    auto &r = streams();
    {
      std::lock_guard<std::mutex> lock(r.mutex);
      require(r.live.erase(s) == 1, ACL_ERROR_INVALID_PARAM,
              "stream is not a live aclrtStream (never created here, or already destroyed)");
    }
    delete s;  // finishes the queued work first
    return ACL_SUCCESS;
  });
}

BLITZ_EXPORT aclError aclrtSynchronizeStream(aclrtStream stream) {
  return guarded("aclrtSynchronizeStream", [&] {
    TaskStatus result = stream_from_handle(stream).synchronize();
    if (result.status != ACL_SUCCESS) fail(result.status, result.message);
    return ACL_SUCCESS;
  });
}

BLITZ_EXPORT aclError aclrtSynchronizeStreamWithTimeout(aclrtStream stream, int32_t timeout) {
  return guarded("aclrtSynchronizeStreamWithTimeout", [&] {
    // CANN's contract: -1 waits forever, a positive value is milliseconds; nothing else.
    require(timeout == -1 || timeout > 0, ACL_ERROR_INVALID_PARAM,
            "timeout must be -1 (wait forever) or a positive number of milliseconds, got " + std::to_string(timeout));
    Stream &s = stream_from_handle(stream);
    TaskStatus result;
    if (timeout == -1) {
      result = s.synchronize();
    } else if (!s.synchronize_for(std::chrono::milliseconds(timeout), &result)) {
      fail(ACL_ERROR_RT_STREAM_SYNC_TIMEOUT,
           "the stream's work did not finish within " + std::to_string(timeout) + " ms; it is still queued");
    }
    if (result.status != ACL_SUCCESS) fail(result.status, result.message);
    return ACL_SUCCESS;
  });
}
