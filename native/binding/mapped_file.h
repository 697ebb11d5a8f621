// File mappings for loadSafetensors (mapped_file.cpp): mapFile() maps a file
// copy-on-write; FilePageRelease lets go of mapped weights' pages once they
// have been packed.
#pragma once

#include <cstddef>
#include <memory>

namespace simdformer {

// A share of the mapFile() mapping that holds [data, data + bytes) whole, or
// nullptr if no live mapping does: while it is held the memory stays mapped,
// whatever becomes of the ArrayBuffer (collected, or detached by a transfer),
// so other threads may read it (a background pack, core/pack_b_batch.h).
std::shared_ptr<const void> mapped_file_owner(const void* data, size_t bytes);

// release(data, bytes) drops from this process's resident memory the whole
// pages of [data, data + bytes) that hold a file's own contents, unmodified
// (Linux /proc/self/pagemap: present and file-backed): a later read maps them
// again from the page cache, with the same values. Every other page is left
// alone: anonymous memory, and the private copies of mapped pages that
// JavaScript has written to, whose values exist nowhere else. So no value
// ever changes; only where it is kept, provided nothing writes to the range
// meanwhile (a write between the pagemap read and the release would be
// lost): the caller holds the JS thread, which owns the tensors' memory, in
// the call. A no-op where pagemap cannot be read (not Linux, a sandbox).
// One object serves a batch of weights through one pagemap descriptor;
// release() is thread-safe and never fails.
class FilePageRelease {
 public:
  FilePageRelease() noexcept;
  ~FilePageRelease();
  FilePageRelease(const FilePageRelease&) = delete;
  FilePageRelease& operator=(const FilePageRelease&) = delete;

  void release(const void* data, size_t bytes) const noexcept;

 private:
  int pagemap_ = -1;
};

}  // namespace simdformer
