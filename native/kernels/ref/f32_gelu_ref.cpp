// Scalar reference GELU (contract: UnaryFn in kernels.h), PyTorch's exact
// form 0.5 x (1 + erf(x / sqrt2)) written as 0.5 x erfc(-x / sqrt2), in
// double: the same function, without the cancellation of 1 + erf for x < 0
// (PyTorch's float gelu(-10) is 0; the true value -7.6e-23 is returned here).
// gelu(-inf) = -inf * 0 = NaN as in PyTorch.
#include <cmath>
#include <cstddef>

#include "../kernels.h"

namespace simdformer {

void f32_gelu_ref(size_t n, const float* x, float* y) {
  const double inverse_sqrt2 = 0.70710678118654752440;
  for (size_t i = 0; i < n; ++i) {
    const double value = x[i];
    y[i] = static_cast<float>(0.5 * value * std::erfc(-value * inverse_sqrt2));
  }
}

}  // namespace simdformer
