// The link between one JavaScript environment (the main thread or a
// worker_thread) and the jobs it has queued on the executor. Jobs finish on
// the dispatcher thread and hand their results to the environment through a
// thread-safe function; if the environment is torn down first
// (worker.terminate()), the cleanup hook marks the link dead and cancels its
// jobs, which then free their native memory and touch no Node-API handle.
#pragma once

#include <napi.h>

#include <memory>
#include <mutex>
#include <unordered_set>

#include "core/executor.h"

namespace simdformer {

// An executor job of one environment, which hands its results over on the
// environment's JavaScript thread (post_to_env).
class LinkedJob : public ExecutorJob {
 public:
  // JavaScript thread, through the link's tsfn, once per post_to_env.
  virtual void on_js_thread(Napi::Env env) = 0;
};

struct EnvLink {
  std::mutex mutex;        // guards alive, jobs and calls into tsfn
  bool alive = true;
  napi_threadsafe_function tsfn = nullptr;
  std::unordered_set<ExecutorJob*> jobs;  // queued or running, for cancellation at teardown
  size_t unsettled = 0;    // JS thread only: the tsfn keeps the loop alive while > 0
};

// The life of a linked job:
// queue_linked_job (JavaScript thread) registers it with the link, so that
// teardown cancels it, submits it, and keeps the event loop alive; throws,
// with nothing registered, if the executor cannot take it.
void queue_linked_job(napi_env env, EnvLink& link, const std::shared_ptr<LinkedJob>& job);
// post_to_env has the environment's JavaScript thread call
// job->on_js_thread, unless the environment is gone (then false). Any
// thread; never throws.
bool post_to_env(EnvLink& link, const std::shared_ptr<LinkedJob>& job);
// leave_link (from the job's finish(), dispatcher thread): teardown no longer cancels it.
void leave_link(EnvLink& link, ExecutorJob* job);
// job_settled (JavaScript thread, once per queued job, when its result is
// handed over): the event loop no longer waits for it.
void job_settled(napi_env env, EnvLink& link);

// Creates the environment's link: its thread-safe function (unreferenced
// while idle) and the cleanup hook. Throws a JS error on failure.
std::shared_ptr<EnvLink> create_env_link(napi_env env);

}  // namespace simdformer
