// AVX-512 GELU (contract: UnaryFn in kernels.h), 16 floats per vector, the
// last n % 16 masked; the function itself is vgelu_avx512 (vmath_avx512.h).
#include <immintrin.h>

#include <cstddef>

#include "../kernels.h"
#include "vmath_avx512.h"

namespace simdformer {

void f32_gelu_avx512(size_t n, const float* x, float* y) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, vgelu_avx512(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 tail = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(y + i, tail, vgelu_avx512(_mm512_maskz_loadu_ps(tail, x + i)));
  }
}

}  // namespace simdformer
