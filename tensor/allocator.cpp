// The CPU allocator, and the dispatch to the CUDA allocator (tensor/cuda/allocator.cpp).
#include "tensor/allocator.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "tensor/check.h"
#if LEUKO_WITH_CUDA
#include "tensor/cuda/allocator.h"
#endif

namespace leuko {

namespace {
std::atomic<bool> g_poison{false};

struct CpuAllocator {
  std::mutex mutex;
  MemoryStats stats;
  size_t limit = 0;  // bytes; 0: none
};
CpuAllocator& cpu_allocator() {
  static CpuAllocator a;
  return a;
}

using detail::no_cuda_build;

std::string mib_str(size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", double(bytes) / double(1 << 20));
  return buf;
}

// 64-byte alignment: a cache line, and enough for any SIMD load the compiler emits.
constexpr size_t kCpuAlign = 64;

// LEUKO_ALLOC_TRACE=<file>: one line per allocation ("a cuda 4000 0x7f..") and per free
// ("f cuda 0x7f.."), in the order they happen, for tools/alloc_replay.cpp. Opened at the first
// allocation; lines are written under one lock so that threads do not interleave them.
struct Trace {
  std::mutex mutex;
  FILE* file = nullptr;
  Trace() {
    const char* path = std::getenv("LEUKO_ALLOC_TRACE");
    if (path == nullptr || *path == '\0') return;
    file = std::fopen(path, "w");
    LEUKO_CHECK(file != nullptr, "LEUKO_ALLOC_TRACE: cannot write '", path, "'");
  }
};
Trace& trace() {
  static Trace* t = new Trace();  // never destroyed: tensors are freed after statics
  return *t;
}
const char* device_word(Device d) { return d == Device::CUDA ? "cuda" : "cpu"; }
void trace_alloc(Device d, size_t bytes, const void* p) {
  Trace& t = trace();
  if (t.file == nullptr) return;
  std::lock_guard<std::mutex> lock(t.mutex);
  std::fprintf(t.file, "a %s %zu %p\n", device_word(d), bytes, p);
}
void trace_free(Device d, const void* p) {
  Trace& t = trace();
  if (t.file == nullptr) return;
  std::lock_guard<std::mutex> lock(t.mutex);
  std::fprintf(t.file, "f %s %p\n", device_word(d), p);  // exit() flushes it
}
}  // namespace

void set_poison_allocations(bool on) { g_poison = on; }
bool poison_allocations() { return g_poison; }

void* device_alloc(Device device, size_t bytes) {
  if (device == Device::CUDA) {
#if LEUKO_WITH_CUDA
    void* p = cuda::caching_alloc(bytes);
    trace_alloc(device, bytes, p);
    return p;
#else
    no_cuda_build();
#endif
  }
  size_t rounded = std::max<size_t>(kCpuAlign, (bytes + kCpuAlign - 1) / kCpuAlign * kCpuAlign);
  auto& a = cpu_allocator();
  {
    // The bytes are counted (and the limit checked) before allocating, under one lock, so
    // threads allocating at once (the loader's workers) cannot pass the limit together.
    std::lock_guard<std::mutex> lock(a.mutex);
    if (a.limit > 0 && a.stats.current + rounded > a.limit) {
      throw OutOfMemory("out of CPU memory: asked for " + mib_str(rounded) + " with " + mib_str(a.stats.current) +
                            " in use, over the memory limit of " + mib_str(a.limit),
                        rounded);
    }
    a.stats.current += rounded;
    a.stats.reserved += rounded;
    a.stats.allocations++;
    a.stats.peak = std::max(a.stats.peak, a.stats.current);
    a.stats.peak_reserved = std::max(a.stats.peak_reserved, a.stats.reserved);
  }
  void* p = std::aligned_alloc(kCpuAlign, rounded);
  if (p == nullptr) {
    std::lock_guard<std::mutex> lock(a.mutex);
    a.stats.current -= rounded;
    a.stats.reserved -= rounded;
    throw OutOfMemory("out of CPU memory: asked for " + mib_str(rounded) + " with " + mib_str(a.stats.current) +
                          " in use",
                      rounded);
  }
  if (g_poison) std::memset(p, 0xFF, rounded);
  trace_alloc(device, bytes, p);
  return p;
}

void device_free(Device device, void* ptr, size_t bytes) {
  if (ptr == nullptr) return;
  trace_free(device, ptr);
  if (device == Device::CUDA) {
#if LEUKO_WITH_CUDA
    cuda::caching_free(ptr, bytes);
    return;
#else
    no_cuda_build();
#endif
  }
  std::free(ptr);
  size_t rounded = std::max<size_t>(kCpuAlign, (bytes + kCpuAlign - 1) / kCpuAlign * kCpuAlign);
  auto& a = cpu_allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  a.stats.current -= rounded;
  a.stats.reserved -= rounded;
}

MemoryStats memory_stats(Device device) {
  if (device == Device::CUDA) {
#if LEUKO_WITH_CUDA
    return cuda::caching_stats();
#else
    no_cuda_build();
#endif
  }
  auto& a = cpu_allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  return a.stats;
}

void reset_peak_memory(Device device) {
  if (device == Device::CUDA) {
#if LEUKO_WITH_CUDA
    cuda::caching_reset_peak();
    return;
#else
    no_cuda_build();
#endif
  }
  auto& a = cpu_allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  a.stats.peak = a.stats.current;
  a.stats.peak_reserved = a.stats.reserved;
}

void set_memory_limit(Device device, size_t bytes) {
  if (device == Device::CUDA) {
#if LEUKO_WITH_CUDA
    cuda::caching_set_limit(bytes);
    return;
#else
    no_cuda_build();
#endif
  }
  auto& a = cpu_allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  a.limit = bytes;
}

size_t memory_limit(Device device) {
  if (device == Device::CUDA) {
#if LEUKO_WITH_CUDA
    return cuda::caching_limit();
#else
    no_cuda_build();
#endif
  }
  auto& a = cpu_allocator();
  std::lock_guard<std::mutex> lock(a.mutex);
  return a.limit;
}

void empty_cuda_cache() {
#if LEUKO_WITH_CUDA
  cuda::caching_empty();
#endif
}

}  // namespace leuko
