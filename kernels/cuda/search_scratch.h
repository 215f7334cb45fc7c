// The scratch a cuDNN search times its candidates in, and the two events it times them with (kernels/cuda/conv2d.cpp's algorithms,
// kernels/cuda/conv2d_graph.cpp's plans): a block of its own from the caching allocator, handed
// back when the search ends. When `want` bytes are not there, half as many are tried, and so on
// down to 1 MiB (as PyTorch does), then none (bytes = 0): the search then times only what fits
// in `bytes`, rather than only the candidates that need no workspace at all. Not the caller's
// workspace (allocated for each call, of what the chosen candidate needs: docs/PERFORMANCE.md,
// versions 9 and 19), so the search's larger scratch never becomes a step's.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>

#include "tensor/allocator.h"
#include "tensor/check.h"
#include "tensor/cuda/check_cuda.h"

namespace leuko::kernels::cuda {

struct SearchScratch {
  void* ptr = nullptr;
  size_t bytes = 0;
  explicit SearchScratch(size_t want) {
    constexpr size_t kSmallest = size_t(1) << 20;
    for (size_t size = want; size > 0; size = size > kSmallest ? std::max(size / 2, kSmallest) : 0) {
      try {
        ptr = device_alloc(Device::CUDA, size);
        bytes = size;
        return;
      } catch (const ::leuko::OutOfMemory&) {
      }
    }
  }
  ~SearchScratch() {
    if (ptr != nullptr) device_free(Device::CUDA, ptr, bytes);
  }
  SearchScratch(const SearchScratch&) = delete;
  SearchScratch& operator=(const SearchScratch&) = delete;
};

// Two CUDA events, destroyed with their owner (a failed check between them must not leak them).
struct EventPair {
  cudaEvent_t start = nullptr, stop = nullptr;
  EventPair() {
    LEUKO_CUDA_CHECK(cudaEventCreate(&start));
    LEUKO_CUDA_CHECK(cudaEventCreate(&stop));
  }
  ~EventPair() {
    if (start != nullptr) (void)cudaEventDestroy(start);
    if (stop != nullptr) (void)cudaEventDestroy(stop);
  }
  EventPair(const EventPair&) = delete;
  EventPair& operator=(const EventPair&) = delete;
};

}  // namespace leuko::kernels::cuda
