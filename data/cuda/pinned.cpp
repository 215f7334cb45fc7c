// Pinned host memory, events and asynchronous copies for the loader (data/pinned.h).
#include <cuda_runtime.h>

#include "data/pinned.h"
#include "tensor/cuda/check_cuda.h"
#include "tensor/cuda/context.h"

namespace leuko::data::pinned {

void* alloc(size_t bytes) {
  void* p = nullptr;
  if (cudaHostAlloc(&p, bytes, cudaHostAllocDefault) != cudaSuccess) {
    cudaGetLastError();  // not sticky, but leave no error behind for the next launch check
    return nullptr;
  }
  return p;
}

void free(void* ptr) {
  if (ptr != nullptr) LEUKO_CUDA_CHECK(cudaFreeHost(ptr));
}

void* event_create() {
  cudaEvent_t e = nullptr;
  LEUKO_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  return e;
}

void event_destroy(void* event) {
  if (event != nullptr) LEUKO_CUDA_CHECK(cudaEventDestroy(static_cast<cudaEvent_t>(event)));
}

void copy_to_device_async(void* dst, const void* src, size_t bytes, void* event) {
  LEUKO_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, leuko::cuda::stream()));
  LEUKO_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event), leuko::cuda::stream()));
}

void copy_to_host_async(void* dst, const void* src, size_t bytes, void* event) {
  LEUKO_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, leuko::cuda::stream()));
  LEUKO_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event), leuko::cuda::stream()));
}

void event_wait(void* event) { LEUKO_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(event))); }

}  // namespace leuko::data::pinned
