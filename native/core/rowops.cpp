// Row-wise op drivers (see rowops.h): split rows over the thread pool in
// tasks of at least kTaskElements values, and call the kernel table's row
// micro-kernel on each row. A row's result depends only on its own values,
// never on how rows were split, so any thread count gives the same bits.
#include "rowops.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>
#include <vector>

namespace simdformer {

namespace {

// Values per task: measured rows of 512 take 0.24 ns per value for AVX-512
// softmax and 0.55 for AVX2, so a task is ~8-18 us of work, well above the
// cost of handing it to a spinning pool thread.
constexpr size_t kTaskElements = 32768;
// Tasks per thread at most, so uneven progress still balances.
constexpr size_t kTasksPerThread = 4;
// Strided softmax (inner > 1) moves this many neighbouring columns per gather:
// 16 floats are one 64-byte cache line of every source row.
constexpr size_t kGatherColumns = 16;

// Splits `units` work units of `unit_elements` values each into tasks of
// units_per_task consecutive units.
struct Split {
  size_t num_tasks;
  size_t units_per_task;
};

Split split_work(size_t units, size_t unit_elements, const ThreadPool& pool) {
  const size_t units_by_size = std::max<size_t>(1, kTaskElements / std::max<size_t>(1, unit_elements));
  const size_t max_tasks = pool.num_threads() * kTasksPerThread;
  size_t units_per_task = std::max(units_by_size, (units + max_tasks - 1) / max_tasks);
  units_per_task = std::min(units_per_task, std::max<size_t>(1, units));
  return Split{(units + units_per_task - 1) / units_per_task, units_per_task};
}

// Runs body(first, last, thread) on the unit ranges [first, last) of
// split_work's tasks; `thread` indexes per-thread scratch.
template <class Body>
void for_each_range(size_t units, size_t unit_elements, ThreadPool& pool, const Body& body) {
  const Split split = split_work(units, unit_elements, pool);
  pool.parallel_for(split.num_tasks, [&](size_t task, size_t thread) {
    const size_t first = task * split.units_per_task;
    body(first, std::min(units, first + split.units_per_task), thread);
  });
}

}  // namespace

void softmax(const KernelTable& kernels, size_t outer, size_t n, size_t inner, const float* x, float scale,
             const float* mask, size_t mask_rows, float* y, ThreadPool& pool) {
  if (outer == 0 || n == 0 || inner == 0) return;
  const SoftmaxRowFn row_softmax = kernels.softmax_row;

  if (inner == 1) {
    // x, y: [outer, n] contiguous rows; mask: [mask_rows, n].
    for_each_range(outer, n, pool, [&](size_t first, size_t last, size_t) {
      for (size_t row = first; row < last; ++row) {
        const float* row_mask = mask != nullptr ? mask + (row % mask_rows) * n : nullptr;
        row_softmax(n, x + row * n, scale, row_mask, y + row * n);
      }
    });
    return;
  }

  // x, y: [outer, n, inner]; a unit is kGatherColumns neighbouring columns
  // i0.. of one o, transposed into this thread's scratch [columns][n], run in
  // place there, and transposed back. No mask here (rowops.h allows one only
  // with inner == 1). Scratch is thread_local, so a pool resized meanwhile
  // cannot make a thread index past it; a failed allocation is rethrown after
  // the region, since tasks must not throw.
  const size_t blocks_per_outer = (inner + kGatherColumns - 1) / kGatherColumns;
  const size_t scratch_floats = kGatherColumns * n;
  std::atomic<bool> out_of_memory{false};
  for_each_range(outer * blocks_per_outer, scratch_floats, pool, [&](size_t first, size_t last, size_t) {
    thread_local std::vector<float> scratch;
    try {
      if (scratch.size() < scratch_floats) scratch.resize(scratch_floats);
    } catch (const std::bad_alloc&) {
      out_of_memory.store(true);
      return;
    }
    float* rows = scratch.data();
    for (size_t unit = first; unit < last; ++unit) {
      const size_t o = unit / blocks_per_outer;
      const size_t i0 = (unit % blocks_per_outer) * kGatherColumns;
      const size_t columns = std::min(kGatherColumns, inner - i0);
      const float* source = x + o * n * inner + i0;
      for (size_t j = 0; j < n; ++j) {
        for (size_t c = 0; c < columns; ++c) rows[c * n + j] = source[j * inner + c];
      }
      for (size_t c = 0; c < columns; ++c) row_softmax(n, rows + c * n, scale, nullptr, rows + c * n);
      float* target = y + o * n * inner + i0;
      for (size_t j = 0; j < n; ++j) {
        for (size_t c = 0; c < columns; ++c) target[j * inner + c] = rows[c * n + j];
      }
    }
  });
  if (out_of_memory.load()) throw std::bad_alloc();
}

void layer_norm(const KernelTable& kernels, size_t rows, size_t n, const float* x, float eps, const float* weight,
                const float* bias, float* y, ThreadPool& pool) {
  if (rows == 0 || n == 0) return;
  const LayerNormRowFn row_layer_norm = kernels.layernorm_row;
  for_each_range(rows, n, pool, [&](size_t first, size_t last, size_t) {
    for (size_t row = first; row < last; ++row) row_layer_norm(n, x + row * n, eps, weight, bias, y + row * n);
  });
}

void activation(const KernelTable& kernels, Activation act, size_t count, const float* x, float* y,
                ThreadPool& pool) {
  if (count == 0) return;
  if (act == Activation::kNone) {
    if (x != y) std::memmove(y, x, count * sizeof(float));
    return;
  }
  const UnaryFn unary = act == Activation::kRelu ? kernels.relu : kernels.gelu;
  // Tasks start at multiples of 64 values, so only the last one has a tail.
  constexpr size_t kUnit = 64;
  const size_t units = (count + kUnit - 1) / kUnit;
  for_each_range(units, kUnit, pool, [&](size_t first, size_t last, size_t) {
    const size_t begin = first * kUnit;
    const size_t end = std::min(count, last * kUnit);
    unary(end - begin, x + begin, y + begin);
  });
}

}  // namespace simdformer
