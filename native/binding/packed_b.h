// JS handle for a B operand packed once for one ISA's micro-kernel (core/gemm.h
// PackedB). Created by packB(); gemm() accepts it in place of a Float32Array.
#pragma once

#include <napi.h>

#include <memory>

#include "core/dispatch.h"
#include "core/gemm.h"
#include "core/plan.h"

namespace simdformer {

class PackedBHandle : public Napi::ObjectWrap<PackedBHandle> {
 public:
  static Napi::Function define_class(Napi::Env env);
  // nullptr unless `value` is a PackedBHandle of this environment.
  static PackedBHandle* from_value(Napi::Env env, const Napi::Value& value);

  explicit PackedBHandle(const Napi::CallbackInfo& info);
  void Finalize(Napi::Env env) override;

  const PackedB& packed() const { return weight_->packed; }
  const KernelTable& kernels() const { return *weight_->kernels; }
  // Shared with the plans that use it, which keep it alive.
  const SharedLinearWeight& shared() const { return weight_; }

 private:
  Napi::Value k(const Napi::CallbackInfo& info);
  Napi::Value n(const Napi::CallbackInfo& info);
  Napi::Value isa(const Napi::CallbackInfo& info);
  Napi::Value bytes(const Napi::CallbackInfo& info);
  Napi::Value ready(const Napi::CallbackInfo& info);

  SharedLinearWeight weight_;
};

// packB(b, k, n, rowStride, colStride, isa?) -> PackedB
Napi::Value pack_b_method(const Napi::CallbackInfo& info);
// packBBatch([{ b, k, n, rowStride, colStride }, ...], isa?) -> PackedB[], packed in parallel on the pool
Napi::Value pack_b_batch_method(const Napi::CallbackInfo& info);
// packBBatchInBackground(operands, isa?) -> { handles: PackedB[], done: Promise<void> } | null,
// packed on the executor in turns (operands in mapped files only)
Napi::Value pack_b_batch_in_background_method(const Napi::CallbackInfo& info);

}  // namespace simdformer
