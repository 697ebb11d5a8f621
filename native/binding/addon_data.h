// Per-environment state (main thread and each worker_thread get their own),
// owned by Node through SetInstanceData and freed when that environment ends.
// No JS handle lives in a process global.
#pragma once

#include <napi.h>

namespace simdformer {

struct AddonData {
  Napi::FunctionReference packed_b_class;
  Napi::FunctionReference parameter_class;
  Napi::FunctionReference plan_class;
};

inline AddonData& addon_data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

}  // namespace simdformer
