// The kernel table: one per instruction set, filled at compile time; the
// active one is chosen once at load time from what the CPU and the OS support
// (CPUID + XGETBV on x86-64, getauxval(AT_HWCAP) on arm64), or from
// SIMDFORMER_ISA. Modelled on ONNX Runtime MLAS's platform table.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "../kernels/kernels.h"

namespace simdformer {

enum class Isa : int { kRef = 0, kAvx2 = 1, kAvx512 = 2, kNeon = 3, kAmx = 4 };

// Packs rows [0, mr_valid) x columns [0, kc) of a strided A block into the
// micro-kernel's [kc][MR] layout, zero-filling rows mr_valid..MR-1.
// Element (i, k) of the source is a[i * row_stride + k * col_stride].
using PackAFn = void (*)(size_t kc, size_t mr_valid, const float* a, ptrdiff_t row_stride, ptrdiff_t col_stride,
                         float* a_packed);
// Packs rows [0, kc) x columns [0, nr_valid) of a strided B block into the
// [kc][NR] layout, zero-filling columns nr_valid..NR-1.
// Element (k, j) of the source is b[k * row_stride + j * col_stride].
using PackBFn = void (*)(size_t kc, size_t nr_valid, const float* b, ptrdiff_t row_stride, ptrdiff_t col_stride,
                         float* b_packed);

// A GEMM micro-kernel with the tile shape, block sizes and packing routines
// that belong to it, so they can never disagree (XNNPACK's gemm-config idea).
struct GemmConfig {
  const char* name;  // kernel function name, e.g. "f32_gemm_14x32_avx512"
  size_t mr, nr;     // register tile
  size_t mc, kc, nc; // cache blocks: A block mc x kc (L2), B panel kc x nr (L1), B block kc x nc (L3)
  GemmUkernelFn ukernel;
  PackAFn pack_a;
  PackBFn pack_b;
};

// The AMX GEMM (kernels.h, "bf16x3"): 32 x 32 blocks of C from operands
// split into three bfloat16 planes, per call, by each task for the rows and
// columns it computes: A kc columns at a time, B a kc x nc block at a time
// (from a float32 PackedB of the table's micro-kernel, or from B itself).
struct Bf16x3GemmConfig {
  const char* name;  // tile kernel function name
  size_t mr, nr;     // C block: 32 x 32
  size_t kc, nc;     // A block [rows][kc] x 3 planes in L2; B block kc x nc x 3 planes in L2
  GemmBf16x3TileFn tile;
  WriteBf16x3BlockFn write;  // the last block of a task's run of tile calls
  SplitBf16x3Fn split_a;
  PackBBf16x3Fn pack_b;  // one 16-column panel of a B block
  TilesFn begin, end;    // tile configuration / release, per thread and task
};

struct KernelTable {
  Isa isa;
  const char* name;  // "ref", "avx2", "avx512", "amx", "neon"
  GemmConfig gemm;
  SoftmaxRowFn softmax_row;
  LayerNormRowFn layernorm_row;
  UnaryFn relu;
  UnaryFn gelu;
  FmaPeakFn fma_peak;
  OnlineSoftmaxStepFn online_softmax_step;  // fused attention (flash_attention.cpp)
  DotRowsFn dot_rows;                       // short attention (attention.cpp)
  WeightedRowSumFn weighted_row_sum;        // short attention (attention.cpp)
  // Non-null on AMX machines: gemm() runs every problem through it; the fp32
  // `gemm` micro-kernel above still serves the fused attention.
  const Bf16x3GemmConfig* bf16x3_gemm = nullptr;
};

// Names of the instruction sets this CPU and OS can run, best last.
std::vector<std::string> available_isas();

// The table for `name`, or nullptr if it is unknown or this machine cannot run
// it (unknown_isa is set when the name itself is not one we know).
const KernelTable* find_kernels(const std::string& name, bool* unknown_isa = nullptr);

// The table chosen at load: SIMDFORMER_ISA if set (see select_kernels), else
// the best available.
const KernelTable& active_kernels();

// Chooses the active table once. Returns false and fills `error` when
// SIMDFORMER_ISA names an unknown or unsupported ISA; the best available
// table is active then, and the binding reports the error to JS.
bool select_kernels(std::string* error);

}  // namespace simdformer
