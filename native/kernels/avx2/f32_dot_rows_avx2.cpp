// AVX2 dot products against rows (contract: DotRowsFn in kernels.h). Four
// rows at a time, so four independent FMA chains hide the FMA latency while
// x is loaded once for all four; the last n % 8 values by maskload. Each sum
// is reduced across lanes once, at the end of its row.
#include <immintrin.h>

#include <cstddef>

#include "../kernels.h"
#include "vmath_avx2.h"

namespace simdformer {

void f32_dot_rows_avx2(size_t rows, size_t n, const float* x, const float* y, size_t y_stride, float* out) {
  const size_t body = n / 8 * 8;
  const __m256i tail = vtail_mask_avx2(n - body);
  const bool has_tail = body < n;
  size_t j = 0;
  for (; j + 4 <= rows; j += 4) {
    const float* y0 = y + j * y_stride;
    const float* y1 = y0 + y_stride;
    const float* y2 = y1 + y_stride;
    const float* y3 = y2 + y_stride;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    for (size_t k = 0; k < body; k += 8) {
      const __m256 xv = _mm256_loadu_ps(x + k);
      s0 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(y0 + k), s0);
      s1 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(y1 + k), s1);
      s2 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(y2 + k), s2);
      s3 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(y3 + k), s3);
    }
    if (has_tail) {
      const __m256 xv = _mm256_maskload_ps(x + body, tail);
      s0 = _mm256_fmadd_ps(xv, _mm256_maskload_ps(y0 + body, tail), s0);
      s1 = _mm256_fmadd_ps(xv, _mm256_maskload_ps(y1 + body, tail), s1);
      s2 = _mm256_fmadd_ps(xv, _mm256_maskload_ps(y2 + body, tail), s2);
      s3 = _mm256_fmadd_ps(xv, _mm256_maskload_ps(y3 + body, tail), s3);
    }
    out[j] = vreduce_add_avx2(s0);
    out[j + 1] = vreduce_add_avx2(s1);
    out[j + 2] = vreduce_add_avx2(s2);
    out[j + 3] = vreduce_add_avx2(s3);
  }
  for (; j < rows; ++j) {
    const float* row = y + j * y_stride;
    __m256 s = _mm256_setzero_ps();
    for (size_t k = 0; k < body; k += 8) s = _mm256_fmadd_ps(_mm256_loadu_ps(x + k), _mm256_loadu_ps(row + k), s);
    if (has_tail) s = _mm256_fmadd_ps(_mm256_maskload_ps(x + body, tail), _mm256_maskload_ps(row + body, tail), s);
    out[j] = vreduce_add_avx2(s);
  }
}

}  // namespace simdformer
