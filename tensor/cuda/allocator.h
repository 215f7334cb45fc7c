// The caching CUDA allocator's entry points (tensor/cuda/allocator.cpp). Tensors reach it
// through device_alloc and device_free (tensor/allocator.h); CUDA graphs (tensor/cuda/graph.h)
// use its private pools.
#pragma once

#include <cstddef>

#include "tensor/allocator.h"

namespace leuko::cuda {

void* caching_alloc(size_t bytes);
void caching_free(void* ptr, size_t bytes);
MemoryStats caching_stats();
void caching_reset_peak();
void caching_empty();  // does nothing while a private pool is in use (it would synchronise)
void caching_set_limit(size_t bytes);
size_t caching_limit();

// Private pools: a new, empty pool; route every allocation into `pool` until called again with
// 0 (the shared cache); hand a pool's blocks to the shared cache, its cached ones now and its
// live ones when they are freed.
int caching_new_pool();
void caching_use_pool(int pool);
void caching_release_pool(int pool);

}  // namespace leuko::cuda
