// The bf16x3 split shared by the AMX kernels that write split operands:
// x = hi + mid + lo, hi = bf16(x), mid = bf16(x - hi), lo = bf16(x - hi -
// mid), each remainder exact in float32 (VCVTNEPS2BF16 rounds to nearest
// even). |x - hi - mid - lo| <= 2^-27 |x|.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace simdformer {

static inline __m512 widen_bf16_amx(__m256i bf16) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bf16), 16));
}

// The three parts of 16 floats.
static inline void split16_bf16x3_amx(__m512 x, __m256i parts[3]) {
  parts[0] = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(x));
  const __m512 rest = _mm512_sub_ps(x, widen_bf16_amx(parts[0]));
  parts[1] = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(rest));
  parts[2] = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_sub_ps(rest, widen_bf16_amx(parts[1]))));
}

// Writes the parts of 16 floats at out, out + plane and out + 2 * plane.
static inline void store16_bf16x3_amx(__m512 x, uint16_t* out, size_t plane) {
  __m256i parts[3];
  split16_bf16x3_amx(x, parts);
  for (size_t part = 0; part < 3; ++part) _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + part * plane), parts[part]);
}

// The parts of 32 floats (x0 then x1) as 32 words per plane at out,
// out + plane and out + 2 * plane: one conversion of both halves per part.
static inline void store32_bf16x3_amx(__m512 x0, __m512 x1, uint16_t* out, size_t plane) {
  for (size_t part = 0; part < 3; ++part) {
    const __m512i words = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(x1, x0));  // x0's parts in words 0-15
    _mm512_storeu_si512(out + part * plane, words);
    if (part == 2) break;
    x0 = _mm512_sub_ps(x0, widen_bf16_amx(_mm512_castsi512_si256(words)));
    x1 = _mm512_sub_ps(x1, widen_bf16_amx(_mm512_extracti64x4_epi64(words, 1)));
  }
}

}  // namespace simdformer
