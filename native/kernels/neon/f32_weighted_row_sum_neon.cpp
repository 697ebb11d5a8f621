// NEON weighted sum of rows (contract: WeightedRowSumFn in kernels.h).
// Columns in strips of 16 (four vectors); inside a strip even and odd rows
// go to two sets of accumulators, eight FMA chains to hide the FMA latency,
// added together at the end of the strip. The last n % 16 columns in scalar code.
#include <arm_neon.h>

#include <cstddef>

#include "../kernels.h"

namespace simdformer {

void f32_weighted_row_sum_neon(size_t rows, size_t n, const float* w, const float* y, size_t y_stride, float* out) {
  const size_t body = n / 16 * 16;
  for (size_t k0 = 0; k0 < body; k0 += 16) {
    float32x4_t e0 = vdupq_n_f32(0.0f), e1 = e0, e2 = e0, e3 = e0, o0 = e0, o1 = e0, o2 = e0, o3 = e0;
    const float* row = y + k0;
    size_t j = 0;
    for (; j + 2 <= rows; j += 2, row += 2 * y_stride) {
      const float32x4_t we = vdupq_n_f32(w[j]), wo = vdupq_n_f32(w[j + 1]);
      const float* next = row + y_stride;
      e0 = vfmaq_f32(e0, we, vld1q_f32(row));
      e1 = vfmaq_f32(e1, we, vld1q_f32(row + 4));
      e2 = vfmaq_f32(e2, we, vld1q_f32(row + 8));
      e3 = vfmaq_f32(e3, we, vld1q_f32(row + 12));
      o0 = vfmaq_f32(o0, wo, vld1q_f32(next));
      o1 = vfmaq_f32(o1, wo, vld1q_f32(next + 4));
      o2 = vfmaq_f32(o2, wo, vld1q_f32(next + 8));
      o3 = vfmaq_f32(o3, wo, vld1q_f32(next + 12));
    }
    if (j < rows) {
      const float32x4_t we = vdupq_n_f32(w[j]);
      e0 = vfmaq_f32(e0, we, vld1q_f32(row));
      e1 = vfmaq_f32(e1, we, vld1q_f32(row + 4));
      e2 = vfmaq_f32(e2, we, vld1q_f32(row + 8));
      e3 = vfmaq_f32(e3, we, vld1q_f32(row + 12));
    }
    vst1q_f32(out + k0, vaddq_f32(e0, o0));
    vst1q_f32(out + k0 + 4, vaddq_f32(e1, o1));
    vst1q_f32(out + k0 + 8, vaddq_f32(e2, o2));
    vst1q_f32(out + k0 + 12, vaddq_f32(e3, o3));
  }
  for (size_t k = body; k < n; ++k) {
    float sum = 0.0f;
    for (size_t j = 0; j < rows; ++j) sum += w[j] * y[j * y_stride + k];
    out[k] = sum;
  }
}

}  // namespace simdformer
