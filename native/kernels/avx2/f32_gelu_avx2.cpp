// AVX2 GELU (contract: UnaryFn in kernels.h), 8 floats per vector, the last
// n % 8 by maskload / maskstore; the function itself is vgelu_avx2
// (vmath_avx2.h).
#include <immintrin.h>

#include <cstddef>

#include "../kernels.h"
#include "vmath_avx2.h"

namespace simdformer {

void f32_gelu_avx2(size_t n, const float* x, float* y) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, vgelu_avx2(_mm256_loadu_ps(x + i)));
  if (i < n) {
    const __m256i tail = vtail_mask_avx2(n - i);
    _mm256_maskstore_ps(y + i, tail, vgelu_avx2(_mm256_maskload_ps(x + i, tail)));
  }
}

}  // namespace simdformer
