// fmaPeak(isa, iterations) and fmaPeakParallel(isa, iterations): the machine's
// FMA peak, measured by each ISA's peak loop, for the GEMM benchmark to
// report efficiency against.
#include <atomic>
#include <chrono>

#include "args.h"
#include "core/threadpool.h"
#include "errors.h"
#include "ops.h"

namespace simdformer {

namespace {

Napi::Object flops_result(Napi::Env env, double flops, double seconds) {
  Napi::Object result = Napi::Object::New(env);
  result.Set("flops", flops);
  result.Set("seconds", seconds);
  return result;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

Napi::Value fma_peak_method(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const KernelTable& kernels = to_kernels(env, "isa", info[0]);
    const size_t iterations = to_size(env, "iterations", info[1], 1);
    const auto start = std::chrono::steady_clock::now();
    const double flops = kernels.fma_peak(iterations);
    return flops_result(env, flops, seconds_since(start));
  });
}

Napi::Value fma_peak_parallel_method(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const KernelTable& kernels = to_kernels(env, "isa", info[0]);
    const size_t iterations = to_size(env, "iterations", info[1], 1);
    ThreadPool& pool = thread_pool();
    const size_t threads = pool.num_threads();
    std::atomic<double> flops{0};
    const auto start = std::chrono::steady_clock::now();
    // One task per thread: each runs the whole loop, so the wall time is the
    // time for `threads` cores working at once.
    pool.parallel_for(threads, [&](size_t, size_t) {
      const double done = kernels.fma_peak(iterations);
      double seen = flops.load();
      while (!flops.compare_exchange_weak(seen, seen + done)) {
      }
    });
    return flops_result(env, flops.load(), seconds_since(start));
  });
}

}  // namespace simdformer
