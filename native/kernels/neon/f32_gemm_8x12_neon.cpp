// NEON GEMM micro-kernel, 8 x 12 tile (contract: GemmUkernelFn in
// kernels.h). Per k step: three q-register loads of B (12 columns), two of A
// (8 rows), and 24 by-element FMAs (fmla v.4s, v.4s, v.s[lane]) into 24
// accumulators; with the 3 B and 2 A vectors that is 29 of the 32 q
// registers. 24 independent chains cover up to 4 FMA pipes x 4-cycle
// latency, and 24 FMAs per 5 loads leave the load pipes mostly idle.
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../kernels.h"
#include "vmath_neon.h"

namespace simdformer {

namespace {

constexpr size_t kMr = 8, kNr = 12;

// Distance, in k steps, at which the packed A panel is prefetched.
constexpr size_t kPrefetchA = 16;

// acc[r][v] += B[v] * A[r] for rows R..ROWS-1; the lane index of
// vfmaq_laneq_f32 must be a constant, hence the recursion over R.
template <size_t R, size_t ROWS>
inline void fma_rows(float32x4_t (&acc)[ROWS][3], float32x4_t b0, float32x4_t b1, float32x4_t b2, float32x4_t a_lo,
                     float32x4_t a_hi) {
  if constexpr (R < ROWS) {
    const float32x4_t a = R < 4 ? a_lo : a_hi;
    acc[R][0] = vfmaq_laneq_f32(acc[R][0], b0, a, R % 4);
    acc[R][1] = vfmaq_laneq_f32(acc[R][1], b1, a, R % 4);
    acc[R][2] = vfmaq_laneq_f32(acc[R][2], b2, a, R % 4);
    fma_rows<R + 1, ROWS>(acc, b0, b1, b2, a_lo, a_hi);
  }
}

inline float32x4_t apply_epilogue(float32x4_t x, float32x4_t bias, Activation activation) {
  x = vaddq_f32(x, bias);
  if (activation == Activation::kRelu) return vmaxq_f32(x, vdupq_n_f32(0.0f));
  if (activation == Activation::kGelu) return vgelu_neon(x);
  return x;
}

// One tile of ROWS (= mr_valid) rows, so short edge tiles do not pay for 8.
template <size_t ROWS>
inline void gemm_rows(size_t kc, const float* a, const float* b, float* c, size_t ldc, size_t nr_valid,
                      bool accumulate, const GemmEpilogue* epilogue) {
  float32x4_t acc[ROWS][3];
  for (size_t r = 0; r < ROWS; ++r) acc[r][0] = acc[r][1] = acc[r][2] = vdupq_n_f32(0.0f);
#pragma GCC unroll 4
  for (size_t k = 0; k < kc; ++k) {
    const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
    const float32x4_t a_lo = vld1q_f32(a);
    const float32x4_t a_hi = ROWS > 4 ? vld1q_f32(a + 4) : a_lo;
    __builtin_prefetch(a + kPrefetchA * kMr);
    fma_rows<0, ROWS>(acc, b0, b1, b2, a_lo, a_hi);
    a += kMr;
    b += kNr;
  }

  float32x4_t bias[3] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
  if (epilogue != nullptr && epilogue->bias != nullptr) {
    // Edge tiles read only nr_valid bias values.
    float padded[kNr] = {};
    std::memcpy(padded, epilogue->bias, nr_valid * sizeof(float));
    bias[0] = vld1q_f32(padded);
    bias[1] = vld1q_f32(padded + 4);
    bias[2] = vld1q_f32(padded + 8);
  }
  for (size_t r = 0; r < ROWS; ++r) {
    float* row = c + r * ldc;
    // Full tiles go straight to C; edge tiles through a 12-float row buffer,
    // so nothing at or past column nr_valid is read or written.
    float buffer[kNr] = {};
    float* target = nr_valid == kNr ? row : buffer;
    if (accumulate && target == buffer) std::memcpy(buffer, row, nr_valid * sizeof(float));
    for (size_t v = 0; v < 3; ++v) {
      float32x4_t out = acc[r][v];
      if (accumulate) out = vaddq_f32(vld1q_f32(target + 4 * v), out);
      if (epilogue != nullptr) out = apply_epilogue(out, bias[v], epilogue->activation);
      vst1q_f32(target + 4 * v, out);
    }
    if (target == buffer) std::memcpy(row, buffer, nr_valid * sizeof(float));
  }
}

}  // namespace

void f32_gemm_8x12_neon(size_t kc, const float* a_packed, const float* b_packed, float* c, size_t ldc,
                        size_t mr_valid, size_t nr_valid, bool accumulate, const GemmEpilogue* epilogue) {
  switch (mr_valid) {
    case 1: return gemm_rows<1>(kc, a_packed, b_packed, c, ldc, nr_valid, accumulate, epilogue);
    case 2: return gemm_rows<2>(kc, a_packed, b_packed, c, ldc, nr_valid, accumulate, epilogue);
    case 3: return gemm_rows<3>(kc, a_packed, b_packed, c, ldc, nr_valid, accumulate, epilogue);
    case 4: return gemm_rows<4>(kc, a_packed, b_packed, c, ldc, nr_valid, accumulate, epilogue);
    case 5: return gemm_rows<5>(kc, a_packed, b_packed, c, ldc, nr_valid, accumulate, epilogue);
    case 6: return gemm_rows<6>(kc, a_packed, b_packed, c, ldc, nr_valid, accumulate, epilogue);
    case 7: return gemm_rows<7>(kc, a_packed, b_packed, c, ldc, nr_valid, accumulate, epilogue);
    default: return gemm_rows<kMr>(kc, a_packed, b_packed, c, ldc, nr_valid, accumulate, epilogue);
  }
}

}  // namespace simdformer
