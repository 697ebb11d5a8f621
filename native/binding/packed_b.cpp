#include "packed_b.h"

#include <string>
#include <vector>

#include "addon_data.h"
#include "args.h"
#include "core/executor.h"
#include "core/pack_b_batch.h"
#include "errors.h"
#include "mapped_file.h"

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

namespace {

// A JS handle owning `packed`, counted in native_bytes() for as long as any
// plan or handle holds it (a slice of a pack_b_batch region is counted by
// its region instead, core/pack_b_batch.h).
Napi::Value new_handle(Napi::Env env, const KernelTable& kernels, PackedB packed) {
  auto* weight = new LinearWeight{std::move(packed), &kernels};
  const int64_t bytes = weight->packed.shares_storage() ? 0 : static_cast<int64_t>(weight->packed.bytes());
  add_native_bytes(bytes);
  PackedBParts parts{SharedLinearWeight(weight, [bytes](const LinearWeight* w) {
    add_native_bytes(-bytes);
    delete w;
  })};
  return addon_data(env).packed_b_class.New({Napi::External<PackedBParts>::New(env, &parts)});
}

// One B operand read from JS: `name` holds { b, k, n, rowStride, colStride }
// (or the same as positional arguments, see pack_b_method).
PackBRequest to_request(Napi::Env env, const std::string& name, const Napi::Value& b_value, const Napi::Value& k_value,
                        const Napi::Value& n_value, const Napi::Value& row_value, const Napi::Value& col_value) {
  const FloatArray b = to_float32(env, name + "b", b_value);
  PackBRequest request;
  request.k = to_size(env, name + "k", k_value, 1);
  request.n = to_size(env, name + "n", n_value, 1);
  const size_t row_stride = to_size(env, name + "rowStride", row_value, 0);
  const size_t col_stride = to_size(env, name + "colStride", col_value, 0);
  check_reach(env, name + "b", b.length, 0, request.k, row_stride, request.n, col_stride);
  request.b = StridedMatrix{b.data, static_cast<ptrdiff_t>(row_stride), static_cast<ptrdiff_t>(col_stride)};
  return request;
}

}  // namespace

Napi::Value pack_b_method(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const PackBRequest request = to_request(env, "", info[0], info[1], info[2], info[3], info[4]);
    const KernelTable& kernels = to_kernels(env, "isa", info[5]);
    return new_handle(env, kernels, pack_b(kernels, request.k, request.n, request.b));
  });
}

Napi::Value pack_b_batch_method(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsArray()) throw invalid_type(env, "operands", "an array of { b, k, n, rowStride, colStride }", info[0]);
    const Napi::Array operands = info[0].As<Napi::Array>();
    const KernelTable& kernels = to_kernels(env, "isa", info[1]);
    // Every operand is read and checked here, on the JS thread; the arrays
    // stay alive (held by `operands`) while the pool packs them.
    std::vector<PackBRequest> requests;
    requests.reserve(operands.Length());
    for (uint32_t i = 0; i < operands.Length(); ++i) {
      const std::string name = "operands[" + std::to_string(i) + "]";
      const Napi::Object operand = to_object(env, name, operands.Get(i));
      requests.push_back(to_request(env, name + ".", operand.Get("b"), operand.Get("k"), operand.Get("n"),
                                    operand.Get("rowStride"), operand.Get("colStride")));
    }
    // Once packed, a weight's unmodified pages of a mapped file leave the
    // resident set (they are only read again if JavaScript reads the tensor),
    // so a model loaded from a file costs its packed copy, not twice its size.
    const FilePageRelease file_pages;
    std::vector<PackedB> packed = pack_b_batch(kernels, requests, thread_pool(), [&](const PackBRequest& request) {
      const size_t span = (request.k - 1) * static_cast<size_t>(request.b.row_stride) +
                          (request.n - 1) * static_cast<size_t>(request.b.col_stride) + 1;
      file_pages.release(request.b.data, span * sizeof(float));
    });
    Napi::Array handles = Napi::Array::New(env, packed.size());
    for (uint32_t i = 0; i < packed.size(); ++i) handles.Set(i, new_handle(env, kernels, std::move(packed[i])));
    return handles;
  });
}

}  // namespace simdformer
