// Packs one 16-column panel of B for the AMX GEMM tile kernel (contract:
// PackBBf16x3Fn in kernels.h): three bfloat16 planes (bf16x3_amx.h), each in
// TDPBF16PS's "VNNI" layout, plane[(p / 2) * 32 + j * 2 + p % 2] = part of
// B(p, j): column j's values for k = p, p + 1 share one 32-bit word, so 32 k
// values of a column are 16 words, 16 words apart (one scatter).
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../kernels.h"
#include "bf16x3_amx.h"

namespace simdformer {

void f32_pack_b_bf16x3_amx(size_t kc, size_t kc_padded, size_t nr_valid, const float* b, ptrdiff_t row_stride,
                           ptrdiff_t col_stride, uint16_t* out, size_t plane) {
  const __m512i word_index = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                                _mm512_set1_epi32(16));
  alignas(64) uint16_t parts[3][32];
  for (size_t j = 0; j < 16; ++j) {
    const float* column = b + static_cast<ptrdiff_t>(j) * col_stride;
    for (size_t p0 = 0; p0 < kc_padded; p0 += 32) {
      for (size_t half = 0; half < 2; ++half) {
        alignas(64) float values[16] = {};
        const size_t first = p0 + half * 16;
        if (j < nr_valid) {
          for (size_t i = 0; i < 16 && first + i < kc; ++i) values[i] = column[static_cast<ptrdiff_t>(first + i) * row_stride];
        }
        split16_bf16x3_amx(_mm512_load_ps(values), parts[0] + half * 16, 32);
      }
      for (size_t part = 0; part < 3; ++part) {
        _mm512_i32scatter_epi32(out + part * plane + p0 * 16 + j * 2, word_index, _mm512_load_si512(parts[part]), 4);
      }
    }
  }
}

}  // namespace simdformer
