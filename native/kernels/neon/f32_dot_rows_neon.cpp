// NEON dot products against rows (contract: DotRowsFn in kernels.h). Four
// rows at a time, so four independent FMA chains hide the FMA latency while
// x is loaded once for all four; the last n % 4 values in scalar code. Each
// sum is reduced across lanes once, at the end of its row.
#include <arm_neon.h>

#include <cstddef>

#include "../kernels.h"

namespace simdformer {

void f32_dot_rows_neon(size_t rows, size_t n, const float* x, const float* y, size_t y_stride, float* out) {
  const size_t body = n / 4 * 4;
  size_t j = 0;
  for (; j + 4 <= rows; j += 4) {
    const float* y0 = y + j * y_stride;
    const float* y1 = y0 + y_stride;
    const float* y2 = y1 + y_stride;
    const float* y3 = y2 + y_stride;
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
    for (size_t k = 0; k < body; k += 4) {
      const float32x4_t xv = vld1q_f32(x + k);
      s0 = vfmaq_f32(s0, xv, vld1q_f32(y0 + k));
      s1 = vfmaq_f32(s1, xv, vld1q_f32(y1 + k));
      s2 = vfmaq_f32(s2, xv, vld1q_f32(y2 + k));
      s3 = vfmaq_f32(s3, xv, vld1q_f32(y3 + k));
    }
    float t0 = vaddvq_f32(s0), t1 = vaddvq_f32(s1), t2 = vaddvq_f32(s2), t3 = vaddvq_f32(s3);
    for (size_t k = body; k < n; ++k) {
      t0 += x[k] * y0[k];
      t1 += x[k] * y1[k];
      t2 += x[k] * y2[k];
      t3 += x[k] * y3[k];
    }
    out[j] = t0;
    out[j + 1] = t1;
    out[j + 2] = t2;
    out[j + 3] = t3;
  }
  for (; j < rows; ++j) {
    const float* row = y + j * y_stride;
    float32x4_t s = vdupq_n_f32(0.0f);
    for (size_t k = 0; k < body; k += 4) s = vfmaq_f32(s, vld1q_f32(x + k), vld1q_f32(row + k));
    float t = vaddvq_f32(s);
    for (size_t k = body; k < n; ++k) t += x[k] * row[k];
    out[j] = t;
  }
}

}  // namespace simdformer
