// Per-environment state (main thread and each worker_thread get their own),
// owned by Node through SetInstanceData and freed when that environment ends.
// No JS handle lives in a process global.
#pragma once

#include <napi.h>

#include <memory>

#include "env_link.h"

namespace simdformer {

struct AddonData {
  Napi::FunctionReference packed_b_class;
  Napi::FunctionReference parameter_class;
  Napi::FunctionReference plan_class;
  std::shared_ptr<EnvLink> link;  // to this environment's queued forward jobs
};

inline AddonData& addon_data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

}  // namespace simdformer
