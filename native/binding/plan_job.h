// A Plan#runAsync call as an executor job (core/executor.h): inputs copied
// on the JavaScript thread into the job's own staging buffers, the plan run
// on the dispatcher thread in an arena leased only for the run (jobs run one
// at a time, so queued calls do not each hold an arena), outputs copied out
// of the arena, and the Promise settled back on the JavaScript thread (the
// async "baton" of sharp, without borrowing a libuv thread).
#pragma once

#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "core/executor.h"
#include "core/plan.h"
#include "env_link.h"

namespace simdformer {

class PlanJob : public LinkedJob, public std::enable_shared_from_this<PlanJob> {
 public:
  PlanJob(std::shared_ptr<const Plan> plan, std::shared_ptr<EnvLink> link, napi_deferred deferred, napi_ref caller);
  ~PlanJob() override;

  // Staging buffer of input i (float or int64 storage, by the value's type).
  void* input_buffer(size_t input);

  bool execute() override;              // dispatcher thread
  void finish(bool executed) override;  // dispatcher thread
  void on_js_thread(Napi::Env env) override;  // settles the Promise

 private:
  void settle_promise(Napi::Env env);
  void track(int64_t bytes);

  std::shared_ptr<const Plan> plan_;
  std::shared_ptr<EnvLink> link_;
  napi_deferred deferred_;
  // An Error made when the call was queued, held until the Promise is settled (JavaScript
  // thread only). V8 formats its stack only when read, so only a failing job
  // pays for pointing its rejection at the caller's line.
  napi_ref caller_;
  std::vector<std::vector<float>> float_inputs_;    // per input; empty for int64 inputs
  std::vector<std::vector<int64_t>> index_inputs_;  // per input; empty for float inputs
  std::vector<std::vector<float>> outputs_;
  int64_t tracked_bytes_ = 0;                       // counted in native_bytes()
  RunError error_;
  bool out_of_memory_ = false;
  bool internal_error_ = false;
};

// Queues a job and returns its Promise, with a cancel() method on it.
Napi::Value queue_plan_job(Napi::Env env, const std::shared_ptr<const Plan>& plan, const Napi::Value& inputs,
                           const std::shared_ptr<EnvLink>& link);

}  // namespace simdformer
