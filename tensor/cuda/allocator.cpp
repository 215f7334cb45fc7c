// The caching CUDA allocator.
//
// Sizes are rounded up (to 512 bytes below 1 MiB, to 2 MiB above) so that the blocks of one
// training step recur exactly in the next and come straight from the cache. A freed block goes
// into a size-ordered free list; an allocation takes the smallest cached block that is big
// enough and wastes at most an eighth of it. When cudaMalloc fails, every cached block is
// returned to the driver and the allocation is tried once more before OutOfMemory is thrown.
#include <algorithm>
#include <map>
#include <mutex>
#include <unordered_map>

#include "tensor/allocator.h"
#include "tensor/cuda/check_cuda.h"
#include "tensor/cuda/context.h"

namespace leuko::cuda {
namespace {

constexpr size_t kSmall = 1 << 20;      // below this, round to 512 bytes
constexpr size_t kSmallRound = 512;
constexpr size_t kLargeRound = 2 << 20;  // at and above it, round to 2 MiB

size_t round_size(size_t bytes) {
  if (bytes == 0) bytes = 1;
  size_t r = bytes < kSmall ? kSmallRound : kLargeRound;
  return (bytes + r - 1) / r * r;
}

struct CachingAllocator {
  std::mutex mutex;
  std::multimap<size_t, void*> free_blocks;    // size -> block, unused
  std::unordered_map<void*, size_t> live;      // block -> size, handed out
  MemoryStats stats;

  void release_cache() {  // caller holds the mutex
    if (free_blocks.empty()) return;
    // The blocks may still be read by queued kernels: let them finish before freeing.
    LEUKO_CUDA_CHECK(cudaStreamSynchronize(stream()));
    for (auto& [size, ptr] : free_blocks) {
      LEUKO_CUDA_CHECK(cudaFree(ptr));
      stats.reserved -= size;
    }
    free_blocks.clear();
  }
};

CachingAllocator& allocator() {
  static CachingAllocator* a = new CachingAllocator();  // never destroyed: tensors may outlive statics
  return *a;
}

std::string mib(size_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

}  // namespace

void* caching_alloc(size_t bytes) {
  ensure_available();
  auto& a = allocator();
  size_t size = round_size(bytes);
  std::lock_guard<std::mutex> lock(a.mutex);
  a.stats.allocations++;
  void* ptr = nullptr;
  auto it = a.free_blocks.lower_bound(size);
  if (it != a.free_blocks.end() && it->first <= size + size / 8) {
    size = it->first;
    ptr = it->second;
    a.free_blocks.erase(it);
    a.stats.cache_hits++;
  } else {
    cudaError_t err = cudaMalloc(&ptr, size);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear the error, give the cache back, try once more
      a.release_cache();
      err = cudaMalloc(&ptr, size);
    }
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      throw OutOfMemory("CUDA out of memory: asked for " + mib(size) + " with " + mib(a.stats.current) +
                            " in use by leuko and " + mib(free_b) + " free of " + mib(total_b),
                        size);
    }
    LEUKO_CUDA_CHECK(err);
    a.stats.reserved += size;
    a.stats.peak_reserved = std::max(a.stats.peak_reserved, a.stats.reserved);
  }
  a.live[ptr] = size;
  a.stats.current += size;
  a.stats.peak = std::max(a.stats.peak, a.stats.current);
  if (poison_allocations()) LEUKO_CUDA_CHECK(cudaMemsetAsync(ptr, 0xFF, size, stream()));
  return ptr;
}

void caching_free(void* ptr, size_t /*bytes*/) {
  auto& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  auto it = a.live.find(ptr);
  if (it == a.live.end()) return;  // not ours: never happens unless memory is corrupted
  a.stats.current -= it->second;
  a.free_blocks.emplace(it->second, ptr);
  a.live.erase(it);
}

MemoryStats caching_stats() {
  auto& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  return a.stats;
}

void caching_reset_peak() {
  auto& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  a.stats.peak = a.stats.current;
  a.stats.peak_reserved = a.stats.reserved;
}

void caching_empty() {
  auto& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  if (!a.free_blocks.empty()) a.release_cache();
}

}  // namespace leuko::cuda
