// Scalar reference dot products against rows (contract: DotRowsFn in
// kernels.h): out[j] = sum over k < n of x[k] * y[j * y_stride + k], summed in
// order of k.
#include <cstddef>

#include "../kernels.h"

namespace simdformer {

void f32_dot_rows_ref(size_t rows, size_t n, const float* x, const float* y, size_t y_stride, float* out) {
  for (size_t j = 0; j < rows; ++j) {
    const float* row = y + j * y_stride;
    float sum = 0.0f;
    for (size_t k = 0; k < n; ++k) sum += x[k] * row[k];
    out[j] = sum;
  }
}

}  // namespace simdformer
