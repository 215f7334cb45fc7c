// Shared by the hand-written CUDA kernels: the grid-stride loop, launch helpers, warp sums.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "tensor/cuda/check_cuda.h"
#include "tensor/cuda/context.h"
#include "tensor/dtype.h"

// for (int64_t i = first index of this thread; i < n; i += all threads in the grid)
#define LEUKO_GRID_STRIDE(i, n)                                                       \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < int64_t(n);    \
       i += int64_t(gridDim.x) * blockDim.x)

namespace leuko::kernels::cuda {

using leuko::cuda::blocks_for;
using leuko::cuda::stream;
constexpr int kThreads = 256;

// Sum of v over the 32 lanes of a warp; every lane gets the result.
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Sum of v over a block whose size is a multiple of 32 (at most 1024); all threads get it.
// `scratch` is __shared__ storage for 32 values.
template <typename T>
__device__ __forceinline__ T block_sum(T v, T* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const int warps = blockDim.x >> 5;
  v = lane < warps ? scratch[lane] : T(0);
  return warp_sum(v);
}

// ---- bf16 activations ------------------------------------------------------------------------
// A kernel templated on its storage type T (float or __nv_bfloat16) loads into float, computes
// in float and stores with one rounding: load(p[i]) and store<T>(v).
__device__ __forceinline__ float load(float v) { return v; }
__device__ __forceinline__ float load(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T>
__device__ __forceinline__ T store(float v);
template <>
__device__ __forceinline__ float store<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __nv_bfloat16 store<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);  // round to nearest even, as float_to_bf16 on the host
}
// The host's bf16 (tensor/dtype.h, 16 bits of the same layout) as the device's type.
inline __nv_bfloat16* dev(bf16* p) { return reinterpret_cast<__nv_bfloat16*>(p); }
inline const __nv_bfloat16* dev(const bf16* p) { return reinterpret_cast<const __nv_bfloat16*>(p); }
inline float* dev(float* p) { return p; }
inline const float* dev(const float* p) { return p; }

}  // namespace leuko::kernels::cuda
