#include "env_link.h"

#include <napi.h>

#include <new>

namespace simdformer {

namespace {

// Runs on the JavaScript thread for every post_to_env (a finished forward, a
// background packing's progress); with env == nullptr when the thread-safe
// function is being torn down with items still queued.
void settle_job(napi_env env, napi_value, void*, void* data) {
  auto* holder = static_cast<std::shared_ptr<LinkedJob>*>(data);
  if (env != nullptr) (*holder)->on_js_thread(Napi::Env(env));
  delete holder;
}

// Registered after the thread-safe function, so it runs before Node closes
// it: from here on no job calls into it, and running jobs stop at the next step.
void on_env_teardown(void* data) {
  auto* link = static_cast<std::shared_ptr<EnvLink>*>(data);
  {
    std::lock_guard<std::mutex> lock((*link)->mutex);
    (*link)->alive = false;
    for (ExecutorJob* job : (*link)->jobs) job->cancelled.store(true);
  }
  delete link;
}

}  // namespace

void queue_linked_job(napi_env env, EnvLink& link, const std::shared_ptr<LinkedJob>& job) {
  {
    std::lock_guard<std::mutex> lock(link.mutex);
    link.jobs.insert(job.get());
  }
  try {
    executor().submit(job);
  } catch (...) {
    leave_link(link, job.get());
    throw;
  }
  if (link.unsettled++ == 0) napi_ref_threadsafe_function(env, link.tsfn);
}

void leave_link(EnvLink& link, ExecutorJob* job) {
  std::lock_guard<std::mutex> lock(link.mutex);
  link.jobs.erase(job);
}

void job_settled(napi_env env, EnvLink& link) {
  if (--link.unsettled == 0) napi_unref_threadsafe_function(env, link.tsfn);
}

bool post_to_env(EnvLink& link, const std::shared_ptr<LinkedJob>& job) {
  std::lock_guard<std::mutex> lock(link.mutex);
  if (!link.alive) return false;
  auto* holder = new (std::nothrow) std::shared_ptr<LinkedJob>(job);
  if (holder == nullptr) return false;
  if (napi_call_threadsafe_function(link.tsfn, holder, napi_tsfn_nonblocking) == napi_ok) return true;
  delete holder;
  return false;
}

std::shared_ptr<EnvLink> create_env_link(napi_env env) {
  auto link = std::make_shared<EnvLink>();
  napi_value name;
  NAPI_THROW_IF_FAILED(env, napi_create_string_utf8(env, "simdformer:forward", NAPI_AUTO_LENGTH, &name), nullptr);
  NAPI_THROW_IF_FAILED(env,
                       napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, nullptr, nullptr, nullptr,
                                                       settle_job, &link->tsfn),
                       nullptr);
  // Idle, the link must not keep the process alive; a queued job refs it.
  NAPI_THROW_IF_FAILED(env, napi_unref_threadsafe_function(env, link->tsfn), nullptr);
  NAPI_THROW_IF_FAILED(env, napi_add_env_cleanup_hook(env, on_env_teardown, new std::shared_ptr<EnvLink>(link)), nullptr);
  return link;
}

}  // namespace simdformer
