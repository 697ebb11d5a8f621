#include "packed_b.h"

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "addon_data.h"
#include "args.h"
#include "core/executor.h"
#include "core/pack_b_batch.h"
#include "core/threadpool.h"
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
                         InstanceAccessor<&PackedBHandle::ready>("ready"),
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
Napi::Value PackedBHandle::ready(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), weight_->packed.ready());
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

// The operands array of packBBatch and packBBatchInBackground, every operand
// read and checked (on the JS thread).
std::vector<PackBRequest> to_requests(Napi::Env env, const Napi::Value& value) {
  if (!value.IsArray()) throw invalid_type(env, "operands", "an array of { b, k, n, rowStride, colStride }", value);
  const Napi::Array operands = value.As<Napi::Array>();
  std::vector<PackBRequest> requests;
  requests.reserve(operands.Length());
  for (uint32_t i = 0; i < operands.Length(); ++i) {
    const std::string name = "operands[" + std::to_string(i) + "]";
    const Napi::Object operand = to_object(env, name, operands.Get(i));
    requests.push_back(to_request(env, name + ".", operand.Get("b"), operand.Get("k"), operand.Get("n"),
                                  operand.Get("rowStride"), operand.Get("colStride")));
  }
  return requests;
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
    // The arrays stay alive (held by the operands) while the pool packs them.
    const std::vector<PackBRequest> requests = to_requests(env, info[0]);
    const KernelTable& kernels = to_kernels(env, "isa", info[1]);
    // Once packed, a weight's unmodified pages of a mapped file leave the
    // resident set (they are only read again if JavaScript reads the tensor),
    // so a model loaded from a file costs its packed copy, not twice its size.
    const FilePageRelease file_pages;
    std::vector<PackedB> packed = pack_b_batch(kernels, requests, thread_pool(), [&](const PackBRequest& request) {
      file_pages.release(request.b.data, source_bytes(request));
    });
    Napi::Array handles = Napi::Array::New(env, packed.size());
    for (uint32_t i = 0; i < packed.size(); ++i) handles.Set(i, new_handle(env, kernels, std::move(packed[i])));
    return handles;
  });
}

namespace {

// A background pack batch as an executor job. It packs in turns: a turn
// goes on while no other job waits, and otherwise ends after kTurn, the job
// then waiting behind the forwards queued meanwhile. So a forward called
// while the weights are being packed waits a few milliseconds at most
// (running on the weights as they are, at lower speed), and the packing
// still advances between forwards that follow each other closely.
class PackJob : public LinkedJob, public std::enable_shared_from_this<PackJob> {
 public:
  static constexpr std::chrono::milliseconds kTurn{3};

  PackJob(std::shared_ptr<PackBatch> batch, std::shared_ptr<EnvLink> link, napi_deferred deferred)
      : batch_(std::move(batch)), link_(std::move(link)), deferred_(deferred),
        packed_(new std::atomic<bool>[batch_->requests().size()]),
        released_(batch_->requests().size(), false) {
    for (size_t i = 0; i < batch_->requests().size(); ++i) packed_[i].store(false, std::memory_order_relaxed);
  }

  bool execute() override {
    const auto start = std::chrono::steady_clock::now();
    const bool done = batch_->pack(
        thread_pool(),
        [&] {
          return cancelled.load(std::memory_order_relaxed) ||
                 (std::chrono::steady_clock::now() - start >= kTurn && executor().has_waiting());
        },
        [this](const PackBRequest& request) {
          packed_[static_cast<size_t>(&request - batch_->requests().data())].store(true, std::memory_order_release);
          // Its source pages are let go of on the JavaScript thread.
          post_to_env(*link_, shared_from_this());
        });
    if (!done && !cancelled.load(std::memory_order_relaxed)) run_again_later();
    return true;
  }

  void finish(bool) override {
    leave_link(*link_, this);
    finished_.store(true, std::memory_order_release);
    post_to_env(*link_, shared_from_this());
  }

  // Lets go of the resident file pages of the operands packed so far (their
  // values stay in the page cache), and settles the Promise once the batch
  // is finished. On the JavaScript thread, which owns the tensors' memory: no
  // write to it can come between FilePageRelease's look at a page and its
  // release (a written page is a private copy, kept).
  void on_js_thread(Napi::Env env) override {
    const FilePageRelease file_pages;
    for (size_t i = 0; i < released_.size(); ++i) {
      if (released_[i] || !packed_[i].load(std::memory_order_acquire)) continue;
      const PackBRequest& request = batch_->requests()[i];
      file_pages.release(request.b.data, source_bytes(request));
      released_[i] = true;
    }
    if (settled_ || !finished_.load(std::memory_order_acquire)) return;
    settled_ = true;
    job_settled(env, *link_);
    // From a thread-safe-function callback no C++ exception may escape.
    try {
      Napi::HandleScope scope(env);
      if (batch_->out_of_memory()) {
        napi_reject_deferred(env, deferred_, range_error(env, "simdformer: out of memory", "ERR_SIMDFORMER_OUT_OF_MEMORY").Value());
      } else {
        napi_resolve_deferred(env, deferred_, env.Undefined());
      }
    } catch (...) {
    }
  }

 private:
  std::shared_ptr<PackBatch> batch_;
  std::shared_ptr<EnvLink> link_;
  napi_deferred deferred_;
  std::unique_ptr<std::atomic<bool>[]> packed_;  // per operand: every piece written
  std::vector<bool> released_;                   // JavaScript thread only
  std::atomic<bool> finished_{false};
  bool settled_ = false;                         // JavaScript thread only
};

}  // namespace

Napi::Value pack_b_batch_in_background_method(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    std::vector<PackBRequest> requests = to_requests(env, info[0]);
    const KernelTable& kernels = to_kernels(env, "isa", info[1]);
    // Read on other threads after this call returns: only memory of a
    // mapped file, held mapped by a share of it, qualifies.
    for (PackBRequest& request : requests) {
      request.owner = mapped_file_owner(request.b.data, source_bytes(request));
      if (!request.owner) return env.Null();
    }
    if (requests.empty()) return env.Null();
    BackgroundPackBatch background = pack_b_batch_in_background(kernels, std::move(requests));
    const std::shared_ptr<EnvLink>& link = addon_data(env).link;
    napi_deferred deferred;
    napi_value promise;
    NAPI_THROW_IF_FAILED(env, napi_create_promise(env, &deferred, &promise), Napi::Value());
    Napi::Array handles = Napi::Array::New(env, background.packed.size());
    for (uint32_t i = 0; i < background.packed.size(); ++i) {
      handles.Set(i, new_handle(env, kernels, std::move(background.packed[i])));
    }
    auto job = std::make_shared<PackJob>(std::move(background.batch), link, deferred);
    try {
      queue_linked_job(env, *link, job);
    } catch (...) {
      // Nothing was queued: settle the promise we made, then report synchronously.
      napi_resolve_deferred(env, deferred, env.Undefined());
      throw;
    }
    Napi::Object result = Napi::Object::New(env);
    result.Set("handles", handles);
    result.Set("done", Napi::Value(env, promise));
    return result;
  });
}

}  // namespace simdformer
