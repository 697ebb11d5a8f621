// Multi-head scaled dot-product attention, PyTorch's math path
// (torch.nn.functional.multi_head_attention_forward after the projections):
//
//   for n < batch, h < heads:
//     scores = scale * Q[n,h] · K[n,h]ᵀ + attn_mask + key_padding_mask[n]   [L, S]
//     P      = softmax(scores) over S (a row entirely -inf gives zeros)
//     O[n,h] = P · V[n,h]                                                   [L, Dv]
//
// Sequences are strided views, so batch-first [N, L, E] and sequence-first
// [L, N, E] layouts need no transpose:
//   Q[n,h](l, d) = q.data[n * q.batch_stride + l * q.seq_stride + h * head_dim + d]
// and likewise K (head_dim), V and O (v_head_dim). Masks are additive floats
// (the plan turns bool masks into 0 / -inf first). With `causal`, key j is
// also masked for query i when j > i (PyTorch's SDPA is_causal: top-left
// aligned, also for L != S), on top of any masks given.
//
// Three paths with the same result within float rounding: for up to 16
// queries, query row by query row (dot_rows, softmax_row, weighted_row_sum
// on Q, K and V where they are, nothing packed); otherwise without weights
// the fused one (flash_attention.h: key tiles, online softmax, no [L, S]
// matrix), and with weights, or math_path, the one above through the GEMM
// driver, which materialises the scores.
#pragma once

#include <cstddef>

#include "dispatch.h"
#include "threadpool.h"

namespace simdformer {

struct SequenceView {
  const float* data;
  size_t batch_stride;
  size_t seq_stride;
};

struct AttentionProblem {
  size_t batch = 1, heads = 1, tgt_len = 0, src_len = 0, head_dim = 0, v_head_dim = 0;
  SequenceView q{nullptr, 0, 0}, k{nullptr, 0, 0}, v{nullptr, 0, 0};
  float* out = nullptr;
  size_t out_batch_stride = 0, out_seq_stride = 0;
  float scale = 1.0f;
  const float* attn_mask = nullptr;    // [L, S], or [batch * heads, L, S] when attn_mask_per_head
  bool attn_mask_per_head = false;
  const float* key_padding_mask = nullptr;  // [batch, S]
  float* weights = nullptr;            // [batch, heads, L, S] probabilities, or nullptr
  bool causal = false;                 // also mask keys j > i
  bool math_path = false;              // materialise the scores even without weights (tests, benchmark baseline)
};

// May throw std::bad_alloc (scratch).
void attention(const KernelTable& kernels, const AttentionProblem& problem, ThreadPool& pool);

// Bytes of scratch each thread running `problem` holds (fused: its tiles;
// math path: the [L, S] scores, a combined mask row and the GEMM driver's
// packing buffers), so peak memory is this times the threads plus the operands.
size_t attention_scratch_bytes(const KernelTable& kernels, const AttentionProblem& problem);

// out[n, i] = mean over h of in[n, h, i], for n < batch, i < size.
void average_heads(size_t batch, size_t heads, size_t size, const float* in, float* out, ThreadPool& pool);

}  // namespace simdformer
