#include "pack_b_batch.h"

#include <algorithm>
#include <exception>
#include <mutex>
#include <numeric>

namespace simdformer {

std::vector<PackedB> pack_b_batch(const KernelTable& kernels, const std::vector<PackBRequest>& requests,
                                  ThreadPool& pool, void (*packed_one)(const PackBRequest&)) {
  std::vector<PackedB> packed(requests.size());
  // Largest first: the pool hands tasks out in order, so the small matrices
  // fill in at the end and the threads finish together (LPT scheduling).
  std::vector<size_t> order(requests.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return requests[a].k * requests[a].n > requests[b].k * requests[b].n;
  });
  // Tasks must not throw: the first failure (std::bad_alloc) is kept and
  // rethrown on the calling thread once every task has ended.
  std::mutex failure_mutex;
  std::exception_ptr failure;
  pool.parallel_for(order.size(), [&](size_t task, size_t) {
    const PackBRequest& request = requests[order[task]];
    try {
      packed[order[task]] = pack_b(kernels, request.k, request.n, request.b);
      if (packed_one != nullptr) packed_one(request);
    } catch (...) {
      std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
    }
  });
  if (failure) std::rethrow_exception(failure);
  return packed;
}

}  // namespace simdformer
