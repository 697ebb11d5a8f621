// Size arithmetic shared by the core's allocators (GEMM scratch, packed
// weights): sizes that come from JavaScript can reach 2^53, so a product or
// rounding that would wrap throws std::bad_alloc instead, which the binding
// turns into ERR_SIMDFORMER_OUT_OF_MEMORY.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

namespace simdformer {

// The huge page of x86-64 (and of arm64 with 4 KiB pages): buffers of this
// size or more are aligned to it and advised as transparent huge pages.
constexpr size_t kHugePageBytes = size_t{1} << 21;

inline size_t checked_add(size_t a, size_t b) {
  if (b > SIZE_MAX - a) throw std::bad_alloc();
  return a + b;
}

inline size_t checked_multiply(size_t a, size_t b) {
  if (a != 0 && b > SIZE_MAX / a) throw std::bad_alloc();
  return a * b;
}

// x rounded up to a multiple of `multiple` (> 0).
inline size_t checked_round_up(size_t x, size_t multiple) { return checked_add(x, multiple - 1) / multiple * multiple; }

}  // namespace simdformer
