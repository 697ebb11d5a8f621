// The link between one JavaScript environment (the main thread or a
// worker_thread) and the jobs it has queued on the executor. Jobs finish on
// the dispatcher thread and hand their results to the environment through a
// thread-safe function; if the environment is torn down first
// (worker.terminate()), the cleanup hook marks the link dead and cancels its
// jobs, which then free their native memory and touch no Node-API handle.
#pragma once

#include <node_api.h>

#include <memory>
#include <mutex>
#include <unordered_set>

namespace simdformer {

class PlanJob;

struct EnvLink {
  std::mutex mutex;        // guards alive, jobs and calls into tsfn
  bool alive = true;
  napi_threadsafe_function tsfn = nullptr;
  std::unordered_set<PlanJob*> jobs;  // queued or running, for cancellation at teardown
  size_t unsettled = 0;    // JS thread only: the tsfn keeps the loop alive while > 0
};

// Creates the environment's link: its thread-safe function (unreferenced
// while idle) and the cleanup hook. Throws a JS error on failure.
std::shared_ptr<EnvLink> create_env_link(napi_env env);

}  // namespace simdformer
