// The one place that knows about threads: a persistent pool of native worker
// threads (not libuv's) that the op drivers split work over. The calling
// thread takes part, so a pool of n threads starts n - 1 workers.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace simdformer {

class ThreadPool {
 public:
  // Runs one task. `thread` is in [0, num_threads()) and unique among the
  // tasks running at one time, so it can index per-thread scratch space.
  using TaskFn = void (*)(void* context, size_t task, size_t thread);

  explicit ThreadPool(size_t num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t num_threads() const { return num_threads_.load(std::memory_order_relaxed); }

  // Waits for running work, then restarts with n >= 1 threads.
  void set_num_threads(size_t n);

  // Runs fn(context, task, thread) for every task in [0, num_tasks) and
  // returns when all are done. Tasks must not throw. Calls from several
  // threads are serialised (one parallel region at a time, so the busy
  // native threads never exceed num_threads()); a call from inside a task
  // runs its tasks inline on that thread.
  void parallel_for(size_t num_tasks, TaskFn fn, void* context);

  // Wakes sleeping workers to spin for a coming region. Called by a thread
  // about to hand a job to another (an async forward): a wake-up takes tens
  // of microseconds on a VM, and this way it overlaps the hand-off instead
  // of delaying the job's first region. Cheap when no worker sleeps.
  void wake_up();

  // Tells spinning workers that no region is coming soon (an async job has
  // ended and none is queued), so they sleep now instead of spinning on a
  // CPU another thread needs; wake_up() or the next region brings them back.
  void rest();

  template <class F>
  void parallel_for(size_t num_tasks, F&& f) {
    using Fn = std::remove_reference_t<F>;
    parallel_for(
        num_tasks, [](void* ctx, size_t task, size_t thread) { (*static_cast<Fn*>(ctx))(task, thread); },
        const_cast<void*>(static_cast<const void*>(&f)));
  }

 private:
  void start_workers(size_t count);
  void stop_workers();
  void worker_main(size_t thread, unsigned long long seen);
  void run_tasks(size_t thread);
  bool join(unsigned long long generation);
  void leave();

  std::mutex run_mutex_;  // one parallel region at a time
  std::atomic<size_t> num_threads_;
  std::vector<std::thread> workers_;

  // The published job, guarded by state_mutex_ for writers; workers read it
  // after seeing generation_ change.
  std::mutex state_mutex_;
  std::condition_variable wake_;
  std::condition_variable finished_;
  std::atomic<unsigned long long> generation_{0};
  bool stopping_ = false;
  TaskFn fn_ = nullptr;
  void* context_ = nullptr;
  size_t num_tasks_ = 0;
  size_t active_workers_ = 0;  // workers 1..active_workers_ take part in this job
  std::atomic<size_t> next_task_{0};
  // Who is inside the published job: the generation's low 32 bits, then a
  // "closed" bit set by the caller once every task is taken, then the number
  // of workers running tasks. A worker joins only while the job is open, so
  // the caller waits for workers that hold a task, never for one that is
  // still waking up (tens of microseconds on a VM): that one finds the job
  // closed and goes back to waiting.
  std::atomic<unsigned long long> join_{0};
  unsigned long long wake_ups_ = 0;   // wake_up() calls, guarded by state_mutex_
  std::atomic<size_t> sleepers_{0};  // workers waiting on wake_ (a hint: read without the lock)
  std::atomic<unsigned long long> rests_{0};  // rest() calls: a spinning worker that sees a change sleeps
};

// Threads this process may use: sched_getaffinity, capped by a cgroup CPU
// quota (cgroup v2 cpu.max or v1 cfs_quota_us) when one is set.
size_t usable_cpu_count();

// SIMDFORMER_NUM_THREADS if it is a positive integer, else usable_cpu_count().
size_t default_num_threads();

// The process-wide pool, created on first use with default_num_threads().
ThreadPool& thread_pool();

}  // namespace simdformer
