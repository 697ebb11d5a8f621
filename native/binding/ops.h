// The exported functions of the addon, one group per file; see binding.d.ts.
#pragma once

#include <napi.h>

namespace simdformer {

Napi::Value gemm_method(const Napi::CallbackInfo& info);            // gemm.cpp
Napi::Value softmax_method(const Napi::CallbackInfo& info);         // rowops.cpp
Napi::Value layer_norm_method(const Napi::CallbackInfo& info);      // rowops.cpp
Napi::Value activation_method(const Napi::CallbackInfo& info);      // rowops.cpp
Napi::Value fma_peak_method(const Napi::CallbackInfo& info);        // peak.cpp
Napi::Value fma_peak_parallel_method(const Napi::CallbackInfo& info);  // peak.cpp
Napi::Value attention_method(const Napi::CallbackInfo& info);       // attention.cpp
Napi::Value create_plan_method(const Napi::CallbackInfo& info);     // plan.cpp
Napi::Function define_plan_class(Napi::Env env);                    // plan.cpp
Napi::Value map_file_method(const Napi::CallbackInfo& info);        // mapped_file.cpp

}  // namespace simdformer
