// AVX2 + FMA GEMM micro-kernel, 6 x 16 tile (contract: GemmUkernelFn in
// kernels.h). Per k step: two ymm loads of B (16 columns), 6 broadcasts of
// A, 12 FMAs into 12 ymm accumulators; with the two B vectors and one
// broadcast that is 15 of the 16 ymm registers. 12 independent chains cover
// 2 FMA pipes x 4-5 cycle latency, and 12 FMAs per 8 loads leave load slots
// to spare.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../kernels.h"
#include "vmath_avx2.h"

namespace simdformer {

namespace {

constexpr size_t kMr = 6, kNr = 16;

// Distances, in k steps, at which the packed A and B panels are prefetched.
// A streams from L2. The B panel is reused from L1 by the calls for the
// other rows of the block, but the first call for each panel reads it from
// memory, where the hardware prefetchers alone leave that call waiting.
constexpr size_t kPrefetchA = 16;
constexpr size_t kPrefetchB = 32;

// k steps before the end of the k loop at which the C tile is fetched into
// L1 (each step is about 6 cycles: enough to cover an L2 hit).
constexpr size_t kPrefetchC = 24;

// Eight -1s then eight 0s: loading 8 lanes from &kLaneMask[8 - v] gives a
// maskload/maskstore mask with the first v lanes (0 <= v <= 8) set.
alignas(64) const int32_t kLaneMask[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

inline __m256i lane_mask(size_t valid) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kLaneMask + 8 - valid)); }

inline __m256 apply_epilogue(__m256 x, __m256 bias, Activation activation) {
  x = _mm256_add_ps(x, bias);
  if (activation == Activation::kRelu) return _mm256_max_ps(x, _mm256_setzero_ps());
  if (activation == Activation::kGelu) return vgelu_avx2(x);
  return x;
}

// One tile of ROWS (= mr_valid) rows, so short edge tiles do not pay for 6.
template <size_t ROWS>
inline void gemm_rows(size_t kc, const float* a, const float* b, float* c, size_t ldc, size_t nr_valid,
                      bool accumulate, const GemmEpilogue* epilogue) {
  __m256 acc_lo[ROWS], acc_hi[ROWS];
#pragma GCC unroll 6
  for (size_t r = 0; r < ROWS; ++r) {
    acc_lo[r] = _mm256_setzero_ps();
    acc_hi[r] = _mm256_setzero_ps();
  }
  const auto k_step = [&] {
    const __m256 b_lo = _mm256_loadu_ps(b);
    const __m256 b_hi = _mm256_loadu_ps(b + 8);
    _mm_prefetch(reinterpret_cast<const char*>(a + kPrefetchA * kMr), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetchB * kNr), _MM_HINT_T0);
#pragma GCC unroll 6
    for (size_t r = 0; r < ROWS; ++r) {
      const __m256 a_r = _mm256_broadcast_ss(a + r);
      acc_lo[r] = _mm256_fmadd_ps(a_r, b_lo, acc_lo[r]);
      acc_hi[r] = _mm256_fmadd_ps(a_r, b_hi, acc_hi[r]);
    }
    a += kMr;
    b += kNr;
  };
  // The C tile is touched only after the k loop, and its rows are ldc apart,
  // which the hardware prefetchers do not follow. The first steps each fetch
  // one row into L2 (one at a time, so that misses to memory do not hold
  // every L1 fill buffer the A and B streams need); the rows move into L1 a
  // few steps before the end, late enough not to be evicted again. A row's
  // 16 floats span at most 2 cache lines: its first and last float.
  size_t k = 0;
  for (size_t r = 0; r < ROWS && k < kc; ++r, ++k) {
    k_step();
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T1);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + kNr - 1), _MM_HINT_T1);
  }
  const size_t tail_start = kc > kPrefetchC ? kc - kPrefetchC : 0;
#pragma GCC unroll 4
  for (; k < tail_start; ++k) k_step();
#pragma GCC unroll 6
  for (size_t r = 0; r < ROWS; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + kNr - 1), _MM_HINT_T0);
  }
#pragma GCC unroll 4
  for (; k < kc; ++k) k_step();

  if (nr_valid == kNr) {
    __m256 bias_lo = _mm256_setzero_ps(), bias_hi = _mm256_setzero_ps();
    if (epilogue != nullptr && epilogue->bias != nullptr) {
      bias_lo = _mm256_loadu_ps(epilogue->bias);
      bias_hi = _mm256_loadu_ps(epilogue->bias + 8);
    }
#pragma GCC unroll 6
    for (size_t r = 0; r < ROWS; ++r) {
      float* row = c + r * ldc;
      __m256 out_lo = acc_lo[r], out_hi = acc_hi[r];
      if (accumulate) {
        out_lo = _mm256_add_ps(_mm256_loadu_ps(row), out_lo);
        out_hi = _mm256_add_ps(_mm256_loadu_ps(row + 8), out_hi);
      }
      if (epilogue != nullptr) {
        out_lo = apply_epilogue(out_lo, bias_lo, epilogue->activation);
        out_hi = apply_epilogue(out_hi, bias_hi, epilogue->activation);
      }
      _mm256_storeu_ps(row, out_lo);
      _mm256_storeu_ps(row + 8, out_hi);
    }
    return;
  }

  // Edge tile: masked loads never touch (or fault on) columns >= nr_valid.
  const __m256i mask_lo = lane_mask(nr_valid < 8 ? nr_valid : 8);
  const __m256i mask_hi = lane_mask(nr_valid > 8 ? nr_valid - 8 : 0);
  __m256 bias_lo = _mm256_setzero_ps(), bias_hi = _mm256_setzero_ps();
  if (epilogue != nullptr && epilogue->bias != nullptr) {
    bias_lo = _mm256_maskload_ps(epilogue->bias, mask_lo);
    bias_hi = _mm256_maskload_ps(epilogue->bias + 8, mask_hi);
  }
#pragma GCC unroll 6
  for (size_t r = 0; r < ROWS; ++r) {
    float* row = c + r * ldc;
    __m256 out_lo = acc_lo[r], out_hi = acc_hi[r];
    if (accumulate) {
      out_lo = _mm256_add_ps(_mm256_maskload_ps(row, mask_lo), out_lo);
      out_hi = _mm256_add_ps(_mm256_maskload_ps(row + 8, mask_hi), out_hi);
    }
    if (epilogue != nullptr) {
      out_lo = apply_epilogue(out_lo, bias_lo, epilogue->activation);
      out_hi = apply_epilogue(out_hi, bias_hi, epilogue->activation);
    }
    _mm256_maskstore_ps(row, mask_lo, out_lo);
    _mm256_maskstore_ps(row + 8, mask_hi, out_hi);
  }
}

}  // namespace

void f32_gemm_6x16_avx2(size_t kc, const float* a_packed, const float* b_packed, float* c, size_t ldc,
                        size_t mr_valid, size_t nr_valid, bool accumulate, const GemmEpilogue* epilogue) {
  switch (mr_valid) {
    case 1: return gemm_rows<1>(kc, a_packed, b_packed, c, ldc, nr_valid, accumulate, epilogue);
    case 2: return gemm_rows<2>(kc, a_packed, b_packed, c, ldc, nr_valid, accumulate, epilogue);
    case 3: return gemm_rows<3>(kc, a_packed, b_packed, c, ldc, nr_valid, accumulate, epilogue);
    case 4: return gemm_rows<4>(kc, a_packed, b_packed, c, ldc, nr_valid, accumulate, epilogue);
    case 5: return gemm_rows<5>(kc, a_packed, b_packed, c, ldc, nr_valid, accumulate, epilogue);
    default: return gemm_rows<kMr>(kc, a_packed, b_packed, c, ldc, nr_valid, accumulate, epilogue);
  }
}

}  // namespace simdformer
