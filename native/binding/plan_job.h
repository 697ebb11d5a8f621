// A Plan#runAsync call as an executor job (core/executor.h): inputs copied
// into the arena on the JavaScript thread, the plan run on the dispatcher
// thread, the Promise settled back on the JavaScript thread (the async
// "baton" of sharp, without borrowing a libuv thread).
#pragma once

#include <napi.h>

#include <memory>
#include <string>

#include "core/executor.h"
#include "core/plan.h"
#include "env_link.h"

namespace simdformer {

class PlanJob : public ExecutorJob, public std::enable_shared_from_this<PlanJob> {
 public:
  PlanJob(std::shared_ptr<const Plan> plan, std::shared_ptr<EnvLink> link, napi_deferred deferred, std::string caller_stack);
  ~PlanJob() override;

  Plan::Arena& arena() { return lease_->arena(); }

  bool execute() override;            // dispatcher thread
  void finish(bool executed) override;  // dispatcher thread
  void settle(Napi::Env env);         // JavaScript thread, through the link's tsfn

 private:
  void settle_promise(Napi::Env env);

  std::shared_ptr<const Plan> plan_;  // before lease_: the lease returns its arena to the plan
  std::unique_ptr<Plan::ArenaLease> lease_;
  std::shared_ptr<EnvLink> link_;
  napi_deferred deferred_;
  std::string caller_stack_;
  RunError error_;
  bool executed_ = false;
  bool out_of_memory_ = false;
  bool internal_error_ = false;
};

// Queues a job and returns its Promise, with a cancel() method on it.
Napi::Value queue_plan_job(Napi::Env env, const std::shared_ptr<const Plan>& plan, const Napi::Value& inputs,
                           const std::shared_ptr<EnvLink>& link);

}  // namespace simdformer
