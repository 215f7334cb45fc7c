// The scratch a cuDNN search times its candidates in (kernels/cuda/conv2d.cpp's algorithms,
// kernels/cuda/conv2d_graph.cpp's plans): a block of its own from the caching allocator, handed
// back when the search ends; none (bytes = 0) when the memory is not there. Not the caller's
// workspace (allocated for each call, of what the chosen candidate needs: docs/PERFORMANCE.md,
// versions 9 and 19), so the search's larger scratch never becomes a step's.
#pragma once

#include <cstddef>

#include "tensor/allocator.h"
#include "tensor/check.h"

namespace leuko::kernels::cuda {

struct SearchScratch {
  void* ptr = nullptr;
  size_t bytes = 0;
  explicit SearchScratch(size_t want) {
    if (want == 0) return;
    try {
      ptr = device_alloc(Device::CUDA, want);
      bytes = want;
    } catch (const ::leuko::OutOfMemory&) {
    }
  }
  ~SearchScratch() {
    if (ptr != nullptr) device_free(Device::CUDA, ptr, bytes);
  }
  SearchScratch(const SearchScratch&) = delete;
  SearchScratch& operator=(const SearchScratch&) = delete;
};

}  // namespace leuko::kernels::cuda
