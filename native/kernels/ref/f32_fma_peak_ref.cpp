// Reference peak loop: 8 independent multiply-add chains per round in plain
// C++, i.e. what the compiler makes of scalar code for the baseline target.
#include <cstddef>

#include "../kernels.h"

namespace simdformer {

namespace {

constexpr int kChains = 8;

// Keeps the chains' results observable so the loop cannot be removed.
volatile float peak_sink;

}  // namespace

double f32_fma_peak_ref(size_t iterations) {
  float chains[kChains];
  for (int i = 0; i < kChains; ++i) chains[i] = static_cast<float>(i);
  // x * 0.999 + 0.001 converges to 1: no overflow, no denormals.
  const float scale = 0.999f, offset = 0.001f;
  for (size_t round = 0; round < iterations; ++round) {
    for (int i = 0; i < kChains; ++i) chains[i] = chains[i] * scale + offset;
  }
  float sum = 0.0f;
  for (int i = 0; i < kChains; ++i) sum += chains[i];
  peak_sink = sum;
  return 2.0 * kChains * static_cast<double>(iterations);
}

}  // namespace simdformer
