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

#include <cstddef>
#include <functional>
#include <vector>

#include "gemm.h"
#include "threadpool.h"

namespace simdformer {

// One B operand: [k, n], element (p, j) at b.data + p * b.row_stride + j * b.col_stride.
struct PackBRequest {
  size_t k = 0, n = 0;
  StridedMatrix b{nullptr, 0, 0};
};

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

}  // namespace simdformer
