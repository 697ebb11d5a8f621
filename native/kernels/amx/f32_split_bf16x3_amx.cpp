// Splits float32 rows of A into the three bfloat16 planes the AMX GEMM tile
// kernel reads (contract: SplitBf16x3Fn in kernels.h; the split itself is
// in bf16x3_amx.h).
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../kernels.h"
#include "bf16x3_amx.h"

namespace simdformer {

namespace {

// 16 values of a row from j on, zeros past k (the padding).
__m512 load16(const float* row, ptrdiff_t col_stride, size_t j, size_t k) {
  const size_t valid = j < k ? (k - j < 16 ? k - j : 16) : 0;
  if (col_stride == 1) {
    return _mm512_maskz_loadu_ps(valid == 16 ? 0xFFFF : static_cast<__mmask16>((1u << valid) - 1), row + j);
  }
  alignas(64) float gathered[16] = {};
  for (size_t i = 0; i < valid; ++i) gathered[i] = row[static_cast<ptrdiff_t>(j + i) * col_stride];
  return _mm512_load_ps(gathered);
}

// Rows ahead of the one being split whose lines are prefetched. A is
// usually in the other core's cache: written by the op before, and at M =
// 32 on 2 threads both tasks split all of A at once. The hardware
// prefetchers do not run ahead across rows (one kc block is 1 KiB of a row,
// and at K = 1024 rows are 4 KiB apart, in different pages), so each row's
// loads waited on the other core. Measured in enc4-small on a Sapphire
// Rapids-class Xeon (2 threads), a 32 x 256 block: 9.1-12.5k cycles
// without, 6.3-9.3k prefetching 2 rows ahead (1 or 4 rows ahead, or a whole
// row at once: about the same).
constexpr size_t kPrefetchRows = 2;

void prefetch_row(const float* row, size_t k) {
  for (size_t j = 0; j < k; j += 16) _mm_prefetch(reinterpret_cast<const char*>(row + j), _MM_HINT_T0);
}

}  // namespace

void f32_split_bf16x3_amx(size_t rows, size_t k, const float* a, ptrdiff_t row_stride, ptrdiff_t col_stride,
                          size_t k_padded, uint16_t* out, size_t ld, size_t plane) {
  // Rows of A (activations) are contiguous: 32 values at a time, whole ones
  // unmasked, two conversions to one VCVTNE2PS2BF16 per part. Rows [1,
  // kPrefetchRows) are prefetched first, then row r + kPrefetchRows while
  // row r is split, a line per 16 values.
  const size_t k_pairs = col_stride == 1 ? k / 32 * 32 : 0;
  for (size_t r = 1; r < kPrefetchRows && r < rows && k_pairs > 0; ++r) {
    prefetch_row(a + static_cast<ptrdiff_t>(r) * row_stride, k_pairs);
  }
  for (size_t r = 0; r < rows; ++r) {
    const float* row = a + static_cast<ptrdiff_t>(r) * row_stride;
    uint16_t* dst = out + r * ld;
    size_t j = 0;
    if (r + kPrefetchRows < rows) {
      const float* ahead = row + static_cast<ptrdiff_t>(kPrefetchRows) * row_stride;
      for (; j < k_pairs; j += 32) {
        _mm_prefetch(reinterpret_cast<const char*>(ahead + j), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(ahead + j + 16), _MM_HINT_T0);
        store32_bf16x3_amx(_mm512_loadu_ps(row + j), _mm512_loadu_ps(row + j + 16), dst + j, plane);
      }
    }
    for (; j < k_pairs; j += 32) store32_bf16x3_amx(_mm512_loadu_ps(row + j), _mm512_loadu_ps(row + j + 16), dst + j, plane);
    for (; j < k_padded; j += 16) {
      store16_bf16x3_amx(load16(row, col_stride, j, k), dst + j, plane);  // lanes past k are zeros: the padding
    }
  }
}

}  // namespace simdformer
