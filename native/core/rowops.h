// Row-wise op drivers: split rows over the thread pool and call the table's
// micro-kernel on each row. Shapes are given as [rows, n] with a row stride of n.
#pragma once

#include <cstddef>

#include "dispatch.h"
#include "threadpool.h"

namespace simdformer {

// Softmax along the middle axis of x viewed as [outer, n, inner]:
// y[o, :, i] = softmax(scale * x[o, :, i] + mask) for every o < outer, i < inner.
// With inner == 1 rows are contiguous and run in place; otherwise each row is
// gathered into per-thread scratch. mask: [mask_rows, n] added to row o as
// mask[o % mask_rows] (so an [L, S] mask broadcasts over batch and heads), or
// nullptr; only allowed with inner == 1. Fully -inf rows give zeros.
// May throw std::bad_alloc (scratch).
void softmax(const KernelTable& kernels, size_t outer, size_t n, size_t inner, const float* x, float scale,
             const float* mask, size_t mask_rows, float* y, ThreadPool& pool);

// Layer norm over the last n values of every row; weight / bias [n] or nullptr.
void layer_norm(const KernelTable& kernels, size_t rows, size_t n, const float* x, float eps, const float* weight,
                const float* bias, float* y, ThreadPool& pool);

// y = act(x) elementwise over count values (kRelu or kGelu; kNone copies).
void activation(const KernelTable& kernels, Activation act, size_t count, const float* x, float* y,
                ThreadPool& pool);

}  // namespace simdformer
