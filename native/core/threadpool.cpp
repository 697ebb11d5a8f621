#include "threadpool.h"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>

namespace simdformer {

namespace {

// Set on pool threads and while a caller runs tasks, so nested parallel_for
// calls run inline instead of deadlocking on run_mutex_.
thread_local bool inside_parallel_region = false;

// Spins this many rounds before sleeping on a condition variable: waking a
// sleeping thread costs tens of microseconds, as long as a small GEMM.
constexpr int kSpinRounds = 4000;

// Fields of ThreadPool::join_.
constexpr unsigned long long kJoinClosed = 1ull << 31;
constexpr unsigned long long kJoinCount = kJoinClosed - 1;
unsigned long long join_tag(unsigned long long generation) { return (generation & 0xffffffffull) << 32; }

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// CPUs allowed by a cgroup v2 "cpu.max" file ("max 100000" or "200000 100000"); 0 if none.
size_t cpu_max_quota(const std::string& path) {
  std::ifstream file(path);
  std::string quota;
  double period = 0;
  if (!(file >> quota >> period) || quota == "max" || period <= 0) return 0;
  const double q = std::atof(quota.c_str());
  return q > 0 ? static_cast<size_t>(std::ceil(q / period)) : 0;
}

// The tightest CPU quota on this process's cgroup or its ancestors (cgroup v2,
// path from /proc/self/cgroup), else cgroup v1's cfs quota; 0 if none.
size_t cgroup_cpu_quota() {
  std::ifstream self("/proc/self/cgroup");
  std::string line, group;
  while (std::getline(self, line)) {
    if (line.rfind("0::", 0) == 0) group = line.substr(3);
  }
  size_t tightest = 0;
  if (!group.empty()) {
    for (std::string dir = group;; dir = dir.substr(0, dir.rfind('/'))) {
      const size_t quota = cpu_max_quota("/sys/fs/cgroup" + dir + "/cpu.max");
      if (quota > 0 && (tightest == 0 || quota < tightest)) tightest = quota;
      if (dir.empty() || dir == "/") break;
    }
    return tightest;
  }
  std::ifstream q1("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), p1("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
  double quota = -1, period = 0;
  if (q1 >> quota && p1 >> period && quota > 0 && period > 0) {
    return static_cast<size_t>(std::ceil(quota / period));
  }
  return 0;
}

}  // namespace

size_t usable_cpu_count() {
  size_t count = 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) count = static_cast<size_t>(CPU_COUNT(&set));
  if (count == 0) count = std::max(1u, std::thread::hardware_concurrency());
  size_t quota = cgroup_cpu_quota();
  if (quota > 0) count = std::min(count, quota);
  return std::max<size_t>(1, count);
}

size_t default_num_threads() {
  const char* env = std::getenv("SIMDFORMER_NUM_THREADS");
  if (env != nullptr && *env != '\0') {
    char* end = nullptr;
    long n = std::strtol(env, &end, 10);
    if (end != nullptr && *end == '\0' && n > 0 && n <= 1024) return static_cast<size_t>(n);
  }
  return usable_cpu_count();
}

ThreadPool& thread_pool() {
  // Never destroyed: worker threads must not be joined during static
  // destruction, after Node has started tearing the process down.
  static ThreadPool* pool = new ThreadPool(default_num_threads());
  return *pool;
}

ThreadPool::ThreadPool(size_t num_threads) : num_threads_(std::max<size_t>(1, num_threads)) {
  start_workers(num_threads_.load() - 1);
}

ThreadPool::~ThreadPool() { stop_workers(); }

void ThreadPool::set_num_threads(size_t n) {
  n = std::max<size_t>(1, n);
  std::lock_guard<std::mutex> run_lock(run_mutex_);
  if (n == num_threads_.load()) return;
  stop_workers();
  num_threads_.store(n);
  start_workers(n - 1);
}

void ThreadPool::start_workers(size_t count) {
  unsigned long long generation;
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    stopping_ = false;
    generation = generation_.load();
  }
  // Each worker starts from the generation current now, not the one it sees
  // when its thread gets going: a job published in between must not be missed.
  workers_.reserve(count);
  for (size_t i = 0; i < count; ++i) workers_.emplace_back(&ThreadPool::worker_main, this, i + 1, generation);
}

void ThreadPool::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    stopping_ = true;
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  for (std::thread& worker : workers_) worker.join();
  workers_.clear();
}

void ThreadPool::run_tasks(size_t thread) {
  for (;;) {
    size_t task = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (task >= num_tasks_) return;
    fn_(context_, task, thread);
  }
}

bool ThreadPool::join(unsigned long long generation) {
  unsigned long long state = join_.load(std::memory_order_acquire);
  for (;;) {
    if ((state & ~(kJoinClosed | kJoinCount)) != join_tag(generation) || (state & kJoinClosed) != 0) return false;
    if (join_.compare_exchange_weak(state, state + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
      return true;
    }
  }
}

void ThreadPool::leave() {
  const unsigned long long before = join_.fetch_sub(1, std::memory_order_acq_rel);
  // The last worker out of a closed job wakes the caller if it sleeps.
  if ((before & kJoinClosed) != 0 && (before & kJoinCount) == 1) {
    std::lock_guard<std::mutex> lock(state_mutex_);
    finished_.notify_one();
  }
}

void ThreadPool::worker_main(size_t thread, unsigned long long seen) {
  inside_parallel_region = true;
  for (;;) {
    // Spin briefly for the next job, then sleep.
    const unsigned long long rests = rests_.load(std::memory_order_relaxed);
    for (int i = 0; i < kSpinRounds && generation_.load(std::memory_order_acquire) == seen &&
                    rests_.load(std::memory_order_relaxed) == rests;
         ++i) {
      cpu_relax();
    }
    bool take_part;
    {
      std::unique_lock<std::mutex> lock(state_mutex_);
      const unsigned long long wake_ups = wake_ups_;
      sleepers_.fetch_add(1, std::memory_order_relaxed);
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen || wake_ups_ != wake_ups; });
      sleepers_.fetch_sub(1, std::memory_order_relaxed);
      if (generation_.load(std::memory_order_acquire) == seen) continue;  // woken by wake_up(): spin for the job
      seen = generation_.load(std::memory_order_acquire);
      if (stopping_) return;
      take_part = thread <= active_workers_;
    }
    if (!take_part || !join(seen)) continue;
    run_tasks(thread);
    leave();
  }
}

void ThreadPool::wake_up() {
  if (sleepers_.load(std::memory_order_relaxed) == 0) return;
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    ++wake_ups_;
  }
  wake_.notify_all();
}

void ThreadPool::rest() { rests_.fetch_add(1, std::memory_order_relaxed); }

void ThreadPool::parallel_for(size_t num_tasks, TaskFn fn, void* context) {
  if (num_tasks == 0) return;
  if (inside_parallel_region || num_tasks == 1 || num_threads_.load(std::memory_order_relaxed) == 1) {
    for (size_t task = 0; task < num_tasks; ++task) fn(context, task, 0);
    return;
  }
  std::lock_guard<std::mutex> run_lock(run_mutex_);
  size_t helpers = std::min(workers_.size(), num_tasks - 1);
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    fn_ = fn;
    context_ = context;
    num_tasks_ = num_tasks;
    active_workers_ = helpers;
    next_task_.store(0, std::memory_order_relaxed);
    join_.store(join_tag(generation_.load(std::memory_order_relaxed) + 1), std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();

  inside_parallel_region = true;
  run_tasks(0);
  inside_parallel_region = false;

  // Every task is taken: close the job, then wait for the workers that
  // joined to leave run_tasks before the job's context (on the caller's
  // stack) goes away.
  join_.fetch_or(kJoinClosed, std::memory_order_acq_rel);
  const auto all_left = [&] { return (join_.load(std::memory_order_acquire) & kJoinCount) == 0; };
  for (int i = 0; i < kSpinRounds && !all_left(); ++i) cpu_relax();
  if (!all_left()) {
    std::unique_lock<std::mutex> lock(state_mutex_);
    finished_.wait(lock, all_left);
  }
}

}  // namespace simdformer
