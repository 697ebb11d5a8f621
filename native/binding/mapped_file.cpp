// mapFile(fd, length): a file's bytes as an ArrayBuffer without reading them,
// for loadSafetensors. The mapping is private and writable (MAP_PRIVATE,
// PROT_READ | PROT_WRITE): pages are shared with the page cache until
// JavaScript writes to one, which then gets a private copy (copy-on-write),
// so tensors viewing the buffer can be modified and the file never is.
// Unmapped once the ArrayBuffer's finalizer has run (garbage collection or
// the end of the environment, worker threads included) and no native owner
// (mapped_file_owner) is left.
//
// Returns null, and the caller reads the file instead, wherever mapping is
// not possible: no POSIX mmap in this build (Windows), an fd that is not a
// regular file of exactly `length` bytes, mmap failing, or a runtime that
// forbids external ArrayBuffers (napi_no_external_buffers_allowed, e.g.
// Electron's V8 sandbox).
#include "mapped_file.h"

#include <napi.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "args.h"
#include "errors.h"
#include "ops.h"

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <sys/stat.h>
#define SIMDFORMER_HAVE_MMAP 1
#else
#define SIMDFORMER_HAVE_MMAP 0
#endif
#if defined(__linux__)
#include <fcntl.h>
#include <unistd.h>
#endif

namespace simdformer {

namespace {

#if SIMDFORMER_HAVE_MMAP
// One mapping, registered by address for as long as it is mapped. The
// registry is native and process-wide (mappings made by any environment), so
// it holds no JavaScript handle.
class FileMapping {
 public:
  FileMapping(void* data, size_t length) : data_(data), length_(length) {
    std::lock_guard<std::mutex> lock(registry_mutex());
    registry()[reinterpret_cast<uintptr_t>(data_)] = this;
  }
  ~FileMapping() {
    {
      std::lock_guard<std::mutex> lock(registry_mutex());
      registry().erase(reinterpret_cast<uintptr_t>(data_));
    }
    munmap(data_, length_);
  }
  FileMapping(const FileMapping&) = delete;
  FileMapping& operator=(const FileMapping&) = delete;

  // The live mapping holding [data, data + bytes), as a share.
  static std::shared_ptr<const void> owner(const void* data, size_t bytes) {
    const uintptr_t begin = reinterpret_cast<uintptr_t>(data);
    std::lock_guard<std::mutex> lock(registry_mutex());
    auto next = registry().upper_bound(begin);
    if (next == registry().begin()) return nullptr;
    FileMapping* mapping = std::prev(next)->second;
    const uintptr_t start = reinterpret_cast<uintptr_t>(mapping->data_);
    if (bytes > mapping->length_ || begin - start > mapping->length_ - bytes) return nullptr;
    // A mapping whose last share is going (its destructor waits for the
    // lock to unregister it) must not be handed out again.
    return mapping->self_.lock();
  }

  // Takes ownership of the mapping and returns the first share (to delete),
  // or nullptr, the range unmapped (once), if the bookkeeping's memory
  // cannot be had.
  static std::shared_ptr<FileMapping>* adopt(void* data, size_t length) noexcept {
    std::unique_ptr<FileMapping> owned;
    try {
      owned.reset(new FileMapping(data, length));
    } catch (...) {
      munmap(data, length);  // not constructed, so not registered either
      return nullptr;
    }
    try {
      // Should either allocation throw, `owned` still owns the mapping and unmaps it.
      auto* share = new std::shared_ptr<FileMapping>(std::move(owned));
      std::lock_guard<std::mutex> lock(registry_mutex());
      (*share)->self_ = *share;
      return share;
    } catch (...) {
      return nullptr;
    }
  }

 private:
  static std::mutex& registry_mutex() {
    static std::mutex* mutex = new std::mutex();
    return *mutex;
  }
  static std::map<uintptr_t, FileMapping*>& registry() {
    static auto* mappings = new std::map<uintptr_t, FileMapping*>();
    return *mappings;
  }

  void* data_;
  size_t length_;
  std::weak_ptr<FileMapping> self_;  // guarded by registry_mutex()
};

// napi_finalize for the ArrayBuffer: the hint is the ArrayBuffer's share of the mapping.
void release_share(napi_env, void*, void* share) { delete static_cast<std::shared_ptr<FileMapping>*>(share); }

Napi::Value map(Napi::Env env, int fd, size_t length) {
  struct stat status;
  if (fstat(fd, &status) != 0 || !S_ISREG(status.st_mode) || status.st_size < 0 ||
      static_cast<unsigned long long>(status.st_size) != length) {
    return env.Null();
  }
  void* data = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  if (data == MAP_FAILED) return env.Null();
  std::shared_ptr<FileMapping>* share = FileMapping::adopt(data, length);
  if (share == nullptr) return env.Null();
  napi_value buffer;
  const napi_status created = napi_create_external_arraybuffer(env, data, length, release_share, share, &buffer);
  if (created == napi_ok) return Napi::Value(env, buffer);
  if (created == napi_no_external_buffers_allowed) {
    // Refused before anything took ownership: the share is still ours.
    delete share;
  }
  // Any other failure may already have run the finalizer (Node frees the data
  // of a Buffer it could not create), so the share is left alone rather
  // than released twice. The caller keeps `length` within Node's buffer limit,
  // so this is not expected.
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
  }
  return env.Null();
}
#endif

}  // namespace

FilePageRelease::FilePageRelease() noexcept {
#if defined(__linux__)
  pagemap_ = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
#endif
}

FilePageRelease::~FilePageRelease() {
#if defined(__linux__)
  if (pagemap_ >= 0) close(pagemap_);
#endif
}

void FilePageRelease::release(const void* data, size_t bytes) const noexcept {
#if defined(__linux__)
  if (pagemap_ < 0) return;
  static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes) / page * page;
  if (begin >= end) return;
  // One 64-bit entry per page (Documentation/admin-guide/mm/pagemap.rst):
  // bit 63 present, bit 61 a file page (or shared anonymous memory, which
  // MADV_DONTNEED also leaves intact). A written page of a private mapping is
  // anonymous, so it never qualifies.
  constexpr uint64_t kPresentFile = (uint64_t{1} << 63) | (uint64_t{1} << 61);
  constexpr size_t kChunk = 512;
  uint64_t entries[kChunk];
  uintptr_t run = 0;  // first page of the current run of releasable pages, 0 for none
  uintptr_t address = begin;
  while (address < end) {
    const size_t count = std::min<size_t>(kChunk, (end - address) / page);
    const ssize_t read_bytes = pread(pagemap_, entries, count * sizeof(uint64_t),
                                     static_cast<off_t>(address / page * sizeof(uint64_t)));
    if (read_bytes != static_cast<ssize_t>(count * sizeof(uint64_t))) break;
    for (size_t i = 0; i < count; ++i, address += page) {
      const bool releasable = (entries[i] & kPresentFile) == kPresentFile;
      if (releasable && run == 0) run = address;
      if (!releasable && run != 0) {
        madvise(reinterpret_cast<void*>(run), address - run, MADV_DONTNEED);
        run = 0;
      }
    }
  }
  if (run != 0) madvise(reinterpret_cast<void*>(run), address - run, MADV_DONTNEED);
#else
  static_cast<void>(data);
  static_cast<void>(bytes);
#endif
}

std::shared_ptr<const void> mapped_file_owner(const void* data, size_t bytes) {
#if SIMDFORMER_HAVE_MMAP
  return FileMapping::owner(data, bytes);
#else
  static_cast<void>(data);
  static_cast<void>(bytes);
  return nullptr;
#endif
}

Napi::Value map_file_method(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const size_t fd = to_size(env, "fd", info[0], 0, INT_MAX);
    const size_t length = to_size(env, "length", info[1], 1);
#if SIMDFORMER_HAVE_MMAP
    return map(env, static_cast<int>(fd), length);
#else
    static_cast<void>(fd);
    static_cast<void>(length);
    return env.Null();
#endif
  });
}

}  // namespace simdformer
