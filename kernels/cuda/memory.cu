// CUDA fill, float32 <-> bf16 conversion, accumulation and copies. Fill is a grid-stride loop;
// conversion and accumulation are element-wise maps (map.cuh).
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/map.cuh"
#include "kernels/memory.h"

namespace leuko::kernels::cuda {
namespace {

template <typename T>
__global__ void fill_kernel(T* out, int64_t n, T value) {
  LEUKO_GRID_STRIDE(i, n)
    out[i] = value;
}

struct Identity {  // store<T> rounds to bf16 (nearest even), or widens exactly to float
  __device__ float operator()(float v) const { return v; }
};

struct Sum {  // acc + x in float, rounded once for bf16
  __device__ float operator()(float acc, float x) const { return acc + x; }
};

}  // namespace

void fill(float* out, int64_t n, float value) {
  if (n == 0) return;
  fill_kernel<<<blocks_for(n), 256, 0, stream()>>>(out, n, value);
  LEUKO_CUDA_LAUNCH_CHECK();
}

void fill(bf16* out, int64_t n, float value) {
  if (n == 0) return;
  fill_kernel<<<blocks_for(n), 256, 0, stream()>>>(reinterpret_cast<__nv_bfloat16*>(out), n,
                                                   __float2bfloat16_rn(value));
  LEUKO_CUDA_LAUNCH_CHECK();
}

void fill(int64_t* out, int64_t n, int64_t value) {
  if (n == 0) return;
  fill_kernel<<<blocks_for(n), 256, 0, stream()>>>(out, n, value);
  LEUKO_CUDA_LAUNCH_CHECK();
}

void convert(bf16* out, const float* in, int64_t n) { map1(dev(out), in, n, Identity()); }

void convert(float* out, const bf16* in, int64_t n) { map1(out, dev(in), n, Identity()); }

void accumulate(float* acc, const float* x, int64_t n) { map2(acc, acc, x, n, Sum()); }

void accumulate(bf16* acc, const bf16* x, int64_t n) { map2(dev(acc), dev(acc), dev(x), n, Sum()); }

void copy_to_device(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  LEUKO_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream()));
  // The host buffer may be freed or reused as soon as we return: wait for pageable copies.
  LEUKO_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

void copy_to_host(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  LEUKO_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream()));
  LEUKO_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

void copy_on_device(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  LEUKO_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream()));
}

}  // namespace leuko::kernels::cuda
