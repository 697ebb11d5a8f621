// AVX-512 dot products against rows (contract: DotRowsFn in kernels.h).
// Four rows at a time, so four independent FMA chains hide the FMA latency
// while x is loaded once for all four; the last n % 16 values masked. Each
// sum is reduced across lanes once, at the end of its row.
#include <immintrin.h>

#include <cstddef>

#include "../kernels.h"

namespace simdformer {

void f32_dot_rows_avx512(size_t rows, size_t n, const float* x, const float* y, size_t y_stride, float* out) {
  const size_t body = n / 16 * 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (n - body)) - 1u);
  size_t j = 0;
  for (; j + 4 <= rows; j += 4) {
    const float* y0 = y + j * y_stride;
    const float* y1 = y0 + y_stride;
    const float* y2 = y1 + y_stride;
    const float* y3 = y2 + y_stride;
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    for (size_t k = 0; k < body; k += 16) {
      const __m512 xv = _mm512_loadu_ps(x + k);
      s0 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(y0 + k), s0);
      s1 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(y1 + k), s1);
      s2 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(y2 + k), s2);
      s3 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(y3 + k), s3);
    }
    if (tail != 0) {
      const __m512 xv = _mm512_maskz_loadu_ps(tail, x + body);
      s0 = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(tail, y0 + body), s0);
      s1 = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(tail, y1 + body), s1);
      s2 = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(tail, y2 + body), s2);
      s3 = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(tail, y3 + body), s3);
    }
    out[j] = _mm512_reduce_add_ps(s0);
    out[j + 1] = _mm512_reduce_add_ps(s1);
    out[j + 2] = _mm512_reduce_add_ps(s2);
    out[j + 3] = _mm512_reduce_add_ps(s3);
  }
  for (; j < rows; ++j) {
    const float* row = y + j * y_stride;
    __m512 s = _mm512_setzero_ps();
    for (size_t k = 0; k < body; k += 16) s = _mm512_fmadd_ps(_mm512_loadu_ps(x + k), _mm512_loadu_ps(row + k), s);
    if (tail != 0) s = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, x + body), _mm512_maskz_loadu_ps(tail, row + body), s);
    out[j] = _mm512_reduce_add_ps(s);
  }
}

}  // namespace simdformer
