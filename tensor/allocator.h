// Memory for tensors: a CPU allocator and a caching CUDA allocator, both with statistics.
//
// The CUDA allocator keeps freed blocks in a cache and hands them out again instead of
// returning them to the driver: cudaMalloc and cudaFree synchronise the device and cost
// tens of microseconds, which a training step of hundreds of tensors cannot afford.
// All GPU work runs on one stream (tensor/cuda/context.h), so a block freed after a kernel
// was queued may be reused by the next kernel on that stream without waiting.
#pragma once

#include <cstddef>

#include "tensor/dtype.h"

namespace leuko {

struct MemoryStats {
  size_t current = 0;        // bytes held by live tensors
  size_t peak = 0;           // largest `current` since the last reset_peak_memory
  size_t reserved = 0;       // bytes obtained from the system (CUDA: live + cached)
  size_t peak_reserved = 0;  // largest `reserved` since the last reset_peak_memory
  size_t allocations = 0;    // number of allocation calls
  size_t cache_hits = 0;     // CUDA: allocations served from the cache
};

// Allocate and free `bytes` on a device. Throws OutOfMemory (tensor/check.h) when the memory
// is not there: on the GPU when even an emptied cache leaves too little room, on either device
// when the allocation would pass the memory limit (below).
void* device_alloc(Device device, size_t bytes);
void device_free(Device device, void* ptr, size_t bytes);

// An upper bound on a device's memory, in bytes (0: none, the default), over which allocation
// throws OutOfMemory as if the memory had run out. It makes a smaller GPU out of a large one,
// and makes the out-of-memory path testable on the CPU (tests/tools/test_reliability.cpp).
//   CPU:  bounds `current`, the bytes of live tensors.
//   CUDA: bounds `reserved`, the bytes obtained from the driver (live and cached): what the
//         card would have to hold. Unset, the limit starts from the environment variable
//         LEUKO_MEMORY_LIMIT_MIB (read once, at the first GPU allocation).
void set_memory_limit(Device device, size_t bytes);
size_t memory_limit(Device device);

MemoryStats memory_stats(Device device);
void reset_peak_memory(Device device);

// Return every cached, unused CUDA block to the driver.
void empty_cuda_cache();

// Debugging and tests: fill every new allocation with 0xFF bytes (NaN in float32, float64 and
// bf16), so an op that leaves an output element unwritten produces a NaN that a test sees.
void set_poison_allocations(bool on);
bool poison_allocations();

}  // namespace leuko
