// Module entry: per-environment setup (context-aware, so the addon loads in
// the main thread and in any number of worker_threads), the kernel table
// choice, and the small info / thread-count functions.
#include <napi.h>

#include <string>

#include "addon_data.h"
#include "args.h"
#include "core/dispatch.h"
#include "core/executor.h"
#include "core/gemm.h"
#include "core/threadpool.h"
#include "errors.h"
#include "ops.h"
#include "packed_b.h"
#include "parameter.h"

namespace simdformer {

namespace {

Napi::Array string_array(Napi::Env env, const std::vector<std::string>& strings) {
  Napi::Array array = Napi::Array::New(env, strings.size());
  for (size_t i = 0; i < strings.size(); ++i) array.Set(static_cast<uint32_t>(i), strings[i]);
  return array;
}

Napi::Value info_method(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object result = Napi::Object::New(env);
    result.Set("version", SIMDFORMER_VERSION);
    result.Set("isa", active_kernels().name);
    result.Set("availableIsas", string_array(env, available_isas()));
    result.Set("numThreads", static_cast<double>(thread_pool().num_threads()));
    return result;
  });
}

Napi::Value set_num_threads_method(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    thread_pool().set_num_threads(to_size(env, "n", info[0], 1, 1024));
    return env.Undefined();
  });
}

// Monitoring counters: executor jobs (process-wide) and native memory held.
Napi::Value stats_method(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const ExecutorStats stats = executor().stats();
    Napi::Object result = Napi::Object::New(env);
    result.Set("queued", static_cast<double>(stats.queued));
    result.Set("running", static_cast<double>(stats.running));
    result.Set("completed", static_cast<double>(stats.completed));
    result.Set("failed", static_cast<double>(stats.failed));
    result.Set("nativeBytes", static_cast<double>(native_bytes()));
    return result;
  });
}

Napi::Value gemm_kernel_info_method(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const KernelTable& kernels = to_kernels(env, "isa", info[0]);
    Napi::Object result = Napi::Object::New(env);
    if (kernels.bf16x3_gemm != nullptr) {
      const Bf16x3GemmConfig& config = *kernels.bf16x3_gemm;
      result.Set("name", config.name);
      result.Set("mr", static_cast<double>(config.mr));
      result.Set("nr", static_cast<double>(config.nr));
      result.Set("mc", 0.0);
      result.Set("kc", static_cast<double>(config.kc));
      result.Set("nc", static_cast<double>(config.nc));
      return result;
    }
    const GemmConfig& config = kernels.gemm;
    result.Set("name", config.name);
    result.Set("mr", static_cast<double>(config.mr));
    result.Set("nr", static_cast<double>(config.nr));
    result.Set("mc", static_cast<double>(config.mc));
    result.Set("kc", static_cast<double>(config.kc));
    result.Set("nc", static_cast<double>(config.nc));
    return result;
  });
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  std::string isa_error;
  if (!select_kernels(&isa_error)) throw range_error(env, isa_error, "ERR_SIMDFORMER_UNSUPPORTED_ISA");

  AddonData* data = new AddonData();
  env.SetInstanceData(data);  // deleted by Node when this environment ends
  data->packed_b_class = Napi::Persistent(PackedBHandle::define_class(env));
  data->parameter_class = Napi::Persistent(ParameterHandle::define_class(env));
  data->plan_class = Napi::Persistent(define_plan_class(env));
  data->link = create_env_link(env);

  exports.Set("info", Napi::Function::New(env, info_method, "info"));
  exports.Set("setNumThreads", Napi::Function::New(env, set_num_threads_method, "setNumThreads"));
  exports.Set("stats", Napi::Function::New(env, stats_method, "stats"));
  exports.Set("gemmKernelInfo", Napi::Function::New(env, gemm_kernel_info_method, "gemmKernelInfo"));
  exports.Set("packB", Napi::Function::New(env, pack_b_method, "packB"));
  exports.Set("packBBatch", Napi::Function::New(env, pack_b_batch_method, "packBBatch"));
  exports.Set("packBBatchInBackground",
              Napi::Function::New(env, pack_b_batch_in_background_method, "packBBatchInBackground"));
  exports.Set("gemm", Napi::Function::New(env, gemm_method, "gemm"));
  exports.Set("softmax", Napi::Function::New(env, softmax_method, "softmax"));
  exports.Set("layerNorm", Napi::Function::New(env, layer_norm_method, "layerNorm"));
  exports.Set("activation", Napi::Function::New(env, activation_method, "activation"));
  exports.Set("attention", Napi::Function::New(env, attention_method, "attention"));
  exports.Set("createParameter", Napi::Function::New(env, create_parameter_method, "createParameter"));
  exports.Set("createPlan", Napi::Function::New(env, create_plan_method, "createPlan"));
  exports.Set("mapFile", Napi::Function::New(env, map_file_method, "mapFile"));
  exports.Set("fmaPeak", Napi::Function::New(env, fma_peak_method, "fmaPeak"));
  exports.Set("fmaPeakParallel", Napi::Function::New(env, fma_peak_parallel_method, "fmaPeakParallel"));
  return exports;
}

}  // namespace

}  // namespace simdformer

static Napi::Object InitSimdformer(Napi::Env env, Napi::Object exports) { return simdformer::init(env, exports); }

NODE_API_MODULE(simdformer, InitSimdformer)
