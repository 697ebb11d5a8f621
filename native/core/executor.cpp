#include "executor.h"

#include "threadpool.h"

namespace simdformer {

namespace {
std::atomic<int64_t> tracked_bytes{0};
}  // namespace

int64_t native_bytes() { return tracked_bytes.load(std::memory_order_relaxed); }
void add_native_bytes(int64_t delta) { tracked_bytes.fetch_add(delta, std::memory_order_relaxed); }

Executor::Executor() : thread_(&Executor::dispatch, this) {}

Executor::~Executor() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

Executor& executor() {
  static Executor* instance = new Executor();
  return *instance;
}

void Executor::submit(std::shared_ptr<ExecutorJob> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
}

bool Executor::has_waiting() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return !queue_.empty();
}

ExecutorStats Executor::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return ExecutorStats{queue_.size(), running_, completed_, failed_};
}

void Executor::dispatch() {
  for (;;) {
    std::shared_ptr<ExecutorJob> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    const bool started = !job->cancelled.load();
    const bool ok = started && job->execute();
    bool idle;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      --running_;
      if (started && job->again_) {
        job->again_ = false;
        queue_.push_back(std::move(job));
        continue;
      }
      ++(ok ? completed_ : failed_);
      idle = queue_.empty();
    }
    // The JavaScript thread is about to take the result and maybe queue the
    // next job; workers spinning for a region that is not coming would hold
    // the CPUs it needs (on 2 CPUs: 2 preemptions per forward).
    if (idle) thread_pool().rest();
    job->finish(started);
  }
}

}  // namespace simdformer
