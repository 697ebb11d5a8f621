#include "plan_job.h"

#include "core/threadpool.h"
#include "errors.h"
#include "plan_io.h"

namespace simdformer {

PlanJob::PlanJob(std::shared_ptr<const Plan> plan, std::shared_ptr<EnvLink> link, napi_deferred deferred,
                 std::string caller_stack)
    : plan_(std::move(plan)),
      lease_(std::make_unique<Plan::ArenaLease>(*plan_)),
      link_(std::move(link)),
      deferred_(deferred),
      caller_stack_(std::move(caller_stack)) {}

PlanJob::~PlanJob() = default;

bool PlanJob::execute() {
  executed_ = true;
  try {
    error_ = plan_->run(active_kernels(), thread_pool(), lease_->arena(), &cancelled);
  } catch (const std::bad_alloc&) {
    out_of_memory_ = true;
  } catch (...) {
    internal_error_ = true;
  }
  return !error_ && !out_of_memory_ && !internal_error_;
}

void PlanJob::finish(bool executed) {
  if (!executed) error_.cancelled = true;
  std::lock_guard<std::mutex> lock(link_->mutex);
  link_->jobs.erase(this);
  // The environment is gone: drop the result; the arena goes with this job.
  if (!link_->alive) return;
  auto* holder = new std::shared_ptr<PlanJob>(shared_from_this());
  if (napi_call_threadsafe_function(link_->tsfn, holder, napi_tsfn_nonblocking) != napi_ok) delete holder;
}

void PlanJob::settle(Napi::Env env) {
  if (--link_->unsettled == 0) napi_unref_threadsafe_function(env, link_->tsfn);
  // Runs from a thread-safe-function callback, where no C++ exception may
  // escape; Node-API calls fail (and node-addon-api throws) while a worker's
  // environment is being torn down: then the result is dropped.
  try {
    settle_promise(env);
  } catch (...) {
  }
  lease_.reset();
}

void PlanJob::settle_promise(Napi::Env env) {
  Napi::HandleScope scope(env);
  Napi::Error error;
  if (out_of_memory_) {
    error = range_error(env, "simdformer: out of memory", "ERR_SIMDFORMER_OUT_OF_MEMORY");
  } else if (internal_error_) {
    error = Napi::Error::New(env, "simdformer internal error");
  } else if (error_) {
    error = run_error(env, error_);
  } else {
    napi_value outputs = nullptr;
    try {
      outputs = copy_outputs(env, *plan_, lease_->arena());
    } catch (const Napi::Error& e) {
      error = e;
    } catch (const std::bad_alloc&) {
      error = range_error(env, "simdformer: out of memory", "ERR_SIMDFORMER_OUT_OF_MEMORY");
    }
    lease_.reset();
    if (outputs != nullptr) {
      napi_resolve_deferred(env, deferred_, outputs);
      return;
    }
  }
  lease_.reset();
  // Point the stack at the caller's line, not at this callback.
  error.Set("stack", Napi::String::New(env, error.Get("name").ToString().Utf8Value() + ": " + error.Message() + caller_stack_));
  napi_reject_deferred(env, deferred_, error.Value());
}

Napi::Value queue_plan_job(Napi::Env env, const std::shared_ptr<const Plan>& plan, const Napi::Value& inputs,
                           const std::shared_ptr<EnvLink>& link) {
  // "Error\n    at caller..." -> keep the frames.
  std::string stack = Napi::Error::New(env, "").Get("stack").ToString().Utf8Value();
  const size_t frames = stack.find('\n');
  napi_deferred deferred;
  napi_value promise;
  NAPI_THROW_IF_FAILED(env, napi_create_promise(env, &deferred, &promise), Napi::Value());
  std::shared_ptr<PlanJob> job;
  try {
    job = std::make_shared<PlanJob>(plan, link, deferred, frames == std::string::npos ? "" : stack.substr(frames));
    copy_inputs(env, inputs, *plan, job->arena());
  } catch (...) {
    // Nothing was queued: settle the promise we made, then report synchronously.
    napi_resolve_deferred(env, deferred, env.Undefined());
    throw;
  }
  std::weak_ptr<PlanJob> weak = job;
  Napi::Object promise_object(env, promise);
  promise_object.Set("cancel", Napi::Function::New(env, [weak](const Napi::CallbackInfo& info) {
    if (auto alive = weak.lock()) alive->cancelled.store(true);
    return info.Env().Undefined();
  }, "cancel"));
  {
    std::lock_guard<std::mutex> lock(link->mutex);
    link->jobs.insert(job.get());
  }
  if (link->unsettled++ == 0) napi_ref_threadsafe_function(env, link->tsfn);
  executor().submit(job);
  return promise_object;
}

}  // namespace simdformer
