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

}  // namespace simdformer
