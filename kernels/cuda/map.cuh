// Element-wise maps: out[i] = f(a[i]) or f(a[i], b[i]) over n elements, 8 elements a thread.
//
// Why not one thread per element: these kernels are bound by memory, and a card reaches its
// bandwidth only with enough bytes in flight. A grid-stride loop that loads one element at a
// time keeps 2 bytes per thread in flight for bf16 (4 for float32); an H200 needs some 20 KB per
// SM, and the profile showed leuko's add_relu, ReLU backward and gradient sums at 1.5 to 2.4
// times PyTorch's time. Here each thread loads 8 consecutive elements of every operand at once
// (a pack: 16 bytes of bf16, 32 of float32, in 16-byte vector loads) before it computes any,
// when every pointer is aligned to a pack; the last n % 8 elements, and every element of
// unaligned operands, go one by one. Each element gets the same arithmetic either way (f, in
// float, rounded once by store<T>), so the results are the same bits whatever the alignment.
//
// f is a functor with `__device__ float operator()(float)` (map1) or `(float, float)` (map2);
// the storage types may differ (convert maps float32 to bf16 and back). out may be a (accumulate
// adds in place): a thread reads its elements before it writes them.
#pragma once

#include <cstdint>

#include "kernels/cuda/common.cuh"

namespace leuko::kernels::cuda {

constexpr int kMapPack = 8;  // elements a thread loads at once

// 8 consecutive elements of T, moved as one unit (one 16-byte load for bf16, two for float32).
template <typename T>
struct alignas(kMapPack * sizeof(T)) MapPack {
  T v[kMapPack];
};

template <typename T>
bool pack_aligned(const T* p) {
  return reinterpret_cast<uintptr_t>(p) % sizeof(MapPack<T>) == 0;
}

// kPacked: every pointer is pack-aligned, so whole packs go first, then the tail.
template <bool kPacked, typename F, typename TO, typename TA>
__global__ void map1_kernel(TO* out, const TA* a, int64_t n, F f) {
  const int64_t first = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  int64_t done = 0;  // elements covered by whole packs
  if constexpr (kPacked) {
    const int64_t packs = n / kMapPack;
    for (int64_t p = first; p < packs; p += stride) {
      const MapPack<TA> va = reinterpret_cast<const MapPack<TA>*>(a)[p];
      MapPack<TO> vo;
#pragma unroll
      for (int k = 0; k < kMapPack; k++) vo.v[k] = store<TO>(f(load(va.v[k])));
      reinterpret_cast<MapPack<TO>*>(out)[p] = vo;
    }
    done = packs * kMapPack;
  }
  for (int64_t i = done + first; i < n; i += stride) out[i] = store<TO>(f(load(a[i])));
}

template <bool kPacked, typename F, typename TO, typename TA, typename TB>
__global__ void map2_kernel(TO* out, const TA* a, const TB* b, int64_t n, F f) {
  const int64_t first = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  int64_t done = 0;
  if constexpr (kPacked) {
    const int64_t packs = n / kMapPack;
    for (int64_t p = first; p < packs; p += stride) {
      const MapPack<TA> va = reinterpret_cast<const MapPack<TA>*>(a)[p];  // both loads issued
      const MapPack<TB> vb = reinterpret_cast<const MapPack<TB>*>(b)[p];  // before any use
      MapPack<TO> vo;
#pragma unroll
      for (int k = 0; k < kMapPack; k++) vo.v[k] = store<TO>(f(load(va.v[k]), load(vb.v[k])));
      reinterpret_cast<MapPack<TO>*>(out)[p] = vo;
    }
    done = packs * kMapPack;
  }
  for (int64_t i = done + first; i < n; i += stride) out[i] = store<TO>(f(load(a[i]), load(b[i])));
}

// Threads for n elements: one per pack (and at least one per tail element).
inline int map_blocks(int64_t n, bool packed) {
  return blocks_for(packed ? (n + kMapPack - 1) / kMapPack : n, kThreads);
}

// The launches. Pointers are device pointers of the kernel's types (dev() for bf16).
template <typename F, typename TO, typename TA>
void map1(TO* out, const TA* a, int64_t n, F f) {
  if (n == 0) return;
  if (pack_aligned(out) && pack_aligned(a))
    map1_kernel<true><<<map_blocks(n, true), kThreads, 0, stream()>>>(out, a, n, f);
  else
    map1_kernel<false><<<map_blocks(n, false), kThreads, 0, stream()>>>(out, a, n, f);
  LEUKO_CUDA_LAUNCH_CHECK();
}

template <typename F, typename TO, typename TA, typename TB>
void map2(TO* out, const TA* a, const TB* b, int64_t n, F f) {
  if (n == 0) return;
  if (pack_aligned(out) && pack_aligned(a) && pack_aligned(b))
    map2_kernel<true><<<map_blocks(n, true), kThreads, 0, stream()>>>(out, a, b, n, f);
  else
    map2_kernel<false><<<map_blocks(n, false), kThreads, 0, stream()>>>(out, a, b, n, f);
  LEUKO_CUDA_LAUNCH_CHECK();
}

}  // namespace leuko::kernels::cuda
