// The scratch a cuDNN search times its candidates in (kernels/cuda/conv2d.cpp's algorithms,
// kernels/cuda/conv2d_graph.cpp's plans): a block of its own from the caching allocator, handed
// back when the search ends; none (bytes = 0) when the memory is not there. Not the caller's
// workspace: that one is kept for every later step, so it must grow only to what the chosen
// candidates use (docs/PERFORMANCE.md, version 9).
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
