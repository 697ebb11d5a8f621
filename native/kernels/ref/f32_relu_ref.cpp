// Scalar reference ReLU (contract: UnaryFn in kernels.h). Like PyTorch's
// relu, NaN stays NaN and -0 stays -0: only values below zero become +0.
#include <cstddef>

#include "../kernels.h"

namespace simdformer {

void f32_relu_ref(size_t n, const float* x, float* y) {
  for (size_t i = 0; i < n; ++i) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

}  // namespace simdformer
