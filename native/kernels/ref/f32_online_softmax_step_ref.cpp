// Scalar reference online softmax step (contract: OnlineSoftmaxStepFn in
// kernels.h). Each score is rounded to float once, as the SIMD kernels round
// scale * x + mask with one FMA; exp(s - max) and the tile's sum are double,
// then rounded to float (p is stored as float, the running sum is a float).
#include <cmath>
#include <cstddef>

#include "../kernels.h"

namespace simdformer {

namespace {

float score(const float* x, float scale, const float* mask, const float* padding, size_t j) {
  // mask + padding first (a float add, as the math path combines the two
  // masks), then one rounding of scale * x + that.
  float bias = 0.0f;
  if (mask != nullptr && padding != nullptr) {
    bias = mask[j] + padding[j];
  } else if (mask != nullptr) {
    bias = mask[j];
  } else if (padding != nullptr) {
    bias = padding[j];
  }
  return static_cast<float>(static_cast<double>(scale) * x[j] + bias);
}

}  // namespace

float f32_online_softmax_step_ref(size_t n, float* x, float scale, const float* mask, const float* padding,
                                  float* running_max, float* running_sum) {
  float max = *running_max;
  for (size_t j = 0; j < n; ++j) {
    x[j] = score(x, scale, mask, padding, j);
    if (x[j] > max) max = x[j];
  }
  // Every score so far -inf: nothing to attend to yet. p = 0, and alpha = 1
  // rather than exp(-inf - -inf) = NaN.
  if (max == -INFINITY) {
    for (size_t j = 0; j < n; ++j) x[j] = 0.0f;
    return 1.0f;
  }
  double sum = 0.0;
  for (size_t j = 0; j < n; ++j) {
    x[j] = static_cast<float>(std::exp(static_cast<double>(x[j]) - max));
    sum += x[j];
  }
  // exp(-inf) = 0 when this is the row's first finite score.
  const float alpha = static_cast<float>(std::exp(static_cast<double>(*running_max) - max));
  *running_sum = static_cast<float>(static_cast<double>(*running_sum) * alpha + sum);
  *running_max = max;
  return alpha;
}

}  // namespace simdformer
