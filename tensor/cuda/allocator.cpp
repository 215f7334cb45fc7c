// The caching CUDA allocator: tensor/block_cache.h's policy (segments from cudaMalloc, carved
// into best-fit blocks that split and merge) behind a mutex, with CUDA's side of it here.
//
// A freed block is cached, not given back: cudaMalloc and cudaFree synchronise the device and
// cost tens of microseconds. All GPU work runs on one stream, so a block freed after a kernel
// was queued may be given to the next kernel on that stream without waiting.
// When cudaMalloc fails, the cache's free segments go back to the driver and the allocation is
// tried once more before OutOfMemory is thrown. A memory limit (set_memory_limit, or
// LEUKO_MEMORY_LIMIT_MIB) is treated the same way: a segment that would take `reserved` past
// it first empties the cache, then throws.
//
// Private pools, for CUDA graphs (tensor/cuda/graph.h): while a graph records, every allocation
// comes from its pool's blocks: its own free ones (the graph's later kernels reuse freed blocks
// as an eager step would), else free blocks adopted from the shared cache, else new segments;
// what the pool holds is never handed to anyone else. When the graph is destroyed its pool's
// blocks join the shared cache (tensor/block_cache.h).
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "tensor/block_cache.h"
#include "tensor/cuda/allocator.h"
#include "tensor/cuda/check_cuda.h"
#include "tensor/cuda/context.h"

namespace leuko::cuda {
namespace {

// LEUKO_MEMORY_LIMIT_MIB: a limit in MiB for the whole process (unset or 0: none).
size_t limit_from_environment() {
  const char* env = std::getenv("LEUKO_MEMORY_LIMIT_MIB");
  if (env == nullptr || *env == '\0') return 0;
  char* end = nullptr;
  const unsigned long long mib = std::strtoull(env, &end, 10);
  LEUKO_CHECK(end != env && *end == '\0', "LEUKO_MEMORY_LIMIT_MIB: '", env, "' is not a number of MiB");
  return size_t(mib) << 20;
}

struct CudaSource : BlockCache::Source {
  void* obtain(size_t bytes) override {
    void* p = nullptr;
    const cudaError_t err = cudaMalloc(&p, bytes);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear it: the cache gives its free segments back and tries again
      return nullptr;
    }
    LEUKO_CUDA_CHECK(err);
    return p;
  }
  void give_back(void* ptr, size_t) override { LEUKO_CUDA_CHECK(cudaFree(ptr)); }
  // The blocks may still be read by queued kernels: let them finish before freeing.
  void before_give_back() override { LEUKO_CUDA_CHECK(cudaStreamSynchronize(stream())); }
};

struct CachingAllocator {
  std::mutex mutex;
  CudaSource source;
  BlockCache cache{source};
  CachingAllocator() {
    cache.set_limit(limit_from_environment());
    // LEUKO_CUDA_EXACT_BLOCKS=1: a cudaMalloc per block, of its size (tools/gpu_sanitize.sh).
    const char* exact = std::getenv("LEUKO_CUDA_EXACT_BLOCKS");
    cache.set_exact_blocks(exact != nullptr && std::string(exact) == "1");
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
  std::lock_guard<std::mutex> lock(a.mutex);
  const BlockCache::Allocation got = a.cache.allocate(bytes);
  if (got.failure == BlockCache::Failure::limit) {
    throw OutOfMemory("CUDA out of memory: asked for " + mib(BlockCache::round_size(bytes)) + " with " +
                          mib(a.cache.stats().current) + " in use by leuko, over the memory limit of " +
                          mib(a.cache.limit()),
                      BlockCache::round_size(bytes));
  }
  if (got.failure == BlockCache::Failure::source) {
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    throw OutOfMemory("CUDA out of memory: asked for " + mib(BlockCache::round_size(bytes)) + " with " +
                          mib(a.cache.stats().current) + " in use by leuko and " + mib(free_b) + " free of " +
                          mib(total_b),
                      BlockCache::round_size(bytes));
  }
  if (poison_allocations()) LEUKO_CUDA_CHECK(cudaMemsetAsync(got.ptr, 0xFF, got.size, stream()));
  return got.ptr;
}

void caching_free(void* ptr, size_t /*bytes*/) {
  auto& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  a.cache.free(ptr);
}

int caching_new_pool() {
  auto& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  return a.cache.new_pool();
}

void caching_use_pool(int pool) {
  auto& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  a.cache.use_pool(pool);
}

void caching_release_pool(int pool) {
  auto& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  a.cache.release_pool(pool);
}

MemoryStats caching_stats() {
  auto& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  return a.cache.stats();
}

void caching_reset_peak() {
  auto& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  a.cache.reset_peak();
}

void caching_empty() {
  auto& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  if (a.cache.pool() == 0) a.cache.release_free_segments();
}

void caching_set_limit(size_t bytes) {
  auto& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  a.cache.set_limit(bytes);
}

size_t caching_limit() {
  auto& a = allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  return a.cache.limit();
}

}  // namespace leuko::cuda
