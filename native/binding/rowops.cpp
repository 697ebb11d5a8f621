// softmax(args), layerNorm(args), activation(kind, x, y, isa?): see binding.d.ts.
#include "core/rowops.h"

#include "args.h"
#include "errors.h"
#include "ops.h"

namespace simdformer {

namespace {

void check_length(Napi::Env env, const std::string& name, const FloatArray& array, size_t expected) {
  if (array.length != expected) {
    throw range_error(env, "Expected " + name + " of length " + std::to_string(expected) +
                               " but received a Float32Array of length " + std::to_string(array.length));
  }
}


}  // namespace

Napi::Value softmax_method(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const Napi::Object args = to_object(env, "args", info[0]);
    const KernelTable& kernels = to_kernels(env, "args.isa", args.Get("isa"));
    const size_t outer = to_size(env, "args.outer", args.Get("outer"), 1);
    const size_t n = to_size(env, "args.n", args.Get("n"), 1);
    const size_t inner = to_size(env, "args.inner", args.Get("inner"), 1);
    const size_t count = checked_product(env, "args.outer * args.n * args.inner",
                                         checked_product(env, "args.outer * args.n", outer, n), inner);
    const float scale = static_cast<float>(to_number(env, "args.scale", args.Get("scale")));
    const FloatArray x = to_float32(env, "args.x", args.Get("x"));
    const FloatArray y = to_float32(env, "args.y", args.Get("y"));
    check_length(env, "args.x", x, count);
    check_length(env, "args.y", y, count);
    const FloatArray mask = to_optional_float32(env, "args.mask", args.Get("mask"));
    size_t mask_rows = 0;
    if (mask.data != nullptr) {
      if (inner != 1) throw range_error(env, "Expected args.inner to be 1 when args.mask is given but received " + std::to_string(inner));
      mask_rows = to_size(env, "args.maskRows", args.Get("maskRows"), 1, outer);
      if (outer % mask_rows != 0) {
        throw range_error(env, "Expected args.maskRows to divide args.outer (" + std::to_string(outer) +
                                   ") but received " + std::to_string(mask_rows));
      }
      check_length(env, "args.mask", mask, mask_rows * n);
    }
    softmax(kernels, outer, n, inner, x.data, scale, mask.data, mask_rows, y.data, thread_pool());
    return env.Undefined();
  });
}

Napi::Value layer_norm_method(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const Napi::Object args = to_object(env, "args", info[0]);
    const KernelTable& kernels = to_kernels(env, "args.isa", args.Get("isa"));
    const size_t rows = to_size(env, "args.rows", args.Get("rows"), 1);
    const size_t n = to_size(env, "args.n", args.Get("n"), 1);
    const size_t count = checked_product(env, "args.rows * args.n", rows, n);
    const float eps = static_cast<float>(to_number(env, "args.eps", args.Get("eps")));
    const FloatArray x = to_float32(env, "args.x", args.Get("x"));
    const FloatArray y = to_float32(env, "args.y", args.Get("y"));
    check_length(env, "args.x", x, count);
    check_length(env, "args.y", y, count);
    const FloatArray weight = to_optional_float32(env, "args.weight", args.Get("weight"));
    const FloatArray bias = to_optional_float32(env, "args.bias", args.Get("bias"));
    if (weight.data != nullptr) check_length(env, "args.weight", weight, n);
    if (bias.data != nullptr) check_length(env, "args.bias", bias, n);
    layer_norm(kernels, rows, n, x.data, eps, weight.data, bias.data, y.data, thread_pool());
    return env.Undefined();
  });
}

Napi::Value activation_method(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const Activation kind = to_activation(env, "kind", info[0]);
    const FloatArray x = to_float32(env, "x", info[1]);
    const FloatArray y = to_float32(env, "y", info[2]);
    check_length(env, "y", y, x.length);
    const KernelTable& kernels = to_kernels(env, "isa", info[3]);
    activation(kernels, kind, x.length, x.data, y.data, thread_pool());
    return env.Undefined();
  });
}

}  // namespace simdformer
