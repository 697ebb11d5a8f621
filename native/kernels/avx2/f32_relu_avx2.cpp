// AVX2 ReLU (contract: UnaryFn in kernels.h), 8 floats per vector, the last
// n % 8 by maskload / maskstore. max_ps(0, x) returns x when x is NaN and
// keeps -0 (0 > -0 is false), exactly like the reference and PyTorch.
#include <immintrin.h>

#include <cstddef>

#include "../kernels.h"
#include "vmath_avx2.h"

namespace simdformer {

void f32_relu_avx2(size_t n, const float* x, float* y) {
  const __m256 zero = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_max_ps(zero, _mm256_loadu_ps(x + i)));
  if (i < n) {
    const __m256i tail = vtail_mask_avx2(n - i);
    _mm256_maskstore_ps(y + i, tail, _mm256_max_ps(zero, _mm256_maskload_ps(x + i, tail)));
  }
}

}  // namespace simdformer
