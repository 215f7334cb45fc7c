// CUDA batch normalisation of NCHW tensors (kernels/batchnorm.h's functions without `_nhwc`). The
// channels_last kernels are in batchnorm_nhwc.cu; batchnorm_common.cuh has what both use and says
// how they treat bf16 activations. This file also holds the per-channel kernels, which do not
// depend on the layout: the finishing kernels of both layouts' reductions (run through
// batchnorm_finish_stats and batchnorm_finish_sums), and those of batchnorm_invstd and increment.
//
// NCHW (x viewed as (N, C, HW)): channel c's M = N * HW values x[n, c, i] lie in N planes of HW
// contiguous elements, C * HW apart. The kernels are bound by memory bandwidth (a few flops per
// element), so they are written around two things:
//   - No division per element. An index is split into (plane, i) and a plane into (n, c) by
//     Divider<int32_t> (kernels/divider.h), a multiply-high, an add and a shift with a magic
//     number made on the host, whenever every index fits in 31 bits (tensors below 2^31
//     elements, 8 GiB in float32); larger tensors take Divider<int64_t>, a 64-bit division, once
//     per 4 elements.
//   - Enough bytes in flight. Each thread handles 4 consecutive elements at a time (a group),
//     loaded as one 16-byte float4 (8 bytes in bf16) when the addresses allow, and loads
//     kUnroll groups before it uses any. With one 4-byte load per thread in flight, as a plain
//     grid-stride loop has, an SM keeps at most 8 KB of loads in flight, where an H100's or
//     H200's bandwidth at DRAM latency takes about 20 KB per SM (Little's law: 4 TB/s x ~650 ns
//     over 132 SMs): such kernels ran near 1.1 TB/s.
//
// Per-channel reductions (the statistics forward, the two sums backward) cut each channel's
// values j = n * HW + i into groups of 4 (j = 4g .. 4g + 3; the last may be short) and the
// groups into `chunks` contiguous ranges, one block of 256 threads each, so that even a few
// channels fill the GPU. Thread t of a block takes the groups first + t, first + t + 256, ...
// in that order and each group's values in order; the block merges its threads in a fixed tree
// (warp shuffles, then the warps' results), and thread 0 writes the block's partial result to
// scratch. A second kernel, one warp per channel, merges the chunks in a fixed order (lane l the
// chunks l, l + 32, ... in turn, then the 32 lanes in a shuffle tree) and finishes. No atomics
// anywhere, and the order depends only on the shape and the GPU's SM count (through `chunks`),
// not on whether the loads are vectors: the same input gives the same bits.
// When HW % 4 == 0 and the tensors are aligned, a group is 4 consecutive elements of one plane
// and comes in one vector load; otherwise (HW = 49, HW = 1, a view at an odd offset) its values
// are loaded one by one, stepping to the channel's next plane where a group crosses one.
// The elementwise kernels (normalize, dx) group the flat index instead: group g is elements
// 4g .. 4g + 3 of the whole tensor, always one aligned vector when the tensors are aligned,
// with one channel for the 4 unless the group crosses a plane (HW % 4 != 0), where each element
// gets its own.
//
// The forward statistics use Welford's running (count, mean, M2) per thread (its step
// delta / n by the hardware's approximate reciprocal: welford_add) and Chan's formula to merge
// them: one pass over x, and no cancellation of E[x^2] - E[x]^2 in float32.
#include <algorithm>
#include <type_traits>

#include "kernels/batchnorm.h"
#include "kernels/cuda/batchnorm_common.cuh"
#include "kernels/divider.h"

namespace leuko::kernels::cuda {
namespace {

// Adds value v to a running triple (Welford's update), the step delta / n taken as
// delta * approx_rcp(n). Error: the step is then within about 1.5 ulp of delta / n instead of the
// IEEE division's 0.5 ulp: an absolute error of ~1e-7 |delta| / n, of the size of the rounding of
// the addition to the mean that follows, which Welford's analysis already carries per value (and
// M2's update sees the mean's error the same way with either division). A host simulation with
// the reciprocal off by an ulp at random gave the same RMS error in M2 as exact division (about
// 2e-6 relative at |mean| = 100, spread 1), and the statistics stayed within 1e-6 of float64 on
// the GPU tests' shapes. The first value becomes the mean as it is, without the approximate 1 / 1:
// a first mean an ulp away from v would add about |v| * ulp(v) to each thread's M2, up to 1e-3
// relative at |v| = 100 and a spread of 1 where threads hold a value or two.
__device__ __forceinline__ void welford_add(Welford& w, float v) {
  w.n += 1.f;
  const float delta = v - w.mean;
  w.mean = w.n == 1.f ? v : w.mean + delta * approx_rcp(w.n);
  w.m2 += delta * (v - w.mean);
}

// Merges the Welford triples of the 32 lanes of a warp (all of them active); the result is
// valid in lane 0. A fixed tree: at offset 16, 8, 4, 2, 1 each lane i merges lane i + offset
// into its own, merge(lower, higher), so that lane i < offset then holds lanes i, i + offset,
// i + 2 * offset, ... (lane 0: merge(merge(0, 16), merge(8, 24)) after offset 8, and so on):
// the same order on every run. The other lanes end with partial junk.
__device__ __forceinline__ Welford warp_merge(Welford w) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    const Welford other{__shfl_down_sync(0xffffffffu, w.n, offset), __shfl_down_sync(0xffffffffu, w.mean, offset),
                        __shfl_down_sync(0xffffffffu, w.m2, offset)};
    w = merge(w, other);
  }
  return w;
}

// Merges the threads' Welford triples of a block (a multiple of 32 threads); the result is
// valid in thread 0. `scratch`: __shared__ space for 32 triples.
__device__ Welford block_merge(Welford w, Welford* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  w = warp_merge(w);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = w;
  __syncthreads();
  if (warp == 0) {
    w = lane < int(blockDim.x >> 5) ? scratch[lane] : Welford{0.f, 0.f, 0.f};
    w = warp_merge(w);
  }
  return w;
}

// The finishing kernels: one warp per channel, c = the global warp index, then strided by all
// the warps of the grid. The condition is the same in the 32 lanes (c is), so the whole warp
// runs each iteration and reaches its shuffles with all lanes active.
#define LEUKO_WARP_CHANNELS(c, C)                                                         \
  for (int64_t c = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5; c < int64_t(C); \
       c += (int64_t(gridDim.x) * blockDim.x) >> 5)

// Blocks of kThreads for C warps (kThreads / 32 channels per block), capped as blocks_for.
int warp_blocks(int64_t C) { return blocks_for(C, kThreads / 32); }

// How many blocks share one channel: enough blocks in all to fill the GPU (8 per SM), each
// with at least 4096 values (1024 groups: 4 per thread).
int64_t chunks_for(int64_t N, int64_t C, int64_t HW) {
  const int64_t want_blocks = int64_t(leuko::cuda::sm_count()) * 8;
  const int64_t chunks = std::max<int64_t>(1, want_blocks / std::max<int64_t>(1, C));
  return std::min<int64_t>(chunks, std::max<int64_t>(1, N * HW / 4096));
}

int grid_for(int64_t blocks) { return int(std::min<int64_t>(std::max<int64_t>(blocks, 1), 65535LL * 16)); }

// ---- NCHW indexing: division by invariant integers, groups of 4 -------------------------------

constexpr int kGroup = 4;  // elements per group: one float4, or 4 bf16 in 8 bytes
// Groups a thread loads before it uses the first: 64 bytes per thread in flight in float32 (the
// sums: 128, dy and x). backward_input_kernel loads up to three tensors (dy, x, relu_out) and
// takes 2: as many bytes in flight at 64 registers a thread, where 4 would need about 120 and
// halve the threads an SM holds.
constexpr int kUnroll = 4;
constexpr int kUnrollInput = 2;

// The bytes of a group: a float4's 16, or 4 bf16 in 8. The addresses must be multiples of it.
template <typename T>
constexpr int64_t group_bytes() {
  return int64_t(kGroup * sizeof(T));
}
template <typename T>
bool group_aligned(const T* p) {
  return p == nullptr || reinterpret_cast<uintptr_t>(p) % group_bytes<T>() == 0;
}

// 4 consecutive activations at p (aligned to group_bytes) in one load, into float.
__device__ __forceinline__ void load4(const float* p, float (&v)[kGroup]) {
  const float4 q = *reinterpret_cast<const float4*>(p);
  v[0] = q.x;
  v[1] = q.y;
  v[2] = q.z;
  v[3] = q.w;
}
__device__ __forceinline__ void load4(const __nv_bfloat16* p, float (&v)[kGroup]) {
  // One 8-byte load: elements 0, 1 in q.x (0 in the low half, the lower address), 2, 3 in q.y.
  // A bf16 is the upper half of the float it stands for, as load() (__bfloat162float) converts.
  const uint2 q = *reinterpret_cast<const uint2*>(p);
  v[0] = __uint_as_float(q.x << 16);
  v[1] = __uint_as_float(q.x & 0xffff0000u);
  v[2] = __uint_as_float(q.y << 16);
  v[3] = __uint_as_float(q.y & 0xffff0000u);
}
// 4 floats stored to p (aligned) in one store, each rounded once as store<T>.
__device__ __forceinline__ void store4(float* p, const float (&v)[kGroup]) {
  *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
}
__device__ __forceinline__ void store4(__nv_bfloat16* p, const float (&v)[kGroup]) {
  uint32_t b[kGroup];  // each rounded by store<__nv_bfloat16>, then packed as load4 unpacks
#pragma unroll
  for (int e = 0; e < kGroup; e++) b[e] = __bfloat16_as_ushort(store<__nv_bfloat16>(v[e]));
  *reinterpret_cast<uint2*>(p) = make_uint2(b[0] | b[1] << 16, b[2] | b[3] << 16);
}

// f(e) for the values e < count of a group, without a test per value when it is full.
template <typename F>
__device__ __forceinline__ void for_each_value(int count, F&& f) {
  if (count == kGroup) {
#pragma unroll
    for (int e = 0; e < kGroup; e++) f(e);
  } else {
#pragma unroll
    for (int e = 0; e < kGroup; e++) {
      if (e < count) f(e);
    }
  }
}

// Where a group's elements lie in the (N, C, HW) tensor: at[e] for e < count (at most 4).
template <typename I>
struct Group {
  I at[kGroup];
  int count;
};

// Group g of channel c: its values j = 4g .. 4g + 3 (those below M = N * HW), j = n * HW + i
// at (n * C + c) * HW + i. kVector: HW % 4 == 0, so the 4 are consecutive in one plane, from
// an offset that is a multiple of 4 (i is, as j and n * HW are). Otherwise a value whose i
// reaches HW moves on to i = 0 of the next plane, C * HW - HW + 1 elements further.
template <bool kVector, typename Div, typename I = typename Div::Index>
__device__ __forceinline__ Group<I> channel_group(I g, I c, I M, I C, const Div& hw) {
  const I j = I(kGroup) * g, n = hw.div(j);
  I i = j - n * hw.d;
  Group<I> group;
  group.at[0] = (n * C + c) * hw.d + i;
  if (kVector) {
    group.count = kGroup;
    for (int e = 1; e < kGroup; e++) group.at[e] = group.at[0] + e;
  } else {
    group.count = int(min(I(kGroup), M - j));
    const I jump = C * hw.d - hw.d + 1;  // from i = HW - 1 of plane (n, c) to i = 0 of (n + 1, c)
#pragma unroll
    for (int e = 1; e < kGroup; e++) {
      const bool wrap = ++i == hw.d;
      if (wrap) i = 0;
      group.at[e] = group.at[e - 1] + (wrap ? jump : I(1));
    }
  }
  return group;
}

// The group's values of p into v: one vector load (kVector), or one load per value (0 past count).
template <bool kVector, typename T, typename I>
__device__ __forceinline__ void gather(const T* p, const Group<I>& group, float (&v)[kGroup]) {
  if (kVector) {
    load4(p + group.at[0], v);
  } else {
#pragma unroll
    for (int e = 0; e < kGroup; e++) v[e] = e < group.count ? load(p[group.at[e]]) : 0.f;
  }
}

// The elementwise kernels' group g: elements 4g .. 4g + 3 of the whole tensor (count of them
// below total), element 4g being at i of a plane of channel c. `one_channel`: all of them lie
// in that plane (always when HW % 4 == 0).
template <typename I>
struct FlatGroup {
  I first, c, i;
  int count;
  bool one_channel;
};
template <typename Div, typename I = typename Div::Index>
__device__ __forceinline__ FlatGroup<I> flat_group(I g, I total, const Div& hw, const Div& channels) {
  FlatGroup<I> f;
  f.first = I(kGroup) * g;
  const I plane = hw.div(f.first);  // n * C + c
  f.i = f.first - plane * hw.d;
  f.c = plane - channels.div(plane) * channels.d;
  f.count = int(min(I(kGroup), total - f.first));
  f.one_channel = f.i + I(f.count) <= hw.d;
  return f;
}
// The next element's channel after one at (i, c): the next plane's, at i = 0, where i reaches HW.
template <typename I>
__device__ __forceinline__ void step(I& i, I& c, I HW, I C) {
  if (++i == HW) {
    i = 0;
    c = c + 1 == C ? 0 : c + 1;
  }
}
// A flat group's elements of p into v (0 past count) / of v into p.
template <bool kVector, typename T, typename I>
__device__ __forceinline__ void gather_flat(const T* p, const FlatGroup<I>& f, float (&v)[kGroup]) {
  if (kVector && f.count == kGroup) {
    load4(p + f.first, v);
  } else {
#pragma unroll
    for (int e = 0; e < kGroup; e++) v[e] = e < f.count ? load(p[f.first + e]) : 0.f;
  }
}
template <bool kVector, typename T, typename I>
__device__ __forceinline__ void scatter_flat(T* p, const FlatGroup<I>& f, const float (&v)[kGroup]) {
  if (kVector && f.count == kGroup) {
    store4(p + f.first, v);
  } else {
#pragma unroll
    for (int e = 0; e < kGroup; e++) {
      if (e < f.count) p[f.first + e] = store<T>(v[e]);
    }
  }
}

// ---- Forward ------------------------------------------------------------------------------

// Block b reduces chunk (b % chunks) of channel (b / chunks), groups [first, first +
// chunk_groups), to partial[b] = (n, mean, m2).
template <typename T, bool kVector, typename Div, typename I = typename Div::Index>
__global__ void __launch_bounds__(kThreads)
    stats_partial_kernel(float* partial /* (C * chunks, 3) */, const T* __restrict__ x /* (N, C, HW) */, I M, I C,
                         Div hw, int64_t chunks, I chunk_groups) {
  __shared__ Welford scratch[32];
  const I groups = (M + kGroup - 1) / kGroup;  // of each channel
  for (int64_t b = blockIdx.x; b < int64_t(C) * chunks; b += gridDim.x) {  // uniform across the block
    const I c = I(b / chunks), first = I(b % chunks) * chunk_groups, end = min(groups, first + chunk_groups);
    Welford w{0.f, 0.f, 0.f};
    for (I g0 = first + threadIdx.x; g0 < end; g0 += kUnroll * blockDim.x) {
      float v[kUnroll][kGroup];  // (kUnroll, 4): all loaded before the first is used
      int count[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; u++) {
        const I g = g0 + u * blockDim.x;
        count[u] = 0;
        if (g < end) {
          const Group<I> group = channel_group<kVector>(g, c, M, C, hw);
          count[u] = group.count;
          gather<kVector>(x, group, v[u]);
        }
      }
#pragma unroll
      for (int u = 0; u < kUnroll; u++) for_each_value(count[u], [&](int e) { welford_add(w, v[u][e]); });
    }
    w = block_merge(w, scratch);
    if (threadIdx.x == 0) {
      partial[3 * b] = w.n;
      partial[3 * b + 1] = w.mean;
      partial[3 * b + 2] = w.m2;
    }
  }
}

// One warp per channel (launch with warp_blocks(C) blocks of kThreads): merges the chunks,
// writes mean and invstd, moves the running statistics (the running variance is the unbiased
// one, M2 / (M - 1)). The order is fixed: lane l merges chunks l, l + 32, l + 64, ... in
// increasing order, starting from the empty triple (a lane with no chunk, chunks < 32, keeps
// it, and merge returns the other side for an empty one), then warp_merge's tree; lane 0
// writes. A chain of chunks / 32 merges per lane instead of chunks per thread.
__global__ void stats_finish_kernel(float* mean, float* invstd, float* running_mean, float* running_var,
                                    const float* partial, int64_t C, int64_t chunks, float momentum, float eps) {
  const int lane = threadIdx.x & 31;
  LEUKO_WARP_CHANNELS(c, C) {
    Welford w{0.f, 0.f, 0.f};
    for (int64_t k = lane; k < chunks; k += 32) {
      const float* p = partial + 3 * (c * chunks + k);
      w = merge(w, Welford{p[0], p[1], p[2]});
    }
    w = warp_merge(w);
    if (lane == 0) {
      mean[c] = w.mean;
      invstd[c] = 1.f / sqrtf(w.m2 / w.n + eps);
      if (running_mean != nullptr) running_mean[c] = (1.f - momentum) * running_mean[c] + momentum * w.mean;
      if (running_var != nullptr) {
        running_var[c] = (1.f - momentum) * running_var[c] + momentum * (w.m2 / (w.n - 1.f));
      }
    }
  }
}

__global__ void invstd_kernel(float* invstd, const float* var, int64_t C, float eps) {
  LEUKO_GRID_STRIDE(c, C) invstd[c] = 1.f / sqrtf(var[c] + eps);
}

// Channel c's y = (x - mean) * scale + shift, scale = invstd * weight, shift = bias.
struct Affine {
  float mean, scale, shift;
};
template <typename I>
__device__ __forceinline__ Affine affine(I c, const float* mean, const float* invstd, const float* weight,
                                         const float* bias) {
  return {mean[c], invstd[c] * (weight != nullptr ? weight[c] : 1.f), bias != nullptr ? bias[c] : 0.f};
}
__device__ __forceinline__ float normalized(float x, const Affine& a, bool relu) {
  const float v = (x - a.mean) * a.scale + a.shift;
  return !relu || !(v <= 0.f) ? v : 0.f;  // a fused ReLU as relu_forward: NaN stays NaN
}

// y = (x - mean) * invstd * weight + bias (then the ReLU), in float, rounded to T once. Thread
// t of block b takes the flat groups b * kUnroll * 256 + t + u * 256 (u < kUnroll), then the
// grid's stride. __restrict__: y is a fresh tensor, never x.
template <typename T, bool kVector, typename Div, typename I = typename Div::Index>
__global__ void __launch_bounds__(kThreads)
    normalize_kernel(T* __restrict__ y /* (N, C, HW) */, const T* __restrict__ x /* (N, C, HW) */, const float* mean,
                     const float* invstd, const float* weight, const float* bias, I total, Div hw, Div channels,
                     bool relu) {
  const I groups = (total + kGroup - 1) / kGroup, per_block = kUnroll * blockDim.x;
  for (I g0 = I(blockIdx.x) * per_block + threadIdx.x; g0 < groups; g0 += I(gridDim.x) * per_block) {
    FlatGroup<I> f[kUnroll];
    float v[kUnroll][kGroup];  // (kUnroll, 4): x, then y
#pragma unroll
    for (int u = 0; u < kUnroll; u++) {
      const I g = g0 + u * blockDim.x;
      if (g < groups) {
        f[u] = flat_group(g, total, hw, channels);
        gather_flat<kVector>(x, f[u], v[u]);
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; u++) {
      if (g0 + u * blockDim.x >= groups) break;
      if (f[u].one_channel) {
        const Affine a = affine(f[u].c, mean, invstd, weight, bias);
#pragma unroll
        for (int e = 0; e < kGroup; e++) v[u][e] = normalized(v[u][e], a, relu);
      } else {  // the group crosses a plane: each element its own channel
        I i = f[u].i, c = f[u].c;
#pragma unroll
        for (int e = 0; e < kGroup; e++) {
          v[u][e] = normalized(v[u][e], affine(c, mean, invstd, weight, bias), relu);
          step(i, c, hw.d, channels.d);
        }
      }
      scatter_flat<kVector>(y, f[u], v[u]);
    }
  }
}

// dy masked by a fused ReLU's output r: dy where r > 0, 0 elsewhere (dy as it is without a fused
// ReLU, has_relu false, r ignored). A bf16 output keeps the sign of the float it was rounded
// from, so its mask is the float's (but for positive floats below bf16's smallest step, 2^-133,
// which round to 0 and pass no gradient).
__device__ __forceinline__ float masked(float dy, float r, bool has_relu) { return !has_relu || r > 0.f ? dy : 0.f; }

// ---- Backward -----------------------------------------------------------------------------

// Block b sums chunk (b % chunks) of channel (b / chunks), as stats_partial_kernel:
// partial[b] = (sum dy, sum dy * (x - mean)).
template <typename T, bool kVector, typename Div, typename I = typename Div::Index>
__global__ void __launch_bounds__(kThreads)
    sums_partial_kernel(float* partial /* (C * chunks, 2) */, const T* __restrict__ dy /* (N, C, HW) */,
                        const T* __restrict__ x /* (N, C, HW) */, const float* mean /* (C,) */, I M, I C, Div hw,
                        int64_t chunks, I chunk_groups, const T* __restrict__ relu_out /* (N, C, HW) or null */) {
  __shared__ float scratch[32];
  const I groups = (M + kGroup - 1) / kGroup;
  const bool has_relu = relu_out != nullptr;
  for (int64_t b = blockIdx.x; b < int64_t(C) * chunks; b += gridDim.x) {
    const I c = I(b / chunks), first = I(b % chunks) * chunk_groups, end = min(groups, first + chunk_groups);
    const float mu = mean[c];
    float s = 0.f, sx = 0.f;
    for (I g0 = first + threadIdx.x; g0 < end; g0 += kUnroll * blockDim.x) {
      float d[kUnroll][kGroup], v[kUnroll][kGroup], r[kUnroll][kGroup];  // dy, x, relu_out: (kUnroll, 4)
      int count[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; u++) {
        const I g = g0 + u * blockDim.x;
        count[u] = 0;
        if (g < end) {
          const Group<I> group = channel_group<kVector>(g, c, M, C, hw);
          count[u] = group.count;
          gather<kVector>(dy, group, d[u]);
          gather<kVector>(x, group, v[u]);
          if (has_relu) gather<kVector>(relu_out, group, r[u]);
        }
      }
#pragma unroll
      for (int u = 0; u < kUnroll; u++) {
        for_each_value(count[u], [&](int e) {
          const float g = masked(d[u][e], has_relu ? r[u][e] : 0.f, has_relu);
          s += g;
          sx += g * (v[u][e] - mu);
        });
      }
    }
    s = block_sum(s, scratch);
    sx = block_sum(sx, scratch);
    if (threadIdx.x == 0) {
      partial[2 * b] = s;
      partial[2 * b + 1] = sx;
    }
  }
}

// One warp per channel, as stats_finish_kernel: lane l adds chunks l, l + 32, ... in increasing
// order, then warp_sum's fixed butterfly (lane 0 gets the same tree as warp_merge's: lanes 0 +
// 16, then + (8 + 24), ...; float addition commutes, so every lane gets the same bits); lane 0
// writes sum dy and sum dy * xhat.
__global__ void sums_finish_kernel(float* sum_dy, float* sum_dy_xhat, const float* partial, const float* invstd,
                                   int64_t C, int64_t chunks) {
  const int lane = threadIdx.x & 31;
  LEUKO_WARP_CHANNELS(c, C) {
    float s = 0.f, sx = 0.f;
    for (int64_t k = lane; k < chunks; k += 32) {
      s += partial[2 * (c * chunks + k)];
      sx += partial[2 * (c * chunks + k) + 1];
    }
    s = warp_sum(s);
    sx = warp_sum(sx);
    if (lane == 0) {
      sum_dy[c] = s;
      sum_dy_xhat[c] = sx * invstd[c];
    }
  }
}

// Channel c's factors of dx: training dx = k * (dy - mean_dy - xhat * mean_dy_xhat),
// xhat = (x - mean) * invstd; eval dx = k * dy (the sums and mean are read only in training).
struct InputGrad {
  float k, mean, invstd, mean_dy, mean_dy_xhat;
};
template <typename I>
__device__ __forceinline__ InputGrad input_grad(I c, const float* mean, const float* invstd, const float* weight,
                                                const float* sum_dy, const float* sum_dy_xhat, float inv_m,
                                                bool training) {
  InputGrad q{invstd[c] * (weight != nullptr ? weight[c] : 1.f), 0.f, 0.f, 0.f, 0.f};
  if (training) {
    q.mean = mean[c];
    q.invstd = invstd[c];
    q.mean_dy = sum_dy[c] * inv_m;
    q.mean_dy_xhat = sum_dy_xhat[c] * inv_m;
  }
  return q;
}
__device__ __forceinline__ float input_grad_of(float g, float x, const InputGrad& q, bool training) {
  if (!training) return q.k * g;
  const float xhat = (x - q.mean) * q.invstd;
  return q.k * (g - q.mean_dy - xhat * q.mean_dy_xhat);
}

// dx, the training or eval formula, per flat group as normalize_kernel (__restrict__: dx is a
// fresh tensor). Eval reads neither x nor the sums.
template <typename T, bool kVector, typename Div, typename I = typename Div::Index>
__global__ void __launch_bounds__(kThreads)
    backward_input_kernel(T* __restrict__ dx /* (N, C, HW) */, const T* __restrict__ dy /* (N, C, HW) */,
                          const T* __restrict__ x /* (N, C, HW) */, const float* mean, const float* invstd,
                          const float* weight, const float* sum_dy, const float* sum_dy_xhat, I total, Div hw,
                          Div channels, float inv_m, bool training,
                          const T* __restrict__ relu_out /* (N, C, HW) or null */) {
  const I groups = (total + kGroup - 1) / kGroup, per_block = kUnrollInput * blockDim.x;
  const bool has_relu = relu_out != nullptr;
  for (I g0 = I(blockIdx.x) * per_block + threadIdx.x; g0 < groups; g0 += I(gridDim.x) * per_block) {
    FlatGroup<I> f[kUnrollInput];
    // dy (then dx), x, relu_out: (kUnrollInput, 4) each
    float d[kUnrollInput][kGroup], v[kUnrollInput][kGroup], r[kUnrollInput][kGroup];
#pragma unroll
    for (int u = 0; u < kUnrollInput; u++) {
      const I g = g0 + u * blockDim.x;
      if (g < groups) {
        f[u] = flat_group(g, total, hw, channels);
        gather_flat<kVector>(dy, f[u], d[u]);
        if (training) gather_flat<kVector>(x, f[u], v[u]);
        if (has_relu) gather_flat<kVector>(relu_out, f[u], r[u]);
      }
    }
#pragma unroll
    for (int u = 0; u < kUnrollInput; u++) {
      if (g0 + u * blockDim.x >= groups) break;
      if (f[u].one_channel) {
        const InputGrad q = input_grad(f[u].c, mean, invstd, weight, sum_dy, sum_dy_xhat, inv_m, training);
#pragma unroll
        for (int e = 0; e < kGroup; e++) {
          d[u][e] =
              input_grad_of(masked(d[u][e], has_relu ? r[u][e] : 0.f, has_relu), training ? v[u][e] : 0.f, q, training);
        }
      } else {  // the group crosses a plane: each element its own channel
        I i = f[u].i, c = f[u].c;
#pragma unroll
        for (int e = 0; e < kGroup; e++) {
          const InputGrad q = input_grad(c, mean, invstd, weight, sum_dy, sum_dy_xhat, inv_m, training);
          d[u][e] =
              input_grad_of(masked(d[u][e], has_relu ? r[u][e] : 0.f, has_relu), training ? v[u][e] : 0.f, q, training);
          step(i, c, hw.d, channels.d);
        }
      }
      scatter_flat<kVector>(dx, f[u], d[u]);
    }
  }
}

__global__ void increment_kernel(int64_t* counter) { *counter += 1; }

}  // namespace

int64_t batchnorm_scratch(int64_t N, int64_t C, int64_t HW) { return 3 * C * chunks_for(N, C, HW); }

// ---- Launches, for T = float or __nv_bfloat16 (the public overloads below cast with dev()) ----

namespace {

// Runs launch(vector, hw, channels): `vector` as std::true_type or std::false_type, hw and
// channels the dividers by HW and C, 32-bit when every index of the (N, C, HW) tensor (total
// elements) fits in 31 bits, else 64-bit.
template <typename F>
void with_indexing(bool vector, int64_t total, int64_t HW, int64_t C, F&& launch) {
  HW = std::max<int64_t>(HW, 1);  // an empty tensor indexes nothing, but a divisor must be >= 1
  C = std::max<int64_t>(C, 1);
  if (total < (int64_t(1) << 31)) {
    const Divider<int32_t> hw(HW), channels(C);
    if (vector)
      launch(std::true_type{}, hw, channels);
    else
      launch(std::false_type{}, hw, channels);
  } else {
    const Divider<int64_t> hw(HW), channels(C);
    if (vector)
      launch(std::true_type{}, hw, channels);
    else
      launch(std::false_type{}, hw, channels);
  }
}

// Groups per chunk: a channel's ceil(M / 4) groups cut into `chunks` ranges.
int64_t chunk_groups_for(int64_t M, int64_t chunks) {
  const int64_t groups = (M + kGroup - 1) / kGroup;
  return std::max<int64_t>(1, (groups + chunks - 1) / chunks);
}

template <typename T>
void launch_stats(float* mean, float* invstd, float* running_mean, float* running_var, const T* x, int64_t N, int64_t C,
                  int64_t HW, double momentum, double eps, float* scratch) {
  if (C == 0) return;
  const int64_t chunks = chunks_for(N, C, HW), M = N * HW, chunk_groups = chunk_groups_for(M, chunks);
  const bool vector = HW % kGroup == 0 && group_aligned(x);
  with_indexing(vector, N * C * HW, HW, C, [&](auto vec, auto hw, auto) {
    using I = typename decltype(hw)::Index;
    stats_partial_kernel<T, decltype(vec)::value>
        <<<grid_for(C * chunks), kThreads, 0, stream()>>>(scratch, x, I(M), I(C), hw, chunks, I(chunk_groups));
  });
  LEUKO_CUDA_LAUNCH_CHECK();
  batchnorm_finish_stats(mean, invstd, running_mean, running_var, scratch, C, chunks, momentum, eps);
}

template <typename T>
void launch_normalize(T* y, const T* x, const float* mean, const float* invstd, const float* weight, const float* bias,
                      int64_t N, int64_t C, int64_t HW, bool relu) {
  const int64_t total = N * C * HW;
  if (total == 0) return;
  const int blocks = blocks_for((total + kGroup - 1) / kGroup, kThreads * kUnroll);
  with_indexing(group_aligned(y) && group_aligned(x), total, HW, C, [&](auto vec, auto hw, auto channels) {
    using I = typename decltype(hw)::Index;
    normalize_kernel<T, decltype(vec)::value>
        <<<blocks, kThreads, 0, stream()>>>(y, x, mean, invstd, weight, bias, I(total), hw, channels, relu);
  });
  LEUKO_CUDA_LAUNCH_CHECK();
}

template <typename T>
void launch_backward_sums(float* sum_dy, float* sum_dy_xhat, const T* dy, const T* x, const float* mean,
                          const float* invstd, int64_t N, int64_t C, int64_t HW, float* scratch, const T* relu_out) {
  if (C == 0) return;
  const int64_t chunks = chunks_for(N, C, HW), M = N * HW, chunk_groups = chunk_groups_for(M, chunks);
  const bool vector = HW % kGroup == 0 && group_aligned(dy) && group_aligned(x) && group_aligned(relu_out);
  with_indexing(vector, N * C * HW, HW, C, [&](auto vec, auto hw, auto) {
    using I = typename decltype(hw)::Index;
    sums_partial_kernel<T, decltype(vec)::value><<<grid_for(C * chunks), kThreads, 0, stream()>>>(
        scratch, dy, x, mean, I(M), I(C), hw, chunks, I(chunk_groups), relu_out);
  });
  LEUKO_CUDA_LAUNCH_CHECK();
  batchnorm_finish_sums(sum_dy, sum_dy_xhat, scratch, invstd, C, chunks);
}

template <typename T>
void launch_backward_input(T* dx, const T* dy, const T* x, const float* mean, const float* invstd, const float* weight,
                           const float* sum_dy, const float* sum_dy_xhat, int64_t N, int64_t C, int64_t HW,
                           bool training, const T* relu_out) {
  const int64_t total = N * C * HW;
  if (total == 0) return;
  const int blocks = blocks_for((total + kGroup - 1) / kGroup, kThreads * kUnrollInput);
  const bool vector = group_aligned(dx) && group_aligned(dy) && group_aligned(x) && group_aligned(relu_out);
  with_indexing(vector, total, HW, C, [&](auto vec, auto hw, auto channels) {
    using I = typename decltype(hw)::Index;
    backward_input_kernel<T, decltype(vec)::value>
        <<<blocks, kThreads, 0, stream()>>>(dx, dy, x, mean, invstd, weight, sum_dy, sum_dy_xhat, I(total), hw,
                                            channels, 1.f / float(N * HW), training, relu_out);
  });
  LEUKO_CUDA_LAUNCH_CHECK();
}

}  // namespace

void batchnorm_finish_stats(float* mean, float* invstd, float* running_mean, float* running_var, const float* partial,
                            int64_t C, int64_t chunks, double momentum, double eps) {
  stats_finish_kernel<<<warp_blocks(C), kThreads, 0, stream()>>>(mean, invstd, running_mean, running_var, partial, C,
                                                                 chunks, float(momentum), float(eps));
  LEUKO_CUDA_LAUNCH_CHECK();
}

void batchnorm_finish_sums(float* sum_dy, float* sum_dy_xhat, const float* partial, const float* invstd, int64_t C,
                           int64_t chunks) {
  sums_finish_kernel<<<warp_blocks(C), kThreads, 0, stream()>>>(sum_dy, sum_dy_xhat, partial, invstd, C, chunks);
  LEUKO_CUDA_LAUNCH_CHECK();
}

void batchnorm_stats(float* mean, float* invstd, float* running_mean, float* running_var, const float* x, int64_t N,
                     int64_t C, int64_t HW, double momentum, double eps, float* scratch) {
  launch_stats(mean, invstd, running_mean, running_var, x, N, C, HW, momentum, eps, scratch);
}
void batchnorm_stats(float* mean, float* invstd, float* running_mean, float* running_var, const bf16* x, int64_t N,
                     int64_t C, int64_t HW, double momentum, double eps, float* scratch) {
  launch_stats(mean, invstd, running_mean, running_var, dev(x), N, C, HW, momentum, eps, scratch);
}

void batchnorm_invstd(float* invstd, const float* var, int64_t C, double eps) {
  if (C == 0) return;
  invstd_kernel<<<blocks_for(C), kThreads, 0, stream()>>>(invstd, var, C, float(eps));
  LEUKO_CUDA_LAUNCH_CHECK();
}

void batchnorm_normalize(float* y, const float* x, const float* mean, const float* invstd, const float* weight,
                         const float* bias, int64_t N, int64_t C, int64_t HW, bool relu) {
  launch_normalize(y, x, mean, invstd, weight, bias, N, C, HW, relu);
}
void batchnorm_normalize(bf16* y, const bf16* x, const float* mean, const float* invstd, const float* weight,
                         const float* bias, int64_t N, int64_t C, int64_t HW, bool relu) {
  launch_normalize(dev(y), dev(x), mean, invstd, weight, bias, N, C, HW, relu);
}

void batchnorm_backward_sums(float* sum_dy, float* sum_dy_xhat, const float* dy, const float* x, const float* mean,
                             const float* invstd, int64_t N, int64_t C, int64_t HW, float* scratch,
                             const float* relu_out) {
  launch_backward_sums(sum_dy, sum_dy_xhat, dy, x, mean, invstd, N, C, HW, scratch, relu_out);
}
void batchnorm_backward_sums(float* sum_dy, float* sum_dy_xhat, const bf16* dy, const bf16* x, const float* mean,
                             const float* invstd, int64_t N, int64_t C, int64_t HW, float* scratch,
                             const bf16* relu_out) {
  launch_backward_sums(sum_dy, sum_dy_xhat, dev(dy), dev(x), mean, invstd, N, C, HW, scratch, dev(relu_out));
}

void batchnorm_backward_input(float* dx, const float* dy, const float* x, const float* mean, const float* invstd,
                              const float* weight, const float* sum_dy, const float* sum_dy_xhat, int64_t N, int64_t C,
                              int64_t HW, bool training, const float* relu_out) {
  launch_backward_input(dx, dy, x, mean, invstd, weight, sum_dy, sum_dy_xhat, N, C, HW, training, relu_out);
}
void batchnorm_backward_input(bf16* dx, const bf16* dy, const bf16* x, const float* mean, const float* invstd,
                              const float* weight, const float* sum_dy, const float* sum_dy_xhat, int64_t N, int64_t C,
                              int64_t HW, bool training, const bf16* relu_out) {
  launch_backward_input(dev(dx), dev(dy), dev(x), mean, invstd, weight, sum_dy, sum_dy_xhat, N, C, HW, training,
                        dev(relu_out));
}

void increment(int64_t* counter) {
  increment_kernel<<<1, 1, 0, stream()>>>(counter);
  LEUKO_CUDA_LAUNCH_CHECK();
}

}  // namespace leuko::kernels::cuda
