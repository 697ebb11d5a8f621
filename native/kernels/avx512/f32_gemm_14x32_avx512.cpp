// AVX-512 GEMM micro-kernel, 14 x 32 tile (contract: GemmUkernelFn in
// kernels.h). Per k step: two zmm loads of B (32 columns), 14 broadcasts of
// A, 28 FMAs into 28 zmm accumulators; with the two B vectors and one
// broadcast that is 31 of the 32 zmm registers. 28 FMAs per 16 loads keeps
// both FMA pipes busy with loads to spare, and 28 independent chains cover
// 2 pipes x 4-cycle latency more than three times over.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../kernels.h"
#include "vmath_avx512.h"

namespace simdformer {

namespace {

constexpr size_t kMr = 14, kNr = 32;

// Distances, in k steps (128 bytes of B each), at which the packed A and B
// panels are prefetched. A streams from L2. The B panel is reused, from L1
// or L2 depending on kc, by the calls for the other rows of the block, but
// the first call for each panel reads it from memory, where the hardware
// prefetchers alone leave that call waiting: B is fetched into L2 far ahead
// (8 KiB, about one memory latency of work) and into L1 near. Measured on a
// Sapphire Rapids-class Xeon: +7% (near) and +2% (far) for the whole GEMM.
constexpr size_t kPrefetchA = 16;
constexpr size_t kPrefetchB = 16;
constexpr size_t kPrefetchBFar = 64;

// k steps before the end of the k loop at which the C tile is fetched into
// L1 (about 14 cycles each: enough to cover an L2 hit several times over).
constexpr size_t kPrefetchC = 16;

// One tile of ROWS (= mr_valid) rows, so short edge tiles do not pay for 14.
// lo / hi mask the valid columns of the two 16-wide halves.
template <size_t ROWS>
inline void gemm_rows(size_t kc, const float* a, const float* b, float* c, size_t ldc, __mmask16 lo, __mmask16 hi,
                      bool accumulate, const GemmEpilogue* epilogue) {
  __m512 acc_lo[ROWS], acc_hi[ROWS];
#pragma GCC unroll 14
  for (size_t r = 0; r < ROWS; ++r) {
    acc_lo[r] = _mm512_setzero_ps();
    acc_hi[r] = _mm512_setzero_ps();
  }
  const auto k_step = [&] {
    const __m512 b_lo = _mm512_loadu_ps(b);
    const __m512 b_hi = _mm512_loadu_ps(b + 16);
    _mm_prefetch(reinterpret_cast<const char*>(a + kPrefetchA * kMr), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetchB * kNr), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetchB * kNr + 16), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetchBFar * kNr), _MM_HINT_T1);
    _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetchBFar * kNr + 16), _MM_HINT_T1);
#pragma GCC unroll 14
    for (size_t r = 0; r < ROWS; ++r) {
      const __m512 a_r = _mm512_set1_ps(a[r]);
      acc_lo[r] = _mm512_fmadd_ps(a_r, b_lo, acc_lo[r]);
      acc_hi[r] = _mm512_fmadd_ps(a_r, b_hi, acc_hi[r]);
    }
    a += kMr;
    b += kNr;
  };
  // The C tile is touched only after the k loop, and its rows are ldc apart,
  // which the hardware prefetchers do not follow. The first steps each fetch
  // one row into L2: one row at a time, because misses to memory issued all
  // at once would hold every L1 fill buffer that the A stream needs. The
  // rows move into L1 a few steps before the end; fetched into L1 at the
  // start they would be evicted by this call's A and B streams.
  // A row's 32 floats span 3 cache lines unless C is 64-byte aligned (JS
  // buffers are not), hence 3 prefetches per row.
  size_t k = 0;
  for (size_t r = 0; r < ROWS && k < kc; ++r, ++k) {
    k_step();
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T1);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + 16), _MM_HINT_T1);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + kNr - 1), _MM_HINT_T1);
  }
  const size_t tail_start = kc > kPrefetchC ? kc - kPrefetchC : 0;
#pragma GCC unroll 4
  for (; k < tail_start; ++k) k_step();
#pragma GCC unroll 14
  for (size_t r = 0; r < ROWS; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + 16), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + kNr - 1), _MM_HINT_T0);
  }
#pragma GCC unroll 4
  for (; k < kc; ++k) k_step();

  __m512 bias_lo = _mm512_setzero_ps(), bias_hi = _mm512_setzero_ps();
  if (epilogue != nullptr && epilogue->bias != nullptr) {
    bias_lo = _mm512_maskz_loadu_ps(lo, epilogue->bias);
    bias_hi = _mm512_maskz_loadu_ps(hi, epilogue->bias + 16);
  }
#pragma GCC unroll 14
  for (size_t r = 0; r < ROWS; ++r) {
    float* row = c + r * ldc;
    __m512 out_lo = acc_lo[r], out_hi = acc_hi[r];
    if (accumulate) {
      out_lo = _mm512_add_ps(_mm512_maskz_loadu_ps(lo, row), out_lo);
      out_hi = _mm512_add_ps(_mm512_maskz_loadu_ps(hi, row + 16), out_hi);
    }
    if (epilogue != nullptr) {
      out_lo = _mm512_add_ps(out_lo, bias_lo);
      out_hi = _mm512_add_ps(out_hi, bias_hi);
      if (epilogue->activation == Activation::kRelu) {
        out_lo = _mm512_max_ps(out_lo, _mm512_setzero_ps());
        out_hi = _mm512_max_ps(out_hi, _mm512_setzero_ps());
      } else if (epilogue->activation == Activation::kGelu) {
        out_lo = vgelu_avx512(out_lo);
        out_hi = vgelu_avx512(out_hi);
      }
    }
    _mm512_mask_storeu_ps(row, lo, out_lo);
    _mm512_mask_storeu_ps(row + 16, hi, out_hi);
  }
}

}  // namespace

void f32_gemm_14x32_avx512(size_t kc, const float* a_packed, const float* b_packed, float* c, size_t ldc,
                           size_t mr_valid, size_t nr_valid, bool accumulate, const GemmEpilogue* epilogue) {
  const __mmask16 lo = nr_valid >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << nr_valid) - 1);
  const __mmask16 hi = nr_valid >= kNr ? 0xFFFF : nr_valid > 16 ? static_cast<__mmask16>((1u << (nr_valid - 16)) - 1) : 0;
  switch (mr_valid) {
    case 1: return gemm_rows<1>(kc, a_packed, b_packed, c, ldc, lo, hi, accumulate, epilogue);
    case 2: return gemm_rows<2>(kc, a_packed, b_packed, c, ldc, lo, hi, accumulate, epilogue);
    case 3: return gemm_rows<3>(kc, a_packed, b_packed, c, ldc, lo, hi, accumulate, epilogue);
    case 4: return gemm_rows<4>(kc, a_packed, b_packed, c, ldc, lo, hi, accumulate, epilogue);
    case 5: return gemm_rows<5>(kc, a_packed, b_packed, c, ldc, lo, hi, accumulate, epilogue);
    case 6: return gemm_rows<6>(kc, a_packed, b_packed, c, ldc, lo, hi, accumulate, epilogue);
    case 7: return gemm_rows<7>(kc, a_packed, b_packed, c, ldc, lo, hi, accumulate, epilogue);
    case 8: return gemm_rows<8>(kc, a_packed, b_packed, c, ldc, lo, hi, accumulate, epilogue);
    case 9: return gemm_rows<9>(kc, a_packed, b_packed, c, ldc, lo, hi, accumulate, epilogue);
    case 10: return gemm_rows<10>(kc, a_packed, b_packed, c, ldc, lo, hi, accumulate, epilogue);
    case 11: return gemm_rows<11>(kc, a_packed, b_packed, c, ldc, lo, hi, accumulate, epilogue);
    case 12: return gemm_rows<12>(kc, a_packed, b_packed, c, ldc, lo, hi, accumulate, epilogue);
    case 13: return gemm_rows<13>(kc, a_packed, b_packed, c, ldc, lo, hi, accumulate, epilogue);
    default: return gemm_rows<kMr>(kc, a_packed, b_packed, c, ldc, lo, hi, accumulate, epilogue);
  }
}

}  // namespace simdformer
