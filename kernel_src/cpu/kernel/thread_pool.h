// The kernel's worker threads: created once (grown on demand, never shrunk) and reused by every
// call, since the aclnn layer calls run_attention many times from its stream worker thread.
#pragma once

namespace blitz::cpu {

using WorkerFn = void (*)(void *context, int worker);

// Runs fn(context, w) for w = 0 .. workers-1, worker 0 on the calling thread, and returns when
// all are done. Concurrent callers (several streams) take turns.
void parallel_run(int workers, WorkerFn fn, void *context);

}  // namespace blitz::cpu
