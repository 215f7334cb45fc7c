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
// float, rounded once by store<T>; or f on the stored values, for OnStorage), so the results
// are the same bits whatever the alignment.
//
// f is a functor with `__device__ float operator()(float)` (map1) or `(float, float)` (map2);
// the storage types may differ (convert maps float32 to bf16 and back). A functor that derives
// from OnStorage instead takes and returns the stored values themselves (below).
//
// out may be a (or b) when their elements have the same size (accumulate adds in place): a
// thread reads its pack, or its element, before it writes it, at the same bytes. Not when the
// sizes differ (convert from float32 to bf16 in place): thread p's 16 bytes of bf16 output are
// the first or second half of pack p / 2 of the float32 input, which another thread reads; the
// launches refuse it. Partly overlapping operands (out = a + k) are never allowed.
#pragma once

#include <cstdint>
#include <type_traits>

#include "kernels/cuda/common.cuh"

namespace leuko::kernels::cuda {

constexpr int kMapPack = 8;  // elements a thread loads at once

// The base of a functor that only selects, among its arguments and constants, with no
// arithmetic on the value it returns (ReLU, ReLU's backward): it has
// `template <typename T> __device__ T operator()(T)` (or `(T, T)`) over the storage type, and
// out has the operands' type. A selected value then keeps its bits, a NaN's sign and payload
// included, where float and back (store<T>'s rounding) may give the canonical NaN; for every
// other value the two are the same bits.
struct OnStorage {};

// +0 as a stored value, for OnStorage functors: its bits, with no conversion to make.
template <typename T>
__device__ __forceinline__ T stored_zero();
template <>
__device__ __forceinline__ float stored_zero<float>() {
  return 0.f;
}
template <>
__device__ __forceinline__ __nv_bfloat16 stored_zero<__nv_bfloat16>() {
  return __ushort_as_bfloat16(0);
}

// f on one element: on the stored values for an OnStorage functor, else in float and rounded once.
template <typename TO, typename F, typename TA>
__device__ __forceinline__ TO map_element(const F& f, TA a) {
  if constexpr (std::is_base_of_v<OnStorage, F>) {
    static_assert(std::is_same_v<TO, TA>, "an OnStorage map keeps the storage type");
    return f(a);
  } else {
    return store<TO>(f(load(a)));
  }
}
template <typename TO, typename F, typename TA, typename TB>
__device__ __forceinline__ TO map_element(const F& f, TA a, TB b) {
  if constexpr (std::is_base_of_v<OnStorage, F>) {
    static_assert(std::is_same_v<TO, TA> && std::is_same_v<TO, TB>, "an OnStorage map keeps the storage type");
    return f(a, b);
  } else {
    return store<TO>(f(load(a), load(b)));
  }
}

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
      for (int k = 0; k < kMapPack; k++) vo.v[k] = map_element<TO>(f, va.v[k]);
      reinterpret_cast<MapPack<TO>*>(out)[p] = vo;
    }
    done = packs * kMapPack;
  }
  for (int64_t i = done + first; i < n; i += stride) out[i] = map_element<TO>(f, a[i]);
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
      for (int k = 0; k < kMapPack; k++) vo.v[k] = map_element<TO>(f, va.v[k], vb.v[k]);
      reinterpret_cast<MapPack<TO>*>(out)[p] = vo;
    }
    done = packs * kMapPack;
  }
  for (int64_t i = done + first; i < n; i += stride) out[i] = map_element<TO>(f, a[i], b[i]);
}

// Threads for n elements: one per pack (and at least one per tail element).
inline int map_blocks(int64_t n, bool packed) {
  return blocks_for(packed ? (n + kMapPack - 1) / kMapPack : n, kThreads);
}

// Whether out may be `in`: not the same address when the element sizes differ (the top of the file).
template <typename TO, typename TI>
bool map_alias_ok(const TO* out, const TI* in) {
  return sizeof(TO) == sizeof(TI) || static_cast<const void*>(out) != static_cast<const void*>(in);
}

// The launches. Pointers are device pointers of the kernel's types (dev() for bf16).
template <typename F, typename TO, typename TA>
void map1(TO* out, const TA* a, int64_t n, F f) {
  LEUKO_CHECK(map_alias_ok(out, a), "map1: out is a, with elements of another size");
  if (n == 0) return;
  if (pack_aligned(out) && pack_aligned(a))
    map1_kernel<true><<<map_blocks(n, true), kThreads, 0, stream()>>>(out, a, n, f);
  else
    map1_kernel<false><<<map_blocks(n, false), kThreads, 0, stream()>>>(out, a, n, f);
  LEUKO_CUDA_LAUNCH_CHECK();
}

template <typename F, typename TO, typename TA, typename TB>
void map2(TO* out, const TA* a, const TB* b, int64_t n, F f) {
  LEUKO_CHECK(map_alias_ok(out, a) && map_alias_ok(out, b), "map2: out is an operand with elements of another size");
  if (n == 0) return;
  if (pack_aligned(out) && pack_aligned(a) && pack_aligned(b))
    map2_kernel<true><<<map_blocks(n, true), kThreads, 0, stream()>>>(out, a, b, n, f);
  else
    map2_kernel<false><<<map_blocks(n, false), kThreads, 0, stream()>>>(out, a, b, n, f);
  LEUKO_CUDA_LAUNCH_CHECK();
}

}  // namespace leuko::kernels::cuda
