#include "dispatch.h"

#include <cstdlib>
#include <mutex>

#include "gemm_pack.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#elif defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace simdformer {

namespace {

template <size_t MR, size_t NR>
constexpr GemmConfig gemm_config(const char* name, size_t mc, size_t kc, size_t nc, GemmUkernelFn ukernel) {
  return GemmConfig{name, MR, NR, mc, kc, nc, ukernel, &pack_a<MR>, &pack_b<NR>};
}

const KernelTable kRefKernels = {
    Isa::kRef,
    "ref",
    gemm_config<4, 8>("f32_gemm_4x8_ref", 64, 256, 4096, &f32_gemm_4x8_ref),
    &f32_softmax_row_ref,
    &f32_layernorm_row_ref,
    &f32_relu_ref,
    &f32_gelu_ref,
    &f32_fma_peak_ref,
    &f32_online_softmax_step_ref,
    &f32_dot_rows_ref,
    &f32_weighted_row_sum_ref,
};

#if defined(__x86_64__) || defined(_M_X64)
const KernelTable kAvx2Kernels = {
    Isa::kAvx2,
    "avx2",
    // kc 512: the B panel (512 x 16 floats, 32 KiB) still fits L1 beside the
    // A panel, and a K = 512 Linear then reads and writes C only once.
    // Measured on a Sapphire Rapids-class Xeon: +15% over kc 256 at 1024 x
    // 512 x 2048. mc 144 (24 tiles): A block 288 KiB in L2.
    gemm_config<6, 16>("f32_gemm_6x16_avx2", 144, 512, 4096, &f32_gemm_6x16_avx2),
    &f32_softmax_row_avx2,
    &f32_layernorm_row_avx2,
    &f32_relu_avx2,
    &f32_gelu_avx2,
    &f32_fma_peak_avx2,
    &f32_online_softmax_step_avx2,
    &f32_dot_rows_avx2,
    &f32_weighted_row_sum_avx2,
};

const KernelTable kAvx512Kernels = {
    Isa::kAvx512,
    "avx512",
    // kc 512: fewer passes over C (its rows are the costly, unprefetchable
    // stream); the 64 KiB B panel then lives in L2 and is software-prefetched
    // by the kernel. mc 140 (10 tiles): A block 280 KiB in L2. nc 4096: the B
    // block does not fit L2 at any useful nc, so nc only sets how often A is
    // repacked. Measured on a Sapphire Rapids-class Xeon: kc 512 +2-4% over
    // 256; mc 84-280 within noise.
    gemm_config<14, 32>("f32_gemm_14x32_avx512", 140, 512, 4096, &f32_gemm_14x32_avx512),
    &f32_softmax_row_avx512,
    &f32_layernorm_row_avx512,
    &f32_relu_avx512,
    &f32_gelu_avx512,
    &f32_fma_peak_avx512,
    &f32_online_softmax_step_avx512,
    &f32_dot_rows_avx512,
    &f32_weighted_row_sum_avx512,
};

// AVX-512 with the matrix unit for GEMM (Sapphire Rapids and later Xeons).
// kc 256: the A block of a task (up to 512 rows x 256 x 3 planes, 864 KiB
// with its row padding) and the B block (256 x 512 x 3 planes, 768 KiB)
// share the 2 MiB L2; per 32-row A panel (48 KiB, L1) the kernel walks
// nc / 32 B panels. Measured on a Sapphire Rapids-class Xeon, one thread,
// 1024 x 512 x {512, 1536, 2048}, 1024 x 2048 x 512: kc 256 / nc 512
// 223-259 GFLOP/s against 170-230 for kc 128 or nc 1024 or the whole of N.
const Bf16x3GemmConfig kAmxGemm = {
    "f32_gemm_32x32_bf16x3_amx", 32, 32, 256, 512, &f32_gemm_32x32_bf16x3_amx,
    &f32_write_block_bf16x3_amx, &f32_split_bf16x3_amx,
    &f32_pack_b_bf16x3_amx, &f32_amx_tiles_begin, &f32_amx_tiles_end,
};

// The AVX-512 table with the matrix unit for GEMM: every other kernel is
// AVX-512's, so a kernel added to that table is here too.
KernelTable with_amx_gemm(KernelTable table) {
  table.isa = Isa::kAmx;
  table.name = "amx";
  table.bf16x3_gemm = &kAmxGemm;
  return table;
}

const KernelTable kAmxKernels = with_amx_gemm(kAvx512Kernels);

// XCR0 bits the OS sets when it saves that register state on context switch.
constexpr unsigned long long kXcr0Sse = 1ull << 1, kXcr0Avx = 1ull << 2;
constexpr unsigned long long kXcr0Opmask = 1ull << 5, kXcr0ZmmHi256 = 1ull << 6, kXcr0Hi16Zmm = 1ull << 7;
constexpr unsigned long long kXcr0TileConfig = 1ull << 17, kXcr0TileData = 1ull << 18;

unsigned long long read_xcr0() {
  unsigned int eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}

struct X86Features {
  bool avx2 = false;    // AVX2 + FMA + OS-saved YMM
  bool avx512 = false;  // AVX-512 F/BW/DQ/VL + OS-saved ZMM and opmask
  bool amx = false;     // AVX-512 + AVX512_BF16 + AMX-TILE/BF16, OS-saved tiles, permission granted
};

// Linux saves the 8 KiB of tile data only for processes that ask
// (arch_prctl ARCH_REQ_XCOMP_PERM, kernel 5.16+); without the permission the
// first tile instruction raises SIGILL. The grant is process-wide and lasts.
bool request_tile_permission() {
#if defined(__linux__)
  constexpr int kArchReqXcompPerm = 0x1023, kXfeatureTileData = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureTileData) == 0;
#else
  return false;
#endif
}

X86Features detect_x86() {
  X86Features features;
  unsigned int eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return features;
  const bool fma = ecx & (1u << 12), osxsave = ecx & (1u << 27), avx = ecx & (1u << 28);
  // CPUID alone is not enough: without OSXSAVE + XCR0 bits the OS would not
  // preserve the wide registers across context switches (ggml skips this).
  if (!osxsave || !avx) return features;
  const unsigned long long xcr0 = read_xcr0();
  const bool os_ymm = (xcr0 & (kXcr0Sse | kXcr0Avx)) == (kXcr0Sse | kXcr0Avx);
  const bool os_zmm = os_ymm && (xcr0 & (kXcr0Opmask | kXcr0ZmmHi256 | kXcr0Hi16Zmm)) ==
                                    (kXcr0Opmask | kXcr0ZmmHi256 | kXcr0Hi16Zmm);
  if (__get_cpuid_max(0, nullptr) < 7) return features;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  const bool avx2 = ebx & (1u << 5);
  const bool avx512f = ebx & (1u << 16), avx512dq = ebx & (1u << 17);
  const bool avx512bw = ebx & (1u << 30), avx512vl = ebx & (1u << 31);
  features.avx2 = os_ymm && avx2 && fma;
  features.avx512 = features.avx2 && os_zmm && avx512f && avx512dq && avx512bw && avx512vl;
  const bool amx_bf16 = edx & (1u << 22), amx_tile = edx & (1u << 24);
  __cpuid_count(7, 1, eax, ebx, ecx, edx);
  const bool avx512_bf16 = eax & (1u << 5);
  const bool os_tiles = (xcr0 & (kXcr0TileConfig | kXcr0TileData)) == (kXcr0TileConfig | kXcr0TileData);
  features.amx = features.avx512 && avx512_bf16 && amx_bf16 && amx_tile && os_tiles && request_tile_permission();
  return features;
}
#endif

#if defined(__aarch64__)
const KernelTable kNeonKernels = {
    Isa::kNeon,
    "neon",
    gemm_config<8, 12>("f32_gemm_8x12_neon", 128, 256, 4096, &f32_gemm_8x12_neon),
    &f32_softmax_row_neon,
    &f32_layernorm_row_neon,
    &f32_relu_neon,
    &f32_gelu_neon,
    &f32_fma_peak_neon,
    &f32_online_softmax_step_neon,
    &f32_dot_rows_neon,
    &f32_weighted_row_sum_neon,
};
#endif

// Tables this machine can run, best last.
std::vector<const KernelTable*> runnable_tables() {
  std::vector<const KernelTable*> tables{&kRefKernels};
#if defined(__x86_64__) || defined(_M_X64)
  const X86Features features = detect_x86();
  if (features.avx2) tables.push_back(&kAvx2Kernels);
  if (features.avx512) tables.push_back(&kAvx512Kernels);
  if (features.amx) tables.push_back(&kAmxKernels);
#elif defined(__aarch64__)
  if (getauxval(AT_HWCAP) & HWCAP_ASIMD) tables.push_back(&kNeonKernels);
#endif
  return tables;
}

const std::vector<const KernelTable*>& runnable() {
  static const std::vector<const KernelTable*> tables = runnable_tables();
  return tables;
}

bool is_known_isa(const std::string& name) {
  return name == "ref" || name == "avx2" || name == "avx512" || name == "amx" || name == "neon";
}

std::once_flag selected_once;
const KernelTable* selected = nullptr;
std::string selection_error;

void select_once() {
  selected = runnable().back();
  const char* forced = std::getenv("SIMDFORMER_ISA");
  if (forced == nullptr || *forced == '\0') return;
  bool unknown = false;
  const KernelTable* table = find_kernels(forced, &unknown);
  if (table != nullptr) {
    selected = table;
    return;
  }
  std::string available;
  for (const std::string& name : available_isas()) available += (available.empty() ? "" : ", ") + name;
  selection_error = unknown ? "SIMDFORMER_ISA must be one of ref, avx2, avx512, amx, neon but got '" + std::string(forced) + "'"
                            : "SIMDFORMER_ISA='" + std::string(forced) +
                                  "' cannot run on this CPU/OS; available: " + available;
}

}  // namespace

std::vector<std::string> available_isas() {
  std::vector<std::string> names;
  for (const KernelTable* table : runnable()) names.emplace_back(table->name);
  return names;
}

const KernelTable* find_kernels(const std::string& name, bool* unknown_isa) {
  if (unknown_isa != nullptr) *unknown_isa = !is_known_isa(name);
  for (const KernelTable* table : runnable()) {
    if (name == table->name) return table;
  }
  return nullptr;
}

bool select_kernels(std::string* error) {
  std::call_once(selected_once, select_once);
  if (!selection_error.empty() && error != nullptr) *error = selection_error;
  return selection_error.empty();
}

const KernelTable& active_kernels() {
  std::call_once(selected_once, select_once);
  return *selected;
}

}  // namespace simdformer
