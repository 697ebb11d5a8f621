// Fused attention driver (API in flash_attention.h). One task per (batch
// entry n, head h, block of query rows); inside a task, for each key tile:
//
//   scores[Br, Bc] = Q_block · K_tileᵀ          GEMM micro-kernel, kc = head_dim
//   per row r:     online softmax step           kernels.online_softmax_step: m, l, p in place, alpha
//                  acc[r, :] *= alpha            (skipped when alpha == 1, the common case)
//   acc[Br, Dv]   += P[Br, Bc] · V_tile           GEMM micro-kernel, kc = keys of the tile, accumulate
//
// and at the end out[i, :] = acc[i, :] / l[i] (zeros when l = 0: every key
// masked). This is Algorithm 1 of FlashAttention (Dao et al. 2022) with the
// loops swapped as in its FlashAttention-2 follow-up (Dao 2023): the query
// block is the outer loop, so a task owns its output rows and needs no
// synchronisation. The dot products reuse the table's GEMM micro-kernel and
// its packing routines (no intrinsics here), so any head size works on every
// ISA: Q is packed once per task as A panels, K and V once per key tile as B
// panels, P as A panels.
//
// Tiles: Br ~ 64 query rows (a multiple of mr), Bc ~ 128 keys (a multiple of
// nr). Per thread that is Q [Br, D], K [D, Bc], scores and P [Br, Bc],
// V [Bc, Dv], acc [Br, Dv]: ~150 KiB at D = Dv = 64, within L2, and no
// dependence on L or S.
//
// Causal (key j masked for query i when j > i): a query block [q0, q1) stops
// at key q1 - 1, so key tiles above the diagonal are never packed or
// computed; in the diagonal tile, micro-tiles of scores wholly above it are
// skipped, each row's step sees only keys j <= i (the rest of its p row is
// set to 0), and the P · V micro-kernel calls stop at the last key their
// rows can see. Tasks are ordered last query block first, so the longest
// causal tasks start first.
#include "flash_attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <new>

namespace simdformer {

namespace {

constexpr size_t kTargetQueryRows = 64;
constexpr size_t kTargetKeyColumns = 128;
constexpr std::align_val_t kAlignment{64};

size_t round_up(size_t x, size_t multiple) { return (x + multiple - 1) / multiple * multiple; }

// Tile sizes and the float offsets of each buffer in a thread's scratch
// (each 64-byte aligned).
struct Tiles {
  size_t query_rows = 0, key_columns = 0;                            // Br, Bc
  size_t q_packed = 0, k_packed = 0, scores = 0, p_packed = 0, v_packed = 0, acc = 0, row_max = 0, row_sum = 0;
  size_t total = 0;                                                  // floats
};

Tiles plan_tiles(const GemmConfig& config, const AttentionProblem& p) {
  Tiles t;
  t.query_rows = round_up(kTargetQueryRows, config.mr);
  t.key_columns = round_up(kTargetKeyColumns, config.nr);
  size_t offset = 0;
  auto take = [&](size_t floats) {
    const size_t at = offset;
    offset += round_up(std::max<size_t>(floats, 1), 16);
    return at;
  };
  t.q_packed = take(t.query_rows * p.head_dim);                            // [Br / mr][D][mr]
  t.k_packed = take(p.head_dim * t.key_columns);                           // [Bc / nr][D][nr]
  t.scores = take(t.query_rows * t.key_columns);                           // [Br][Bc], then p
  t.p_packed = take(t.query_rows * t.key_columns);                         // [Br / mr][Bc][mr]
  t.v_packed = take(t.key_columns * round_up(p.v_head_dim, config.nr));    // [Dv / nr][Bc][nr]
  t.acc = take(t.query_rows * p.v_head_dim);                               // [Br][Dv]
  t.row_max = take(t.query_rows);
  t.row_sum = take(t.query_rows);
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

// One task: rows [q0, q0 + Br) of head h of batch entry n.
void attend_query_block(const KernelTable& kernels, const AttentionProblem& p, const Tiles& t, size_t n, size_t h,
                        size_t q0, float* scratch) {
  const GemmConfig& gemm = kernels.gemm;
  const size_t mr = gemm.mr, nr = gemm.nr, D = p.head_dim, Dv = p.v_head_dim, L = p.tgt_len, S = p.src_len;
  const size_t Bc = t.key_columns, rows = std::min(t.query_rows, L - q0);
  float* const q_packed = scratch + t.q_packed;
  float* const k_packed = scratch + t.k_packed;
  float* const scores = scratch + t.scores;
  float* const p_packed = scratch + t.p_packed;
  float* const v_packed = scratch + t.v_packed;
  float* const acc = scratch + t.acc;
  float* const row_max = scratch + t.row_max;
  float* const row_sum = scratch + t.row_sum;

  const ptrdiff_t q_stride = static_cast<ptrdiff_t>(p.q.seq_stride), k_stride = static_cast<ptrdiff_t>(p.k.seq_stride),
                  v_stride = static_cast<ptrdiff_t>(p.v.seq_stride);
  const float* q = p.q.data + n * p.q.batch_stride + q0 * p.q.seq_stride + h * D;  // Q block (r, d)
  const float* k = p.k.data + n * p.k.batch_stride + h * D;                         // K (j, d)
  const float* v = p.v.data + n * p.v.batch_stride + h * Dv;                        // V (j, d)
  const float* attn_mask = p.attn_mask;                                             // row i at + i * S
  if (attn_mask != nullptr && p.attn_mask_per_head) attn_mask += (n * p.heads + h) * L * S;
  const float* padding = p.key_padding_mask != nullptr ? p.key_padding_mask + n * S : nullptr;

  // Q block as A panels: A(r, d) = Q(q0 + r, d).
  for (size_t ir = 0; ir < rows; ir += mr) {
    gemm.pack_a(D, std::min(mr, rows - ir), q + static_cast<ptrdiff_t>(ir) * q_stride, q_stride, 1, q_packed + ir * D);
  }
  std::fill(row_max, row_max + rows, -INFINITY);
  std::fill(row_sum, row_sum + rows, 0.0f);

  // Causal: the block's last row sees keys up to q0 + rows - 1.
  const size_t key_end = p.causal ? std::min(S, q0 + rows) : S;
  for (size_t key0 = 0; key0 < key_end; key0 += Bc) {
    const size_t kt = std::min(Bc, key_end - key0);
    const bool first = key0 == 0;
    // Keys of the tile visible to the rows [q0 + ir, q0 + ir + mr_valid) of a
    // micro-tile: all kt, or under causal up to the micro-tile's last row.
    auto visible_keys = [&](size_t ir, size_t mr_valid) -> size_t {
      if (!p.causal) return kt;
      const size_t last_row = q0 + ir + mr_valid - 1;
      return last_row < key0 ? 0 : std::min(kt, last_row + 1 - key0);
    };

    // K tile as B panels: B(d, j) = K(key0 + j, d).
    for (size_t j0 = 0; j0 < kt; j0 += nr) {
      gemm.pack_b(D, std::min(nr, kt - j0), k + static_cast<ptrdiff_t>(key0 + j0) * k_stride, 1, k_stride,
                  k_packed + j0 * D);
    }
    // scores = Q_block · K_tileᵀ, row stride Bc; micro-tiles no row can see are skipped.
    for (size_t j0 = 0; j0 < kt; j0 += nr) {
      for (size_t ir = 0; ir < rows; ir += mr) {
        const size_t mr_valid = std::min(mr, rows - ir);
        if (visible_keys(ir, mr_valid) <= j0) continue;
        gemm.ukernel(D, q_packed + ir * D, k_packed + j0 * D, scores + ir * Bc + j0, Bc, mr_valid,
                     std::min(nr, kt - j0), false, nullptr);
      }
    }
    // Online softmax, row by row: scores become p; the accumulator follows the max.
    for (size_t r = 0; r < rows; ++r) {
      float* row = scores + r * Bc;
      const size_t keys = visible_keys(r, 1);
      float alpha = 1.0f;
      if (keys > 0) {
        alpha = kernels.online_softmax_step(keys, row, p.scale,
                                            attn_mask != nullptr ? attn_mask + (q0 + r) * S + key0 : nullptr,
                                            padding != nullptr ? padding + key0 : nullptr, &row_max[r], &row_sum[r]);
      }
      std::fill(row + keys, row + kt, 0.0f);
      if (!first && alpha != 1.0f) {
        float* out_row = acc + r * Dv;
        for (size_t d = 0; d < Dv; ++d) out_row[d] *= alpha;
      }
    }
    // P as A panels: A(r, j) = p[r][j]; V tile as B panels: B(j, d) = V(key0 + j, d).
    for (size_t ir = 0; ir < rows; ir += mr) {
      gemm.pack_a(kt, std::min(mr, rows - ir), scores + ir * Bc, static_cast<ptrdiff_t>(Bc), 1, p_packed + ir * kt);
    }
    for (size_t j0 = 0; j0 < Dv; j0 += nr) {
      gemm.pack_b(kt, std::min(nr, Dv - j0), v + static_cast<ptrdiff_t>(key0) * v_stride + j0, v_stride, 1,
                  v_packed + j0 * kt);
    }
    // acc (+)= P · V_tile. The first tile writes acc (never read before);
    // under causal a micro-tile's k loop stops at the last key its rows see
    // (p is 0 beyond), and one that sees none adds nothing.
    for (size_t j0 = 0; j0 < Dv; j0 += nr) {
      for (size_t ir = 0; ir < rows; ir += mr) {
        const size_t mr_valid = std::min(mr, rows - ir);
        const size_t keys = visible_keys(ir, mr_valid);
        if (keys == 0) continue;  // never on the first tile: row q0 sees key 0
        gemm.ukernel(keys, p_packed + ir * kt, v_packed + j0 * kt, acc + ir * Dv + j0, Dv, mr_valid,
                     std::min(nr, Dv - j0), !first, nullptr);
      }
    }
  }

  // out = acc / l; a row whose keys were all masked has l = 0 and gets zeros.
  for (size_t r = 0; r < rows; ++r) {
    const float inverse = row_sum[r] == 0.0f ? 0.0f : 1.0f / row_sum[r];
    const float* from = acc + r * Dv;
    float* to = p.out + n * p.out_batch_stride + (q0 + r) * p.out_seq_stride + h * Dv;
    for (size_t d = 0; d < Dv; ++d) to[d] = from[d] * inverse;
  }
}

}  // namespace

void flash_attention(const KernelTable& kernels, const AttentionProblem& problem, ThreadPool& pool) {
  if (problem.batch == 0 || problem.heads == 0 || problem.tgt_len == 0) return;
  const Tiles tiles = plan_tiles(kernels.gemm, problem);
  const size_t heads = problem.batch * problem.heads;
  const size_t blocks = (problem.tgt_len + tiles.query_rows - 1) / tiles.query_rows;
  // Tasks must not throw, so an allocation failure is carried out and rethrown.
  std::atomic<bool> out_of_memory{false};
  pool.parallel_for(heads * blocks, [&](size_t task, size_t) {
    try {
      float* scratch = flash_scratch.reserve(tiles.total);
      // Last query block first: under causal it has the most keys to visit.
      const size_t block = blocks - 1 - task / heads, head = task % heads;
      attend_query_block(kernels, problem, tiles, head / problem.heads, head % problem.heads,
                         block * tiles.query_rows, scratch);
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
