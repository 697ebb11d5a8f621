// A module's forward as one native job. TypeScript describes the computation
// once per input shape (which steps, which weights, which sizes); the binding
// turns that description into a Plan; run() executes every step over values
// held in one arena, on the calling thread or off the event loop, with no
// JavaScript between steps.
//
// Values are flat arrays identified by index. Inputs are copied into the
// arena before a run (so callers may reuse or detach their buffers), outputs
// are copied out after it. Weights are shared, immutable native copies, so a
// plan keeps them alive even if the module that made it is collected.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "attention.h"
#include "dispatch.h"
#include "gemm.h"
#include "threadpool.h"

namespace simdformer {

// An immutable float32 parameter (bias, layer-norm weight, embedding table).
using Parameter = std::shared_ptr<const std::vector<float>>;
// A Linear weight packed for one kernel table.
struct LinearWeight {
  PackedB packed;
  const KernelTable* kernels;
};
using SharedLinearWeight = std::shared_ptr<const LinearWeight>;

enum class ValueType : int { kFloat32 = 0, kBool = 1, kInt64 = 2 };

struct ValueSpec {
  ValueType type = ValueType::kFloat32;
  size_t count = 0;  // elements
};

enum class StepKind : int {
  kLinear,         // out[rows, n] = act(x[rows, k] · Wᵀ + bias) (+ inputs[1]: a residual add the Plan folded in)
  kLayerNorm,      // out[rows, n] = layer_norm(x[rows, n]) * weight + bias
  kAdd,            // out[o, m, i] = a[o, m, i] + b[o, i]   (b broadcast over m; m = 1 for a plain add)
  kAdditiveMask,   // out = x ? -inf : 0 for a bool x; a float x is copied
  kAttention,      // attention.h, from q, k, v (+ masks) into out (+ per-head weights)
  kAverageHeads,   // out[n, i] = mean_h x[n, h, i]
  kAppendRow,      // out[o, rows + 1, width] = x[o, rows, width] with one more row: row_param tiled, or zeros
  kPadColumn,      // out[rows, cols + 1] = x[rows, cols] with a 0 column
  kEmbedding,      // out[i, :] = table[indices[i], :]
};

struct Step {
  StepKind kind;
  std::vector<size_t> inputs;  // value ids, meaning per kind (see plan.cpp)
  size_t output = 0;
  size_t output2 = SIZE_MAX;   // attention: per-head weights, or SIZE_MAX

  SharedLinearWeight weight;    // kLinear
  Parameter param0, param1;     // kLinear: bias; kLayerNorm: weight, bias; kAppendRow: row; kEmbedding: table
  Activation activation = Activation::kNone;
  float eps = 0;
  size_t dims[4] = {0, 0, 0, 0};  // kLayerNorm {n}; kAdd {outer, mid, inner}; kAverageHeads {batch, heads, size};
                                  // kAppendRow {outer, rows, width}; kPadColumn {rows, cols}; kEmbedding {num, dim}
  AttentionProblem attention;   // kAttention: geometry, strides, scale (pointers filled at run time)
  size_t view_offsets[3] = {0, 0, 0};  // kAttention: first element of q, k, v in their values (one fused projection)
  bool attn_mask_given = false, key_padding_given = false;
};

// What stopped a run: an embedding index out of range, or cancellation
// (checked between steps); empty if none.
struct RunError {
  std::string message;
  bool cancelled = false;
  explicit operator bool() const { return cancelled || !message.empty(); }
};

class Plan {
 public:
  Plan(std::vector<ValueSpec> values, std::vector<Step> steps, std::vector<size_t> inputs,
       std::vector<size_t> outputs);

  // Empty if the plan as described is consistent: ids in range, every value
  // written before it is read, sizes that match what each step reads and
  // writes. Checked once, by the constructor. Run only plans without a
  // problem: run() trusts them.
  const std::string& problem() const { return problem_; }

  const std::vector<ValueSpec>& values() const { return values_; }
  const std::vector<size_t>& inputs() const { return inputs_; }
  const std::vector<size_t>& outputs() const { return outputs_; }
  size_t arena_bytes() const { return arena_floats_ * sizeof(float) + index_count_ * sizeof(int64_t); }

  // The storage of every value for one run.
  struct Arena {
    std::vector<float> floats;
    std::vector<int64_t> indices;
  };

  // A workspace for one run: the plan's cached arena while no other run holds
  // it, else a fresh one, so concurrent runs of one plan never share memory.
  // Arena memory is counted in native_bytes() (executor.h). Construction may
  // throw std::bad_alloc.
  class ArenaLease {
   public:
    explicit ArenaLease(const Plan& plan);
    ~ArenaLease();
    ArenaLease(const ArenaLease&) = delete;
    ArenaLease& operator=(const ArenaLease&) = delete;
    Arena& arena() { return *arena_; }

   private:
    const Plan& plan_;
    std::unique_ptr<Arena> arena_;
  };

  // Pointers to a value's storage inside `arena`, to copy inputs in and outputs out.
  float* float_data(Arena& arena, size_t value) const;
  int64_t* index_data(Arena& arena, size_t value) const;

  // Executes every step; stops before the next step once *cancelled is set.
  // May throw std::bad_alloc.
  RunError run(const KernelTable& kernels, ThreadPool& pool, Arena& arena,
               const std::atomic<bool>* cancelled = nullptr) const;

  ~Plan();

 private:
  std::string check() const;

  std::vector<ValueSpec> values_;
  std::vector<Step> steps_;
  std::vector<size_t> inputs_, outputs_;
  std::vector<size_t> offsets_;  // per value: float offset (float/bool) or index offset (int64)
  size_t arena_floats_ = 0, index_count_ = 0;
  std::string problem_;
  mutable std::mutex cache_mutex_;
  mutable std::unique_ptr<Arena> cached_;
};

}  // namespace simdformer
