#include "attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <new>
#include <vector>

#include "flash_attention.h"
#include "gemm.h"

namespace simdformer {

namespace {

// Per-thread scores [L, S] and one combined mask row [S], kept between calls.
thread_local std::vector<float> scores_scratch;
thread_local std::vector<float> mask_scratch;

// Query l's additive mask row: the attention mask's row plus the key
// padding (combined in this thread's scratch when both are given), or nullptr.
const float* mask_row(const float* attn_mask, const float* padding, size_t l, size_t S) {
  if (attn_mask == nullptr) return padding;
  const float* row = attn_mask + l * S;
  if (padding == nullptr) return row;
  if (mask_scratch.size() < S) mask_scratch.resize(S);
  for (size_t s = 0; s < S; ++s) mask_scratch[s] = row[s] + padding[s];
  return mask_scratch.data();
}

// Runs one (n, h) pair: scores, masked softmax, and P · V into the output.
void attend_one_head(const KernelTable& kernels, const AttentionProblem& p, size_t n, size_t h) {
  const size_t L = p.tgt_len, S = p.src_len;
  float* scores;
  if (p.weights != nullptr) {
    scores = p.weights + (n * p.heads + h) * L * S;
  } else {
    if (scores_scratch.size() < L * S) scores_scratch.resize(L * S);
    scores = scores_scratch.data();
  }
  ThreadPool& inline_pool = thread_pool();  // called inside a parallel region: runs inline

  // scores = Q[n,h] · K[n,h]ᵀ: A(l, d) = Q, B(d, s) = K(s, d).
  GemmProblem qk;
  qk.m = L;
  qk.n = S;
  qk.k = p.head_dim;
  qk.a = StridedMatrix{p.q.data + n * p.q.batch_stride + h * p.head_dim, static_cast<ptrdiff_t>(p.q.seq_stride), 1};
  qk.b = StridedMatrix{p.k.data + n * p.k.batch_stride + h * p.head_dim, 1, static_cast<ptrdiff_t>(p.k.seq_stride)};
  qk.c = scores;
  qk.ldc = S;
  qk.c_batch_stride = L * S;
  gemm(kernels, qk, inline_pool);

  // softmax(scale * scores + attn_mask + key_padding_mask), row by row.
  const float* padding = p.key_padding_mask != nullptr ? p.key_padding_mask + n * S : nullptr;
  const float* attn_mask = p.attn_mask;
  if (attn_mask != nullptr && p.attn_mask_per_head) attn_mask += (n * p.heads + h) * L * S;
  for (size_t l = 0; l < L; ++l) {
    // Causal: keys [0, l] only; the keys after them get probability 0.
    const size_t keys = p.causal ? std::min(S, l + 1) : S;
    kernels.softmax_row(keys, scores + l * S, p.scale, mask_row(attn_mask, padding, l, S), scores + l * S);
    std::fill(scores + l * S + keys, scores + (l + 1) * S, 0.0f);
  }

  // O[n,h] = P · V[n,h]: A(l, s) = P, B(s, d) = V(s, d).
  GemmProblem pv;
  pv.m = L;
  pv.n = p.v_head_dim;
  pv.k = S;
  pv.a = StridedMatrix{scores, static_cast<ptrdiff_t>(S), 1};
  pv.b = StridedMatrix{p.v.data + n * p.v.batch_stride + h * p.v_head_dim, static_cast<ptrdiff_t>(p.v.seq_stride), 1};
  pv.c = p.out + n * p.out_batch_stride + h * p.v_head_dim;
  pv.ldc = p.out_seq_stride;
  pv.c_batch_stride = L * p.out_seq_stride;
  gemm(kernels, pv, inline_pool);
}

// The same for a few queries, one query row at a time: its scores against
// K's rows (dot_rows), the masked softmax in place, its output row as the
// weighted sum of V's rows (weighted_row_sum). Q, K and V are read where
// they are; only one row of scores is held (unless the weights are wanted).
void attend_one_head_by_rows(const KernelTable& kernels, const AttentionProblem& p, size_t n, size_t h) {
  const size_t L = p.tgt_len, S = p.src_len, D = p.head_dim, Dv = p.v_head_dim;
  float* row_scratch = nullptr;  // the one row of scores, when the weights are not wanted
  if (p.weights == nullptr) {
    if (scores_scratch.size() < S) scores_scratch.resize(S);
    row_scratch = scores_scratch.data();
  }
  const float* q = p.q.data + n * p.q.batch_stride + h * D;
  const float* k = p.k.data + n * p.k.batch_stride + h * D;
  const float* v = p.v.data + n * p.v.batch_stride + h * Dv;
  float* out = p.out + n * p.out_batch_stride + h * Dv;
  const float* padding = p.key_padding_mask != nullptr ? p.key_padding_mask + n * S : nullptr;
  const float* attn_mask = p.attn_mask;
  if (attn_mask != nullptr && p.attn_mask_per_head) attn_mask += (n * p.heads + h) * L * S;
  for (size_t l = 0; l < L; ++l) {
    float* scores = p.weights != nullptr ? p.weights + ((n * p.heads + h) * L + l) * S : row_scratch;
    // Causal: keys [0, l] only; the keys after them get probability 0.
    const size_t keys = p.causal ? std::min(S, l + 1) : S;
    if (D > 0) {
      kernels.dot_rows(keys, D, q + l * p.q.seq_stride, k, p.k.seq_stride, scores);
    } else {
      std::fill(scores, scores + keys, 0.0f);
    }
    kernels.softmax_row(keys, scores, p.scale, mask_row(attn_mask, padding, l, S), scores);
    std::fill(scores + keys, scores + S, 0.0f);
    if (Dv > 0) kernels.weighted_row_sum(keys, Dv, scores, v, p.v.seq_stride, out + l * p.out_seq_stride);
  }
}

// Up to this many queries the rows path runs, weights wanted or not: the
// GEMM driver and the fused path pack K and V (and Q) before their products,
// which for a few queries costs more than the products. Measured on a
// Sapphire Rapids-class Xeon (AVX-512), one thread, 4 heads of 64, against
// the fused path: 1 query x 32 keys 6.8 vs 21 us, 1 x 512 26 vs 223 us,
// 8 x 512 158 vs 226 us, 16 x 16 13.5 vs 18 us; 32 x 32 was 10-40% slower.
constexpr size_t kMaxQueriesByRows = 16;

bool by_query_rows(const AttentionProblem& problem) { return problem.tgt_len <= kMaxQueriesByRows; }

size_t ceil_to(size_t x, size_t multiple) { return (x + multiple - 1) / multiple * multiple; }

}  // namespace

void attention(const KernelTable& kernels, const AttentionProblem& problem, ThreadPool& pool) {
  if (problem.batch == 0 || problem.heads == 0 || problem.tgt_len == 0) return;
  const bool by_rows = by_query_rows(problem);
  if (!by_rows && problem.weights == nullptr && !problem.math_path) return flash_attention(kernels, problem, pool);
  // One task per (n, h); the GEMMs inside a task run on that task's thread.
  // Tasks must not throw, so an allocation failure is carried out and rethrown.
  std::atomic<bool> out_of_memory{false};
  pool.parallel_for(problem.batch * problem.heads, [&](size_t task, size_t) {
    try {
      if (by_rows) {
        attend_one_head_by_rows(kernels, problem, task / problem.heads, task % problem.heads);
      } else {
        attend_one_head(kernels, problem, task / problem.heads, task % problem.heads);
      }
    } catch (const std::bad_alloc&) {
      out_of_memory.store(true);
    }
  });
  if (out_of_memory.load()) throw std::bad_alloc();
}

size_t attention_scratch_bytes(const KernelTable& kernels, const AttentionProblem& problem) {
  const size_t L = problem.tgt_len, S = problem.src_len;
  const bool masks = problem.attn_mask != nullptr && problem.key_padding_mask != nullptr;
  if (by_query_rows(problem)) return ((problem.weights == nullptr ? S : 0) + (masks ? S : 0)) * sizeof(float);
  if (problem.weights == nullptr && !problem.math_path) return flash_attention_scratch_bytes(kernels, problem);
  const GemmConfig& config = kernels.gemm;
  size_t floats = problem.weights == nullptr ? L * S : 0;
  if (masks) floats += S;
  // The GEMM driver's B, packed per call (K for the scores, then V), and its
  // per-thread A block (Q, then P).
  floats += std::max(problem.head_dim * ceil_to(S, config.nr), S * ceil_to(problem.v_head_dim, config.nr));
  const size_t a_rows = std::min(std::max(config.mr, config.mc / config.mr * config.mr), ceil_to(L, config.mr));
  floats += a_rows * std::min(config.kc, std::max(problem.head_dim, S));
  return floats * sizeof(float);
}

void average_heads(size_t batch, size_t heads, size_t size, const float* in, float* out, ThreadPool& pool) {
  const float inverse = 1.0f / static_cast<float>(heads);
  pool.parallel_for(batch, [&](size_t n, size_t) {
    float* target = out + n * size;
    const float* source = in + n * heads * size;
    for (size_t i = 0; i < size; ++i) target[i] = source[i];
    for (size_t h = 1; h < heads; ++h) {
      for (size_t i = 0; i < size; ++i) target[i] += source[h * size + i];
    }
    for (size_t i = 0; i < size; ++i) target[i] *= inverse;
  });
}

}  // namespace simdformer
