// AVX2 peak loop: 12 independent 8-lane FMA chains per round. Two FMA pipes
// x 4-5 cycle latency need 8-10 chains in flight; 12 chains plus the two
// constants fit the 16 ymm registers without spills.
#include <immintrin.h>

#include <cstddef>

#include "../kernels.h"

namespace simdformer {

namespace {

constexpr int kChains = 12;

// Keeps the chains' results observable so the loop cannot be removed.
volatile float peak_sink;

}  // namespace

double f32_fma_peak_avx2(size_t iterations) {
  __m256 chains[kChains];
  for (int i = 0; i < kChains; ++i) chains[i] = _mm256_set1_ps(static_cast<float>(i));
  // x * 0.999 + 0.001 converges to 1: no overflow, no denormals.
  const __m256 scale = _mm256_set1_ps(0.999f), offset = _mm256_set1_ps(0.001f);
  for (size_t round = 0; round < iterations; ++round) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) chains[i] = _mm256_fmadd_ps(chains[i], scale, offset);
  }
  __m256 sum = chains[0];
  for (int i = 1; i < kChains; ++i) sum = _mm256_add_ps(sum, chains[i]);
  float lanes[8];
  _mm256_storeu_ps(lanes, sum);
  peak_sink = lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5] + lanes[6] + lanes[7];
  return 2.0 * 8 * kChains * static_cast<double>(iterations);
}

}  // namespace simdformer
