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
// 16-row halves of one part). Load schedule per 32 k values: the six
// (A part, B part) products run in the order hi·lo, hi·mid, mid·mid, mid·hi,
// lo·hi, hi·hi, a path on which each product shares one operand with the one
// before, so only the other operand's pair of tiles is loaded: 4 + 5 x 2 = 14
// tile loads (the second A hi from L1) for 24 TDPBF16PS, against 18 when
// every B part was loaded once and the A parts reloaded under each. The
// small products come first and hi·hi last.
//
// Loads set the pace: per 32 k values a block reads 6 KiB of A and 6 KiB of
// B. Measured on a Sapphire Rapids-class Xeon, one thread: at M = 1024 (B
// block in L2) the tile loads alone take as long as the TDPBF16PS alone;
// at M = 32 (B streamed from L3 once per call) the loads alone take 85% of
// the kernel's time.
//
// The accumulators start at zero and are stored to the block's values (L1);
// one AVX-512 pass adds C (accumulate), the bias, the activation and the
// residual and writes the valid corner of C, edge blocks included. That pass
// is deferred: a block is written by the next call, a slice of rows after
// each 32 k values' TDPBF16PS, so the AVX-512 ports do the epilogue while
// the matrix unit multiplies (the two work independently; a pass after
// TILESTORED instead waits for the products, then the products wait for
// it). Loading C into the tiles and applying the epilogue to C after
// TILESTORED made the epilogue wait for the tile stores to reach C's lines
// (L2 or L3): the pass through L1 is 3 to 13% faster on the shapes above.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../kernels.h"
#include "../avx512/vmath_avx512.h"

namespace simdformer {

namespace {

constexpr size_t kRows = 32, kCols = 32, kTile = 16;

template <int RT>
inline void load_a(const uint16_t* a, const uint16_t* a_row1, size_t a_stride) {
  _tile_loadd(6, a, a_stride);
  if (RT == 2) _tile_loadd(7, a_row1, a_stride);
}

// stream: TILELOADDT1, the hint that the data is not reused soon, so that
// B does not push the A block out of L1 (see f32_gemm_32x32_bf16x3_amx).
template <int CT, bool stream>
inline void load_b(const uint16_t* b, const uint16_t* b_col1) {
  if (stream) {
    _tile_stream_loadd(4, b, 64);
    if (CT == 2) _tile_stream_loadd(5, b_col1, 64);
  } else {
    _tile_loadd(4, b, 64);
    if (CT == 2) _tile_loadd(5, b_col1, 64);
  }
}

// The loaded A part times the loaded B part into the C tiles.
template <int RT, int CT>
inline void products() {
  _tile_dpbf16ps(0, 6, 4);
  if (CT == 2) _tile_dpbf16ps(1, 6, 5);
  if (RT == 2) _tile_dpbf16ps(2, 7, 4);
  if (RT == 2 && CT == 2) _tile_dpbf16ps(3, 7, 5);
}

using WriteRowsFn = void (*)(const Bf16x3Block& block, size_t row0, size_t row1);

// RT row tiles x CT column tiles (1 or 2 each), so a block of <= 16 valid
// rows or columns does not pay for 32. Writes A · B into block [32][32]
// (tiles it does not run are left unwritten); meanwhile writes rows of
// `pending` into C with write_rows, pending->rows / (kc / 32) (rounded up)
// after each 32 k values' products.
template <int RT, int CT, bool stream_b>
void tiles(size_t kc, const uint16_t* a, size_t lda, size_t a_plane, const uint16_t* b, size_t b_plane,
           float* block, const Bf16x3Block* pending, WriteRowsFn write_rows) {
  const size_t a_stride = lda * sizeof(uint16_t), block_stride = kCols * sizeof(float);
  _tile_zero(0);
  if (CT == 2) _tile_zero(1);
  if (RT == 2) _tile_zero(2);
  if (RT == 2 && CT == 2) _tile_zero(3);
  const uint16_t *a_hi = a, *a_mid = a + a_plane, *a_lo = a + 2 * a_plane;
  const uint16_t *b_hi = b, *b_mid = b + b_plane, *b_lo = b + 2 * b_plane;
  const size_t a_row1 = kTile * lda, b_col1 = kc * kTile;  // second 16-row half, second 16-column panel
  const size_t pending_rows = pending != nullptr ? pending->rows : 0;
  const size_t rows_per_step = (pending_rows * 32 + kc - 1) / kc;
  size_t pending_row = 0;
  for (size_t k = 0; k < kc; k += 32) {
    const size_t b_offset = k * kTile;  // 32 k values = 16 VNNI rows of 16 x 2
    load_a<RT>(a_hi + k, a_hi + a_row1 + k, a_stride);
    load_b<CT, stream_b>(b_lo + b_offset, b_lo + b_col1 + b_offset);
    products<RT, CT>();  // hi lo
    if (pending_row < pending_rows) {
      const size_t row1 = pending_row + rows_per_step < pending_rows ? pending_row + rows_per_step : pending_rows;
      write_rows(*pending, pending_row, row1);
      pending_row = row1;
    }
    load_b<CT, stream_b>(b_mid + b_offset, b_mid + b_col1 + b_offset);
    products<RT, CT>();  // hi mid
    load_a<RT>(a_mid + k, a_mid + a_row1 + k, a_stride);
    products<RT, CT>();  // mid mid
    load_b<CT, stream_b>(b_hi + b_offset, b_hi + b_col1 + b_offset);
    products<RT, CT>();  // mid hi
    load_a<RT>(a_lo + k, a_lo + a_row1 + k, a_stride);
    products<RT, CT>();  // lo hi
    load_a<RT>(a_hi + k, a_hi + a_row1 + k, a_stride);
    products<RT, CT>();  // hi hi
  }
  _tile_stored(0, block, block_stride);
  if (CT == 2) _tile_stored(1, block + kTile, block_stride);
  if (RT == 2) _tile_stored(2, block + kTile * kCols, block_stride);
  if (RT == 2 && CT == 2) _tile_stored(3, block + kTile * kCols + kTile, block_stride);
}

// Rows [row0, row1) of the block into C (the formula at Bf16x3Block).
template <Activation activation>
void write_rows(const Bf16x3Block& block, size_t row0, size_t row1) {
  const size_t cols = block.cols;
  const __mmask16 lo = cols >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << cols) - 1);
  const __mmask16 hi = cols >= 32 ? 0xFFFF : cols > 16 ? static_cast<__mmask16>((1u << (cols - 16)) - 1) : 0;
  const __m512 bias_lo = block.bias != nullptr ? _mm512_maskz_loadu_ps(lo, block.bias) : _mm512_setzero_ps();
  const __m512 bias_hi = block.bias != nullptr ? _mm512_maskz_loadu_ps(hi, block.bias + kTile) : _mm512_setzero_ps();
  for (size_t r = row0; r < row1; ++r) {
    float* row = block.c + r * block.ldc;
    // Masked: a tile that did not run (<= 16 valid columns) left its lanes unwritten.
    __m512 out_lo = _mm512_maskz_load_ps(lo, block.values + r * kCols);
    __m512 out_hi = _mm512_maskz_load_ps(hi, block.values + r * kCols + kTile);
    if (block.accumulate) {
      out_lo = _mm512_add_ps(_mm512_maskz_loadu_ps(lo, row), out_lo);
      out_hi = _mm512_add_ps(_mm512_maskz_loadu_ps(hi, row + kTile), out_hi);
    }
    out_lo = _mm512_add_ps(out_lo, bias_lo);
    out_hi = _mm512_add_ps(out_hi, bias_hi);
    if (activation == Activation::kRelu) {
      out_lo = _mm512_max_ps(out_lo, _mm512_setzero_ps());
      out_hi = _mm512_max_ps(out_hi, _mm512_setzero_ps());
    } else if (activation == Activation::kGelu) {
      out_lo = vgelu_avx512(out_lo);
      out_hi = vgelu_avx512(out_hi);
    }
    if (block.residual != nullptr) {
      const float* residual = block.residual + r * block.ldc;
      out_lo = _mm512_add_ps(out_lo, _mm512_maskz_loadu_ps(lo, residual));
      out_hi = _mm512_add_ps(out_hi, _mm512_maskz_loadu_ps(hi, residual + kTile));
    }
    _mm512_mask_storeu_ps(row, lo, out_lo);
    _mm512_mask_storeu_ps(row + kTile, hi, out_hi);
  }
}

WriteRowsFn rows_writer(Activation activation) {
  switch (activation) {
    case Activation::kRelu:
      return &write_rows<Activation::kRelu>;
    case Activation::kGelu:
      return &write_rows<Activation::kGelu>;
    case Activation::kNone:
      break;
  }
  return &write_rows<Activation::kNone>;
}

// Palette 1, tiles 0..7 of 16 rows x 64 bytes. A constant in memory: GCC 12
// drops stores into a local that is only read by LDTILECFG.
struct alignas(64) TileConfig {
  uint8_t palette, start_row, reserved[14];
  uint16_t bytes_per_row[16];
  uint8_t rows[16];
};
constexpr TileConfig kTileConfig = {1, 0, {}, {64, 64, 64, 64, 64, 64, 64, 64}, {16, 16, 16, 16, 16, 16, 16, 16}};

using BlockFn = void (*)(size_t, const uint16_t*, size_t, size_t, const uint16_t*, size_t, float*, const Bf16x3Block*,
                        WriteRowsFn);

}  // namespace

void f32_amx_tiles_begin() { _tile_loadconfig(&kTileConfig); }

void f32_amx_tiles_end() { _tile_release(); }

void f32_gemm_32x32_bf16x3_amx(size_t kc, const uint16_t* a, size_t lda, size_t a_plane, const uint16_t* b,
                               size_t b_plane, Bf16x3Block* out, const Bf16x3Block* pending) {
  // A planes of more than one 32-row panel (a_plane > 32 lda): the driver
  // runs each of those panels against this B panel, so B is read again from
  // L2 and the A block (48 KiB at kc 256) is what L1 should keep: B is
  // loaded with the non-temporal hint. A single panel (M <= 32 per task)
  // reads B once, streamed from L3, where plain loads are faster. Measured
  // on a Sapphire Rapids-class Xeon, one thread, hint against plain: 1024 x
  // 512 x {512, 2048} and 1024 x 2048 x 512 +1 to +4%; 32 x 256 x {256,
  // 768, 1024} and 32 x 1024 x 256 with B from L3 -3 to -5%.
  const bool stream_b = a_plane > kRows * lda;
  const int row_tiles = out->rows > kTile ? 2 : 1, col_tiles = out->cols > kTile ? 2 : 1;
  static constexpr BlockFn kTiles[2][2][2] = {
      {{&tiles<1, 1, false>, &tiles<1, 2, false>}, {&tiles<2, 1, false>, &tiles<2, 2, false>}},
      {{&tiles<1, 1, true>, &tiles<1, 2, true>}, {&tiles<2, 1, true>, &tiles<2, 2, true>}}};
  const WriteRowsFn write_pending = pending != nullptr ? rows_writer(pending->activation) : nullptr;
  kTiles[stream_b][row_tiles - 1][col_tiles - 1](kc, a, lda, a_plane, b, b_plane, out->values, pending, write_pending);
}

void f32_write_block_bf16x3_amx(const Bf16x3Block& block) { rows_writer(block.activation)(block, 0, block.rows); }

}  // namespace simdformer
