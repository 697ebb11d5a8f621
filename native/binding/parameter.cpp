#include "parameter.h"

#include "addon_data.h"
#include "args.h"
#include "core/executor.h"
#include "errors.h"

namespace simdformer {

Napi::Function ParameterHandle::define_class(Napi::Env env) {
  return DefineClass(env, "Parameter", {InstanceAccessor<&ParameterHandle::length>("length")});
}

ParameterHandle* ParameterHandle::from_value(Napi::Env env, const Napi::Value& value) {
  if (!value.IsObject()) return nullptr;
  Napi::Object object = value.As<Napi::Object>();
  if (!object.InstanceOf(addon_data(env).parameter_class.Value())) return nullptr;
  return Napi::ObjectWrap<ParameterHandle>::Unwrap(object);
}

ParameterHandle::ParameterHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ParameterHandle>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw type_error(info.Env(), "Parameter cannot be constructed from JavaScript; use createParameter()");
  }
  data_ = *info[0].As<Napi::External<Parameter>>().Data();
  Napi::MemoryManagement::AdjustExternalMemory(info.Env(), static_cast<int64_t>(data_->size() * sizeof(float)));
}

void ParameterHandle::Finalize(Napi::Env env) {
  if (data_) Napi::MemoryManagement::AdjustExternalMemory(env, -static_cast<int64_t>(data_->size() * sizeof(float)));
}

Napi::Value ParameterHandle::length(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(data_->size()));
}

Napi::Value create_parameter_method(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const FloatArray data = to_float32(env, "data", info[0]);
    // Counted in native_bytes() for as long as any plan or handle holds it.
    const int64_t bytes = static_cast<int64_t>(data.length * sizeof(float));
    auto* values = new std::vector<float>(data.data, data.data + data.length);
    add_native_bytes(bytes);
    Parameter copy(values, [bytes](const std::vector<float>* p) {
      add_native_bytes(-bytes);
      delete p;
    });
    return addon_data(env).parameter_class.New({Napi::External<Parameter>::New(env, &copy)});
  });
}

}  // namespace simdformer
