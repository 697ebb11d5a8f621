// NEON GELU (contract: UnaryFn in kernels.h), 4 floats per vector; the last
// n % 4 go through a zero-padded vector so they get the same function,
// vgelu_neon (vmath_neon.h).
#include <arm_neon.h>

#include <cstddef>
#include <cstring>

#include "../kernels.h"
#include "vmath_neon.h"

namespace simdformer {

void f32_gelu_neon(size_t n, const float* x, float* y) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vgelu_neon(vld1q_f32(x + i)));
  if (i < n) {
    float tail[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    memcpy(tail, x + i, (n - i) * sizeof(float));
    vst1q_f32(tail, vgelu_neon(vld1q_f32(tail)));
    memcpy(y + i, tail, (n - i) * sizeof(float));
  }
}

}  // namespace simdformer
