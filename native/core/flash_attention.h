// Fused multi-head attention, FlashAttention-style (Dao et al. 2022,
// "FlashAttention: Fast and Memory-Efficient Exact Attention with
// IO-Awareness", Algorithm 1), for the AttentionProblem of attention.h
// without weights: per (batch, head, group of query rows) the keys are
// visited in tiles, each tile's scores go through the kernel table's online
// softmax step, and the output is accumulated and rescaled as the running
// max moves. The [L, S] score matrix never exists; each thread holds only
// its tiles (flash_attention_scratch_bytes), whatever L and S.
//
// With problem.causal, key tiles wholly above the diagonal of a query group
// are never visited, and inside the diagonal tiles each query sees only its
// keys j <= i.
#pragma once

#include <cstddef>

#include "attention.h"
#include "dispatch.h"
#include "threadpool.h"

namespace simdformer {

// Writes problem.out; ignores problem.weights (the caller takes the math
// path when weights are wanted). May throw std::bad_alloc (scratch).
void flash_attention(const KernelTable& kernels, const AttentionProblem& problem, ThreadPool& pool);

// Bytes of per-thread scratch flash_attention uses for `problem`: independent
// of L and S (it grows with head_dim and v_head_dim only).
size_t flash_attention_scratch_bytes(const KernelTable& kernels, const AttentionProblem& problem);

}  // namespace simdformer
