// NEON ReLU (contract: UnaryFn in kernels.h), 4 floats per vector and a
// scalar loop for the last n % 4. A compare and select, not vmaxq_f32, so
// that -0 stays -0 and NaN stays NaN like the reference and PyTorch.
#include <arm_neon.h>

#include <cstddef>

#include "../kernels.h"

namespace simdformer {

void f32_relu_neon(size_t n, const float* x, float* y) {
  const float32x4_t zero = vdupq_n_f32(0.0f);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t xv = vld1q_f32(x + i);
    vst1q_f32(y + i, vbslq_f32(vcltq_f32(xv, zero), zero, xv));
  }
  for (; i < n; ++i) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

}  // namespace simdformer
