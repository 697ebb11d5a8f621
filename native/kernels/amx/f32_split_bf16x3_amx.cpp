// Splits float32 rows of A into the three bfloat16 planes the AMX GEMM tile
// kernel reads (contract: SplitBf16x3Fn in kernels.h; the split itself is
// in bf16x3_amx.h).
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../kernels.h"
#include "bf16x3_amx.h"

namespace simdformer {

void f32_split_bf16x3_amx(size_t rows, size_t k, const float* a, ptrdiff_t row_stride, ptrdiff_t col_stride,
                          size_t k_padded, uint16_t* out, size_t ld, size_t plane) {
  for (size_t r = 0; r < rows; ++r) {
    const float* row = a + static_cast<ptrdiff_t>(r) * row_stride;
    uint16_t* dst = out + r * ld;
    for (size_t j = 0; j < k_padded; j += 16) {
      const size_t valid = j < k ? (k - j < 16 ? k - j : 16) : 0;
      __m512 x;
      if (col_stride == 1) {
        x = _mm512_maskz_loadu_ps(valid == 16 ? 0xFFFF : static_cast<__mmask16>((1u << valid) - 1), row + j);
      } else {
        alignas(64) float gathered[16] = {};
        for (size_t i = 0; i < valid; ++i) gathered[i] = row[static_cast<ptrdiff_t>(j + i) * col_stride];
        x = _mm512_load_ps(gathered);
      }
      store16_bf16x3_amx(x, dst + j, plane);  // lanes past k are zeros: the padding
    }
  }
}

}  // namespace simdformer
