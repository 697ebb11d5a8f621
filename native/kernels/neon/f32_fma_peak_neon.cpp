// NEON peak loop: 16 independent 4-lane FMA chains per round. Cores with up
// to 4 FMA pipes x 4-cycle latency (Neoverse V1/V2, Apple) need 16 in flight;
// 16 chains plus the two constants fit the 32 q registers.
#include <arm_neon.h>

#include <cstddef>

#include "../kernels.h"

namespace simdformer {

namespace {

constexpr int kChains = 16;

// Keeps the chains' results observable so the loop cannot be removed.
volatile float peak_sink;

}  // namespace

double f32_fma_peak_neon(size_t iterations) {
  float32x4_t chains[kChains];
  for (int i = 0; i < kChains; ++i) chains[i] = vdupq_n_f32(static_cast<float>(i));
  // offset + x * 0.999 converges to 1: no overflow, no denormals.
  const float32x4_t scale = vdupq_n_f32(0.999f), offset = vdupq_n_f32(0.001f);
  for (size_t round = 0; round < iterations; ++round) {
#pragma GCC unroll 16
    for (int i = 0; i < kChains; ++i) chains[i] = vfmaq_f32(offset, chains[i], scale);
  }
  float32x4_t sum = chains[0];
  for (int i = 1; i < kChains; ++i) sum = vaddq_f32(sum, chains[i]);
  peak_sink = vaddvq_f32(sum);
  return 2.0 * 4 * kChains * static_cast<double>(iterations);
}

}  // namespace simdformer
