// Runs forward jobs off the JavaScript thread, one at a time, in order, on a
// dedicated dispatcher thread (not libuv's pool, which stays free for I/O).
// The dispatcher is the calling thread of the kernel pool's parallel regions,
// so a running job keeps at most num_threads() native threads busy, whatever
// the number of queued calls. Process-wide: shared by the main thread and
// every worker_thread, so several of them never oversubscribe the CPUs.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

namespace simdformer {

class ExecutorJob {
 public:
  virtual ~ExecutorJob() = default;
  // Runs the computation on the dispatcher thread; returns false if it
  // failed or was cancelled. Must not throw.
  virtual bool execute() = 0;
  // Hands the result back (to the JavaScript thread) after execute(), or
  // instead of it when the job was cancelled before it started. Must not throw.
  virtual void finish(bool executed) = 0;

  // Set from any thread; checked before the job starts and between steps.
  std::atomic<bool> cancelled{false};

 protected:
  // Called by execute() for a job that has done a turn of its work and wants
  // the rest to wait behind the jobs queued meanwhile: once execute()
  // returns, the job goes to the back of the queue (uncounted, not finished)
  // and is executed again when its turn comes.
  void run_again_later() { again_ = true; }

 private:
  friend class Executor;
  bool again_ = false;  // dispatcher thread only
};

struct ExecutorStats {
  uint64_t queued = 0, running = 0, completed = 0, failed = 0;
};

class Executor {
 public:
  Executor();
  ~Executor();
  void submit(std::shared_ptr<ExecutorJob> job);
  ExecutorStats stats() const;
  // Whether a job is waiting for the one running (for a job taking turns).
  bool has_waiting() const;

 private:
  void dispatch();

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<ExecutorJob>> queue_;
  bool stopping_ = false;
  uint64_t running_ = 0, completed_ = 0, failed_ = 0;
  std::thread thread_;
};

// The process-wide executor, started on first use and never destroyed (its
// thread must not be joined during static destruction).
Executor& executor();

// Bytes of native memory held by plans' arenas, packed weights and parameters.
int64_t native_bytes();
void add_native_bytes(int64_t delta);

}  // namespace simdformer
