// Scalar reference row softmax (contract: SoftmaxRowFn in kernels.h).
// The scores are rounded to float as the SIMD kernels round them (one
// rounding of scale * x + mask, exact in double first); everything after
// that is double: exp(s - max), the sum, and the quotient. Three passes over
// the row and no stores before the last, so x and y may alias.
#include <cmath>
#include <cstddef>

#include "../kernels.h"

namespace simdformer {

namespace {

float score(const float* x, float scale, const float* mask, size_t i) {
  const double s = static_cast<double>(scale) * x[i] + (mask != nullptr ? mask[i] : 0.0f);
  return static_cast<float>(s);
}

}  // namespace

void f32_softmax_row_ref(size_t n, const float* x, float scale, const float* mask, float* y) {
  // A NaN score is skipped by the max but reaches the sum, so the row is NaN.
  double max = -INFINITY;
  for (size_t i = 0; i < n; ++i) {
    const float s = score(x, scale, mask, i);
    if (s > max) max = s;
  }
  // Every score -inf (or NaN): with max = 0 each term is exp(-inf) = 0 (or
  // NaN), the sum is 0 and the row becomes zeros (or NaN) below.
  if (max == -INFINITY) max = 0.0;
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += std::exp(score(x, scale, mask, i) - max);
  const double inverse = sum == 0.0 ? 0.0 : 1.0 / sum;
  for (size_t i = 0; i < n; ++i) y[i] = static_cast<float>(std::exp(score(x, scale, mask, i) - max) * inverse);
}

}  // namespace simdformer
