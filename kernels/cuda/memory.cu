// CUDA fill, float32 <-> bf16 conversion, accumulation and copies. Grid-stride loops.
#include "kernels/cuda/common.cuh"
#include "kernels/memory.h"

namespace leuko::kernels::cuda {
namespace {

template <typename T>
__global__ void fill_kernel(T* out, int64_t n, T value) {
  LEUKO_GRID_STRIDE(i, n)
    out[i] = value;
}

__global__ void f32_to_bf16_kernel(__nv_bfloat16* out, const float* in, int64_t n) {
  LEUKO_GRID_STRIDE(i, n)
    out[i] = __float2bfloat16_rn(in[i]);
}

__global__ void bf16_to_f32_kernel(float* out, const __nv_bfloat16* in, int64_t n) {
  LEUKO_GRID_STRIDE(i, n)
    out[i] = __bfloat162float(in[i]);
}

__global__ void accumulate_kernel(float* acc, const float* x, int64_t n) {
  LEUKO_GRID_STRIDE(i, n)
    acc[i] += x[i];
}

__global__ void accumulate_bf16_kernel(__nv_bfloat16* acc, const __nv_bfloat16* x, int64_t n) {
  LEUKO_GRID_STRIDE(i, n)
    acc[i] = __float2bfloat16_rn(__bfloat162float(acc[i]) + __bfloat162float(x[i]));
}

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

void convert(bf16* out, const float* in, int64_t n) {
  if (n == 0) return;
  f32_to_bf16_kernel<<<blocks_for(n), 256, 0, stream()>>>(reinterpret_cast<__nv_bfloat16*>(out), in, n);
  LEUKO_CUDA_LAUNCH_CHECK();
}

void convert(float* out, const bf16* in, int64_t n) {
  if (n == 0) return;
  bf16_to_f32_kernel<<<blocks_for(n), 256, 0, stream()>>>(out, reinterpret_cast<const __nv_bfloat16*>(in), n);
  LEUKO_CUDA_LAUNCH_CHECK();
}

void accumulate(float* acc, const float* x, int64_t n) {
  if (n == 0) return;
  accumulate_kernel<<<blocks_for(n), 256, 0, stream()>>>(acc, x, n);
  LEUKO_CUDA_LAUNCH_CHECK();
}

void accumulate(bf16* acc, const bf16* x, int64_t n) {
  if (n == 0) return;
  accumulate_bf16_kernel<<<blocks_for(n), 256, 0, stream()>>>(reinterpret_cast<__nv_bfloat16*>(acc),
                                                             reinterpret_cast<const __nv_bfloat16*>(x), n);
  LEUKO_CUDA_LAUNCH_CHECK();
}

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
