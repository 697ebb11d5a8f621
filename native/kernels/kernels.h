// Micro-kernel contracts. Every kernel here takes raw pointers and sizes,
// allocates nothing, starts no threads and reports no errors: the drivers in
// native/core/ validate, block, pack and thread. One kernel per file, named
// <dtype>_<op>[_<tile>]_<isa>, with per-ISA compile flags attached by folder.
#pragma once

#include <cstddef>
#include <cstdint>

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

// Rows of a short attention (attention.cpp): one query's scores against the
// key rows, then its output as the probability-weighted sum of the value rows.
// DotRowsFn:        out[j] = sum over k < n of x[k] * y[j * y_stride + k], j < rows.
// WeightedRowSumFn: out[k] = sum over j < rows of w[j] * y[j * y_stride + k], k < n
//                   (out is written, not accumulated).
// rows, n >= 1; out does not alias the inputs. The order of the sums is the
// kernel's own (vector lanes, then a reduction).
using DotRowsFn = void (*)(size_t rows, size_t n, const float* x, const float* y, size_t y_stride, float* out);
using WeightedRowSumFn = void (*)(size_t rows, size_t n, const float* w, const float* y, size_t y_stride, float* out);

// Peak FMA loop: runs `iterations` rounds of independent vector FMA chains
// (enough chains to cover latency x pipes) and returns the float operations
// done (2 per lane per FMA). The caller times it.
using FmaPeakFn = double (*)(size_t iterations);

// Online softmax step, shared by every path of the fused attention driver
// (native/core/flash_attention.cpp): FlashAttention's running max and sum
// (Dao et al. 2022, "FlashAttention: Fast and Memory-Efficient Exact
// Attention with IO-Awareness", Algorithm 1, lines 10-12; the online
// normaliser of Milakov & Gimelshein 2018) for one tile of keys and a panel
// of queries. The panel is column-major in the queries: scores[j * ld + c]
// = q_c · k_j for keys j < keys and queries c < queries (<= ld), which is
// how the GEMM micro-kernel writes Sᵀ = K · Qᵀ with ldc = ld, and the p left
// in place is the packed B operand ([keys][NR], NR = ld) of Oᵀ += Vᵀ · Pᵀ,
// so p is never transposed. For each query c < queries:
//   s[j]     = scale * x[j][c] + (mask[j * ld + c] + padding[j])   one rounding, as SoftmaxRowFn;
//              an absent (nullptr) mask adds 0; -inf if causal and j > c + causal_offset
//   m        = max(running_max[c], max_j s[j])
//   x[j][c]  = exp(s[j] - m), or 0 where s[j] - m < -86   p, unnormalised, in place
//   alpha[c] = exp(running_max[c] - m)               the caller scales query c's output by it
//   running_sum[c] = running_sum[c] * alpha[c] + sum_j x[j][c];  running_max[c] = m
// and columns queries <= c < ld become 0 (the B operand's zero padding).
// The cut-off: exp(-86) ~ 4e-38 is the smallest power of e that stays a
// normal float, so no denormal p (nor the products of P · V after it) ever
// costs a microcode assist; what it drops is < 1e-37 of the row's sum.
// A query starts at running_max = -inf, running_sum = 0 and ends as
// accumulator / running_sum (zeros when the sum is 0). While every score it
// has seen is -inf, m stays -inf: then p = 0, the sum stays 0 and alpha = 1
// (never exp(-inf - -inf) = NaN); its first finite score gives alpha = 0.
constexpr float kOnlineSoftmaxCutoff = -86.0f;
struct OnlineSoftmaxPanel {
  size_t keys;              // >= 1 rows
  size_t queries;           // 1 <= queries <= ld valid columns
  size_t ld;                // row stride of scores and mask
  float* scores;            // [keys][ld]: raw scores in, p out
  float scale;
  const float* mask;        // [keys][ld] additive, or nullptr
  const float* padding;     // [keys] additive (one value per key), or nullptr
  bool causal;              // mask key j for query c when j > c + causal_offset
  ptrdiff_t causal_offset;  // (first query's index) - (first key's index); |.| < 2^31
  float* running_max;       // [queries]
  float* running_sum;       // [queries]
  float* alpha;             // [queries], written
};
using OnlineSoftmaxStepFn = void (*)(const OnlineSoftmaxPanel& panel);

// AMX-BF16 GEMM on "bf16x3" operands: every float is split into three
// bfloat16 parts (hi + mid + lo, each rounding the remainder of the ones
// before), and the six partial products whose parts sum to at most
// "two roundings" are accumulated in float32, which matches a float32 GEMM
// to float32 accuracy (see f32_gemm_32x32_bf16x3_amx.cpp). A plane is one
// part of a whole operand; planes are `plane` elements apart.
//
// A 32 x 32 block of C the tile kernel has computed and not yet written:
// values[r * 32 + j] = (A · B)(r, j), and where and how it goes into C:
//   C[0:rows, 0:cols] = act((accumulate ? C : 0) + values + bias) + residual
// c: the block's first element, rows apart by ldc; bias: [cols] or nullptr;
// residual: laid out like c (ldc), or nullptr. 1 <= rows, cols <= 32.
struct Bf16x3Block {
  alignas(64) float values[32 * 32];
  float* c;
  size_t ldc, rows, cols;
  bool accumulate;
  const float* bias;
  Activation activation;
  const float* residual;
};
//
// Tile kernel: out->values = A · B for out's rows x cols (the caller has
// set out's other fields), while it writes the block `pending` (or nullptr)
// into C: a block is written during the next block's products, so the
// epilogue overlaps the matrix unit's work; the last block of a run is
// written by WriteBf16x3BlockFn. out and pending are different blocks.
//   a: [32 rows][lda] bf16 per plane (rows >= out->rows and k >= the valid
//      depth are zeros); b: two 16-column panels, panel q at b + q * kc * 16,
//      each [kc / 2][16][2] (VNNI pairs of k) per plane.
//   kc: a multiple of 32.
// The thread must have called f32_amx_tiles_begin() (tile configuration)
// and calls f32_amx_tiles_end() when it is done with the matrix unit.
using GemmBf16x3TileFn = void (*)(size_t kc, const uint16_t* a, size_t lda, size_t a_plane, const uint16_t* b,
                                  size_t b_plane, Bf16x3Block* out, const Bf16x3Block* pending);
using WriteBf16x3BlockFn = void (*)(const Bf16x3Block& block);
// Splits rows x k of A (strided) into planes of [rows][ld]; columns
// [k, k_padded) are written as zeros (k_padded a multiple of 16).
using SplitBf16x3Fn = void (*)(size_t rows, size_t k, const float* a, ptrdiff_t row_stride, ptrdiff_t col_stride,
                               size_t k_padded, uint16_t* out, size_t ld, size_t plane);
// Packs a 16-column panel (nr_valid <= 16 valid columns, kc valid rows of B,
// zeros up to kc_padded, a multiple of 32) into the tile kernel's b planes.
using PackBBf16x3Fn = void (*)(size_t kc, size_t kc_padded, size_t nr_valid, const float* b, ptrdiff_t row_stride,
                               ptrdiff_t col_stride, uint16_t* out, size_t plane);
using TilesFn = void (*)();


#define SIMDFORMER_DECLARE_ISA_KERNELS(isa)                                                                  \
  void f32_softmax_row_##isa(size_t n, const float* x, float scale, const float* mask, float* y);           \
  void f32_layernorm_row_##isa(size_t n, const float* x, float eps, const float* weight, const float* bias, \
                               float* y);                                                                   \
  void f32_relu_##isa(size_t n, const float* x, float* y);                                                  \
  void f32_gelu_##isa(size_t n, const float* x, float* y);                                                  \
  double f32_fma_peak_##isa(size_t iterations);                                                            \
  void f32_dot_rows_##isa(size_t rows, size_t n, const float* x, const float* y, size_t y_stride, float* out); \
  void f32_weighted_row_sum_##isa(size_t rows, size_t n, const float* w, const float* y, size_t y_stride,     \
                                  float* out);                                                              \
  void f32_online_softmax_step_##isa(const OnlineSoftmaxPanel& panel);

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

#if defined(__x86_64__) || defined(_M_X64)
// AMX (x86-64 only; contracts above the ISA declarations).
void f32_gemm_32x32_bf16x3_amx(size_t kc, const uint16_t* a, size_t lda, size_t a_plane, const uint16_t* b,
                               size_t b_plane, Bf16x3Block* out, const Bf16x3Block* pending);
void f32_write_block_bf16x3_amx(const Bf16x3Block& block);
void f32_split_bf16x3_amx(size_t rows, size_t k, const float* a, ptrdiff_t row_stride, ptrdiff_t col_stride,
                          size_t k_padded, uint16_t* out, size_t ld, size_t plane);
void f32_pack_b_bf16x3_amx(size_t kc, size_t kc_padded, size_t nr_valid, const float* b, ptrdiff_t row_stride,
                           ptrdiff_t col_stride, uint16_t* out, size_t plane);
void f32_amx_tiles_begin();
void f32_amx_tiles_end();
#endif

#if defined(__aarch64__)
// NEON (32 q registers): 8 x 12 tile = 24 accumulators.
SIMDFORMER_DECLARE_ISA_KERNELS(neon)
void f32_gemm_8x12_neon(size_t kc, const float* a_packed, const float* b_packed, float* c, size_t ldc,
                        size_t mr_valid, size_t nr_valid, bool accumulate, const GemmEpilogue* epilogue);
#endif

#undef SIMDFORMER_DECLARE_ISA_KERNELS

}  // namespace simdformer
