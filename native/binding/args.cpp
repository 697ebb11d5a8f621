#include "args.h"

#include <cmath>

#include "errors.h"

namespace simdformer {

size_t to_size(Napi::Env env, const std::string& name, const Napi::Value& value, size_t min, size_t max) {
  const std::string expected = max == kMaxSafeInteger
                                   ? "an integer >= " + std::to_string(min)
                                   : "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
  if (!value.IsNumber()) throw invalid_type(env, name, expected, value);
  const double number = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(number) || std::floor(number) != number || number < static_cast<double>(min) ||
      number > static_cast<double>(max)) {
    throw invalid_value(env, name, expected, value);
  }
  return static_cast<size_t>(number);
}

double to_number(Napi::Env env, const std::string& name, const Napi::Value& value) {
  if (!value.IsNumber()) throw invalid_type(env, name, "a number", value);
  return value.As<Napi::Number>().DoubleValue();
}

FloatArray to_float32(Napi::Env env, const std::string& name, const Napi::Value& value) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw invalid_type(env, name, "a Float32Array", value);
  }
  Napi::Float32Array array = value.As<Napi::Float32Array>();
  return FloatArray{array.Data(), array.ElementLength()};
}

FloatArray to_optional_float32(Napi::Env env, const std::string& name, const Napi::Value& value) {
  if (value.IsUndefined() || value.IsNull()) return FloatArray{};
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw invalid_type(env, name, "a Float32Array, null or undefined", value);
  }
  return to_float32(env, name, value);
}

const KernelTable& to_kernels(Napi::Env env, const std::string& name, const Napi::Value& value) {
  if (value.IsUndefined()) return active_kernels();
  const std::string expected = "one of 'ref', 'avx2', 'avx512', 'amx', 'neon'";
  if (!value.IsString()) throw invalid_type(env, name, expected, value);
  bool unknown = false;
  const KernelTable* table = find_kernels(value.As<Napi::String>().Utf8Value(), &unknown);
  if (unknown) throw invalid_type(env, name, expected, value);
  if (table == nullptr) {
    std::string available;
    for (const std::string& isa : available_isas()) available += (available.empty() ? "'" : ", '") + isa + "'";
    throw range_error(env,
                      "Expected an ISA this CPU can run (" + available + ") for " + name + " but received " +
                          describe_value(value),
                      "ERR_SIMDFORMER_UNSUPPORTED_ISA");
  }
  return *table;
}

Activation to_activation(Napi::Env env, const std::string& name, const Napi::Value& value) {
  if (value.IsUndefined()) return Activation::kNone;
  const std::string expected = "one of 'none', 'relu', 'gelu'";
  if (!value.IsString()) throw invalid_type(env, name, expected, value);
  const std::string kind = value.As<Napi::String>().Utf8Value();
  if (kind == "none") return Activation::kNone;
  if (kind == "relu") return Activation::kRelu;
  if (kind == "gelu") return Activation::kGelu;
  throw invalid_type(env, name, expected, value);
}

Napi::Object to_object(Napi::Env env, const std::string& name, const Napi::Value& value) {
  if (!value.IsObject() || value.IsArray() || value.IsTypedArray() || value.IsFunction()) {
    throw invalid_type(env, name, "an object", value);
  }
  return value.As<Napi::Object>();
}

size_t checked_product(Napi::Env env, const std::string& what, size_t a, size_t b) {
  if (static_cast<unsigned __int128>(a) * b > kMaxSafeInteger) throw range_error(env, what + " is too large");
  return a * b;
}

void check_reach(Napi::Env env, const std::string& name, size_t length, size_t offset, size_t rows,
                 size_t row_stride, size_t cols, size_t col_stride) {
  if (rows == 0 || cols == 0) return;
  // 128-bit so that no product of safe integers can wrap.
  const unsigned __int128 last = static_cast<unsigned __int128>(offset) +
                                 static_cast<unsigned __int128>(rows - 1) * row_stride +
                                 static_cast<unsigned __int128>(cols - 1) * col_stride;
  if (last >= length) {
    throw range_error(env, "Expected " + name + " to hold a " + std::to_string(rows) + "x" + std::to_string(cols) +
                               " view at offset " + std::to_string(offset) + " with strides (" +
                               std::to_string(row_stride) + ", " + std::to_string(col_stride) +
                               ") but it has only " + std::to_string(length) + " elements");
  }
}

}  // namespace simdformer
