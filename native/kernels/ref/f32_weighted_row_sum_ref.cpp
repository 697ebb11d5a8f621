// Scalar reference weighted sum of rows (contract: WeightedRowSumFn in
// kernels.h): out[k] = sum over j < rows of w[j] * y[j * y_stride + k], summed
// in order of j.
#include <cstddef>

#include "../kernels.h"

namespace simdformer {

void f32_weighted_row_sum_ref(size_t rows, size_t n, const float* w, const float* y, size_t y_stride, float* out) {
  for (size_t k = 0; k < n; ++k) out[k] = 0.0f;
  for (size_t j = 0; j < rows; ++j) {
    const float* row = y + j * y_stride;
    for (size_t k = 0; k < n; ++k) out[k] += w[j] * row[k];
  }
}

}  // namespace simdformer
