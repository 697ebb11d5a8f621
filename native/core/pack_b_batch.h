// Packs several B operands (a model's Linear weights, at load) at once on the
// thread pool: one task per matrix, so a model's dozens of weights keep every
// thread busy while each matrix is packed by the public pack_b, whose packed
// format stays gemm.cpp's business.
#pragma once

#include <cstddef>
#include <vector>

#include "gemm.h"
#include "threadpool.h"

namespace simdformer {

// One B operand: [k, n], element (p, j) at b.data + p * b.row_stride + j * b.col_stride.
struct PackBRequest {
  size_t k = 0, n = 0;
  StridedMatrix b{nullptr, 0, 0};
};

// result[i] = pack_b(kernels, requests[i]...), computed on `pool`. Each
// task calls `packed(request)` (if given; it must not throw) once its matrix
// is packed, on the thread that packed it: the caller's chance to let go of
// the source while other matrices are still being packed. Throws
// std::bad_alloc (after every task has ended) if any allocation failed.
std::vector<PackedB> pack_b_batch(const KernelTable& kernels, const std::vector<PackBRequest>& requests,
                                  ThreadPool& pool, void (*packed)(const PackBRequest&) = nullptr);

}  // namespace simdformer
