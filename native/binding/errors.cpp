#include "errors.h"

namespace simdformer {

namespace {

Napi::Error with_code(Napi::Error error, const char* code) {
  error.Set("code", Napi::String::New(error.Env(), code));
  return error;
}

std::string typed_array_name(napi_typedarray_type type) {
  switch (type) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: return "TypedArray";
  }
}

}  // namespace

std::string describe_value(const Napi::Value& value) {
  switch (value.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return std::string(value.As<Napi::Boolean>().Value() ? "true" : "false") + " of type boolean";
    case napi_number: return value.ToString().Utf8Value() + " of type number";
    case napi_string: return "'" + value.As<Napi::String>().Utf8Value() + "' of type string";
    case napi_bigint: return value.ToString().Utf8Value() + "n of type bigint";
    case napi_function: return "a function";
    case napi_symbol: return "a symbol";
    default: break;
  }
  if (value.IsTypedArray()) {
    Napi::TypedArray array = value.As<Napi::TypedArray>();
    return typed_array_name(array.TypedArrayType()) + " of length " + std::to_string(array.ElementLength());
  }
  if (value.IsArray()) return "an Array of length " + std::to_string(value.As<Napi::Array>().Length());
  return "an object";
}

Napi::Error type_error(Napi::Env env, const std::string& message, const char* code) {
  return with_code(Napi::TypeError::New(env, message), code);
}

Napi::Error range_error(Napi::Env env, const std::string& message, const char* code) {
  return with_code(Napi::RangeError::New(env, message), code);
}

Napi::Error invalid_type(Napi::Env env, const std::string& name, const std::string& expected,
                         const Napi::Value& received) {
  return type_error(env, "Expected " + expected + " for " + name + " but received " + describe_value(received));
}

Napi::Error invalid_value(Napi::Env env, const std::string& name, const std::string& expected,
                          const Napi::Value& received) {
  return range_error(env, "Expected " + expected + " for " + name + " but received " + describe_value(received));
}

}  // namespace simdformer
