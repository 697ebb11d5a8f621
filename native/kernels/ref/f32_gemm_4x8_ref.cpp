// Scalar reference GEMM micro-kernel, 4 x 8 tile: plain loops that the SIMD
// kernels are tested against. Contract: GemmUkernelFn in kernels.h.
#include <cmath>
#include <cstddef>

#include "../kernels.h"

namespace simdformer {

namespace {

constexpr size_t kMr = 4, kNr = 8;

float apply_activation(float x, Activation activation) {
  switch (activation) {
    case Activation::kRelu:
      return x > 0.0f ? x : 0.0f;
    case Activation::kGelu:
      // PyTorch's exact GELU: 0.5 * x * (1 + erf(x / sqrt(2))).
      return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
    case Activation::kNone:
      break;
  }
  return x;
}

}  // namespace

void f32_gemm_4x8_ref(size_t kc, const float* a_packed, const float* b_packed, float* c, size_t ldc, size_t mr_valid,
                      size_t nr_valid, bool accumulate, const GemmEpilogue* epilogue) {
  for (size_t i = 0; i < mr_valid; ++i) {
    for (size_t j = 0; j < nr_valid; ++j) {
      float sum = 0.0f;
      for (size_t k = 0; k < kc; ++k) sum += a_packed[k * kMr + i] * b_packed[k * kNr + j];
      float value = accumulate ? c[i * ldc + j] + sum : sum;
      if (epilogue != nullptr) {
        if (epilogue->bias != nullptr) value += epilogue->bias[j];
        value = apply_activation(value, epilogue->activation);
      }
      c[i * ldc + j] = value;
    }
  }
}

}  // namespace simdformer
