// AVX-512 peak loop: 16 independent 16-lane FMA chains per round. Two FMA
// pipes x 4-cycle latency need 8 chains in flight; 16 leave headroom for
// CPUs with longer latency and keep 2 zmm free for the constants.
#include <immintrin.h>

#include <cstddef>

#include "../kernels.h"

namespace simdformer {

namespace {

constexpr int kChains = 16;

// Keeps the chains' results observable so the loop cannot be removed.
volatile float peak_sink;

}  // namespace

double f32_fma_peak_avx512(size_t iterations) {
  __m512 chains[kChains];
  for (int i = 0; i < kChains; ++i) chains[i] = _mm512_set1_ps(static_cast<float>(i));
  // x * 0.999 + 0.001 converges to 1: no overflow, no denormals.
  const __m512 scale = _mm512_set1_ps(0.999f), offset = _mm512_set1_ps(0.001f);
  for (size_t round = 0; round < iterations; ++round) {
#pragma GCC unroll 16
    for (int i = 0; i < kChains; ++i) chains[i] = _mm512_fmadd_ps(chains[i], scale, offset);
  }
  __m512 sum = chains[0];
  for (int i = 1; i < kChains; ++i) sum = _mm512_add_ps(sum, chains[i]);
  peak_sink = _mm512_reduce_add_ps(sum);
  return 2.0 * 16 * kChains * static_cast<double>(iterations);
}

}  // namespace simdformer
