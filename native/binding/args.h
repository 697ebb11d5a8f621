// Readers for the binding's arguments: each checks the JS value and throws
// the formula error (errors.h) naming the argument, the expectation and what
// was received. Nothing here computes.
#pragma once

#include <napi.h>

#include <cstddef>
#include <string>

#include "core/dispatch.h"

namespace simdformer {

// A view of a Float32Array's memory, valid while the call runs.
struct FloatArray {
  float* data = nullptr;
  size_t length = 0;
};

// Largest integer a JS number holds exactly.
constexpr size_t kMaxSafeInteger = (1ull << 53) - 1;

// An integer in [min, max].
size_t to_size(Napi::Env env, const std::string& name, const Napi::Value& value, size_t min,
               size_t max = kMaxSafeInteger);
double to_number(Napi::Env env, const std::string& name, const Napi::Value& value);
FloatArray to_float32(Napi::Env env, const std::string& name, const Napi::Value& value);
// undefined or null gives an empty view (data == nullptr).
FloatArray to_optional_float32(Napi::Env env, const std::string& name, const Napi::Value& value);
// undefined gives the active table; an unknown name is a TypeError, an ISA
// this CPU cannot run a RangeError (code ERR_SIMDFORMER_UNSUPPORTED_ISA).
const KernelTable& to_kernels(Napi::Env env, const std::string& name, const Napi::Value& value);
Activation to_activation(Napi::Env env, const std::string& name, const Napi::Value& value);
Napi::Object to_object(Napi::Env env, const std::string& name, const Napi::Value& value);

// a * b, or a RangeError naming `what` when it exceeds 2^53 - 1 (sizes from
// JavaScript must not wrap around in size_t arithmetic).
size_t checked_product(Napi::Env env, const std::string& what, size_t a, size_t b);

// Throws a RangeError unless every element of a rows x cols strided view
// starting at `offset` lies inside an array of `length` elements.
void check_reach(Napi::Env env, const std::string& name, size_t length, size_t offset, size_t rows,
                 size_t row_stride, size_t cols, size_t col_stride);

}  // namespace simdformer
