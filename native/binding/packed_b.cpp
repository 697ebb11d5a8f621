#include "packed_b.h"

#include "addon_data.h"
#include "args.h"
#include "core/executor.h"
#include "errors.h"

namespace simdformer {

namespace {

// What pack_b_method hands the constructor.
struct PackedBParts {
  SharedLinearWeight weight;
};

}  // namespace

Napi::Function PackedBHandle::define_class(Napi::Env env) {
  return DefineClass(env, "PackedB",
                     {
                         InstanceAccessor<&PackedBHandle::k>("k"),
                         InstanceAccessor<&PackedBHandle::n>("n"),
                         InstanceAccessor<&PackedBHandle::isa>("isa"),
                         InstanceAccessor<&PackedBHandle::bytes>("bytes"),
                     });
}

PackedBHandle* PackedBHandle::from_value(Napi::Env env, const Napi::Value& value) {
  if (!value.IsObject()) return nullptr;
  Napi::Object object = value.As<Napi::Object>();
  if (!object.InstanceOf(addon_data(env).packed_b_class.Value())) return nullptr;
  return Napi::ObjectWrap<PackedBHandle>::Unwrap(object);
}

PackedBHandle::PackedBHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PackedBHandle>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw type_error(info.Env(), "PackedB cannot be constructed from JavaScript; use packB()");
  }
  weight_ = std::move(info[0].As<Napi::External<PackedBParts>>().Data()->weight);
  Napi::MemoryManagement::AdjustExternalMemory(info.Env(), static_cast<int64_t>(weight_->packed.bytes()));
}

void PackedBHandle::Finalize(Napi::Env env) {
  if (weight_) Napi::MemoryManagement::AdjustExternalMemory(env, -static_cast<int64_t>(weight_->packed.bytes()));
}

Napi::Value PackedBHandle::k(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(weight_->packed.k()));
}
Napi::Value PackedBHandle::n(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(weight_->packed.n()));
}
Napi::Value PackedBHandle::isa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), weight_->kernels->name); }
Napi::Value PackedBHandle::bytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(weight_->packed.bytes()));
}

Napi::Value pack_b_method(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const FloatArray b = to_float32(env, "b", info[0]);
    const size_t k = to_size(env, "k", info[1], 1);
    const size_t n = to_size(env, "n", info[2], 1);
    const size_t row_stride = to_size(env, "rowStride", info[3], 0);
    const size_t col_stride = to_size(env, "colStride", info[4], 0);
    const KernelTable& kernels = to_kernels(env, "isa", info[5]);
    check_reach(env, "b", b.length, 0, k, row_stride, n, col_stride);
    auto* weight = new LinearWeight{
        pack_b(kernels, k, n,
               StridedMatrix{b.data, static_cast<ptrdiff_t>(row_stride), static_cast<ptrdiff_t>(col_stride)}),
        &kernels};
    // Counted in native_bytes() for as long as any plan or handle holds it.
    const int64_t bytes = static_cast<int64_t>(weight->packed.bytes());
    add_native_bytes(bytes);
    PackedBParts parts{SharedLinearWeight(weight, [bytes](const LinearWeight* w) {
      add_native_bytes(-bytes);
      delete w;
    })};
    return addon_data(env).packed_b_class.New({Napi::External<PackedBParts>::New(env, &parts)});
  });
}

}  // namespace simdformer
