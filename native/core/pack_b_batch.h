// Packs several B operands (a model's Linear weights, at load) at once on the
// thread pool, into one region of memory: mapped once, aligned to 2 MiB and
// advised as transparent huge pages, so every weight sits on huge pages,
// small ones included, and the packing pays a few dozen page faults instead
// of thousands. Each operand is packed in pieces (a kc block by a group of
// columns, about 1 MiB each: gemm.h packed_b_layout) handed out to the
// threads one at a time, so they finish together whatever the operands'
// sizes; the first piece of an operand to start faults its memory in.
//
// The PackedBs share the region: it lives until the last of them is
// destroyed, and as each one goes, the 2 MiB pages that only it used are
// given back to the system. The region counts itself in native_bytes()
// (executor.h) for as long as it holds them; its PackedBs
// (shares_storage()) do not count their slices again.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "gemm.h"
#include "threadpool.h"

namespace simdformer {

// One B operand: [k, n], element (p, j) at b.data + p * b.row_stride + j * b.col_stride.
struct PackBRequest {
  size_t k = 0, n = 0;
  StridedMatrix b{nullptr, 0, 0};
  // Keeps b's memory alive while a background batch reads it (and its
  // PackedB, which reads it until packed); unused by pack_b_batch.
  std::shared_ptr<const void> owner;
};

// Bytes from request.b.data to its last element, inclusive.
inline size_t source_bytes(const PackBRequest& request) {
  const size_t span = (request.k - 1) * static_cast<size_t>(request.b.row_stride) +
                      (request.n - 1) * static_cast<size_t>(request.b.col_stride) + 1;
  return span * sizeof(float);
}

class PackBatch;
class PackedRegion;  // pack_b_batch.cpp: the mapping the operands are packed into

// result[i] = requests[i] packed for `kernels` (the layout pack_b writes),
// computed on `pool`. Once every piece of an operand is packed, `packed(request)`
// (if given; it must not throw) is called on the thread that packed the last
// piece: the caller's chance to let go of the source while other operands
// are still being packed. Throws std::bad_alloc, with nothing left
// allocated, if the region cannot be mapped or its pages faulted in
// (MADV_POPULATE_WRITE reports what would otherwise be the OOM killer), or
// its size would not fit in size_t.
std::vector<PackedB> pack_b_batch(const KernelTable& kernels, const std::vector<PackBRequest>& requests,
                                  ThreadPool& pool, const std::function<void(const PackBRequest&)>& packed = {});

// The same batch packed later, in turns (a model loaded from a file is ready
// to run before its weights are packed): maps the region (nothing is faulted
// in yet) and returns the PackedBs, not ready() until `batch` has packed
// them; meanwhile gemm() packs each per call from its request's b, which
// request.owner keeps alive. Throws std::bad_alloc as pack_b_batch.
struct BackgroundPackBatch {
  std::vector<PackedB> packed;
  std::shared_ptr<PackBatch> batch;
};
BackgroundPackBatch pack_b_batch_in_background(const KernelTable& kernels, std::vector<PackBRequest> requests);

// The pieces of a batch's operands (~1 MiB each), packed in parallel regions
// on the pool, by one caller at a time.
class PackBatch {
 public:
  PackBatch(const KernelTable& kernels, std::vector<PackBRequest> requests);
  ~PackBatch();
  PackBatch(const PackBatch&) = delete;
  PackBatch& operator=(const PackBatch&) = delete;

  // Packs on `pool` until every piece is packed (returns true), or, given
  // stop, in rounds until stop(), asked after each, says to stop (returns
  // false: call again to go on). packed_one(request) as in pack_b_batch.
  // Once a piece's memory cannot be had, packs nothing more and returns true
  // with out_of_memory() set: operands not packed by then stay !ready().
  bool pack(ThreadPool& pool, const std::function<bool()>& stop,
            const std::function<void(const PackBRequest&)>& packed_one = {});
  bool out_of_memory() const { return out_of_memory_.load(std::memory_order_relaxed); }
  const std::vector<PackBRequest>& requests() const { return requests_; }
  // PackedBs over the operands' places in the region; with `pending`, each
  // is ready() once packed (by pack()), else they must have been packed.
  std::vector<PackedB> views(bool pending);

 private:
  struct PieceTask {
    size_t operand, piece;
  };
  const KernelTable& kernels_;
  std::vector<PackBRequest> requests_;
  std::vector<size_t> offsets_, bytes_;
  std::vector<PieceTask> tasks_;  // in the order the threads take them
  size_t next_task_ = 0;          // first task not packed yet (pack() is called by one thread at a time)
  std::unique_ptr<std::atomic<size_t>[]> pieces_left_;
  std::unique_ptr<std::atomic<bool>[]> started_;
  std::vector<std::shared_ptr<PackedB::Pending>> pending_;  // per operand, made by views(true)
  std::shared_ptr<PackedRegion> region_;
  std::atomic<bool> out_of_memory_{false};
};

}  // namespace simdformer
