#include "pack_b_batch.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>

#include "executor.h"
#include "sizes.h"

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace simdformer {

namespace {

// Each operand starts on a cache line (the tile and vector loads are 64 bytes).
constexpr size_t kSliceAlignment = 64;

size_t system_page_bytes() {
#if defined(__linux__)
  const long page = sysconf(_SC_PAGESIZE);
  return page > 0 ? static_cast<size_t>(page) : 4096;
#else
  return 4096;
#endif
}

// Faults the pages of [data, data + bytes) in, writable (data page aligned);
// false if the system cannot provide the memory.
bool populate_range(char* data, size_t bytes) {
#if defined(__linux__)
#if defined(MADV_POPULATE_WRITE)
  // Linux 5.14+: one call, and ENOMEM rather than the OOM killer when memory is short.
  if (madvise(data, bytes, MADV_POPULATE_WRITE) == 0) return true;
  if (errno != EINVAL) return false;
#endif
  // Older kernels: touch each page (writing the zero it holds already).
  const size_t page = system_page_bytes();
  for (size_t offset = 0; offset < bytes; offset += page) reinterpret_cast<volatile char*>(data)[offset] = 0;
#else
  static_cast<void>(data);
  static_cast<void>(bytes);
#endif
  return true;
}

// Gives the pages of [data, data + bytes) back to the system (they would
// read as zeros if touched again); false where that is not possible.
bool return_pages(char* data, size_t bytes) {
#if defined(__linux__)
  return madvise(data, bytes, MADV_DONTNEED) == 0;
#else
  static_cast<void>(data);
  static_cast<void>(bytes);
  return false;
#endif
}

}  // namespace

// One mapping holding the packed operands of a batch back to back, counted
// in native_bytes() for the memory it holds. Slices (RegionSlice) register
// the bytes they use; when the last slice using a 2 MiB page goes, the page
// is given back (unless no slice is left: the whole region goes then).
class PackedRegion {
 public:
  // Maps `bytes` (rounded up to whole system pages), 2 MiB aligned. Throws std::bad_alloc.
  explicit PackedRegion(size_t bytes) {
    size_ = checked_round_up(std::max<size_t>(bytes, 1), system_page_bytes());
    users_.assign((size_ + kHugePageBytes - 1) / kHugePageBytes, 0);
#if defined(__linux__)
    // A huge page more than needed, trimmed at both ends: the region starts
    // on a 2 MiB boundary, so each of its whole 2 MiB pages can be a
    // transparent huge page (THP "madvise" mode gives them only to advised
    // memory). A shorter tail has ordinary pages: nothing is resident beyond
    // the last operand's page.
    const size_t span = checked_add(size_, kHugePageBytes);
    void* mapped = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapped == MAP_FAILED) throw std::bad_alloc();
    const uintptr_t begin = reinterpret_cast<uintptr_t>(mapped), end = begin + span;
    const uintptr_t aligned = (begin + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
    if (aligned > begin) munmap(mapped, aligned - begin);
    if (end > aligned + size_) munmap(reinterpret_cast<void*>(aligned + size_), end - (aligned + size_));
    data_ = reinterpret_cast<char*>(aligned);
    madvise(data_, size_, MADV_HUGEPAGE);  // may fail (a kernel without THP): ordinary pages then
#else
    data_ = static_cast<char*>(::operator new(size_, std::align_val_t{kHugePageBytes}, std::nothrow));
    if (data_ == nullptr) throw std::bad_alloc();
#endif
    counted_ = size_;
    add_native_bytes(static_cast<int64_t>(counted_));
  }

  ~PackedRegion() {
#if defined(__linux__)
    munmap(data_, size_);
#else
    ::operator delete(data_, std::align_val_t{kHugePageBytes});
#endif
    add_native_bytes(-static_cast<int64_t>(counted_));
  }

  PackedRegion(const PackedRegion&) = delete;
  PackedRegion& operator=(const PackedRegion&) = delete;

  char* data() const { return data_; }

  // Faults in the pages of [offset, offset + bytes): false if the memory
  // cannot be had.
  bool populate(size_t offset, size_t bytes) {
    const size_t page = system_page_bytes();
    const size_t begin = offset / page * page, end = std::min(size_, checked_round_up(offset + bytes, page));
    return begin >= end || populate_range(data_ + begin, end - begin);
  }

  // A slice [offset, offset + bytes) starts (add_user) and stops (remove_user) using its pages.
  void add_user(size_t offset, size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++live_slices_;
    for (size_t page = first_page(offset); page < end_page(offset, bytes); ++page) ++users_[page];
  }

  void remove_user(size_t offset, size_t bytes) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    --live_slices_;
    for (size_t page = first_page(offset); page < end_page(offset, bytes); ++page) {
      if (--users_[page] != 0 || live_slices_ == 0) continue;
      const size_t begin = page * kHugePageBytes, length = std::min(size_ - begin, kHugePageBytes);
      if (return_pages(data_ + begin, length)) {
        counted_ -= length;
        add_native_bytes(-static_cast<int64_t>(length));
      }
    }
  }

 private:
  static size_t first_page(size_t offset) { return offset / kHugePageBytes; }
  static size_t end_page(size_t offset, size_t bytes) {
    return bytes == 0 ? first_page(offset) : (offset + bytes - 1) / kHugePageBytes + 1;
  }

  char* data_ = nullptr;
  size_t size_ = 0;     // bytes mapped
  size_t counted_ = 0;  // bytes counted in native_bytes(): size_ less the pages given back
  std::mutex mutex_;
  std::vector<uint32_t> users_;  // live slices using each 2 MiB page
  size_t live_slices_ = 0;
};

namespace {

// One PackedB's share of the region: keeps the region alive and, when it
// goes, lets the region give back the pages only it used.
class RegionSlice {
 public:
  RegionSlice(std::shared_ptr<PackedRegion> region, size_t offset, size_t bytes)
      : region_(std::move(region)), offset_(offset), bytes_(bytes) {
    region_->add_user(offset_, bytes_);
  }
  ~RegionSlice() { region_->remove_user(offset_, bytes_); }
  RegionSlice(const RegionSlice&) = delete;
  RegionSlice& operator=(const RegionSlice&) = delete;

 private:
  std::shared_ptr<PackedRegion> region_;
  size_t offset_, bytes_;
};

}  // namespace

PackBatch::PackBatch(const KernelTable& kernels, std::vector<PackBRequest> requests)
    : kernels_(kernels), requests_(std::move(requests)), offsets_(requests_.size()), bytes_(requests_.size()),
      pieces_left_(new std::atomic<size_t>[requests_.size()]), started_(new std::atomic<bool>[requests_.size()]) {
  // Each operand's place in the region (cache-line aligned) and its pieces, in memory order.
  std::vector<PieceTask> pieces;
  size_t total = 0;
  for (size_t i = 0; i < requests_.size(); ++i) {
    const PackedBLayout layout = packed_b_layout(kernels_, requests_[i].k, requests_[i].n);
    if (layout.floats > SIZE_MAX / sizeof(float)) throw std::bad_alloc();
    offsets_[i] = total;
    bytes_[i] = layout.floats * sizeof(float);
    total = checked_add(total, checked_round_up(bytes_[i], kSliceAlignment));
    pieces_left_[i].store(layout.pieces, std::memory_order_relaxed);
    started_[i].store(false, std::memory_order_relaxed);
    for (size_t piece = 0; piece < layout.pieces; ++piece) pieces.push_back({i, piece});
  }
  region_ = std::make_shared<PackedRegion>(total);
  // The first half of the pieces (by address) alternating with the second:
  // the threads take tasks in this order, so two threads work in different
  // halves of the region and never fault in the same huge page at once
  // (which would have both zero it, one in vain).
  tasks_.resize(pieces.size());
  const size_t half = (pieces.size() + 1) / 2;
  for (size_t i = 0; i < pieces.size(); ++i) tasks_[i] = pieces[i % 2 == 0 ? i / 2 : half + i / 2];
}

PackBatch::~PackBatch() = default;

bool PackBatch::pack(ThreadPool& pool, const std::function<bool()>& stop,
                     const std::function<void(const PackBRequest&)>& packed_one) {
  // The first piece of an operand to start faults in the operand's memory
  // (the kernel zeroes it, at memory speed), then packs: one thread zeroing
  // while the other packs keeps both memory and arithmetic busy. Measured on
  // a 2-core Sapphire Rapids-class VM: as fast as faulting in the whole
  // region first on both threads (enc6, 113 MB packed: ~20 ms either way),
  // 5 % faster for a 19 MB batch, and each page is zeroed by one thread.
  //
  // Without `stop`, one region packs everything. With it, a round is about 4
  // pieces per thread (~1 ms): short enough to stop soon when asked, long
  // enough that waking the workers for it (40-60 us on a VM) costs little.
  const size_t round = stop ? 4 * pool.num_threads() : tasks_.size();
  while (next_task_ < tasks_.size() && !out_of_memory()) {
    const size_t first = next_task_, count = std::min(round, tasks_.size() - first);
    pool.parallel_for(count, [&](size_t index, size_t) {
      const PieceTask task = tasks_[first + index];
      if (out_of_memory()) return;
      // An operand whose every PackedB is gone (only this batch holds its
      // Pending) is not packed: its region pages were given back, and would
      // come back uncounted.
      if (!pending_.empty() && pending_[task.operand].use_count() == 1) return;
      if (!started_[task.operand].exchange(true, std::memory_order_relaxed) &&
          !region_->populate(offsets_[task.operand], bytes_[task.operand])) {
        out_of_memory_.store(true, std::memory_order_relaxed);
        return;
      }
      const PackBRequest& request = requests_[task.operand];
      float* data = reinterpret_cast<float*>(region_->data() + offsets_[task.operand]);
      pack_b_piece(kernels_, request.k, request.n, request.b, task.piece, data);
      if (pieces_left_[task.operand].fetch_sub(1, std::memory_order_acq_rel) == 1) {
        if (!pending_.empty()) pending_[task.operand]->ready.store(true, std::memory_order_release);
        if (packed_one) packed_one(request);
      }
    });
    next_task_ = first + count;
    if (next_task_ < tasks_.size() && stop && stop()) return false;
  }
  return true;
}

std::vector<PackedB> PackBatch::views(bool pending) {
  std::vector<PackedB> packed;
  packed.reserve(requests_.size());
  if (pending) {
    pending_.resize(requests_.size());
    for (size_t i = 0; i < requests_.size(); ++i) {
      pending_[i] = std::make_shared<PackedB::Pending>();
      pending_[i]->source = requests_[i].b;
      pending_[i]->source_owner = requests_[i].owner;
    }
  }
  for (size_t i = 0; i < requests_.size(); ++i) {
    const float* data = reinterpret_cast<const float*>(region_->data() + offsets_[i]);
    packed.push_back(packed_b_view(kernels_, requests_[i].k, requests_[i].n, data,
                                   std::make_shared<const RegionSlice>(region_, offsets_[i], bytes_[i]),
                                   pending ? pending_[i] : nullptr));
  }
  return packed;
}

std::vector<PackedB> pack_b_batch(const KernelTable& kernels, const std::vector<PackBRequest>& requests,
                                  ThreadPool& pool, const std::function<void(const PackBRequest&)>& packed_one) {
  if (requests.empty()) return {};
  PackBatch batch(kernels, requests);
  batch.pack(pool, {}, packed_one);
  if (batch.out_of_memory()) throw std::bad_alloc();
  return batch.views(false);
}

BackgroundPackBatch pack_b_batch_in_background(const KernelTable& kernels, std::vector<PackBRequest> requests) {
  BackgroundPackBatch result;
  result.batch = std::make_shared<PackBatch>(kernels, std::move(requests));
  result.packed = result.batch->views(true);
  return result;
}

}  // namespace simdformer
