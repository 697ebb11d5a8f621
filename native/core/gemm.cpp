// GEMM driver (API in gemm.h): BLIS's loops of blocking and packing around the
// table's register-tile micro-kernel. Each task owns a rectangle of C of one
// batch entry and runs, inside it:
//
//   jc: columns in blocks of nc            B block [kc, nc]; nc bounds how often A is repacked
//     pc: k in blocks of kc                fixed by the config, never by threads
//       ic: rows in blocks of mc           A block [mc, kc] packed into this thread's scratch (L2)
//         jr: nr-wide B panels             B panel [kc, nr] reused by every ir (L1 or L2, by kc)
//           ir: mr-high A panels           micro-kernel: C tile (+)= A panel · B panel
//
// The micro-kernels prefetch their C tile and the B panel themselves: C rows
// are ldc apart and B's first pass comes from memory, which the hardware
// prefetchers do not cover. Every C element is reduced over k in the same
// order (kc blocks in order, k in order inside a block) whatever the tasks,
// so results do not depend on the thread count. B is packed for all tasks
// before they start (or given as a PackedB); A is packed by each task for
// its own rows.
#include "gemm.h"
#include "sizes.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <new>
#include <numeric>
#include <utility>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace simdformer {

namespace {

constexpr std::align_val_t kAlignment{64};

// Below this many multiply-adds per task a parallel region costs more than it
// saves (waking a worker takes microseconds).
constexpr double kMinMacsPerTask = 1 << 19;

// B packing tasks hold this many nr panels of one kc block.
constexpr size_t kPanelsPerPackTask = 8;

size_t ceil_div(size_t x, size_t y) { return (x + y - 1) / y; }
size_t round_up(size_t x, size_t multiple) { return ceil_div(x, multiple) * multiple; }

// Buffers of 2 MiB or more (packed B of a large Linear: 4 MiB at 512 x 2048)
// are aligned to 2 MiB and advised as transparent huge pages, which Linux
// gives by default only to advised memory (THP "madvise" mode). With 4 KiB
// pages a kc x nr B panel (64 KiB at kc 512, nr 32) spans 16 pages: the
// hardware prefetchers stop at every page boundary and the pages of B crowd
// C's rows out of the TLB. Cost: a buffer's resident size rounds up to whole
// 2 MiB pages. Measured on a Sapphire Rapids-class Xeon (AVX-512, y = x · Wᵀ,
// W prepacked): +1 to +2.5 points of % of peak at 1 thread for 1024 x 512 x
// {1536, 2048} and 1024 x 2048 x 512, 0 to +2.5 at 2 threads.

std::align_val_t alignment_for(size_t count) {
  return count * sizeof(float) >= kHugePageBytes ? std::align_val_t{kHugePageBytes} : kAlignment;
}

// nullptr if allocation fails (never throws).
float* try_aligned_floats(size_t count) noexcept {
  void* data = ::operator new[](count * sizeof(float), alignment_for(count), std::nothrow);
#if defined(__linux__)
  if (data != nullptr && count * sizeof(float) >= kHugePageBytes) madvise(data, count * sizeof(float), MADV_HUGEPAGE);
#endif
  return static_cast<float*>(data);
}

float* aligned_floats(size_t count) {
  float* data = try_aligned_floats(count);
  if (data == nullptr) throw std::bad_alloc();
  return data;
}

// count must be the one the buffer was allocated with (it sets the alignment).
void free_aligned_floats(float* data, size_t count) { ::operator delete[](data, alignment_for(count)); }

struct AlignedFloatsDelete {
  size_t count = 0;
  void operator()(float* data) const { free_aligned_floats(data, count); }
};
using AlignedFloats = std::unique_ptr<float[], AlignedFloatsDelete>;

// Per-thread packed-A block, grown on demand and kept for the next call (the
// pool's threads live as long as the process). thread_local rather than
// indexed by the pool's thread number: gemm calls from several JS threads
// (worker_threads) may each run tasks inline as "thread 0" at once. Tasks
// must not throw, so a failed allocation returns nullptr and the caller
// throws after the region.
class ThreadScratch {
 public:
  ~ThreadScratch() { free_aligned_floats(data_, capacity_); }
  float* reserve(size_t count) noexcept {
    if (count <= capacity_) return data_;
    free_aligned_floats(data_, capacity_);
    data_ = try_aligned_floats(count);
    capacity_ = data_ != nullptr ? count : 0;
    return data_;
  }

 private:
  float* data_ = nullptr;
  size_t capacity_ = 0;
};

thread_local ThreadScratch a_scratch;

// Layout shared by PackedB and per-call packing: kc blocks one after another;
// the block of rows [k0, k0 + kb) holds ceil(n / nr) panels of [kb][nr],
// so panel (k0, j0) starts at k0 * n_padded + j0 * kb.
size_t panel_offset(const GemmConfig& config, size_t k, size_t n_padded, size_t k0, size_t j0) {
  return k0 * n_padded + j0 * std::min(config.kc, k - k0);
}

// Packs panels [first_panel, last_panel) of the kc block starting at k0.
void pack_b_panels(const GemmConfig& config, size_t k, size_t n, StridedMatrix b, size_t k0, size_t first_panel,
                   size_t last_panel, float* packed) {
  const size_t kb = std::min(config.kc, k - k0), n_padded = round_up(n, config.nr);
  for (size_t panel = first_panel; panel < last_panel; ++panel) {
    const size_t j0 = panel * config.nr;
    config.pack_b(kb, std::min(config.nr, n - j0),
                  b.data + static_cast<ptrdiff_t>(k0) * b.row_stride + static_cast<ptrdiff_t>(j0) * b.col_stride,
                  b.row_stride, b.col_stride, packed + panel_offset(config, k, n_padded, k0, j0));
  }
}

// Runs fn(task, thread) for every task, on the pool or inline.
template <class F>
void run_tasks(ThreadPool& pool, bool parallel, size_t num_tasks, F fn) {
  if (parallel) {
    pool.parallel_for(num_tasks, std::move(fn));
  } else {
    for (size_t task = 0; task < num_tasks; ++task) fn(task, 0);
  }
}

// Share of the work the busiest of `parts` even splits of `tiles` does not
// waste: 1 when parts divides tiles.
double split_efficiency(size_t tiles, size_t parts) {
  return static_cast<double>(tiles) / static_cast<double>(parts * ceil_div(tiles, parts));
}

// Splits each batch entry's C into m_parts x n_parts rectangles of whole
// tiles, so that batch * parts tasks keep `threads` threads evenly busy.
struct Partition {
  size_t m_parts = 1, n_parts = 1;
};

Partition choose_partition(size_t threads, size_t batch, size_t m_tiles, size_t n_tiles, double macs) {
  Partition best;
  if (threads <= 1) return best;
  // Batch entries are tasks already; split them further only when the batch
  // alone would leave a thread idle at the end (e.g. batch 1 or 3 on 2 threads).
  size_t parts = (batch % threads == 0 || batch >= 4 * threads) ? 1 : threads / std::gcd(batch, threads);
  const size_t affordable = static_cast<size_t>(macs / kMinMacsPerTask) / batch;
  parts = std::min({parts, std::max<size_t>(affordable, 1), m_tiles * n_tiles});
  for (; parts > 1; --parts) {
    double best_efficiency = 0;
    // Prefer splitting rows (tasks share the packed B, each packs its own A);
    // split columns when there are too few row tiles (M = 8 in decoding).
    for (size_t m_parts = parts; m_parts >= 1; --m_parts) {
      const size_t n_parts = parts / m_parts;
      if (m_parts * n_parts != parts || m_parts > m_tiles || n_parts > n_tiles) continue;
      const double efficiency = split_efficiency(m_tiles, m_parts) * split_efficiency(n_tiles, n_parts);
      if (efficiency > best_efficiency + 1e-9) {
        best_efficiency = efficiency;
        best = Partition{m_parts, n_parts};
      }
    }
    if (best_efficiency > 0) return best;
  }
  return best;
}

// How gemm() splits a problem into tasks: batch entries x partition parts
// of whole mr x nr tiles, and whether the region is worth running in parallel.
struct TaskSplit {
  Partition partition;
  size_t m, n, mr, nr, m_tiles, n_tiles, parts;
  bool parallel;

  // Rows [row0, row1) x columns [col0, col1) of part `part` (empty when the
  // split leaves it nothing).
  struct Rect {
    size_t row0, row1, col0, col1;
    bool empty() const { return row0 >= row1 || col0 >= col1; }
  };
  Rect rect(size_t part) const {
    const size_t m_part = part / partition.n_parts, n_part = part % partition.n_parts;
    return Rect{m_part * m_tiles / partition.m_parts * mr, std::min(m, (m_part + 1) * m_tiles / partition.m_parts * mr),
                n_part * n_tiles / partition.n_parts * nr, std::min(n, (n_part + 1) * n_tiles / partition.n_parts * nr)};
  }
};

TaskSplit split_tasks(const GemmProblem& problem, size_t threads, size_t mr, size_t nr) {
  TaskSplit split;
  split.m = problem.m;
  split.n = problem.n;
  split.mr = mr;
  split.nr = nr;
  split.m_tiles = ceil_div(problem.m, mr);
  split.n_tiles = ceil_div(problem.n, nr);
  const double macs = static_cast<double>(problem.batch) * problem.m * problem.n * problem.k;
  split.partition = choose_partition(threads, problem.batch, split.m_tiles, split.n_tiles, macs);
  split.parts = split.partition.m_parts * split.partition.n_parts;
  split.parallel = threads > 1 && problem.batch * split.parts > 1 && macs >= 2 * kMinMacsPerTask;
  return split;
}

// C += residual over rows [row0, row1) x columns [col0, col1) of batch entry
// `entry`, once those elements of C are final (a no-op without a residual).
void add_residual(const GemmProblem& problem, size_t entry, size_t row0, size_t row1, size_t col0, size_t col1) {
  if (problem.residual == nullptr) return;
  for (size_t i = row0; i < row1; ++i) {
    const size_t offset = entry * problem.c_batch_stride + i * problem.ldc;
    float* c = problem.c + offset;
    const float* residual = problem.residual + offset;
    for (size_t j = col0; j < col1; ++j) c[j] += residual[j];
  }
}

// C = act(bias) when k = 0 (an empty sum).
void gemm_without_k(const KernelTable& kernels, const GemmProblem& problem) {
  for (size_t b = 0; b < problem.batch; ++b) {
    for (size_t i = 0; i < problem.m; ++i) {
      float* row = problem.c + b * problem.c_batch_stride + i * problem.ldc;
      if (problem.bias != nullptr) {
        std::memcpy(row, problem.bias, problem.n * sizeof(float));
      } else {
        std::fill(row, row + problem.n, 0.0f);
      }
      if (problem.activation == Activation::kRelu) kernels.relu(problem.n, row, row);
      if (problem.activation == Activation::kGelu) kernels.gelu(problem.n, row, row);
    }
    add_residual(problem, b, 0, problem.m, 0, problem.n);
  }
}

// One task: rows [row0, row1) x columns [col0, col1) of C[batch_index], with
// B already packed at b_packed and a_packed holding one [mc][kc] A block.
void gemm_block(const GemmConfig& config, const GemmProblem& problem, size_t batch_index, const float* b_packed,
                size_t row0, size_t row1, size_t col0, size_t col1, float* a_packed) {
  const size_t k = problem.k, n = problem.n, mr = config.mr, nr = config.nr;
  const size_t mc = std::max(mr, config.mc / mr * mr), nc = std::max(nr, config.nc / nr * nr);
  const size_t n_padded = round_up(n, nr);
  const StridedMatrix a = problem.a;
  const float* a_batch = a.data + (problem.a_offsets != nullptr ? problem.a_offsets[batch_index] : 0);
  float* c = problem.c + batch_index * problem.c_batch_stride;
  const bool has_epilogue = problem.bias != nullptr || problem.activation != Activation::kNone;

  for (size_t jc = col0; jc < col1; jc += nc) {
    const size_t jc_end = std::min(jc + nc, col1);
    for (size_t pc = 0; pc < k; pc += config.kc) {
      const size_t kb = std::min(config.kc, k - pc);
      const bool accumulate = pc != 0, last = pc + kb == k;
      for (size_t ic = row0; ic < row1; ic += mc) {
        const size_t mb = std::min(mc, row1 - ic);
        for (size_t ir = 0; ir < mb; ir += mr) {
          config.pack_a(kb, std::min(mr, mb - ir),
                        a_batch + static_cast<ptrdiff_t>(ic + ir) * a.row_stride +
                            static_cast<ptrdiff_t>(pc) * a.col_stride,
                        a.row_stride, a.col_stride, a_packed + ir * kb);
        }
        for (size_t jr = jc; jr < jc_end; jr += nr) {
          const float* b_panel = b_packed + panel_offset(config, k, n_padded, pc, jr);
          const size_t nr_valid = std::min(nr, n - jr);
          const GemmEpilogue epilogue{problem.bias != nullptr ? problem.bias + jr : nullptr, problem.activation};
          const GemmEpilogue* tile_epilogue = last && has_epilogue ? &epilogue : nullptr;
          for (size_t ir = 0; ir < mb; ir += mr) {
            config.ukernel(kb, a_packed + ir * kb, b_panel, c + (ic + ir) * problem.ldc + jr, problem.ldc,
                           std::min(mr, mb - ir), nr_valid, accumulate, tile_epilogue);
          }
        }
        if (last) add_residual(problem, batch_index, ic, ic + mb, jc, jc_end);
      }
    }
  }
}

// True when every batch entry reads the same B, so it is packed once.
bool shares_b(const GemmProblem& problem) {
  if (problem.b_offsets == nullptr) return true;
  for (size_t b = 1; b < problem.batch; ++b) {
    if (problem.b_offsets[b] != problem.b_offsets[0]) return false;
  }
  return true;
}


// ---- AMX (bf16x3) path -------------------------------------------------------
//
// Same tasks and partition as above, in 32 x 32 blocks of C. A PackedB holds
// B already split (pack_b); otherwise each task splits the B block it is
// about to use into its own L2 scratch. Per task:
//
//   pc: k in blocks of kc                  A rows of the task split into 3 planes [rows][kc + 32] (L2)
//     jc: columns in blocks of nc          B block kc x nc x 3 planes (L2)
//       ir: 32-row A panels                48 KiB at kc 256: stays in L1 across the jr loop
//         jr: 32-column B panels           tile kernel: 24 TDPBF16PS per 32 k values
//
// Splitting costs about a third of a cycle per element; per B element the
// tiles spend M * 6 / 1024 cycles. Rows of the split A are kc + 32 elements
// apart: a multiple of 4 KiB would put a tile's 16 rows in one L1 set.

// An unpacked B is split per call, which for fewer rows per task than this
// costs more than the matrix unit saves: the AVX-512 micro-kernel runs
// instead. Measured on a Sapphire Rapids-class Xeon, M x 512 x 2048 with B
// split per call against the AVX-512 kernel: 1 thread 0.87x at M = 64, 1.09x
// at 128; 2 threads (rows split, so each task splits all of B) 0.6x at 64,
// 0.96x at 128, 1.07x at 256.
constexpr size_t kMinBf16x3RowsPerTask = 96;

bool use_bf16x3(const KernelTable& kernels, const GemmProblem& problem, size_t threads, const PackedB* packed_b) {
  if (packed_b != nullptr) return packed_b->bf16x3();
  if (kernels.bf16x3_gemm == nullptr) return false;
  const size_t rows_per_task = problem.batch >= threads ? problem.m : problem.m * problem.batch / threads;
  return rows_per_task >= kMinBf16x3RowsPerTask;
}

// Splits columns [j0, j1) (j0 a multiple of 16) of the kc block at k0 of B
// (strided, `rows` valid rows, padded to kb) into planes `plane` apart whose
// 16-column panels are kb * 16 elements apart, starting at out.
void split_b_block(const Bf16x3GemmConfig& config, StridedMatrix b, size_t n, size_t k_valid, size_t kb, size_t k0,
                   size_t j0, size_t j1, uint16_t* out, size_t plane) {
  for (size_t j = j0; j < j1; j += 16) {
    const float* source = b.data + static_cast<ptrdiff_t>(k0) * b.row_stride +
                          static_cast<ptrdiff_t>(std::min(j, n - 1)) * b.col_stride;
    config.pack_b(k_valid, kb, j < n ? std::min<size_t>(16, n - j) : 0, source, b.row_stride, b.col_stride,
                  out + (j - j0) * kb, plane);
  }
}

// One task of the AMX path: rows [row0, row1) x columns [col0, col1) of C[batch_index].
void gemm_bf16x3_block(const Bf16x3GemmConfig& config, const GemmProblem& problem, const PackedB* packed_b,
                       size_t batch_index, size_t row0, size_t row1, size_t col0, size_t col1, uint16_t* a_split,
                       uint16_t* b_split) {
  const size_t k = problem.k, n = problem.n, k_padded = round_up(k, 32);
  const size_t rows = row1 - row0, rows_padded = round_up(rows, 32), lda = config.kc + 32;
  const size_t a_plane = rows_padded * lda;
  const StridedMatrix a = problem.a;
  const float* a_batch = a.data + (problem.a_offsets != nullptr ? problem.a_offsets[batch_index] : 0);
  float* c = problem.c + batch_index * problem.c_batch_stride;
  const float* residual =
      problem.residual != nullptr ? problem.residual + batch_index * problem.c_batch_stride : nullptr;
  // Padding rows are read by the tiles (their results are dropped); zeros
  // keep them finite.
  for (size_t plane = 0; plane < 3; ++plane) {
    std::fill(a_split + plane * a_plane + rows * lda, a_split + (plane + 1) * a_plane, uint16_t{0});
  }
  // Each block is written into C by the next tile call, while that block's
  // products run (kernels.h: Bf16x3Block), the last one after the loops.
  Bf16x3Block blocks[2];
  Bf16x3Block* pending = nullptr;
  for (size_t pc = 0; pc < k_padded; pc += config.kc) {
    const size_t kb = std::min(config.kc, k_padded - pc), k_valid = std::min(kb, k - pc);
    const bool accumulate = pc != 0, last = pc + kb == k_padded;
    config.split_a(rows, k_valid,
                   a_batch + static_cast<ptrdiff_t>(row0) * a.row_stride + static_cast<ptrdiff_t>(pc) * a.col_stride,
                   a.row_stride, a.col_stride, kb, a_split, lda, a_plane);
    for (size_t jc = col0; jc < col1; jc += config.nc) {
      const size_t jc_end = std::min(jc + config.nc, col1);
      // B block: columns [jc, jc_end) of this kc block, panels kb * 16 apart.
      const uint16_t* b_block;
      size_t b_plane;
      if (packed_b != nullptr) {
        const size_t n_padded = round_up(n, 32);
        b_block = packed_b->bf16x3_data() + 3 * n_padded * pc + jc * kb;
        b_plane = n_padded * kb;
      } else {
        StridedMatrix b = problem.b;
        b.data += problem.b_offsets != nullptr ? problem.b_offsets[batch_index] : 0;
        b_plane = round_up(jc_end - jc, 32) * kb;
        split_b_block(config, b, n, k_valid, kb, pc, jc, jc + b_plane / kb, b_split, b_plane);
        b_block = b_split;
      }
      for (size_t ir = 0; ir < rows; ir += 32) {
        for (size_t jr = jc; jr < jc_end; jr += 32) {
          Bf16x3Block* out = pending == &blocks[0] ? &blocks[1] : &blocks[0];
          const size_t c_offset = (row0 + ir) * problem.ldc + jr;
          out->c = c + c_offset;
          out->ldc = problem.ldc;
          out->rows = std::min<size_t>(32, rows - ir);
          out->cols = std::min<size_t>(32, n - jr);
          out->accumulate = accumulate;
          out->bias = last && problem.bias != nullptr ? problem.bias + jr : nullptr;
          out->activation = last ? problem.activation : Activation::kNone;
          out->residual = last && residual != nullptr ? residual + c_offset : nullptr;
          config.tile(kb, a_split + ir * lda, lda, a_plane, b_block + (jr - jc) * kb, b_plane, out, pending);
          pending = out;
        }
      }
    }
  }
  if (pending != nullptr) config.write(*pending);
}

thread_local ThreadScratch b_split_scratch;

void gemm_bf16x3(const Bf16x3GemmConfig& config, const GemmProblem& problem, ThreadPool& pool,
                 const PackedB* packed_b) {
  const TaskSplit split = split_tasks(problem, pool.num_threads(), config.mr, config.nr);
  const size_t kb_max = std::min(config.kc, round_up(problem.k, 32));

  std::atomic<bool> out_of_memory{false};
  run_tasks(pool, split.parallel, problem.batch * split.parts, [&](size_t task, size_t) {
    const TaskSplit::Rect rect = split.rect(task % split.parts);
    if (rect.empty()) return;
    // bfloat16 planes, counted in floats (two per float); B is split here
    // only when it is not a PackedB.
    float* a_split = a_scratch.reserve(3 * round_up(rect.row1 - rect.row0, 32) * (config.kc + 32) / 2);
    float* b_split = nullptr;
    if (packed_b == nullptr) {
      b_split = b_split_scratch.reserve(3 * kb_max * std::min(config.nc, round_up(rect.col1 - rect.col0, 32)) / 2);
    }
    if (a_split == nullptr || (packed_b == nullptr && b_split == nullptr)) {
      out_of_memory.store(true, std::memory_order_relaxed);
      return;
    }
    config.begin();
    gemm_bf16x3_block(config, problem, packed_b, task / split.parts, rect.row0, rect.row1, rect.col0, rect.col1,
                      reinterpret_cast<uint16_t*>(a_split), reinterpret_cast<uint16_t*>(b_split));
    config.end();
  });
  if (out_of_memory.load(std::memory_order_relaxed)) throw std::bad_alloc();
}

}  // namespace

// ---- Packed B ----------------------------------------------------------------
//
// pack_b packs a whole operand on the calling thread; pack_b_batch (through
// packed_b_layout and pack_b_piece) packs many at once in pieces of one kc
// block by a group of columns, so that its tasks are about equal whatever the
// operands' sizes. Both write the same layout (PackedB in gemm.h).

namespace {

// Pieces of a micro-kernel table's layout hold this many floats at most
// (1 MiB: a kc x nc-ish block that stays in L2 while it is written); an AMX
// table's are kc x nc blocks (768 KiB at kc 256, nc 512: 3 planes of bfloat16).
constexpr size_t kPackPieceFloats = size_t{1} << 18;

// The pieces of B's packed layout: k_blocks kc blocks by column_groups groups
// of group_columns columns (a multiple of the panel width).
struct PackPieces {
  size_t k_blocks = 0, column_groups = 0, group_columns = 0;
};

PackPieces pack_pieces(const KernelTable& kernels, size_t k, size_t n) {
  PackPieces pieces;
  if (kernels.bf16x3_gemm != nullptr) {
    const Bf16x3GemmConfig& config = *kernels.bf16x3_gemm;
    pieces.k_blocks = ceil_div(round_up(k, 32), config.kc);
    pieces.group_columns = config.nc;
    pieces.column_groups = ceil_div(round_up(n, 32), config.nc);
  } else {
    const GemmConfig& config = kernels.gemm;
    pieces.k_blocks = ceil_div(k, config.kc);
    pieces.group_columns = std::max<size_t>(1, kPackPieceFloats / (config.kc * config.nr)) * config.nr;
    pieces.column_groups = ceil_div(n, pieces.group_columns);
  }
  return pieces;
}

}  // namespace

PackedBLayout packed_b_layout(const KernelTable& kernels, size_t k, size_t n) {
  PackedBLayout layout;
  if (kernels.bf16x3_gemm != nullptr) {
    // 3 planes of bfloat16, two to a float.
    const size_t elements = checked_multiply(checked_multiply(3, checked_round_up(k, 32)), checked_round_up(n, 32));
    layout.floats = elements / 2;
  } else {
    layout.floats = checked_multiply(k, checked_round_up(n, kernels.gemm.nr));
  }
  const PackPieces pieces = pack_pieces(kernels, k, n);
  layout.pieces = pieces.k_blocks * pieces.column_groups;
  return layout;
}

void pack_b_piece(const KernelTable& kernels, size_t k, size_t n, StridedMatrix b, size_t piece, float* data) {
  const PackPieces pieces = pack_pieces(kernels, k, n);
  const size_t block = piece / pieces.column_groups, group = piece % pieces.column_groups;
  if (kernels.bf16x3_gemm != nullptr) {
    const Bf16x3GemmConfig& config = *kernels.bf16x3_gemm;
    const size_t k_padded = round_up(k, 32), n_padded = round_up(n, 32);
    const size_t k0 = block * config.kc, kb = std::min(config.kc, k_padded - k0);
    const size_t j0 = group * pieces.group_columns, j1 = std::min(n_padded, j0 + pieces.group_columns);
    // kc blocks are 3 * n_padded * kb elements apart; inside one, 16-column panels are kb * 16 apart per plane.
    uint16_t* out = reinterpret_cast<uint16_t*>(data) + 3 * n_padded * k0 + j0 * kb;
    split_b_block(config, b, n, std::min(kb, k - k0), kb, k0, j0, j1, out, n_padded * kb);
    return;
  }
  const GemmConfig& config = kernels.gemm;
  const size_t panels_per_group = pieces.group_columns / config.nr, panels = ceil_div(n, config.nr);
  pack_b_panels(config, k, n, b, block * config.kc, group * panels_per_group,
                std::min(panels, (group + 1) * panels_per_group), data);
}

PackedB packed_b_view(const KernelTable& kernels, size_t k, size_t n, const float* data,
                      std::shared_ptr<const void> storage, std::shared_ptr<const PackedB::Pending> pending) {
  PackedB packed;
  packed.k_ = k;
  packed.n_ = n;
  packed.size_ = packed_b_layout(kernels, k, n).floats;
  if (kernels.bf16x3_gemm != nullptr) {
    packed.bf16x3_ = kernels.bf16x3_gemm;
  } else {
    packed.config_ = &kernels.gemm;
  }
  packed.data_ = data;
  packed.storage_ = std::move(storage);
  packed.shared_ = true;
  packed.pending_ = std::move(pending);
  return packed;
}

PackedB pack_b(const KernelTable& kernels, size_t k, size_t n, StridedMatrix b) {
  const PackedBLayout layout = packed_b_layout(kernels, k, n);
  const size_t count = std::max<size_t>(layout.floats, 1);
  float* data = aligned_floats(count);
  // Should the control block's allocation throw, the deleter frees data.
  std::shared_ptr<const void> storage(data, AlignedFloatsDelete{count});
  for (size_t piece = 0; piece < layout.pieces; ++piece) pack_b_piece(kernels, k, n, b, piece, data);
  PackedB packed = packed_b_view(kernels, k, n, data, std::move(storage));
  packed.shared_ = false;
  return packed;
}

void gemm(const KernelTable& kernels, const GemmProblem& problem, ThreadPool& pool, const PackedB* packed_b) {
  const size_t batch = problem.batch, m = problem.m, n = problem.n, k = problem.k;
  if (batch == 0 || m == 0 || n == 0) return;
  if (k == 0) return gemm_without_k(kernels, problem);
  if (packed_b != nullptr && !packed_b->ready()) {
    // Still being packed in the background: B packed per call from its
    // source, by the kernel its packed form is for (the AMX one even where
    // use_bf16x3 would pick the AVX-512 kernel for an unpacked B), so the
    // result has the bits it will have once packed.
    GemmProblem direct = problem;
    direct.b = packed_b->source();
    direct.b_offsets = nullptr;
    if (packed_b->bf16x3()) return gemm_bf16x3(packed_b->bf16x3_config(), direct, pool, nullptr);
    return gemm(kernels, direct, pool, nullptr);
  }
  if (use_bf16x3(kernels, problem, pool.num_threads(), packed_b)) {
    return gemm_bf16x3(packed_b != nullptr ? packed_b->bf16x3_config() : *kernels.bf16x3_gemm, problem, pool, packed_b);
  }
  const GemmConfig& config = packed_b != nullptr ? packed_b->config() : kernels.gemm;
  const size_t mr = config.mr;
  const TaskSplit split = split_tasks(problem, pool.num_threads(), mr, config.nr);
  const size_t n_tiles = split.n_tiles, n_padded = n_tiles * config.nr;
  const size_t k_blocks = ceil_div(k, config.kc);
  const bool parallel = split.parallel;

  // B for each batch entry: the PackedB, or packed here (once if shared).
  const float* b_packed = nullptr;
  size_t b_batch_stride = 0;
  AlignedFloats b_scratch;
  if (packed_b != nullptr) {
    b_packed = packed_b->data();
  } else {
    const size_t distinct = shares_b(problem) ? 1 : batch;
    b_batch_stride = distinct > 1 ? k * n_padded : 0;
    b_scratch = AlignedFloats(aligned_floats(distinct * k * n_padded), AlignedFloatsDelete{distinct * k * n_padded});
    b_packed = b_scratch.get();
    const size_t groups = ceil_div(n_tiles, kPanelsPerPackTask);
    run_tasks(pool, parallel, distinct * k_blocks * groups, [&](size_t task, size_t) {
      const size_t entry = task / (k_blocks * groups), block = task / groups % k_blocks, group = task % groups;
      StridedMatrix b = problem.b;
      b.data += problem.b_offsets != nullptr ? problem.b_offsets[entry] : 0;
      pack_b_panels(config, k, n, b, block * config.kc, group * kPanelsPerPackTask,
                    std::min(n_tiles, (group + 1) * kPanelsPerPackTask), b_scratch.get() + entry * k * n_padded);
    });
  }

  std::atomic<bool> out_of_memory{false};
  run_tasks(pool, parallel, batch * split.parts, [&](size_t task, size_t) {
    const size_t entry = task / split.parts;
    const TaskSplit::Rect rect = split.rect(task % split.parts);
    if (rect.empty()) return;
    const size_t a_rows = std::min(std::max(mr, config.mc / mr * mr), round_up(rect.row1 - rect.row0, mr));
    float* a_packed = a_scratch.reserve(a_rows * std::min(config.kc, k));
    if (a_packed == nullptr) {
      out_of_memory.store(true, std::memory_order_relaxed);
      return;
    }
    gemm_block(config, problem, entry, b_packed + entry * b_batch_stride, rect.row0, rect.row1, rect.col0, rect.col1,
               a_packed);
  });
  if (out_of_memory.load(std::memory_order_relaxed)) throw std::bad_alloc();
}

}  // namespace simdformer
