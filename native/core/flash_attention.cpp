// Fused attention driver (API in flash_attention.h). One task per (batch
// entry n, head h, group of query rows). The scores are computed transposed,
// Sᵀ = K · Qᵀ, in panels of NR queries: the GEMM micro-kernel then writes a
// key tile's scores for a panel as [keys][NR], which is at once what the
// online softmax step works on (16 / 8 / 4 queries per vector, no
// horizontal reductions) and, left in place as p, the packed B operand of
// Oᵀ += Vᵀ · Pᵀ. So p is never transposed or copied, and the panel stays in
// L1 from the scores through the softmax to the product with V. Per key tile:
//
//   pack K_tile as A panels, V_tile as A panels of Vᵀ      once per tile for the whole group
//   for each panel of NR queries:
//     scores[Bc, NR] = K_tile · Q_panelᵀ                   GEMM micro-kernel, kc = head_dim
//     online softmax step                                 kernels.online_softmax_step: m, l, p in place, alpha
//     accᵀ[Dv, NR] *= alpha (per query column)            skipped when every alpha is 1
//     accᵀ[Dv, NR] += V_tileᵀ · p                          GEMM micro-kernel, kc = keys of the tile
//
// and at the end out[i, :] = accᵀ[:, i] / l[i] (zeros when l = 0: every key
// masked). This is Algorithm 1 of FlashAttention (Dao et al. 2022) with the
// loops swapped as in its FlashAttention-2 follow-up (Dao 2023): the query
// rows are the outer loop, so a task owns its output rows and needs no
// synchronisation. The dot products use the table's GEMM micro-kernel and
// pack_a (no intrinsics here), so any head size works on every ISA.
//
// Tiles: key tiles of Bc ~ 192 keys (a multiple of mr), query panels of nr,
// groups of up to ~512 queries (fewer when that would leave threads idle);
// on a Sapphire Rapids-class Xeon Bc 128-256 and groups of 512 measured
// within noise of each other, groups of 256 ~10% slower (K and V packed
// twice as often). Per thread: Q and accᵀ [group, D / Dv], K and V
// [Bc, D / Dv], one scores panel and one mask panel [Bc, nr]: 387 KiB at
// D = Dv = 64 with AVX-512, in L2, and independent of L and S. An attention
// mask is copied into the panel layout per (tile, panel); key padding is one
// value per key.
//
// Causal (key j masked for query i when j > i): a group stops at key
// q1 - 1 of its last query, so key tiles above the diagonal are never packed
// or computed; a query panel only visits the keys its last query sees (the
// k extent of both products shrinks with it), and the step masks the rest
// of the diagonal lane by lane. Tasks are ordered last group first, so the
// longest causal tasks start first.
#include "flash_attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <new>

namespace simdformer {

namespace {

constexpr size_t kTargetKeyRows = 192;
constexpr size_t kTargetGroupRows = 512;
// Fewer tasks than this per thread leave threads idle at the end (and under
// causal the tasks differ in length), so groups shrink to keep it.
constexpr size_t kMinTasksPerThread = 4;
constexpr std::align_val_t kAlignment{64};

size_t round_up(size_t x, size_t multiple) { return (x + multiple - 1) / multiple * multiple; }
size_t ceil_div(size_t x, size_t y) { return (x + y - 1) / y; }

// Tile sizes and the float offsets of each buffer in a thread's scratch
// (each 64-byte aligned), sized for the largest group. Bounded by the
// targets whatever L and S.
struct Tiles {
  size_t key_rows = 0, max_group_panels = 0;  // Bc (keys per tile), query panels of nr per group at most
  size_t q_packed = 0, k_packed = 0, v_packed = 0, scores = 0, mask = 0, acc = 0, row_max = 0, row_sum = 0, alpha = 0;
  size_t total = 0;  // floats
};

Tiles plan_tiles(const GemmConfig& config, const AttentionProblem& p) {
  Tiles t;
  // Never larger than the problem: short sequences get small scratch.
  t.key_rows = round_up(std::min(kTargetKeyRows, p.src_len), config.mr);
  t.max_group_panels = ceil_div(std::min(kTargetGroupRows, p.tgt_len), config.nr);
  const size_t group_rows = t.max_group_panels * config.nr;
  size_t offset = 0;
  auto take = [&](size_t floats) {
    const size_t at = offset;
    offset += round_up(std::max<size_t>(floats, 1), 16);
    return at;
  };
  t.q_packed = take(group_rows * p.head_dim);                                 // [group / nr][D][nr]
  t.k_packed = take(t.key_rows * p.head_dim);                                 // [Bc / mr][D][mr]
  t.v_packed = take(t.key_rows * round_up(p.v_head_dim, config.mr));          // [Dv / mr][Bc][mr]
  t.scores = take(t.key_rows * config.nr);                                    // [Bc][nr], then p
  t.mask = p.attn_mask != nullptr ? take(t.key_rows * config.nr) : t.scores;  // [Bc][nr]
  t.acc = take(group_rows * p.v_head_dim);                                    // [group / nr][Dv][nr]
  t.row_max = take(group_rows);
  t.row_sum = take(group_rows);
  t.alpha = take(config.nr);
  t.total = offset;
  return t;
}

// Per-thread scratch, grown on demand and kept for the next call (the pool's
// threads live as long as the process). thread_local, not indexed by the
// pool's thread number: calls from several JS threads may each run tasks
// inline as "thread 0" at once. reserve() may throw std::bad_alloc.
class ThreadScratch {
 public:
  float* reserve(size_t count) {
    if (count > capacity_) {
      data_.reset();
      capacity_ = 0;
      data_.reset(static_cast<float*>(::operator new[](count * sizeof(float), kAlignment)));
      capacity_ = count;
    }
    return data_.get();
  }

 private:
  struct AlignedDelete {
    void operator()(float* data) const { ::operator delete[](data, kAlignment); }
  };
  std::unique_ptr<float[], AlignedDelete> data_;
  size_t capacity_ = 0;
};

thread_local ThreadScratch flash_scratch;

// Rows of Q, K, V and the output are seq_stride apart (2 KiB for d_model
// 512): each is a new stream the hardware prefetchers pick up late, and a
// tile's first pass over them comes from memory. The packing loops fetch
// rows ahead (__builtin_prefetch: a compiler builtin, the same on every ISA).
// Rows [begin, end) of a matrix with rows `stride` floats apart, `width` floats each.
inline void prefetch_rows(const float* base, ptrdiff_t stride, size_t begin, size_t end, size_t width, bool for_write) {
  for (size_t r = begin; r < end; ++r) {
    const float* row = base + static_cast<ptrdiff_t>(r) * stride;
    for (size_t i = 0; i < width; i += 16) {
      if (for_write) {
        __builtin_prefetch(row + i, 1);
      } else {
        __builtin_prefetch(row + i, 0);
      }
    }
  }
}

// Queries [0, count) (row i at q + i * q_stride, D floats) as one B panel of
// Sᵀ = K · Qᵀ: B(d, i) = Q(i, d), [D][nr], zero-padded to nr columns. Reads
// each row once, in order; pack_b would walk Q column by column, nr rows
// seq_stride apart, which at a seq_stride of 512 floats maps every load to
// the same two L1 sets.
void pack_query_panel(size_t D, size_t count, size_t nr, const float* q, ptrdiff_t q_stride, float* packed) {
  for (size_t i = 0; i < count; ++i) {
    const float* row = q + static_cast<ptrdiff_t>(i) * q_stride;
    for (size_t d = 0; d < D; ++d) packed[d * nr + i] = row[d];
  }
  for (size_t d = 0; d < D && count < nr; ++d) std::fill(packed + d * nr + count, packed + (d + 1) * nr, 0.0f);
}

// One task: query rows [q0, q0 + group_rows) of head h of batch entry n.
void attend_query_group(const KernelTable& kernels, const AttentionProblem& p, const Tiles& t, size_t n, size_t h,
                        size_t q0, size_t group_rows, float* scratch) {
  const GemmConfig& gemm = kernels.gemm;
  const size_t mr = gemm.mr, nr = gemm.nr, D = p.head_dim, Dv = p.v_head_dim, L = p.tgt_len, S = p.src_len;
  const size_t Bc = t.key_rows, rows = std::min(group_rows, L - q0);
  float* const q_packed = scratch + t.q_packed;
  float* const k_packed = scratch + t.k_packed;
  float* const v_packed = scratch + t.v_packed;
  float* const scores = scratch + t.scores;
  float* const mask_panel = scratch + t.mask;
  float* const acc = scratch + t.acc;
  float* const row_max = scratch + t.row_max;
  float* const row_sum = scratch + t.row_sum;
  float* const alpha = scratch + t.alpha;

  const ptrdiff_t q_stride = static_cast<ptrdiff_t>(p.q.seq_stride), k_stride = static_cast<ptrdiff_t>(p.k.seq_stride),
                  v_stride = static_cast<ptrdiff_t>(p.v.seq_stride);
  const float* q = p.q.data + n * p.q.batch_stride + q0 * p.q.seq_stride + h * D;  // Q rows (i, d) of the group
  const float* k = p.k.data + n * p.k.batch_stride + h * D;                         // K (j, d)
  const float* v = p.v.data + n * p.v.batch_stride + h * Dv;                        // V (j, d)
  const float* attn_mask = p.attn_mask;                                             // query i's row at + i * S
  if (attn_mask != nullptr && p.attn_mask_per_head) attn_mask += (n * p.heads + h) * L * S;
  const float* padding = p.key_padding_mask != nullptr ? p.key_padding_mask + n * S : nullptr;

  for (size_t c0 = 0; c0 < rows; c0 += nr) {
    const size_t count = std::min(nr, rows - c0);
    prefetch_rows(q, q_stride, c0 + nr, std::min(rows, c0 + 2 * nr), D, false);  // the next panel's rows
    pack_query_panel(D, count, nr, q + static_cast<ptrdiff_t>(c0) * q_stride, q_stride, q_packed + c0 * D);
  }
  std::fill(row_max, row_max + rows, -INFINITY);
  std::fill(row_sum, row_sum + rows, 0.0f);

  // Causal: the group's last query sees keys up to q0 + rows - 1.
  const size_t key_end = p.causal ? std::min(S, q0 + rows) : S;
  for (size_t key0 = 0; key0 < key_end; key0 += Bc) {
    const size_t kt = std::min(Bc, key_end - key0);
    const bool first = key0 == 0;
    const float* k_tile = k + static_cast<ptrdiff_t>(key0) * k_stride;
    const float* v_tile = v + static_cast<ptrdiff_t>(key0) * v_stride;

    // K tile as A panels: A(j, d) = K(key0 + j, d). V's rows are fetched
    // alongside, for the packing after.
    for (size_t ir = 0; ir < kt; ir += mr) {
      prefetch_rows(k_tile, k_stride, ir + mr, std::min(kt, ir + 2 * mr), D, false);
      prefetch_rows(v_tile, v_stride, ir, std::min(kt, ir + mr), Dv, false);
      gemm.pack_a(D, std::min(mr, kt - ir), k_tile + static_cast<ptrdiff_t>(ir) * k_stride, k_stride, 1,
                  k_packed + ir * D);
    }
    // V tile as A panels of Vᵀ: A(d, j) = V(key0 + j, d), [kt][mr] per mr values of d.
    for (size_t d0 = 0; d0 < Dv; d0 += mr) {
      gemm.pack_a(kt, std::min(mr, Dv - d0), v_tile + d0, 1, v_stride, v_packed + d0 * kt);
    }

    for (size_t c0 = 0; c0 < rows; c0 += nr) {
      const size_t count = std::min(nr, rows - c0);
      // Keys of the tile the panel's last query sees: all, or up to the diagonal.
      const size_t last_query = q0 + c0 + count - 1;
      const size_t keys = !p.causal ? kt : last_query < key0 ? 0 : std::min(kt, last_query + 1 - key0);
      if (keys == 0) continue;  // never on the first tile: every query sees key 0
      // scores = K_tile · Q_panelᵀ, [keys][nr].
      for (size_t ir = 0; ir < keys; ir += mr) {
        gemm.ukernel(D, k_packed + ir * D, q_packed + c0 * D, scores + ir * nr, nr, std::min(mr, keys - ir), count,
                     false, nullptr);
      }
      if (attn_mask != nullptr) {
        for (size_t c = 0; c < count; ++c) {
          const float* mask_row = attn_mask + (q0 + c0 + c) * S + key0;
          for (size_t j = 0; j < keys; ++j) mask_panel[j * nr + c] = mask_row[j];
        }
      }
      // Key j is after query c when key0 + j > q0 + c0 + c; the step needs to
      // know only when some key of the tile is.
      const ptrdiff_t causal_offset = static_cast<ptrdiff_t>(q0 + c0) - static_cast<ptrdiff_t>(key0);
      OnlineSoftmaxPanel panel;
      panel.keys = keys;
      panel.queries = count;
      panel.ld = nr;
      panel.scores = scores;
      panel.scale = p.scale;
      panel.mask = attn_mask != nullptr ? mask_panel : nullptr;
      panel.padding = padding != nullptr ? padding + key0 : nullptr;
      panel.causal = p.causal && causal_offset < static_cast<ptrdiff_t>(keys) - 1;
      panel.causal_offset = causal_offset;
      panel.running_max = row_max + c0;
      panel.running_sum = row_sum + c0;
      panel.alpha = alpha;
      kernels.online_softmax_step(panel);

      // accᵀ of the panel: [Dv][nr]; rescaled where a query's max moved.
      float* acc_panel = acc + c0 * Dv;
      if (!first && std::any_of(alpha, alpha + count, [](float a) { return a != 1.0f; })) {
        for (size_t d = 0; d < Dv; ++d) {
          float* acc_row = acc_panel + d * nr;
          for (size_t c = 0; c < count; ++c) acc_row[c] *= alpha[c];
        }
      }
      // accᵀ (+)= V_tileᵀ · p. The first tile writes acc (never read before).
      for (size_t d0 = 0; d0 < Dv; d0 += mr) {
        gemm.ukernel(keys, v_packed + d0 * kt, scores, acc_panel + d0 * nr, nr, std::min(mr, Dv - d0), count, !first,
                     nullptr);
      }
    }
  }

  // out = acc / l; a query whose keys were all masked has l = 0 and gets zeros.
  float* out = p.out + n * p.out_batch_stride + q0 * p.out_seq_stride + h * Dv;
  const ptrdiff_t out_stride = static_cast<ptrdiff_t>(p.out_seq_stride);
  for (size_t i = 0; i < rows; ++i) {
    float* to = out + static_cast<ptrdiff_t>(i) * out_stride;
    if (i % nr == 0) prefetch_rows(out, out_stride, i + nr, std::min(rows, i + 2 * nr), Dv, true);
    const float inverse = row_sum[i] == 0.0f ? 0.0f : 1.0f / row_sum[i];
    const float* from = acc + (i - i % nr) * Dv + i % nr;
    for (size_t d = 0; d < Dv; ++d) to[d] = from[d * nr] * inverse;
  }
}

}  // namespace

void flash_attention(const KernelTable& kernels, const AttentionProblem& problem, ThreadPool& pool) {
  if (problem.batch == 0 || problem.heads == 0 || problem.tgt_len == 0) return;
  const Tiles tiles = plan_tiles(kernels.gemm, problem);
  const size_t heads = problem.batch * problem.heads, nr = kernels.gemm.nr;
  const size_t panels = ceil_div(problem.tgt_len, nr);
  // As many query panels per group as keeps every thread busy, up to the target.
  const size_t wanted_tasks = kMinTasksPerThread * pool.num_threads();
  const size_t group_panels = std::clamp<size_t>(heads * panels / wanted_tasks, 1, tiles.max_group_panels);
  const size_t group_rows = group_panels * nr;
  const size_t groups = ceil_div(problem.tgt_len, group_rows);
  // Tasks must not throw, so an allocation failure is carried out and rethrown.
  std::atomic<bool> out_of_memory{false};
  pool.parallel_for(heads * groups, [&](size_t task, size_t) {
    try {
      float* scratch = flash_scratch.reserve(tiles.total);
      // Last group first: under causal it has the most keys to visit.
      const size_t group = groups - 1 - task / heads, head = task % heads;
      attend_query_group(kernels, problem, tiles, head / problem.heads, head % problem.heads, group * group_rows,
                         group_rows, scratch);
    } catch (const std::bad_alloc&) {
      out_of_memory.store(true);
    }
  });
  if (out_of_memory.load()) throw std::bad_alloc();
}

size_t flash_attention_scratch_bytes(const KernelTable& kernels, const AttentionProblem& problem) {
  return plan_tiles(kernels.gemm, problem).total * sizeof(float);
}

}  // namespace simdformer
