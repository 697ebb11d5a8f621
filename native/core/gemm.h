// GEMM driver, BLIS-style: loops of cache blocking and packing around one
// register-tile micro-kernel taken from the kernel table.
//
//   C[b] = act(A[b] · B[b] + bias)      for b in [0, batch)
//   A[b]: [m, k], element (i, p) at a + a_offsets[b] + i * a_row_stride + p * a_col_stride
//   B[b]: [k, n], element (p, j) at b + b_offsets[b] + p * b_row_stride + j * b_col_stride
//   C[b]: [m, n] row-major at c + b * m * ldc... see c_batch_stride; C is only written (beta = 0).
//   bias: [n] or nullptr, added to every row.
//
// Strides let one driver serve PyTorch's Linear (y = x · Wᵀ: B(p, j) = W[j][p])
// and the transposed products attention needs (Q · Kᵀ, P · V). Each output
// element is reduced over k in the same order whatever the thread count.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>

#include "dispatch.h"
#include "threadpool.h"

namespace simdformer {

struct StridedMatrix {
  const float* data;
  ptrdiff_t row_stride;
  ptrdiff_t col_stride;
};

// B packed once for one kernel table (a Linear's weight packed when it is
// set). For a micro-kernel table: panels of nr columns, each [k][nr] per kc
// block, zero padded. For an AMX table (bf16x3()): k and n padded to 32, kc
// blocks one after another, each 3 bfloat16 planes of 16-column panels in
// TDPBF16PS's pair-interleaved layout (kernels.h): 6 bytes per weight, split
// once instead of at every call. The memory is either its own or a slice of
// a region shared with the other weights packed in the same pack_b_batch;
// `storage` keeps it alive either way, so a PackedB can outlive its batch.
//
// A PackedB from pack_b_batch_in_background is handed out before its data is
// written (pack_b_batch.h): until ready(), gemm() multiplies by its source
// instead, B packed per call by the same kernel, so with the same result bits.
class PackedB {
 public:
  size_t k() const { return k_; }
  size_t n() const { return n_; }
  bool bf16x3() const { return bf16x3_ != nullptr; }
  // A micro-kernel table's PackedB (!bf16x3()).
  const GemmConfig& config() const { return *config_; }
  const float* data() const { return data_; }
  // An AMX table's PackedB (bf16x3()).
  const Bf16x3GemmConfig& bf16x3_config() const { return *bf16x3_; }
  const uint16_t* bf16x3_data() const { return reinterpret_cast<const uint16_t*>(data_); }
  // The packed operand's size (its slice, when it shares a region).
  size_t bytes() const { return size_ * sizeof(float); }
  // Whether the memory is a slice of a region shared with other PackedBs
  // (pack_b_batch), which then counts it in native_bytes() itself.
  bool shares_storage() const { return shared_; }
  // Whether the packed data is complete (always, but for a background batch's
  // operands until the batch has packed them).
  bool ready() const { return pending_ == nullptr || pending_->ready.load(std::memory_order_acquire); }
  // B itself ([k, n], strided), which gemm() reads while !ready().
  StridedMatrix source() const { return pending_ != nullptr ? pending_->source : StridedMatrix{nullptr, 0, 0}; }

  // What a PackedB of a background batch shares with the batch packing it.
  struct Pending {
    std::atomic<bool> ready{false};  // set (release) once every piece is written
    StridedMatrix source{nullptr, 0, 0};
    std::shared_ptr<const void> source_owner;  // keeps source's memory alive
  };

 private:
  friend PackedB pack_b(const KernelTable&, size_t, size_t, StridedMatrix);
  friend PackedB packed_b_view(const KernelTable&, size_t, size_t, const float*, std::shared_ptr<const void>,
                               std::shared_ptr<const Pending>);
  size_t k_ = 0, n_ = 0, size_ = 0;  // size_: floats of the packed layout
  const GemmConfig* config_ = nullptr;
  const Bf16x3GemmConfig* bf16x3_ = nullptr;
  const float* data_ = nullptr;
  std::shared_ptr<const void> storage_;  // owns data_'s memory (or a share of the region holding it)
  bool shared_ = false;
  std::shared_ptr<const Pending> pending_;  // nullptr: packed when made
};

// Packs B ([k, n]) for the table's GEMM into memory of its own; may throw
// std::bad_alloc (also when the packed size would not fit in size_t).
PackedB pack_b(const KernelTable& kernels, size_t k, size_t n, StridedMatrix b);

// The same packing in pieces, for packing many operands on many threads
// (pack_b_batch): the layout's `floats` (64-byte aligned) are written in
// `pieces` independent parts (a kc block by a group of columns each, at most
// about 1 MiB) that can be packed in any order, on any thread.
struct PackedBLayout {
  size_t floats = 0;
  size_t pieces = 0;
};
// Throws std::bad_alloc when the packed size would not fit in size_t.
PackedBLayout packed_b_layout(const KernelTable& kernels, size_t k, size_t n);
// Writes piece `piece` (< layout.pieces) of B's packed layout into `data`.
void pack_b_piece(const KernelTable& kernels, size_t k, size_t n, StridedMatrix b, size_t piece, float* data);
// A PackedB over `data`; `storage` keeps the memory alive (a slice of a
// shared region: shares_storage()). Every piece has been packed, or, with
// `pending`, will have been once pending->ready is set.
PackedB packed_b_view(const KernelTable& kernels, size_t k, size_t n, const float* data,
                      std::shared_ptr<const void> storage, std::shared_ptr<const PackedB::Pending> pending = nullptr);

struct GemmProblem {
  size_t batch = 1, m = 0, n = 0, k = 0;
  StridedMatrix a{nullptr, 0, 0};
  const size_t* a_offsets = nullptr;  // [batch] element offsets of each A, or nullptr for all 0
  StridedMatrix b{nullptr, 0, 0};
  const size_t* b_offsets = nullptr;  // [batch] element offsets of each B, or nullptr for all 0
  float* c = nullptr;
  size_t ldc = 0;                      // row stride of C, >= n
  size_t c_batch_stride = 0;           // elements between C[b] and C[b + 1], >= m * ldc
  const float* bias = nullptr;         // [n] or nullptr
  Activation activation = Activation::kNone;
  // Laid out like C (ldc, c_batch_stride), or nullptr. When given,
  // C = act(A·B + bias) + residual: a transformer's residual connection added
  // to each block of C while it is in cache instead of in a pass of its own.
  const float* residual = nullptr;
};

// Runs `problem` with the table's micro-kernel (or AMX tile kernel) on `pool`. B is packed per
// call (in parallel) unless `packed_b` is given (then problem.b is ignored,
// and batch must use the same B, packed for `kernels`; a packed_b that is not
// ready() yet is packed per call from its source). May throw std::bad_alloc.
void gemm(const KernelTable& kernels, const GemmProblem& problem, ThreadPool& pool,
          const PackedB* packed_b = nullptr);

}  // namespace simdformer
