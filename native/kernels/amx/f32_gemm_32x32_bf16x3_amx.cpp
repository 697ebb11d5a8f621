// AMX GEMM tile kernel, 32 x 32 block of C from "bf16x3" operands (contract:
// GemmBf16x3TileFn in kernels.h). Each float x is split into three bfloat16
// parts, x = hi + mid + lo up to 2^-27 |x| (each part rounds the remainder
// of the ones before it; bf16 keeps 8 significant bits). Of the nine partial
// products a_i * b_j the six with i + j <= 2 are summed, by TDPBF16PS, into
// float32 accumulator tiles; the three dropped and the split remainders add
// up to about 2^-25 |a b|, below float32's rounding unit, so the result
// matches a float32 GEMM to float32 accuracy while the matrix unit does 16 x 16 x 32 multiply-adds per
// instruction (1024 flops per cycle and core on Sapphire Rapids against 64
// for AVX-512 FMA: six products still leave it 2.7x ahead at peak).
//
// Tile registers (8 of 1 KiB): C 0..3 (rows 0-15 / 16-31 x cols 0-15 /
// 16-31), B 4..5 (the two 16-column panels of one part), A 6..7 (the two
// 16-row halves of one part). Per 32 k values: 6 B loads, 12 A loads, 24
// TDPBF16PS. A parts are reloaded because only two A registers are left;
// the A block is small enough to stay in L1 across the caller's column loop.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../kernels.h"
#include "../avx512/vmath_avx512.h"

namespace simdformer {

namespace {

constexpr size_t kRows = 32, kCols = 32, kTile = 16;

// Applies bias and activation to a block of C rows (after the tiles are stored).
void apply_epilogue(float* c, size_t ldc, size_t rows, size_t cols, const GemmEpilogue& epilogue) {
  const __mmask16 lo = cols >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << cols) - 1);
  const __mmask16 hi = cols >= 32 ? 0xFFFF : cols > 16 ? static_cast<__mmask16>((1u << (cols - 16)) - 1) : 0;
  const __m512 bias_lo = epilogue.bias != nullptr ? _mm512_maskz_loadu_ps(lo, epilogue.bias) : _mm512_setzero_ps();
  const __m512 bias_hi = epilogue.bias != nullptr ? _mm512_maskz_loadu_ps(hi, epilogue.bias + 16) : _mm512_setzero_ps();
  for (size_t r = 0; r < rows; ++r) {
    float* row = c + r * ldc;
    __m512 out_lo = _mm512_add_ps(_mm512_maskz_loadu_ps(lo, row), bias_lo);
    __m512 out_hi = _mm512_add_ps(_mm512_maskz_loadu_ps(hi, row + 16), bias_hi);
    if (epilogue.activation == Activation::kRelu) {
      out_lo = _mm512_max_ps(out_lo, _mm512_setzero_ps());
      out_hi = _mm512_max_ps(out_hi, _mm512_setzero_ps());
    } else if (epilogue.activation == Activation::kGelu) {
      out_lo = vgelu_avx512(out_lo);
      out_hi = vgelu_avx512(out_hi);
    }
    _mm512_mask_storeu_ps(row, lo, out_lo);
    _mm512_mask_storeu_ps(row + 16, hi, out_hi);
  }
}

// RT row tiles x CT column tiles (1 or 2 each), so a block of <= 16 valid
// rows or columns does not pay for 32. c points at the block, row stride ldc
// floats (a full block) or the caller's 32 x 32 buffer.
template <int RT, int CT>
void tiles(size_t kc, const uint16_t* a, size_t lda, size_t a_plane, const uint16_t* b, size_t b_plane, float* c,
           size_t ldc, bool accumulate) {
  const size_t a_stride = lda * sizeof(uint16_t), c_stride = ldc * sizeof(float);
  if (accumulate) {
    _tile_loadd(0, c, c_stride);
    if (CT == 2) _tile_loadd(1, c + kTile, c_stride);
    if (RT == 2) _tile_loadd(2, c + kTile * ldc, c_stride);
    if (RT == 2 && CT == 2) _tile_loadd(3, c + kTile * ldc + kTile, c_stride);
  } else {
    _tile_zero(0);
    if (CT == 2) _tile_zero(1);
    if (RT == 2) _tile_zero(2);
    if (RT == 2 && CT == 2) _tile_zero(3);
  }
  const uint16_t* a_row1 = a + kTile * lda;
  const uint16_t* b_col1 = b + kc * kTile;  // the second 16-column panel
  for (size_t k = 0; k < kc; k += 32) {
    const size_t b_offset = k * kTile;  // 32 k values = 16 VNNI rows of 16 x 2
    // A parts 0..a_last against the B part loaded last: 6 products in all.
    const auto products = [&](size_t a_last) {
      for (size_t part = 0; part <= a_last; ++part) {
        _tile_loadd(6, a + part * a_plane + k, a_stride);
        if (RT == 2) _tile_loadd(7, a_row1 + part * a_plane + k, a_stride);
        _tile_dpbf16ps(0, 6, 4);
        if (CT == 2) _tile_dpbf16ps(1, 6, 5);
        if (RT == 2) _tile_dpbf16ps(2, 7, 4);
        if (RT == 2 && CT == 2) _tile_dpbf16ps(3, 7, 5);
      }
    };
    for (size_t b_part = 0; b_part < 3; ++b_part) {
      _tile_loadd(4, b + b_part * b_plane + b_offset, 64);
      if (CT == 2) _tile_loadd(5, b_col1 + b_part * b_plane + b_offset, 64);
      products(2 - b_part);  // b hi with a hi, mid, lo; b mid with a hi, mid; b lo with a hi
    }
  }
  _tile_stored(0, c, c_stride);
  if (CT == 2) _tile_stored(1, c + kTile, c_stride);
  if (RT == 2) _tile_stored(2, c + kTile * ldc, c_stride);
  if (RT == 2 && CT == 2) _tile_stored(3, c + kTile * ldc + kTile, c_stride);
}

// Palette 1, tiles 0..7 of 16 rows x 64 bytes. A constant in memory: GCC 12
// drops stores into a local that is only read by LDTILECFG.
struct alignas(64) TileConfig {
  uint8_t palette, start_row, reserved[14];
  uint16_t bytes_per_row[16];
  uint8_t rows[16];
};
constexpr TileConfig kTileConfig = {1, 0, {}, {64, 64, 64, 64, 64, 64, 64, 64}, {16, 16, 16, 16, 16, 16, 16, 16}};

using BlockFn = void (*)(size_t, const uint16_t*, size_t, size_t, const uint16_t*, size_t, float*, size_t, bool);

}  // namespace

void f32_amx_tiles_begin() { _tile_loadconfig(&kTileConfig); }

void f32_amx_tiles_end() { _tile_release(); }

void f32_gemm_32x32_bf16x3_amx(size_t kc, const uint16_t* a, size_t lda, size_t a_plane, const uint16_t* b,
                               size_t b_plane, float* c, size_t ldc, size_t mr_valid, size_t nr_valid,
                               bool accumulate, const GemmEpilogue* epilogue) {
  const int row_tiles = mr_valid > kTile ? 2 : 1, col_tiles = nr_valid > kTile ? 2 : 1;
  static constexpr BlockFn kTiles[2][2] = {{&tiles<1, 1>, &tiles<1, 2>}, {&tiles<2, 1>, &tiles<2, 2>}};
  const BlockFn run = kTiles[row_tiles - 1][col_tiles - 1];
  if (mr_valid == static_cast<size_t>(row_tiles) * kTile && nr_valid == static_cast<size_t>(col_tiles) * kTile) {
    run(kc, a, lda, a_plane, b, b_plane, c, ldc, accumulate);
  } else {
    // Edge block: the tiles go through a 32 x 32 buffer; only the valid
    // corner of C is read and written.
    alignas(64) float block[kRows * kCols];
    if (accumulate) {
      std::memset(block, 0, sizeof(block));
      for (size_t r = 0; r < mr_valid; ++r) std::memcpy(block + r * kCols, c + r * ldc, nr_valid * sizeof(float));
    }
    run(kc, a, lda, a_plane, b, b_plane, block, kCols, accumulate);
    for (size_t r = 0; r < mr_valid; ++r) std::memcpy(c + r * ldc, block + r * kCols, nr_valid * sizeof(float));
  }
  if (epilogue != nullptr) apply_epilogue(c, ldc, mr_valid, nr_valid, *epilogue);
}

}  // namespace simdformer
