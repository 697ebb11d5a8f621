// JS handle for an immutable float32 parameter copied into native memory
// (a bias, a layer-norm weight, an embedding table): createParameter().
#pragma once

#include <napi.h>

#include "core/plan.h"

namespace simdformer {

class ParameterHandle : public Napi::ObjectWrap<ParameterHandle> {
 public:
  static Napi::Function define_class(Napi::Env env);
  // nullptr unless `value` is a ParameterHandle of this environment.
  static ParameterHandle* from_value(Napi::Env env, const Napi::Value& value);

  explicit ParameterHandle(const Napi::CallbackInfo& info);
  void Finalize(Napi::Env env) override;

  const Parameter& shared() const { return data_; }

 private:
  Napi::Value length(const Napi::CallbackInfo& info);
  Parameter data_;
};

// createParameter(data: Float32Array) -> Parameter (a copy)
Napi::Value create_parameter_method(const Napi::CallbackInfo& info);

}  // namespace simdformer
