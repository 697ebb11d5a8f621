// Packs one 16-column panel of B for the AMX GEMM tile kernel (contract:
// PackBBf16x3Fn in kernels.h): three bfloat16 planes (bf16x3_amx.h), each in
// TDPBF16PS's "VNNI" layout, plane[(p / 2) * 32 + j * 2 + p % 2] = part of
// B(p, j): row pair p, p + 1 is one 64-byte row of 16 words, word j holding
// column j's two values. The driver calls it per call and block (B comes
// packed as float32 for the AVX-512 kernel, or unpacked), so the common
// case, rows contiguous in j (col_stride 1), is two loads and three stores
// per row pair.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../kernels.h"
#include "bf16x3_amx.h"

namespace simdformer {

namespace {

// 16 values of row p (zeros past nr_valid columns or kc rows).
__m512 load_row(const float* b, ptrdiff_t row_stride, ptrdiff_t col_stride, size_t p, size_t kc, size_t nr_valid) {
  if (p >= kc || nr_valid == 0) return _mm512_setzero_ps();
  const float* row = b + static_cast<ptrdiff_t>(p) * row_stride;
  if (col_stride == 1) {
    return _mm512_maskz_loadu_ps(nr_valid >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << nr_valid) - 1), row);
  }
  alignas(64) float values[16] = {};
  for (size_t j = 0; j < nr_valid && j < 16; ++j) values[j] = row[static_cast<ptrdiff_t>(j) * col_stride];
  return _mm512_load_ps(values);
}

}  // namespace

void f32_pack_b_bf16x3_amx(size_t kc, size_t kc_padded, size_t nr_valid, const float* b, ptrdiff_t row_stride,
                           ptrdiff_t col_stride, uint16_t* out, size_t plane) {
  for (size_t p = 0; p < kc_padded; p += 2) {
    __m256i even[3], odd[3];
    split16_bf16x3_amx(load_row(b, row_stride, col_stride, p, kc, nr_valid), even);
    split16_bf16x3_amx(load_row(b, row_stride, col_stride, p + 1, kc, nr_valid), odd);
    for (size_t part = 0; part < 3; ++part) {
      const __m512i words = _mm512_or_si512(_mm512_cvtepu16_epi32(even[part]),
                                            _mm512_slli_epi32(_mm512_cvtepu16_epi32(odd[part]), 16));
      _mm512_storeu_si512(out + part * plane + p * 16, words);
    }
  }
}

}  // namespace simdformer
