#include "kernel/thread_pool.h"

#include <pthread.h>

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace blitz::cpu {
namespace {

class ThreadPool {
 public:
  void run(int workers, WorkerFn fn, void *context) {
    std::lock_guard<std::mutex> turn(run_mutex_);
    grow(workers - 1);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      fn_ = fn;
      context_ = context;
      active_ = workers - 1;  // pool threads 0 .. active_-1 act as workers 1 .. workers-1
      pending_ = active_;
      ++generation_;
    }
    wake_.notify_all();
    fn(context, 0);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
  }

 private:
  void grow(int threads) {
    while ((int)threads_.size() < threads) {
      const int index = (int)threads_.size();
      threads_.emplace_back([this, index] { loop(index); });
    }
  }

  void loop(int index) {
    unsigned long long seen = 0;
    for (;;) {
      WorkerFn fn;
      void *context;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        if (index >= active_) continue;
        fn = fn_;
        context = context_;
      }
      fn(context, index + 1);
      std::lock_guard<std::mutex> lock(mutex_);
      if (--pending_ == 0) done_.notify_one();
    }
  }

  std::mutex run_mutex_;  // one parallel_run at a time
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> threads_;
  unsigned long long generation_ = 0;
  WorkerFn fn_ = nullptr;
  void *context_ = nullptr;
  int active_ = 0;
  int pending_ = 0;
};

// Deliberately never destroyed: its threads block on a condition variable forever, and joining
// them from a static destructor at exit (or at dlclose) could deadlock. Process exit ends them.
ThreadPool *instance = nullptr;
std::once_flag instance_once;

// A child made by fork() has none of the parent's pool threads (and may inherit a locked
// mutex): it gets a fresh pool; the parent's object is abandoned, never touched again.
void reset_pool_in_child() { instance = new ThreadPool(); }

ThreadPool &pool() {
  std::call_once(instance_once, [] {
    instance = new ThreadPool();
    pthread_atfork(nullptr, nullptr, reset_pool_in_child);
  });
  return *instance;
}

}  // namespace

void parallel_run(int workers, WorkerFn fn, void *context) {
  if (workers <= 1) {
    fn(context, 0);
    return;
  }
  pool().run(workers, fn, context);
}

}  // namespace blitz::cpu
