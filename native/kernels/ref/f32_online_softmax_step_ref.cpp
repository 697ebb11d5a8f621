// Scalar reference online softmax step (contract: OnlineSoftmaxStepFn in
// kernels.h), one query (column) at a time. Each score is rounded to float
// once, as the SIMD kernels round scale * x + mask with one FMA; exp(s - max)
// and the column's sum are double, then rounded to float (p is stored as
// float, the running sum is a float).
#include <cmath>
#include <cstddef>

#include "../kernels.h"

namespace simdformer {

namespace {

// mask + padding first (a float add, as the math path combines the two
// masks), then one rounding of scale * x + that; -inf for a causal-masked key.
float score(const OnlineSoftmaxPanel& p, size_t j, size_t c) {
  if (p.causal && static_cast<ptrdiff_t>(j) > static_cast<ptrdiff_t>(c) + p.causal_offset) return -INFINITY;
  float bias = 0.0f;
  if (p.mask != nullptr && p.padding != nullptr) {
    bias = p.mask[j * p.ld + c] + p.padding[j];
  } else if (p.mask != nullptr) {
    bias = p.mask[j * p.ld + c];
  } else if (p.padding != nullptr) {
    bias = p.padding[j];
  }
  return static_cast<float>(static_cast<double>(p.scale) * p.scores[j * p.ld + c] + bias);
}

}  // namespace

void f32_online_softmax_step_ref(const OnlineSoftmaxPanel& p) {
  for (size_t c = 0; c < p.queries; ++c) {
    float max = p.running_max[c];
    for (size_t j = 0; j < p.keys; ++j) {
      const float s = score(p, j, c);
      p.scores[j * p.ld + c] = s;
      if (s > max) max = s;
    }
    // Every score so far -inf: nothing to attend to yet. p = 0, and alpha = 1
    // rather than exp(-inf - -inf) = NaN.
    if (max == -INFINITY) {
      for (size_t j = 0; j < p.keys; ++j) p.scores[j * p.ld + c] = 0.0f;
      p.alpha[c] = 1.0f;
      continue;
    }
    double sum = 0.0;
    for (size_t j = 0; j < p.keys; ++j) {
      float& x = p.scores[j * p.ld + c];
      const double shifted = static_cast<double>(x) - max;
      x = shifted < kOnlineSoftmaxCutoff ? 0.0f : static_cast<float>(std::exp(shifted));
      sum += x;
    }
    // exp(-inf) = 0 when this tile holds the query's first finite score.
    const float alpha = static_cast<float>(std::exp(static_cast<double>(p.running_max[c]) - max));
    p.alpha[c] = alpha;
    p.running_sum[c] = static_cast<float>(static_cast<double>(p.running_sum[c]) * alpha + sum);
    p.running_max[c] = max;
  }
  for (size_t j = 0; j < p.keys; ++j) {
    for (size_t c = p.queries; c < p.ld; ++c) p.scores[j * p.ld + c] = 0.0f;
  }
}

}  // namespace simdformer
