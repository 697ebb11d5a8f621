#include "plan.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>

#include "executor.h"
#include "rowops.h"

namespace simdformer {

namespace {

constexpr size_t kNone = SIZE_MAX;

std::string step_name(size_t index, const Step& step) {
  static const char* const names[] = {"linear",     "layerNorm", "add",       "additiveMask", "attention",
                                      "averageHeads", "appendRow", "padColumn", "embedding"};
  return "step " + std::to_string(index) + " (" + names[static_cast<int>(step.kind)] + ")";
}

// Float offsets for every float/bool value and index offsets for int64 ones,
// reusing the space of values whose last reader has run (first fit over a
// free list). Inputs and outputs keep their space for the whole run.
void assign_offsets(const std::vector<ValueSpec>& values, const std::vector<Step>& steps,
                    const std::vector<size_t>& inputs, const std::vector<size_t>& outputs,
                    std::vector<size_t>& offsets, size_t& float_total, size_t& index_total) {
  const size_t count = values.size();
  offsets.assign(count, 0);
  std::vector<size_t> last_use(count, 0);
  std::vector<bool> pinned(count, false), ever_read(count, false);
  for (size_t id : inputs) pinned[id] = true;
  for (size_t id : outputs) pinned[id] = true;
  for (size_t s = 0; s < steps.size(); ++s) {
    for (size_t id : steps[s].inputs) {
      if (id == kNone) continue;
      last_use[id] = s;
      ever_read[id] = true;
    }
  }
  std::map<size_t, size_t> free_blocks;  // offset -> size, floats
  float_total = 0;
  index_total = 0;
  auto allocate = [&](size_t size) {
    for (auto it = free_blocks.begin(); it != free_blocks.end(); ++it) {
      if (it->second >= size) {
        const size_t offset = it->first, rest = it->second - size;
        free_blocks.erase(it);
        if (rest > 0) free_blocks[offset + size] = rest;
        return offset;
      }
    }
    const size_t offset = float_total;
    float_total += size;
    return offset;
  };
  auto release = [&](size_t offset, size_t size) {
    auto next = free_blocks.lower_bound(offset);
    if (next != free_blocks.end() && offset + size == next->first) {
      size += next->second;
      next = free_blocks.erase(next);
    }
    if (next != free_blocks.begin()) {
      auto previous = std::prev(next);
      if (previous->first + previous->second == offset) {
        previous->second += size;
        return;
      }
    }
    free_blocks[offset] = size;
  };
  // 16 floats (64 bytes) of alignment per value.
  auto padded = [](size_t n) { return (std::max<size_t>(n, 1) + 15) / 16 * 16; };
  for (size_t id : inputs) {
    if (values[id].type == ValueType::kInt64) {
      offsets[id] = index_total;
      index_total += values[id].count;
    } else {
      offsets[id] = allocate(padded(values[id].count));
    }
  }
  for (size_t s = 0; s < steps.size(); ++s) {
    for (size_t out : {steps[s].output, steps[s].output2}) {
      if (out != kNone) offsets[out] = allocate(padded(values[out].count));
    }
    for (size_t id : steps[s].inputs) {
      if (id == kNone || pinned[id] || last_use[id] != s || values[id].type == ValueType::kInt64) continue;
      last_use[id] = kNone;  // released once even if a step reads it twice
      release(offsets[id], padded(values[id].count));
    }
    // A step output nobody reads (the per-head weights when only averages
    // are returned) is freed right after its step.
    for (size_t out : {steps[s].output, steps[s].output2}) {
      if (out != kNone && !pinned[out] && !ever_read[out]) release(offsets[out], padded(values[out].count));
    }
  }
}

// Folds `out = p + r` (a plain kAdd, p the output of a kLinear step that
// nothing else reads) into that step: the GEMM adds r to each block of C
// while it is in cache (GemmProblem::residual), which saves the add's pass
// over memory and its parallel region, two per transformer layer. r must be
// written before the Linear step runs. Float addition commutes, so results
// are the same bits.
void fuse_residual_adds(std::vector<Step>& steps, const std::vector<size_t>& outputs, size_t value_count) {
  std::vector<size_t> readers(value_count, 0), producer(value_count, kNone);
  for (size_t s = 0; s < steps.size(); ++s) {
    for (size_t id : steps[s].inputs) {
      if (id != kNone) ++readers[id];
    }
    producer[steps[s].output] = s;
  }
  for (size_t id : outputs) ++readers[id];
  std::vector<bool> folded(steps.size(), false);
  for (size_t s = 0; s < steps.size(); ++s) {
    const Step& add = steps[s];
    if (add.kind != StepKind::kAdd || add.dims[1] != 1) continue;  // mid = 1: elementwise, same sizes
    for (size_t side = 0; side < 2; ++side) {
      const size_t product = add.inputs[side], residual = add.inputs[1 - side];
      const size_t linear_step = producer[product];
      if (linear_step == kNone || residual == product || readers[product] != 1) continue;
      Step& linear = steps[linear_step];
      if (linear.kind != StepKind::kLinear || linear.inputs.size() != 1) continue;
      if (producer[residual] != kNone && producer[residual] > linear_step) continue;
      linear.inputs.push_back(residual);
      linear.output = add.output;
      producer[add.output] = linear_step;
      folded[s] = true;
      break;
    }
  }
  size_t kept = 0;
  for (size_t s = 0; s < steps.size(); ++s) {
    if (folded[s]) continue;
    if (kept != s) steps[kept] = std::move(steps[s]);  // never a self-move (it would empty the vectors)
    ++kept;
  }
  steps.resize(kept);
}

// Sizes come from JavaScript (each up to 2^53): every product in check() is
// taken in 128 bits so that none can wrap and pass a check it should fail.
using Wide = unsigned __int128;

Wide wide(size_t x) { return static_cast<Wide>(x); }

// True if the last element of a strided [outer, rows, width] view lies inside `count`.
bool view_fits(size_t count, size_t offset, size_t outer, size_t outer_stride, size_t rows, size_t row_stride,
               Wide width) {
  if (outer == 0 || rows == 0 || width == 0) return true;
  const Wide last = wide(offset) + wide(outer - 1) * outer_stride + wide(rows - 1) * row_stride + (width - 1);
  return last < count;
}

}  // namespace

Plan::Plan(std::vector<ValueSpec> values, std::vector<Step> steps, std::vector<size_t> inputs,
           std::vector<size_t> outputs)
    : values_(std::move(values)), steps_(std::move(steps)), inputs_(std::move(inputs)), outputs_(std::move(outputs)) {
  problem_ = check();
  if (!problem_.empty()) return;
  fuse_residual_adds(steps_, outputs_, values_.size());
  assign_offsets(values_, steps_, inputs_, outputs_, offsets_, arena_floats_, index_count_);
}

std::string Plan::check() const {
  const size_t count = values_.size();
  Wide total = 0;
  for (const ValueSpec& value : values_) total += value.count;
  if (total >= (wide(1) << 53)) return "the plan's values hold more than 2^53 elements";
  std::vector<bool> written(count, false);
  for (size_t id : inputs_) {
    if (id >= count) return "input value " + std::to_string(id) + " does not exist";
    if (written[id]) return "value " + std::to_string(id) + " is an input twice";
    written[id] = true;
  }
  auto is_float = [&](size_t id) { return values_[id].type != ValueType::kInt64; };
  for (size_t s = 0; s < steps_.size(); ++s) {
    const Step& step = steps_[s];
    const std::string where = step_name(s, step);
    for (size_t id : step.inputs) {
      if (id == kNone) continue;
      if (id >= count) return where + " reads value " + std::to_string(id) + ", which does not exist";
      if (!written[id]) return where + " reads value " + std::to_string(id) + " before it is written";
    }
    for (size_t out : {step.output, step.output2}) {
      if (out == kNone) continue;
      if (out >= count) return where + " writes value " + std::to_string(out) + ", which does not exist";
      if (written[out]) return where + " writes value " + std::to_string(out) + ", which is already written";
      if (values_[out].type != ValueType::kFloat32) return where + " must write a float32 value";
      written[out] = true;
    }
    if (step.output == kNone) return where + " has no output";
    const size_t out_count = values_[step.output].count;
    auto input = [&](size_t i) { return i < step.inputs.size() ? step.inputs[i] : kNone; };
    auto size_error = [&](const std::string& what) { return where + ": " + what; };
    const size_t x = input(0);
    if (step.kind != StepKind::kAttention && (x == kNone)) return size_error("missing input");
    switch (step.kind) {
      case StepKind::kLinear: {
        if (!step.weight || !is_float(x)) return size_error("needs a float input and a packed weight");
        const size_t k = step.weight->packed.k(), n = step.weight->packed.n();
        if (values_[x].count % k != 0 || out_count != wide(values_[x].count / k) * n) {
          return size_error("input of " + std::to_string(values_[x].count) + " elements and output of " +
                            std::to_string(out_count) + " do not fit a [" + std::to_string(n) + ", " +
                            std::to_string(k) + "] weight");
        }
        if (step.param0 && step.param0->size() != n) return size_error("bias must have " + std::to_string(n) + " elements");
        break;
      }
      case StepKind::kLayerNorm: {
        const size_t n = step.dims[0];
        if (n == 0 || !is_float(x) || values_[x].count % n != 0 || out_count != values_[x].count) {
          return size_error("input and output must be whole rows of " + std::to_string(n));
        }
        if ((step.param0 && step.param0->size() != n) || (step.param1 && step.param1->size() != n)) {
          return size_error("weight and bias must have " + std::to_string(n) + " elements");
        }
        break;
      }
      case StepKind::kAdd: {
        const size_t b = input(1), outer = step.dims[0], mid = step.dims[1], inner = step.dims[2];
        if (b == kNone || !is_float(x) || !is_float(b)) return size_error("needs two float inputs");
        const Wide total = wide(outer) * mid * inner;
        if (total != values_[x].count || total != out_count ||
            wide(outer) * inner != values_[b].count) {
          return size_error("sizes do not match [outer, mid, inner] = [" + std::to_string(outer) + ", " +
                            std::to_string(mid) + ", " + std::to_string(inner) + "]");
        }
        break;
      }
      case StepKind::kAdditiveMask:
        if (!is_float(x) || out_count != values_[x].count) return size_error("output must match the mask");
        break;
      case StepKind::kAttention: {
        const AttentionProblem& a = step.attention;
        const size_t q = input(0), k = input(1), v = input(2), mask = input(3), padding = input(4);
        if (q == kNone || k == kNone || v == kNone || !is_float(q) || !is_float(k) || !is_float(v)) {
          return size_error("needs float q, k and v");
        }
        if (a.heads == 0 || a.head_dim == 0 || a.v_head_dim == 0 || a.src_len == 0) {
          return size_error("heads, head sizes and source length must be positive");
        }
        const Wide width_q = wide(a.heads) * a.head_dim, width_v = wide(a.heads) * a.v_head_dim;
        const size_t* offset = step.view_offsets;
        if (!view_fits(values_[q].count, offset[0], a.batch, a.q.batch_stride, a.tgt_len, a.q.seq_stride, width_q) ||
            !view_fits(values_[k].count, offset[1], a.batch, a.k.batch_stride, a.src_len, a.k.seq_stride, width_q) ||
            !view_fits(values_[v].count, offset[2], a.batch, a.v.batch_stride, a.src_len, a.v.seq_stride, width_v) ||
            !view_fits(out_count, 0, a.batch, a.out_batch_stride, a.tgt_len, a.out_seq_stride, width_v)) {
          return size_error("q, k, v or output too small for the attention geometry");
        }
        const Wide scores = wide(a.tgt_len) * a.src_len;
        if (mask != kNone && (!is_float(mask) || values_[mask].count != (a.attn_mask_per_head ? wide(a.batch) * a.heads * scores : scores))) {
          return size_error("attention mask has the wrong size");
        }
        if (padding != kNone && (!is_float(padding) || values_[padding].count != wide(a.batch) * a.src_len)) {
          return size_error("key padding mask has the wrong size");
        }
        if (step.output2 != kNone && values_[step.output2].count != wide(a.batch) * a.heads * scores) {
          return size_error("attention weights have the wrong size");
        }
        break;
      }
      case StepKind::kAverageHeads:
        if (!is_float(x) || values_[x].count != wide(step.dims[0]) * step.dims[1] * step.dims[2] ||
            out_count != wide(step.dims[0]) * step.dims[2] || step.dims[1] == 0) {
          return size_error("sizes do not match [batch, heads, size]");
        }
        break;
      case StepKind::kAppendRow: {
        const size_t outer = step.dims[0], rows = step.dims[1], width = step.dims[2];
        if (!is_float(x) || values_[x].count != wide(outer) * rows * width ||
            out_count != wide(outer) * (wide(rows) + 1) * width) {
          return size_error("sizes do not match [outer, rows, width]");
        }
        if (step.param0 && (step.param0->empty() || width % step.param0->size() != 0)) {
          return size_error("the appended row must tile the width");
        }
        break;
      }
      case StepKind::kPadColumn:
        if (!is_float(x) || values_[x].count != wide(step.dims[0]) * step.dims[1] ||
            out_count != wide(step.dims[0]) * (wide(step.dims[1]) + 1)) {
          return size_error("sizes do not match [rows, cols]");
        }
        break;
      case StepKind::kEmbedding:
        if (values_[x].type != ValueType::kInt64 || !step.param0 || step.dims[1] == 0 ||
            step.param0->size() != wide(step.dims[0]) * step.dims[1] || out_count != wide(values_[x].count) * step.dims[1]) {
          return size_error("needs int64 indices and a [num, dim] table");
        }
        break;
    }
  }
  for (size_t id : outputs_) {
    if (id >= count || !written[id]) return "output value " + std::to_string(id) + " is never written";
    if (values_[id].type != ValueType::kFloat32) return "output value " + std::to_string(id) + " must be float32";
  }
  return "";
}

Plan::ArenaLease::ArenaLease(const Plan& plan) : plan_(plan) {
  {
    std::lock_guard<std::mutex> lock(plan.cache_mutex_);
    arena_ = std::move(plan.cached_);
  }
  if (!arena_) {
    arena_ = std::make_unique<Arena>();
    arena_->floats.resize(plan.arena_floats_);
    arena_->indices.resize(plan.index_count_);
    add_native_bytes(static_cast<int64_t>(plan.arena_bytes()));
  }
}

Plan::ArenaLease::~ArenaLease() {
  std::lock_guard<std::mutex> lock(plan_.cache_mutex_);
  if (!plan_.cached_) {
    plan_.cached_ = std::move(arena_);
  } else {
    add_native_bytes(-static_cast<int64_t>(plan_.arena_bytes()));
  }
}

Plan::~Plan() {
  if (cached_) add_native_bytes(-static_cast<int64_t>(arena_bytes()));
}

float* Plan::float_data(Arena& arena, size_t value) const { return arena.floats.data() + offsets_[value]; }
int64_t* Plan::index_data(Arena& arena, size_t value) const { return arena.indices.data() + offsets_[value]; }

RunError Plan::run(const KernelTable& kernels, ThreadPool& pool, Arena& arena,
                   const std::atomic<bool>* cancelled) const {
  auto data = [&](size_t id) { return id == kNone ? nullptr : float_data(arena, id); };
  for (const Step& step : steps_) {
    if (cancelled != nullptr && cancelled->load(std::memory_order_relaxed)) {
      RunError stopped;
      stopped.cancelled = true;
      return stopped;
    }
    const size_t x = step.inputs.empty() ? kNone : step.inputs[0];
    float* out = data(step.output);
    switch (step.kind) {
      case StepKind::kLinear: {
        const PackedB& packed = step.weight->packed;
        GemmProblem problem;
        problem.m = values_[x].count / packed.k();
        problem.n = packed.n();
        problem.k = packed.k();
        problem.a = StridedMatrix{data(x), static_cast<ptrdiff_t>(packed.k()), 1};
        problem.c = out;
        problem.ldc = packed.n();
        problem.c_batch_stride = problem.m * packed.n();
        problem.bias = step.param0 ? step.param0->data() : nullptr;
        problem.activation = step.activation;
        problem.residual = step.inputs.size() > 1 ? data(step.inputs[1]) : nullptr;  // fuse_residual_adds
        if (problem.m > 0) gemm(*step.weight->kernels, problem, pool, &packed);
        break;
      }
      case StepKind::kLayerNorm: {
        const size_t n = step.dims[0];
        layer_norm(kernels, values_[x].count / n, n, data(x), step.eps, step.param0 ? step.param0->data() : nullptr,
                   step.param1 ? step.param1->data() : nullptr, out, pool);
        break;
      }
      case StepKind::kAdd: {
        const float* a = data(x);
        const float* b = data(step.inputs[1]);
        const size_t outer = step.dims[0], mid = step.dims[1], inner = step.dims[2];
        pool.parallel_for(outer * mid, [&](size_t row, size_t) {
          const float* a_row = a + row * inner;
          const float* b_row = b + (row / mid) * inner;
          float* out_row = out + row * inner;
          for (size_t i = 0; i < inner; ++i) out_row[i] = a_row[i] + b_row[i];
        });
        break;
      }
      case StepKind::kAdditiveMask: {
        const float* mask = data(x);
        const bool is_bool = values_[x].type == ValueType::kBool;
        const size_t n = values_[x].count;
        for (size_t i = 0; i < n; ++i) {
          out[i] = is_bool ? (mask[i] != 0.0f ? -std::numeric_limits<float>::infinity() : 0.0f) : mask[i];
        }
        break;
      }
      case StepKind::kAttention: {
        AttentionProblem problem = step.attention;
        problem.q.data = data(step.inputs[0]) + step.view_offsets[0];
        problem.k.data = data(step.inputs[1]) + step.view_offsets[1];
        problem.v.data = data(step.inputs[2]) + step.view_offsets[2];
        problem.attn_mask = data(step.inputs[3]);
        problem.key_padding_mask = data(step.inputs[4]);
        problem.out = out;
        problem.weights = data(step.output2);
        attention(kernels, problem, pool);
        break;
      }
      case StepKind::kAverageHeads:
        average_heads(step.dims[0], step.dims[1], step.dims[2], data(x), out, pool);
        break;
      case StepKind::kAppendRow: {
        const size_t outer = step.dims[0], rows = step.dims[1], width = step.dims[2];
        const float* in = data(x);
        for (size_t o = 0; o < outer; ++o) {
          std::memcpy(out + o * (rows + 1) * width, in + o * rows * width, rows * width * sizeof(float));
          float* row = out + (o * (rows + 1) + rows) * width;
          if (step.param0) {
            const size_t period = step.param0->size();
            for (size_t i = 0; i < width; ++i) row[i] = (*step.param0)[i % period];
          } else {
            std::memset(row, 0, width * sizeof(float));
          }
        }
        break;
      }
      case StepKind::kPadColumn: {
        const size_t rows = step.dims[0], cols = step.dims[1];
        const float* in = data(x);
        for (size_t r = 0; r < rows; ++r) {
          std::memcpy(out + r * (cols + 1), in + r * cols, cols * sizeof(float));
          out[r * (cols + 1) + cols] = 0.0f;
        }
        break;
      }
      case StepKind::kEmbedding: {
        const int64_t* indices = index_data(arena, x);
        const size_t num = step.dims[0], dim = step.dims[1], count = values_[x].count;
        for (size_t i = 0; i < count; ++i) {
          const int64_t index = indices[i];
          if (index < 0 || static_cast<uint64_t>(index) >= num) {
            return RunError{"index out of range in self: index " + std::to_string(index) + " is not in [0, " +
                            std::to_string(num) + ")"};
          }
          std::memcpy(out + i * dim, step.param0->data() + static_cast<size_t>(index) * dim, dim * sizeof(float));
        }
        break;
      }
    }
  }
  return RunError{};
}

}  // namespace simdformer
