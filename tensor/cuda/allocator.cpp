// The caching CUDA allocator.
//
// Sizes are rounded up (to 512 bytes below 1 MiB, to 2 MiB above) so that the blocks of one
// training step recur exactly in the next and come straight from the cache. A freed block goes
// into a size-ordered free list; an allocation takes the smallest cached block that is big
// enough and wastes at most an eighth of it. When cudaMalloc fails, every cached block is
// returned to the driver and the allocation is tried once more before OutOfMemory is thrown.
// A memory limit (set_memory_limit, or LEUKO_MEMORY_LIMIT_MIB) is treated the same way: an
// allocation that would take `reserved` past it first empties the cache, then throws.
//
// Private pools, for CUDA graphs (tensor/cuda/graph.h): a graph replays its kernels on the
// addresses they had when it was recorded, so no other tensor may be given those blocks while
// the graph lives. While a graph records, every allocation comes from its pool: blocks of their
// own, tagged with the pool, which go back to the pool's free list when freed (during the
// recording, where the graph's own later kernels reuse them as an eager step would, or after
// it) and never to anyone else. When the graph is destroyed its pool's cached blocks join the
// shared cache, and its live ones join it when freed.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <unordered_map>

#include "tensor/cuda/allocator.h"
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

// LEUKO_MEMORY_LIMIT_MIB: a limit in MiB for the whole process (unset or 0: none).
size_t limit_from_environment() {
  const char* env = std::getenv("LEUKO_MEMORY_LIMIT_MIB");
  if (env == nullptr || *env == '\0') return 0;
  char* end = nullptr;
  const unsigned long long mib = std::strtoull(env, &end, 10);
  LEUKO_CHECK(end != env && *end == '\0', "LEUKO_MEMORY_LIMIT_MIB: '", env, "' is not a number of MiB");
  return size_t(mib) << 20;
}

using FreeList = std::multimap<size_t, void*>;  // size -> block, unused

struct Block {
  size_t size = 0;
  int pool = 0;  // 0: the shared cache; otherwise a graph's private pool
};

struct CachingAllocator {
  std::mutex mutex;
  FreeList free_blocks;                        // the shared cache
  std::map<int, FreeList> pool_free;           // private pool -> its unused blocks
  std::unordered_map<void*, Block> live;       // block -> size and pool, handed out
  int pool = 0;                                // where allocations go now (0: shared)
  int next_pool = 1;
  MemoryStats stats;
  size_t limit = limit_from_environment();     // bytes of `reserved`; 0: none

  FreeList& free_list(int p) { return p == 0 ? free_blocks : pool_free[p]; }

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

// "37.5 MiB"; below a MiB in KiB ("asked for 0 MiB" says nothing).
std::string mib(size_t bytes) {
  char buf[32];
  if (bytes < (size_t(1) << 20)) std::snprintf(buf, sizeof buf, "%.1f KiB", double(bytes) / 1024.0);
  else std::snprintf(buf, sizeof buf, "%.1f MiB", double(bytes) / double(1 << 20));
  return buf;
}

}  // namespace

void* caching_alloc(size_t bytes) {
  ensure_available();
  auto& a = allocator();
  size_t size = round_size(bytes);
  std::lock_guard<std::mutex> lock(a.mutex);
  a.stats.allocations++;
  void* ptr = nullptr;
  FreeList& cache = a.free_list(a.pool);
  // While a graph records, emptying the shared cache would synchronise the stream, which
  // capture forbids: a private pool's allocation goes straight to the driver.
  const bool may_release = a.pool == 0;
  auto it = cache.lower_bound(size);
  if (it != cache.end() && it->first <= size + size / 8) {
    size = it->first;
    ptr = it->second;
    cache.erase(it);
    a.stats.cache_hits++;
  } else {
    // Over the limit: what a full card does, minus the driver call.
    const auto over_limit = [&] { return a.limit > 0 && a.stats.reserved + size > a.limit; };
    if (over_limit() && may_release) a.release_cache();
    if (over_limit()) {
      throw OutOfMemory("CUDA out of memory: asked for " + mib(size) + " with " + mib(a.stats.current) +
                            " in use by leuko, over the memory limit of " + mib(a.limit),
                        size);
    }
    cudaError_t err = cudaMalloc(&ptr, size);
    if (err == cudaErrorMemoryAllocation && may_release) {
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
  a.live[ptr] = Block{size, a.pool};
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
  a.stats.current -= it->second.size;
  a.free_list(it->second.pool).emplace(it->second.size, ptr);
  a.live.erase(it);
}

int caching_new_pool() {
  auto& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  const int p = a.next_pool++;
  a.pool_free[p];  // empty, but known: caching_use_pool checks it exists
  return p;
}

void caching_use_pool(int pool) {
  auto& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  LEUKO_CHECK(pool == 0 || a.pool_free.count(pool), "caching allocator: no private pool ", pool);
  a.pool = pool;
}

void caching_release_pool(int pool) {
  auto& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  auto it = a.pool_free.find(pool);
  if (it == a.pool_free.end()) return;
  a.free_blocks.insert(it->second.begin(), it->second.end());
  a.pool_free.erase(it);
  for (auto& [ptr, block] : a.live) {
    if (block.pool == pool) block.pool = 0;  // freed later, into the shared cache
  }
  if (a.pool == pool) a.pool = 0;
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
  if (a.pool == 0 && !a.free_blocks.empty()) a.release_cache();
}

void caching_set_limit(size_t bytes) {
  auto& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  a.limit = bytes;
}

size_t caching_limit() {
  auto& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  return a.limit;
}

}  // namespace leuko::cuda
