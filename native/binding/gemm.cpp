// gemm(args): C[b] = act(A[b] · B[b] + bias), see binding.d.ts GemmArgs.
#include <vector>

#include "args.h"
#include "core/gemm.h"
#include "errors.h"
#include "ops.h"
#include "packed_b.h"

namespace simdformer {

namespace {

// Offsets of each batch's operand: a Float64Array of `batch` integers, or all 0.
std::vector<size_t> read_offsets(Napi::Env env, const std::string& name, const Napi::Value& value, size_t batch) {
  std::vector<size_t> offsets(batch, 0);
  if (value.IsUndefined() || value.IsNull()) return offsets;
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      value.As<Napi::TypedArray>().ElementLength() != batch) {
    throw invalid_type(env, name, "a Float64Array of length batch (" + std::to_string(batch) + ")", value);
  }
  Napi::Float64Array array = value.As<Napi::Float64Array>();
  for (size_t i = 0; i < batch; ++i) {
    offsets[i] = to_size(env, name + "[" + std::to_string(i) + "]", Napi::Number::New(env, array[i]), 0);
  }
  return offsets;
}

}  // namespace

Napi::Value gemm_method(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const Napi::Object args = to_object(env, "args", info[0]);
    const KernelTable& kernels = to_kernels(env, "args.isa", args.Get("isa"));
    GemmProblem problem;
    problem.batch = to_size(env, "args.batch", args.Get("batch"), 1);
    problem.m = to_size(env, "args.m", args.Get("m"), 1);
    problem.n = to_size(env, "args.n", args.Get("n"), 1);
    problem.k = to_size(env, "args.k", args.Get("k"), 1);
    const size_t m = problem.m, n = problem.n, k = problem.k, batch = problem.batch;

    const FloatArray a = to_float32(env, "args.a", args.Get("a"));
    const size_t a_row_stride = to_size(env, "args.aRowStride", args.Get("aRowStride"), 0);
    const size_t a_col_stride = to_size(env, "args.aColStride", args.Get("aColStride"), 0);
    const std::vector<size_t> a_offsets = read_offsets(env, "args.aOffsets", args.Get("aOffsets"), batch);
    for (size_t i = 0; i < batch; ++i) check_reach(env, "args.a", a.length, a_offsets[i], m, a_row_stride, k, a_col_stride);
    problem.a = StridedMatrix{a.data, static_cast<ptrdiff_t>(a_row_stride), static_cast<ptrdiff_t>(a_col_stride)};
    problem.a_offsets = a_offsets.data();

    const Napi::Value b_value = args.Get("b");
    const PackedBHandle* packed = PackedBHandle::from_value(env, b_value);
    std::vector<size_t> b_offsets;
    if (packed != nullptr) {
      if (packed->packed().k() != k || packed->packed().n() != n) {
        throw range_error(env, "Expected args.b packed as [k, n] = [" + std::to_string(k) + ", " + std::to_string(n) +
                                   "] but received a PackedB of [" + std::to_string(packed->packed().k()) + ", " +
                                   std::to_string(packed->packed().n()) + "]");
      }
      if (&packed->kernels() != &kernels) {
        throw range_error(env, "Expected args.b packed for ISA '" + std::string(kernels.name) +
                                   "' but received a PackedB packed for '" + packed->kernels().name + "'");
      }
    } else {
      if (!b_value.IsTypedArray()) throw invalid_type(env, "args.b", "a Float32Array or PackedB", b_value);
      const FloatArray b = to_float32(env, "args.b", b_value);
      const size_t b_row_stride = to_size(env, "args.bRowStride", args.Get("bRowStride"), 0);
      const size_t b_col_stride = to_size(env, "args.bColStride", args.Get("bColStride"), 0);
      b_offsets = read_offsets(env, "args.bOffsets", args.Get("bOffsets"), batch);
      for (size_t i = 0; i < batch; ++i) check_reach(env, "args.b", b.length, b_offsets[i], k, b_row_stride, n, b_col_stride);
      problem.b = StridedMatrix{b.data, static_cast<ptrdiff_t>(b_row_stride), static_cast<ptrdiff_t>(b_col_stride)};
      problem.b_offsets = b_offsets.data();
    }

    const FloatArray c = to_float32(env, "args.c", args.Get("c"));
    problem.ldc = to_size(env, "args.ldc", args.Get("ldc"), n);
    // C[b](i, j) at b * cBatchStride + i * ldc + j; m * ldc is checked first so
    // that the last element of one batch entry, (m - 1) * ldc + n - 1, cannot wrap.
    const size_t c_span = checked_product(env, "args.m * args.ldc", m, problem.ldc);
    problem.c_batch_stride = to_size(env, "args.cBatchStride", args.Get("cBatchStride"), batch > 1 ? c_span : 0);
    check_reach(env, "args.c", c.length, c_span - problem.ldc + n - 1, batch, problem.c_batch_stride, 1, 0);
    problem.c = c.data;

    const FloatArray bias = to_optional_float32(env, "args.bias", args.Get("bias"));
    if (bias.data != nullptr && bias.length != n) {
      throw range_error(env, "Expected args.bias of length n (" + std::to_string(n) + ") but received a Float32Array of length " +
                                 std::to_string(bias.length));
    }
    problem.bias = bias.data;
    problem.activation = to_activation(env, "args.activation", args.Get("activation"));

    gemm(kernels, problem, thread_pool(), packed != nullptr ? &packed->packed() : nullptr);
    return env.Undefined();
  });
}

}  // namespace simdformer
