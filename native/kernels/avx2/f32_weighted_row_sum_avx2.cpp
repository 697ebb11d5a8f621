// AVX2 weighted sum of rows (contract: WeightedRowSumFn in kernels.h).
// Columns in strips of 32 (four vectors, the last ones by maskload); inside
// a strip even and odd rows go to two sets of accumulators, eight FMA chains
// to hide the FMA latency, added together at the end of the strip.
#include <immintrin.h>

#include <algorithm>
#include <cstddef>

#include "../kernels.h"
#include "vmath_avx2.h"

namespace simdformer {

void f32_weighted_row_sum_avx2(size_t rows, size_t n, const float* w, const float* y, size_t y_stride, float* out) {
  for (size_t k0 = 0; k0 < n; k0 += 32) {
    const size_t width = std::min<size_t>(32, n - k0);
    const __m256i m0 = vtail_mask_avx2(std::min<size_t>(8, width));
    const __m256i m1 = vtail_mask_avx2(width > 8 ? std::min<size_t>(8, width - 8) : 0);
    const __m256i m2 = vtail_mask_avx2(width > 16 ? std::min<size_t>(8, width - 16) : 0);
    const __m256i m3 = vtail_mask_avx2(width > 24 ? width - 24 : 0);
    __m256 e0 = _mm256_setzero_ps(), e1 = _mm256_setzero_ps(), e2 = _mm256_setzero_ps(), e3 = _mm256_setzero_ps();
    __m256 o0 = _mm256_setzero_ps(), o1 = _mm256_setzero_ps(), o2 = _mm256_setzero_ps(), o3 = _mm256_setzero_ps();
    const float* row = y + k0;
    size_t j = 0;
    for (; j + 2 <= rows; j += 2, row += 2 * y_stride) {
      const __m256 we = _mm256_set1_ps(w[j]), wo = _mm256_set1_ps(w[j + 1]);
      const float* next = row + y_stride;
      e0 = _mm256_fmadd_ps(we, _mm256_maskload_ps(row, m0), e0);
      e1 = _mm256_fmadd_ps(we, _mm256_maskload_ps(row + 8, m1), e1);
      e2 = _mm256_fmadd_ps(we, _mm256_maskload_ps(row + 16, m2), e2);
      e3 = _mm256_fmadd_ps(we, _mm256_maskload_ps(row + 24, m3), e3);
      o0 = _mm256_fmadd_ps(wo, _mm256_maskload_ps(next, m0), o0);
      o1 = _mm256_fmadd_ps(wo, _mm256_maskload_ps(next + 8, m1), o1);
      o2 = _mm256_fmadd_ps(wo, _mm256_maskload_ps(next + 16, m2), o2);
      o3 = _mm256_fmadd_ps(wo, _mm256_maskload_ps(next + 24, m3), o3);
    }
    if (j < rows) {
      const __m256 we = _mm256_set1_ps(w[j]);
      e0 = _mm256_fmadd_ps(we, _mm256_maskload_ps(row, m0), e0);
      e1 = _mm256_fmadd_ps(we, _mm256_maskload_ps(row + 8, m1), e1);
      e2 = _mm256_fmadd_ps(we, _mm256_maskload_ps(row + 16, m2), e2);
      e3 = _mm256_fmadd_ps(we, _mm256_maskload_ps(row + 24, m3), e3);
    }
    float* to = out + k0;
    _mm256_maskstore_ps(to, m0, _mm256_add_ps(e0, o0));
    _mm256_maskstore_ps(to + 8, m1, _mm256_add_ps(e1, o1));
    _mm256_maskstore_ps(to + 16, m2, _mm256_add_ps(e2, o2));
    _mm256_maskstore_ps(to + 24, m3, _mm256_add_ps(e3, o3));
  }
}

}  // namespace simdformer
