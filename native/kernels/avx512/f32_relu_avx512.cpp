// AVX-512 ReLU (contract: UnaryFn in kernels.h), 16 floats per vector, the
// last n % 16 masked. max_ps(0, x) returns x when x is NaN and keeps -0
// (0 > -0 is false), exactly like the reference and PyTorch.
#include <immintrin.h>

#include <cstddef>

#include "../kernels.h"

namespace simdformer {

void f32_relu_avx512(size_t n, const float* x, float* y) {
  const __m512 zero = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_max_ps(zero, _mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 tail = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(y + i, tail, _mm512_max_ps(zero, _mm512_maskz_loadu_ps(tail, x + i)));
  }
}

}  // namespace simdformer
