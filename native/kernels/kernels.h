// Micro-kernel contracts. Every kernel here takes raw pointers and sizes,
// allocates nothing, starts no threads and reports no errors: the drivers in
// native/core/ validate, block, pack and thread. One kernel per file, named
// <dtype>_<op>[_<tile>]_<isa>, with per-ISA compile flags attached by folder.
#pragma once

#include <cstddef>

namespace simdformer {

// Activation applied by GEMM epilogues and by the standalone activation ops.
enum class Activation : int { kNone = 0, kRelu = 1, kGelu = 2 };

// Epilogue of the last K block of a GEMM tile: c = act(acc + bias).
// bias points at the bias of the tile's first column (nr_valid values are
// read), or is nullptr for no bias.
struct GemmEpilogue {
  const float* bias;
  Activation activation;
};

// GEMM micro-kernel: one MR x NR register tile of C.
//
//   C[0:mr_valid, 0:nr_valid] = (accumulate ? C : 0) + A_packed * B_packed
//   then, if epilogue != nullptr, C = act(C + bias).
//
// a_packed: [kc][MR] floats, k-major (column i of row k holds A[i][k]); rows
//           >= mr_valid are zero padding (a kernel may skip them).
// b_packed: [kc][NR] floats, k-major; columns >= nr_valid are zero padding.
// c:        row-major, row stride ldc floats. Only the valid
//           mr_valid x nr_valid corner is read or written, and when
//           accumulate is false C is never read (it may hold NaN).
// kc >= 1, 1 <= mr_valid <= MR, 1 <= nr_valid <= NR.
using GemmUkernelFn = void (*)(size_t kc, const float* a_packed, const float* b_packed, float* c, size_t ldc,
                               size_t mr_valid, size_t nr_valid, bool accumulate, const GemmEpilogue* epilogue);

// Row softmax: y[i] = exp(s[i] - max) / sum_j exp(s[j] - max) with
// s[i] = scale * x[i] + (mask ? mask[i] : 0), for i < n (n >= 1).
// A row whose every s[i] is -inf gives zeros (not NaN). x and y may alias.
using SoftmaxRowFn = void (*)(size_t n, const float* x, float scale, const float* mask, float* y);

// Layer norm of one row (n >= 1), PyTorch's biased variance:
// y = (x - mean) / sqrt(var + eps) * weight + bias; weight and bias may be
// nullptr (1 and 0). Mean first, then the variance of the centred values
// (two passes, so large offsets do not cancel). x and y may alias.
using LayerNormRowFn = void (*)(size_t n, const float* x, float eps, const float* weight, const float* bias, float* y);

// Elementwise y = f(x) over n values (n >= 0); x and y may alias.
// GELU is PyTorch's default: 0.5 * x * (1 + erf(x / sqrt(2))), not the tanh form.
using UnaryFn = void (*)(size_t n, const float* x, float* y);

// Peak FMA loop: runs `iterations` rounds of independent vector FMA chains
// (enough chains to cover latency x pipes) and returns the float operations
// done (2 per lane per FMA). The caller times it.
using FmaPeakFn = double (*)(size_t iterations);

// Online softmax step, shared by every path of the fused attention driver
// (native/core/flash_attention.cpp): FlashAttention's running max and sum
// (Dao et al. 2022, "FlashAttention: Fast and Memory-Efficient Exact
// Attention with IO-Awareness", Algorithm 1, lines 10-12; the online
// normaliser of Milakov & Gimelshein 2018). One query row meets one tile of
// n >= 1 keys, x[0:n] its raw scores q · k_j:
//   s[j]  = scale * x[j] + (mask[j] + padding[j])   one rounding, as SoftmaxRowFn;
//                                                   an absent (nullptr) mask adds 0
//   m     = max(*running_max, max_j s[j])
//   x[j]  = exp(s[j] - m)                           p, unnormalised, in place
//   alpha = exp(*running_max - m)                   returned: the caller scales the
//                                                   row's output accumulator by it
//   *running_sum = *running_sum * alpha + sum_j x[j];  *running_max = m
// A row starts at running_max = -inf, running_sum = 0 and ends as
// accumulator / running_sum (zeros when the sum is 0). While every score
// seen is -inf, m stays -inf: then x = 0, the sum stays 0 and alpha = 1
// (never exp(-inf - -inf) = NaN); the first finite score gives alpha = 0.
using OnlineSoftmaxStepFn = float (*)(size_t n, float* x, float scale, const float* mask, const float* padding,
                                      float* running_max, float* running_sum);

#define SIMDFORMER_DECLARE_ISA_KERNELS(isa)                                                                  \
  void f32_softmax_row_##isa(size_t n, const float* x, float scale, const float* mask, float* y);           \
  void f32_layernorm_row_##isa(size_t n, const float* x, float eps, const float* weight, const float* bias, \
                               float* y);                                                                   \
  void f32_relu_##isa(size_t n, const float* x, float* y);                                                  \
  void f32_gelu_##isa(size_t n, const float* x, float* y);                                                  \
  double f32_fma_peak_##isa(size_t iterations);                                                            \
  float f32_online_softmax_step_##isa(size_t n, float* x, float scale, const float* mask, const float* padding, \
                                      float* running_max, float* running_sum);

// Scalar reference, always built. Tile 4x8 (any tile is correct; this one is small).
SIMDFORMER_DECLARE_ISA_KERNELS(ref)
void f32_gemm_4x8_ref(size_t kc, const float* a_packed, const float* b_packed, float* c, size_t ldc, size_t mr_valid,
                      size_t nr_valid, bool accumulate, const GemmEpilogue* epilogue);

#if defined(__x86_64__) || defined(_M_X64)
// AVX2 + FMA (16 ymm registers): 6 x 16 tile = 12 accumulators.
SIMDFORMER_DECLARE_ISA_KERNELS(avx2)
void f32_gemm_6x16_avx2(size_t kc, const float* a_packed, const float* b_packed, float* c, size_t ldc,
                        size_t mr_valid, size_t nr_valid, bool accumulate, const GemmEpilogue* epilogue);

// AVX-512 F/BW/DQ/VL (32 zmm registers): 14 x 32 tile = 28 accumulators.
SIMDFORMER_DECLARE_ISA_KERNELS(avx512)
void f32_gemm_14x32_avx512(size_t kc, const float* a_packed, const float* b_packed, float* c, size_t ldc,
                           size_t mr_valid, size_t nr_valid, bool accumulate, const GemmEpilogue* epilogue);
#endif

#if defined(__aarch64__)
// NEON (32 q registers): 8 x 12 tile = 24 accumulators.
SIMDFORMER_DECLARE_ISA_KERNELS(neon)
void f32_gemm_8x12_neon(size_t kc, const float* a_packed, const float* b_packed, float* c, size_t ldc,
                        size_t mr_valid, size_t nr_valid, bool accumulate, const GemmEpilogue* epilogue);
#endif

#undef SIMDFORMER_DECLARE_ISA_KERNELS

}  // namespace simdformer
