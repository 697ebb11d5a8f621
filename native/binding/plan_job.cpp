#include "plan_job.h"

#include <algorithm>

#include "core/threadpool.h"
#include "errors.h"
#include "plan_io.h"

namespace simdformer {

PlanJob::PlanJob(std::shared_ptr<const Plan> plan, std::shared_ptr<EnvLink> link, napi_deferred deferred,
                 napi_ref caller)
    : plan_(std::move(plan)), link_(std::move(link)), deferred_(deferred), caller_(caller) {
  const std::vector<size_t>& ids = plan_->inputs();
  float_inputs_.resize(ids.size());
  index_inputs_.resize(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const ValueSpec& spec = plan_->values()[ids[i]];
    if (spec.type == ValueType::kInt64) {
      index_inputs_[i].resize(spec.count);
      track(static_cast<int64_t>(spec.count * sizeof(int64_t)));
    } else {
      float_inputs_[i].resize(spec.count);
      track(static_cast<int64_t>(spec.count * sizeof(float)));
    }
  }
}

PlanJob::~PlanJob() { add_native_bytes(-tracked_bytes_); }

void PlanJob::track(int64_t bytes) {
  tracked_bytes_ += bytes;
  add_native_bytes(bytes);
}

void* PlanJob::input_buffer(size_t input) {
  if (!index_inputs_[input].empty()) return index_inputs_[input].data();
  return float_inputs_[input].data();
}

bool PlanJob::execute() {
  try {
    Plan::ArenaLease lease(*plan_);
    const std::vector<size_t>& ids = plan_->inputs();
    for (size_t i = 0; i < ids.size(); ++i) {
      if (plan_->values()[ids[i]].type == ValueType::kInt64) {
        std::copy(index_inputs_[i].begin(), index_inputs_[i].end(), plan_->index_data(lease.arena(), ids[i]));
      } else {
        std::copy(float_inputs_[i].begin(), float_inputs_[i].end(), plan_->float_data(lease.arena(), ids[i]));
      }
    }
    error_ = plan_->run(active_kernels(), thread_pool(), lease.arena(), &cancelled);
    if (!error_) {
      for (size_t id : plan_->outputs()) {
        const float* data = plan_->float_data(lease.arena(), id);
        outputs_.emplace_back(data, data + plan_->values()[id].count);
        track(static_cast<int64_t>(outputs_.back().size() * sizeof(float)));
      }
    }
  } catch (const std::bad_alloc&) {
    out_of_memory_ = true;
  } catch (...) {
    internal_error_ = true;
  }
  return !error_ && !out_of_memory_ && !internal_error_;
}

void PlanJob::finish(bool executed) {
  if (!executed) error_.cancelled = true;
  leave_link(*link_, this);
  // If the environment is gone, the result is dropped; the arena goes with this job.
  post_to_env(*link_, shared_from_this());
}

void PlanJob::on_js_thread(Napi::Env env) {
  job_settled(env, *link_);
  // Runs from a thread-safe-function callback, where no C++ exception may
  // escape; Node-API calls fail (and node-addon-api throws) while a worker's
  // environment is being torn down: then the result is dropped.
  try {
    settle_promise(env);
  } catch (...) {
  }
  napi_delete_reference(env, caller_);
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
    Napi::Array outputs = Napi::Array::New(env, outputs_.size());
    for (uint32_t i = 0; i < outputs_.size(); ++i) {
      Napi::Float32Array output = Napi::Float32Array::New(env, outputs_[i].size());
      std::copy(outputs_[i].begin(), outputs_[i].end(), output.Data());
      outputs.Set(i, output);
    }
    napi_resolve_deferred(env, deferred_, outputs);
    return;
  }
  // Point the stack at the caller's line, not at this callback: the caller
  // Error's frames ("Error\n    at caller...") after this error's first line.
  std::string frames;
  napi_value caller = nullptr;
  if (napi_get_reference_value(env, caller_, &caller) == napi_ok && caller != nullptr) {
    const std::string stack = Napi::Object(env, caller).Get("stack").ToString().Utf8Value();
    const size_t first_line_end = stack.find('\n');
    if (first_line_end != std::string::npos) frames = stack.substr(first_line_end);
  }
  error.Set("stack", Napi::String::New(env, error.Get("name").ToString().Utf8Value() + ": " + error.Message() + frames));
  napi_reject_deferred(env, deferred_, error.Value());
}

Napi::Value queue_plan_job(Napi::Env env, const std::shared_ptr<const Plan>& plan, const Napi::Value& inputs,
                           const std::shared_ptr<EnvLink>& link) {
  napi_deferred deferred;
  napi_value promise;
  NAPI_THROW_IF_FAILED(env, napi_create_promise(env, &deferred, &promise), Napi::Value());
  napi_value caller_error;
  napi_ref caller;
  NAPI_THROW_IF_FAILED(env, napi_create_error(env, nullptr, Napi::String::New(env, ""), &caller_error), Napi::Value());
  NAPI_THROW_IF_FAILED(env, napi_create_reference(env, caller_error, 1, &caller), Napi::Value());
  // The queued job owns the reference; until then, leaving this function deletes it.
  struct CallerGuard {
    napi_env env;
    napi_ref caller;
    ~CallerGuard() {
      if (caller != nullptr) napi_delete_reference(env, caller);
    }
  } guard{env, caller};
  std::shared_ptr<PlanJob> job;
  try {
    job = std::make_shared<PlanJob>(plan, link, deferred, caller);
    copy_inputs(env, inputs, *plan, [&job](size_t input) { return job->input_buffer(input); });
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
  queue_linked_job(env, *link, job);
  guard.caller = nullptr;
  thread_pool().wake_up();
  return promise_object;
}

}  // namespace simdformer
