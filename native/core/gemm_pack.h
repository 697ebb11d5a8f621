// Packing routines for the GEMM micro-kernels, templated on the tile width
// they pack for. They hold no intrinsics: strided gathers that the compiler
// vectorises where the source is contiguous. The dispatch table pairs each
// micro-kernel with the instantiation for its MR / NR.
#pragma once

#include <cstddef>

namespace simdformer {

// a_packed[k][i] = A(i, k) for i < mr_valid, 0 for mr_valid <= i < MR.
template <size_t MR>
void pack_a(size_t kc, size_t mr_valid, const float* a, ptrdiff_t row_stride, ptrdiff_t col_stride,
            float* a_packed) {
  if (mr_valid == MR) {
    // Full tile (all but the last of a block): the row loop unrolls into MR
    // loads at fixed offsets, and into vector copies when row_stride is 1.
    for (size_t k = 0; k < kc; ++k) {
      const float* column = a + static_cast<ptrdiff_t>(k) * col_stride;
      float* out = a_packed + k * MR;
#pragma GCC unroll 16
      for (size_t i = 0; i < MR; ++i) out[i] = column[static_cast<ptrdiff_t>(i) * row_stride];
    }
    return;
  }
  for (size_t k = 0; k < kc; ++k) {
    const float* column = a + static_cast<ptrdiff_t>(k) * col_stride;
    float* out = a_packed + k * MR;
    size_t i = 0;
    for (; i < mr_valid; ++i) out[i] = column[static_cast<ptrdiff_t>(i) * row_stride];
    for (; i < MR; ++i) out[i] = 0.0f;
  }
}

// b_packed[k][j] = B(k, j) for j < nr_valid, 0 for nr_valid <= j < NR.
template <size_t NR>
void pack_b(size_t kc, size_t nr_valid, const float* b, ptrdiff_t row_stride, ptrdiff_t col_stride,
            float* b_packed) {
  if (nr_valid == NR) {
    // Full panel: as in pack_a, a fixed-length column loop that unrolls, and
    // becomes vector copies when col_stride is 1 (B row-major).
    for (size_t k = 0; k < kc; ++k) {
      const float* row = b + static_cast<ptrdiff_t>(k) * row_stride;
      float* out = b_packed + k * NR;
#pragma GCC unroll 32
      for (size_t j = 0; j < NR; ++j) out[j] = row[static_cast<ptrdiff_t>(j) * col_stride];
    }
    return;
  }
  for (size_t k = 0; k < kc; ++k) {
    const float* row = b + static_cast<ptrdiff_t>(k) * row_stride;
    float* out = b_packed + k * NR;
    size_t j = 0;
    for (; j < nr_valid; ++j) out[j] = row[static_cast<ptrdiff_t>(j) * col_stride];
    for (; j < NR; ++j) out[j] = 0.0f;
  }
}

}  // namespace simdformer
