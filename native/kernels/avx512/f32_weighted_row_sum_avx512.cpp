// AVX-512 weighted sum of rows (contract: WeightedRowSumFn in kernels.h).
// Columns in strips of 64 (four vectors, the last ones masked); inside a
// strip even and odd rows go to two sets of accumulators, eight FMA chains
// to hide the FMA latency, added together at the end of the strip.
#include <immintrin.h>

#include <algorithm>
#include <cstddef>

#include "../kernels.h"

namespace simdformer {

namespace {

__mmask16 lanes(size_t count) {
  return count >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << count) - 1u);
}

}  // namespace

void f32_weighted_row_sum_avx512(size_t rows, size_t n, const float* w, const float* y, size_t y_stride, float* out) {
  for (size_t k0 = 0; k0 < n; k0 += 64) {
    const size_t width = std::min<size_t>(64, n - k0);
    const __mmask16 m0 = lanes(width), m1 = lanes(width > 16 ? width - 16 : 0), m2 = lanes(width > 32 ? width - 32 : 0),
                    m3 = lanes(width > 48 ? width - 48 : 0);
    __m512 e0 = _mm512_setzero_ps(), e1 = _mm512_setzero_ps(), e2 = _mm512_setzero_ps(), e3 = _mm512_setzero_ps();
    __m512 o0 = _mm512_setzero_ps(), o1 = _mm512_setzero_ps(), o2 = _mm512_setzero_ps(), o3 = _mm512_setzero_ps();
    const float* row = y + k0;
    size_t j = 0;
    for (; j + 2 <= rows; j += 2, row += 2 * y_stride) {
      const __m512 we = _mm512_set1_ps(w[j]), wo = _mm512_set1_ps(w[j + 1]);
      const float* next = row + y_stride;
      e0 = _mm512_fmadd_ps(we, _mm512_maskz_loadu_ps(m0, row), e0);
      e1 = _mm512_fmadd_ps(we, _mm512_maskz_loadu_ps(m1, row + 16), e1);
      e2 = _mm512_fmadd_ps(we, _mm512_maskz_loadu_ps(m2, row + 32), e2);
      e3 = _mm512_fmadd_ps(we, _mm512_maskz_loadu_ps(m3, row + 48), e3);
      o0 = _mm512_fmadd_ps(wo, _mm512_maskz_loadu_ps(m0, next), o0);
      o1 = _mm512_fmadd_ps(wo, _mm512_maskz_loadu_ps(m1, next + 16), o1);
      o2 = _mm512_fmadd_ps(wo, _mm512_maskz_loadu_ps(m2, next + 32), o2);
      o3 = _mm512_fmadd_ps(wo, _mm512_maskz_loadu_ps(m3, next + 48), o3);
    }
    if (j < rows) {
      const __m512 we = _mm512_set1_ps(w[j]);
      e0 = _mm512_fmadd_ps(we, _mm512_maskz_loadu_ps(m0, row), e0);
      e1 = _mm512_fmadd_ps(we, _mm512_maskz_loadu_ps(m1, row + 16), e1);
      e2 = _mm512_fmadd_ps(we, _mm512_maskz_loadu_ps(m2, row + 32), e2);
      e3 = _mm512_fmadd_ps(we, _mm512_maskz_loadu_ps(m3, row + 48), e3);
    }
    float* to = out + k0;
    _mm512_mask_storeu_ps(to, m0, _mm512_add_ps(e0, o0));
    _mm512_mask_storeu_ps(to + 16, m1, _mm512_add_ps(e1, o1));
    _mm512_mask_storeu_ps(to + 32, m2, _mm512_add_ps(e2, o2));
    _mm512_mask_storeu_ps(to + 48, m3, _mm512_add_ps(e3, o3));
  }
}

}  // namespace simdformer
