// Scalar reference layer norm of one row (contract: LayerNormRowFn in
// kernels.h), in double throughout: mean, then the biased variance of the
// centred values, then y = (x - mean) / sqrt(var + eps) * weight + bias.
// Reads x[i] before writing y[i] in the last pass, so x and y may alias.
#include <cmath>
#include <cstddef>

#include "../kernels.h"

namespace simdformer {

void f32_layernorm_row_ref(size_t n, const float* x, float eps, const float* weight, const float* bias, float* y) {
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += x[i];
  const double mean = sum / static_cast<double>(n);
  double squares = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double centred = x[i] - mean;
    squares += centred * centred;
  }
  const double rstd = 1.0 / std::sqrt(squares / static_cast<double>(n) + eps);
  for (size_t i = 0; i < n; ++i) {
    double value = (x[i] - mean) * rstd;
    if (weight != nullptr) value *= weight[i];
    if (bias != nullptr) value += bias[i];
    y[i] = static_cast<float>(value);
  }
}

}  // namespace simdformer
