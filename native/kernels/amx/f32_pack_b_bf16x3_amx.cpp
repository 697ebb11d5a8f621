// Packs one 16-column panel of B for the AMX GEMM tile kernel (contract:
// PackBBf16x3Fn in kernels.h): three bfloat16 planes (bf16x3_amx.h), each in
// TDPBF16PS's "VNNI" layout, plane[(p / 2) * 32 + j * 2 + p % 2] = part of
// B(p, j): row pair p, p + 1 is one 64-byte row of 16 words, word j holding
// column j's two values. The driver calls it per call and block (B comes
// packed as float32 for the AVX-512 kernel, or unpacked), so the common
// case, rows contiguous in j (col_stride 1), is two loads and three stores
// per row pair; a Linear's weight (columns contiguous) is transposed 16 x 16
// in registers.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../kernels.h"
#include "bf16x3_amx.h"

namespace simdformer {

namespace {

// 16 values of row p (zeros past nr_valid columns or kc rows).
__m512 load_row(const float* b, ptrdiff_t row_stride, ptrdiff_t col_stride, size_t p, size_t kc, size_t nr_valid) {
  if (p >= kc || nr_valid == 0) return _mm512_setzero_ps();
  const float* row = b + static_cast<ptrdiff_t>(p) * row_stride;
  if (col_stride == 1) {
    return _mm512_maskz_loadu_ps(nr_valid >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << nr_valid) - 1), row);
  }
  alignas(64) float values[16] = {};
  for (size_t j = 0; j < nr_valid && j < 16; ++j) values[j] = row[static_cast<ptrdiff_t>(j) * col_stride];
  return _mm512_load_ps(values);
}

// Writes the three parts of B rows p and p + 1 (16 columns each) as one
// pair-interleaved row of each plane.
void store_pair(__m512 even_row, __m512 odd_row, uint16_t* out, size_t plane) {
  __m256i even[3], odd[3];
  split16_bf16x3_amx(even_row, even);
  split16_bf16x3_amx(odd_row, odd);
  for (size_t part = 0; part < 3; ++part) {
    const __m512i words = _mm512_or_si512(_mm512_cvtepu16_epi32(even[part]),
                                          _mm512_slli_epi32(_mm512_cvtepu16_epi32(odd[part]), 16));
    _mm512_storeu_si512(out + part * plane, words);
  }
}

// In-register transpose of 16 x 16 floats: on return r[c] holds what was
// column c (r[0][c], ..., r[15][c]). Unpacks within 128-bit lanes, then two
// rounds of lane shuffles.
void transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    const __m512d t0 = _mm512_castps_pd(t[4 * i]), t1 = _mm512_castps_pd(t[4 * i + 1]);
    const __m512d t2 = _mm512_castps_pd(t[4 * i + 2]), t3 = _mm512_castps_pd(t[4 * i + 3]);
    u[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));      // element 0 of each lane, rows 4i..4i+3
    u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));  // element 1
    u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));  // element 2
    u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));  // element 3
  }
  for (int e = 0; e < 4; ++e) {
    const __m512 a02 = _mm512_shuffle_f32x4(u[e], u[4 + e], 0x88), a13 = _mm512_shuffle_f32x4(u[e], u[4 + e], 0xDD);
    const __m512 b02 = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], 0x88), b13 = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], 0xDD);
    r[e] = _mm512_shuffle_f32x4(a02, b02, 0x88);
    r[8 + e] = _mm512_shuffle_f32x4(a02, b02, 0xDD);
    r[4 + e] = _mm512_shuffle_f32x4(a13, b13, 0x88);
    r[12 + e] = _mm512_shuffle_f32x4(a13, b13, 0xDD);
  }
}

}  // namespace

void f32_pack_b_bf16x3_amx(size_t kc, size_t kc_padded, size_t nr_valid, const float* b, ptrdiff_t row_stride,
                           ptrdiff_t col_stride, uint16_t* out, size_t plane) {
  if (row_stride == 1 && col_stride != 1) {
    // A Linear's weight (B(p, j) = W[j][p]): each column is contiguous in p,
    // so 16 columns x 16 rows are 16 vector loads and a transpose.
    for (size_t p0 = 0; p0 < kc_padded; p0 += 16) {
      const size_t valid = p0 < kc ? (kc - p0 < 16 ? kc - p0 : 16) : 0;
      const __mmask16 mask = valid == 16 ? 0xFFFF : static_cast<__mmask16>((1u << valid) - 1);
      __m512 block[16];
      for (size_t j = 0; j < 16; ++j) {
        block[j] = j < nr_valid ? _mm512_maskz_loadu_ps(mask, b + static_cast<ptrdiff_t>(j) * col_stride + p0)
                                : _mm512_setzero_ps();
      }
      transpose16(block);
      for (size_t q = 0; q < 16; q += 2) store_pair(block[q], block[q + 1], out + (p0 + q) * 16, plane);
    }
    return;
  }
  for (size_t p = 0; p < kc_padded; p += 2) {
    store_pair(load_row(b, row_stride, col_stride, p, kc, nr_valid),
               load_row(b, row_stride, col_stride, p + 1, kc, nr_valid), out + p * 16, plane);
  }
}

}  // namespace simdformer
