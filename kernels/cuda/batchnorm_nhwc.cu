// CUDA batch normalisation, channels_last: an (N, C, H, W) x stored (N, H, W, C) viewed as an
// (M, C) matrix, M = N * H * W, channel c its column c (kernels/batchnorm.h's `_nhwc` functions).
// The NCHW kernels are in batchnorm_nchw.cu, what both use in batchnorm_common.cuh (with bf16
// activations).
//
// The kernels are bound by memory bandwidth, and a channel's values are C elements apart, so the
// threads are laid out to read whole rows and to keep many bytes in flight:
//   - A thread handles a group of kG consecutive channels of a row: on the vector path 16 bytes,
//     one float4 (kG = 4) or 8 bf16 in one uint4 (kG = 8), when C is a multiple of kG and every
//     tensor is 16-byte aligned; otherwise kG = 1, one element per load (the scalar path: odd C,
//     C = 3, a view at an odd offset). With one 2-byte bf16 load per thread in flight an SM keeps
//     4 KB of loads in flight where an H200 needs ~20 KB (batchnorm_nchw.cu's head comment).
//   - Each thread loads kUnroll rows (2 to 4) before it uses the first.
//   - A block is 256 threads, tile.x = the groups of a row (a power of 2, at most 32) times
//     tile.y = 256 / tile.x row lanes, so that C = 16 or 64 does not leave lanes idle: in bf16,
//     C = 16 is 2 groups x 128 row lanes, C = 64 is 8 x 32, C >= 256 32 x 8. A warp then reads
//     32 / tile.x rows of tile.x * 16 contiguous bytes each, whole 32-byte sectors.
// Block (blockIdx.x, blockIdx.y) covers the channels of group tile blockIdx.x over row chunk
// blockIdx.y (row_chunks: enough blocks to fill the GPU). Row lane y takes the chunk's rows
// y, y + tile.y, ... in increasing order. The reductions merge the row lanes of a channel in
// shared memory (a fixed tree), write one partial result per (channel, chunk) to scratch, in the
// NCHW kernels' layout, and the NCHW finishing kernels merge the chunks (batchnorm_finish_stats
// and _sums, a warp per channel, as a channel may have hundreds of chunks): the same two passes,
// no atomics, the same bits on every run. The order depends on the shape, the card's SM count
// and the path (vector or scalar: the group size sets the tile), never on anything else.
//
// The statistics use Welford's update with the step delta / n as delta * approx_rcp(n), as
// batchnorm_nchw.cu's welford_add (whose comment has the error argument); the kG channels of a
// thread share n, hence one reciprocal per row. No integer division anywhere: a row's offset is
// r * C + c0.
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "kernels/batchnorm.h"
#include "kernels/cuda/batchnorm_common.cuh"

namespace leuko::kernels::cuda {
namespace {

// Rows a thread loads before it uses the first. The statistics and normalize kernels read one
// tensor; the sums read two or three (dy, x, relu_out), the input gradient three or four, and
// keep 2: kG = 8 bf16 over 2 rows is already 48 floats of loads in registers for three tensors.
constexpr int kUnroll = 4;
constexpr int kUnrollBackward = 2;

// The vector path's group: 16 bytes of T.
template <typename T>
constexpr int vector_group() {
  return int(16 / sizeof(T));
}
// Whether the vector path applies: C a multiple of the group, every tensor (null: absent)
// 16-byte aligned, so that every group's address is.
template <typename T>
bool use_vectors(int64_t C, std::initializer_list<const void*> tensors) {
  if (C % vector_group<T>() != 0) return false;
  for (const void* p : tensors) {
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  }
  return true;
}

// The threads of a block: tile.x across the groups of a row, tile.y row lanes.
struct Tile {
  int x, y;
};
Tile tile_for(int64_t groups) {
  int x = 1;
  while (x < 32 && x < groups) x *= 2;
  return {x, kThreads / x};
}

// How the rows are split: `chunks` ranges of `rows` consecutive rows (the last may be shorter or
// empty), one block per (group tile, chunk). Enough blocks in all to fill the GPU (8 per SM),
// each row lane with at least 2 rows: with 128 row lanes (bf16 C = 16), GoogLeNet's M = 50,176
// still makes 196 blocks, where 8 rows a lane would leave 49 blocks on 132 SMs.
struct Plan {
  Tile tile;
  int64_t tiles, chunks, rows;
};
Plan plan_for(int64_t M, int64_t C, int kG) {
  const int64_t groups = C / kG;  // kG divides C (kG = 1 on the scalar path)
  Plan p;
  p.tile = tile_for(groups);
  p.tiles = (groups + p.tile.x - 1) / p.tile.x;
  const int64_t want_blocks = int64_t(leuko::cuda::sm_count()) * 8;
  const int64_t chunks = std::max<int64_t>(1, want_blocks / p.tiles);
  p.chunks = std::min<int64_t>({chunks, std::max<int64_t>(1, M / (2 * p.tile.y)), 65535});  // gridDim.y's limit
  p.rows = (M + p.chunks - 1) / p.chunks;
  return p;
}
dim3 grid_of(const Plan& p) { return dim3(unsigned(p.tiles), unsigned(p.chunks)); }
dim3 block_of(const Plan& p) { return dim3(unsigned(p.tile.x), unsigned(p.tile.y)); }

// kG values of T at p (aligned to 16 bytes when kG > 1) into float: one load.
template <int kG, typename T>
__device__ __forceinline__ void load_group(const T* p, float (&v)[kG]) {
  if constexpr (kG == 1) {
    v[0] = load(*p);
  } else if constexpr (std::is_same_v<T, float>) {
    static_assert(kG == 4);
    const float4 q = *reinterpret_cast<const float4*>(p);
    v[0] = q.x;
    v[1] = q.y;
    v[2] = q.z;
    v[3] = q.w;
  } else {
    static_assert(kG == 8);
    // Word w holds elements 2w (low half, the lower address) and 2w + 1; a bf16 is the upper
    // half of its float (batchnorm_nchw.cu's load4).
    const uint4 q = *reinterpret_cast<const uint4*>(p);
    const uint32_t word[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
    for (int w = 0; w < 4; w++) {
      v[2 * w] = __uint_as_float(word[w] << 16);
      v[2 * w + 1] = __uint_as_float(word[w] & 0xffff0000u);
    }
  }
}
// kG floats to p (aligned), each rounded once as store<T>: one store.
template <int kG, typename T>
__device__ __forceinline__ void store_group(T* p, const float (&v)[kG]) {
  if constexpr (kG == 1) {
    *p = store<T>(v[0]);
  } else if constexpr (std::is_same_v<T, float>) {
    static_assert(kG == 4);
    *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
  } else {
    static_assert(kG == 8);
    uint32_t b[kG];
#pragma unroll
    for (int e = 0; e < kG; e++) b[e] = __bfloat16_as_ushort(store<__nv_bfloat16>(v[e]));
    *reinterpret_cast<uint4*>(p) = make_uint4(b[0] | b[1] << 16, b[2] | b[3] << 16, b[4] | b[5] << 16, b[6] | b[7] << 16);
  }
}

// The forward kernels' loads: rows r0, r0 + step, ... (kUnroll of them, those before `end`) of
// x (M, C), channels c0 to c0 + kG - 1, all issued before the first is used.
template <int kG, typename T>
__device__ __forceinline__ void load_rows(float (&v)[kUnroll][kG], const T* x, int64_t r0, int64_t step, int64_t end,
                                          int64_t C, int64_t c0) {
#pragma unroll
  for (int u = 0; u < kUnroll; u++) {
    if (r0 + u * step < end) load_group<kG>(x + (r0 + u * step) * C + c0, v[u]);
  }
}

// The first channel of this thread's group (C or more: a spare thread of a partial last tile).
__device__ __forceinline__ int64_t first_channel(int kG) {
  return (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * kG;
}

// dy, or 0 where a fused ReLU's output r is not positive (has_relu false: dy as it is), as
// batchnorm_nchw.cu's masked on loaded values (which says why a bf16 output's mask is the float's).
__device__ __forceinline__ float masked(float dy, float r, bool has_relu) { return !has_relu || r > 0.f ? dy : 0.f; }

// Block (tile, chunk) reduces its rows of its channels to partial[c, chunk] = (n, mean, m2): each
// thread a Welford triple per channel over its rows (one n for its kG channels), then the row
// lanes merged in shared memory.
template <typename T, int kG>
__global__ void __launch_bounds__(kThreads)
    stats_partial_nhwc_kernel(float* partial /* (C, chunks, 3) */, const T* __restrict__ x /* (M, C) */, int64_t M,
                              int64_t C, int64_t rows) {
  __shared__ Welford lane[kThreads * kG];  // (tile.y, tile.x, kG)
  const int64_t c0 = first_channel(kG), chunk = blockIdx.y, chunks = gridDim.y, step = blockDim.y;
  const int64_t begin = chunk * rows, end = min(M, begin + rows);
  float n = 0.f, mean[kG], m2[kG];
#pragma unroll
  for (int e = 0; e < kG; e++) mean[e] = m2[e] = 0.f;
  if (c0 < C) {  // a partial last tile: its spare threads add nothing, but join the merge below
    for (int64_t r0 = begin + threadIdx.y; r0 < end; r0 += kUnroll * step) {
      float v[kUnroll][kG];  // (kUnroll, kG): all loaded before the first is used
      load_rows<kG>(v, x, r0, step, end, C, c0);
#pragma unroll
      for (int u = 0; u < kUnroll; u++) {
        if (r0 + u * step >= end) break;
        n += 1.f;
        const float rn = approx_rcp(n);
#pragma unroll
        for (int e = 0; e < kG; e++) {  // welford_add, the first value the mean as it is
          const float delta = v[u][e] - mean[e];
          mean[e] = n == 1.f ? v[u][e] : mean[e] + delta * rn;
          m2[e] += delta * (v[u][e] - mean[e]);
        }
      }
    }
  }
  const int me = (threadIdx.y * blockDim.x + threadIdx.x) * kG, below = (blockDim.y / 2) * blockDim.x * kG;
#pragma unroll
  for (int e = 0; e < kG; e++) lane[me + e] = Welford{n, mean[e], m2[e]};
  // Row lanes y and y + half merged into y, half = tile.y / 2, ..., 1: a fixed tree.
  for (int half = blockDim.y / 2, off = below; half > 0; half >>= 1, off >>= 1) {
    __syncthreads();
    if (int(threadIdx.y) < half) {
#pragma unroll
      for (int e = 0; e < kG; e++) lane[me + e] = merge(lane[me + e], lane[me + off + e]);
    }
  }
  if (threadIdx.y == 0 && c0 < C) {  // row lane 0 wrote its own result last: no barrier needed
#pragma unroll
    for (int e = 0; e < kG; e++) {
      const Welford t = lane[me + e];
      float* p = partial + 3 * ((c0 + e) * chunks + chunk);
      p[0] = t.n;
      p[1] = t.mean;
      p[2] = t.m2;
    }
  }
}

// y = (x - mean) * invstd * weight + bias (then the ReLU), as normalize_kernel; each thread
// keeps its channels' scale and shift and walks its rows. __restrict__: y is never x.
template <typename T, int kG>
__global__ void __launch_bounds__(kThreads)
    normalize_nhwc_kernel(T* __restrict__ y /* (M, C) */, const T* __restrict__ x /* (M, C) */, const float* mean,
                          const float* invstd, const float* weight, const float* bias, int64_t M, int64_t C,
                          int64_t rows, bool relu) {
  const int64_t c0 = first_channel(kG), step = blockDim.y;
  if (c0 >= C) return;
  float mu[kG], scale[kG], shift[kG];
#pragma unroll
  for (int e = 0; e < kG; e++) {
    mu[e] = mean[c0 + e];
    scale[e] = invstd[c0 + e] * (weight != nullptr ? weight[c0 + e] : 1.f);
    shift[e] = bias != nullptr ? bias[c0 + e] : 0.f;
  }
  const int64_t begin = int64_t(blockIdx.y) * rows, end = min(M, begin + rows);
  for (int64_t r0 = begin + threadIdx.y; r0 < end; r0 += kUnroll * step) {
    float v[kUnroll][kG];  // (kUnroll, kG): x, then y
    load_rows<kG>(v, x, r0, step, end, C, c0);
#pragma unroll
    for (int u = 0; u < kUnroll; u++) {
      if (r0 + u * step >= end) break;
#pragma unroll
      for (int e = 0; e < kG; e++) {
        const float t = (v[u][e] - mu[e]) * scale[e] + shift[e];
        v[u][e] = !relu || !(t <= 0.f) ? t : 0.f;  // NaN stays NaN, as normalize_kernel
      }
      store_group<kG>(y + (r0 + u * step) * C + c0, v[u]);
    }
  }
}

// The backward kernels' loads: rows r0, r0 + step, ... (kUnrollBackward of them, those before
// `end`) of dy, x and relu_out, channels c0 .. c0 + kG - 1, all issued before any is used; x only
// with with_x (eval's input gradient needs none), relu_out only with with_relu (a fused ReLU).
template <int kG, typename T>
__device__ __forceinline__ void load_backward_rows(float (&g)[kUnrollBackward][kG], float (&v)[kUnrollBackward][kG],
                                                   float (&r)[kUnrollBackward][kG], const T* dy, const T* x,
                                                   const T* relu_out, bool with_x, bool with_relu, int64_t r0,
                                                   int64_t step, int64_t end, int64_t C, int64_t c0) {
#pragma unroll
  for (int u = 0; u < kUnrollBackward; u++) {
    const int64_t o = (r0 + u * step) * C + c0;
    if (r0 + u * step < end) {
      load_group<kG>(dy + o, g[u]);
      if (with_x) load_group<kG>(x + o, v[u]);
      if (with_relu) load_group<kG>(relu_out + o, r[u]);
    }
  }
}

// Block (tile, chunk): partial[c, chunk] = (sum dy, sum dy * (x - mean)) over its rows.
template <typename T, int kG>
__global__ void __launch_bounds__(kThreads)
    sums_partial_nhwc_kernel(float* partial /* (C, chunks, 2) */, const T* __restrict__ dy /* (M, C) */,
                             const T* __restrict__ x /* (M, C) */, const float* mean /* (C,) */, int64_t M, int64_t C,
                             int64_t rows, const T* __restrict__ relu_out /* (M, C) or null */) {
  __shared__ float2 lane[kThreads * kG];  // (tile.y, tile.x, kG): (sum dy, sum dy * (x - mean))
  const int64_t c0 = first_channel(kG), chunk = blockIdx.y, chunks = gridDim.y, step = blockDim.y;
  const int64_t begin = chunk * rows, end = min(M, begin + rows);
  const bool has_relu = relu_out != nullptr;
  float s[kG], sx[kG];
#pragma unroll
  for (int e = 0; e < kG; e++) s[e] = sx[e] = 0.f;
  if (c0 < C) {
    float mu[kG];
#pragma unroll
    for (int e = 0; e < kG; e++) mu[e] = mean[c0 + e];
    for (int64_t r0 = begin + threadIdx.y; r0 < end; r0 += kUnrollBackward * step) {
      float g[kUnrollBackward][kG], v[kUnrollBackward][kG], r[kUnrollBackward][kG];  // dy, x, relu_out
      load_backward_rows<kG>(g, v, r, dy, x, relu_out, true, has_relu, r0, step, end, C, c0);
#pragma unroll
      for (int u = 0; u < kUnrollBackward; u++) {
        if (r0 + u * step >= end) break;
#pragma unroll
        for (int e = 0; e < kG; e++) {
          const float m = masked(g[u][e], has_relu ? r[u][e] : 0.f, has_relu);
          s[e] += m;
          sx[e] += m * (v[u][e] - mu[e]);
        }
      }
    }
  }
  const int me = (threadIdx.y * blockDim.x + threadIdx.x) * kG, below = (blockDim.y / 2) * blockDim.x * kG;
#pragma unroll
  for (int e = 0; e < kG; e++) lane[me + e] = make_float2(s[e], sx[e]);
  for (int half = blockDim.y / 2, off = below; half > 0; half >>= 1, off >>= 1) {
    __syncthreads();
    if (int(threadIdx.y) < half) {
#pragma unroll
      for (int e = 0; e < kG; e++) {
        const float2 b = lane[me + off + e];
        lane[me + e].x += b.x;
        lane[me + e].y += b.y;
      }
    }
  }
  if (threadIdx.y == 0 && c0 < C) {
#pragma unroll
    for (int e = 0; e < kG; e++) {
      const float2 t = lane[me + e];
      partial[2 * ((c0 + e) * chunks + chunk)] = t.x;
      partial[2 * ((c0 + e) * chunks + chunk) + 1] = t.y;
    }
  }
}

// dx, as backward_input_kernel, with each thread's per-channel factors computed once
// (__restrict__ as normalize_nhwc_kernel: dx is a fresh tensor).
template <typename T, int kG>
__global__ void __launch_bounds__(kThreads)
    backward_input_nhwc_kernel(T* __restrict__ dx /* (M, C) */, const T* __restrict__ dy /* (M, C) */,
                               const T* __restrict__ x /* (M, C) */, const float* mean, const float* invstd,
                               const float* weight, const float* sum_dy, const float* sum_dy_xhat, int64_t M, int64_t C,
                               int64_t rows, float inv_m, bool training,
                               const T* __restrict__ relu_out /* (M, C) or null */) {
  const int64_t c0 = first_channel(kG), step = blockDim.y;
  if (c0 >= C) return;
  const bool has_relu = relu_out != nullptr;
  // k = invstd * weight; in training also (mean, invstd, mean dy, mean dy * xhat) per channel.
  // The sums exist only in training (eval's dx is affine and the caller may skip them).
  float k[kG], mu[kG], is[kG], mean_dy[kG], mean_dy_xhat[kG];
#pragma unroll
  for (int e = 0; e < kG; e++) {
    const int64_t c = c0 + e;
    k[e] = invstd[c] * (weight != nullptr ? weight[c] : 1.f);
    mu[e] = training ? mean[c] : 0.f;
    is[e] = training ? invstd[c] : 0.f;
    mean_dy[e] = training ? sum_dy[c] * inv_m : 0.f;
    mean_dy_xhat[e] = training ? sum_dy_xhat[c] * inv_m : 0.f;
  }
  const int64_t begin = int64_t(blockIdx.y) * rows, end = min(M, begin + rows);
  for (int64_t r0 = begin + threadIdx.y; r0 < end; r0 += kUnrollBackward * step) {
    float g[kUnrollBackward][kG], v[kUnrollBackward][kG], r[kUnrollBackward][kG];  // dy (then dx), x, relu_out
    load_backward_rows<kG>(g, v, r, dy, x, relu_out, training, has_relu, r0, step, end, C, c0);
#pragma unroll
    for (int u = 0; u < kUnrollBackward; u++) {
      if (r0 + u * step >= end) break;
#pragma unroll
      for (int e = 0; e < kG; e++) {
        const float m = masked(g[u][e], has_relu ? r[u][e] : 0.f, has_relu);
        if (training) {
          const float xhat = (v[u][e] - mu[e]) * is[e];
          g[u][e] = k[e] * (m - mean_dy[e] - xhat * mean_dy_xhat[e]);
        } else {
          g[u][e] = k[e] * m;
        }
      }
      store_group<kG>(dx + (r0 + u * step) * C + c0, g[u]);
    }
  }
}

}  // namespace

// The most chunks any path takes for (M, C): the scratch does not know the dtype or alignment.
int64_t batchnorm_scratch_nhwc(int64_t M, int64_t C) {
  int64_t chunks = 1;
  for (int kG : {1, 4, 8}) {
    if (C % kG == 0) chunks = std::max(chunks, plan_for(M, C, kG).chunks);
  }
  return 3 * C * chunks;
}

// ---- Launches, for T = float or __nv_bfloat16 (the public overloads below cast with dev()) ----

namespace {

// channels_last: the partial kernels above, then the NCHW finishing kernels on their scratch.
template <typename T, int kG>
void stats_nhwc(float* mean, float* invstd, float* running_mean, float* running_var, const T* x, int64_t M, int64_t C,
                double momentum, double eps, float* scratch) {
  const Plan p = plan_for(M, C, kG);
  stats_partial_nhwc_kernel<T, kG><<<grid_of(p), block_of(p), 0, stream()>>>(scratch, x, M, C, p.rows);
  LEUKO_CUDA_LAUNCH_CHECK();
  batchnorm_finish_stats(mean, invstd, running_mean, running_var, scratch, C, p.chunks, momentum, eps);
}
template <typename T>
void launch_stats_nhwc(float* mean, float* invstd, float* running_mean, float* running_var, const T* x, int64_t M,
                       int64_t C, double momentum, double eps, float* scratch) {
  if (C == 0) return;
  if (use_vectors<T>(C, {x})) {
    stats_nhwc<T, vector_group<T>()>(mean, invstd, running_mean, running_var, x, M, C, momentum, eps, scratch);
  } else {
    stats_nhwc<T, 1>(mean, invstd, running_mean, running_var, x, M, C, momentum, eps, scratch);
  }
}

template <typename T, int kG>
void normalize_nhwc(T* y, const T* x, const float* mean, const float* invstd, const float* weight, const float* bias,
                    int64_t M, int64_t C, bool relu) {
  const Plan p = plan_for(M, C, kG);
  normalize_nhwc_kernel<T, kG>
      <<<grid_of(p), block_of(p), 0, stream()>>>(y, x, mean, invstd, weight, bias, M, C, p.rows, relu);
  LEUKO_CUDA_LAUNCH_CHECK();
}
template <typename T>
void launch_normalize_nhwc(T* y, const T* x, const float* mean, const float* invstd, const float* weight,
                           const float* bias, int64_t M, int64_t C, bool relu) {
  if (M * C == 0) return;
  if (use_vectors<T>(C, {y, x})) {
    normalize_nhwc<T, vector_group<T>()>(y, x, mean, invstd, weight, bias, M, C, relu);
  } else {
    normalize_nhwc<T, 1>(y, x, mean, invstd, weight, bias, M, C, relu);
  }
}

template <typename T, int kG>
void backward_sums_nhwc(float* sum_dy, float* sum_dy_xhat, const T* dy, const T* x, const float* mean,
                        const float* invstd, int64_t M, int64_t C, float* scratch, const T* relu_out) {
  const Plan p = plan_for(M, C, kG);
  sums_partial_nhwc_kernel<T, kG><<<grid_of(p), block_of(p), 0, stream()>>>(scratch, dy, x, mean, M, C, p.rows,
                                                                            relu_out);
  LEUKO_CUDA_LAUNCH_CHECK();
  batchnorm_finish_sums(sum_dy, sum_dy_xhat, scratch, invstd, C, p.chunks);
}
template <typename T>
void launch_backward_sums_nhwc(float* sum_dy, float* sum_dy_xhat, const T* dy, const T* x, const float* mean,
                               const float* invstd, int64_t M, int64_t C, float* scratch, const T* relu_out) {
  if (C == 0) return;
  if (use_vectors<T>(C, {dy, x, relu_out})) {
    backward_sums_nhwc<T, vector_group<T>()>(sum_dy, sum_dy_xhat, dy, x, mean, invstd, M, C, scratch, relu_out);
  } else {
    backward_sums_nhwc<T, 1>(sum_dy, sum_dy_xhat, dy, x, mean, invstd, M, C, scratch, relu_out);
  }
}

template <typename T, int kG>
void backward_input_nhwc(T* dx, const T* dy, const T* x, const float* mean, const float* invstd, const float* weight,
                         const float* sum_dy, const float* sum_dy_xhat, int64_t M, int64_t C, bool training,
                         const T* relu_out) {
  const Plan p = plan_for(M, C, kG);
  backward_input_nhwc_kernel<T, kG><<<grid_of(p), block_of(p), 0, stream()>>>(
      dx, dy, x, mean, invstd, weight, sum_dy, sum_dy_xhat, M, C, p.rows, 1.f / float(M), training, relu_out);
  LEUKO_CUDA_LAUNCH_CHECK();
}
template <typename T>
void launch_backward_input_nhwc(T* dx, const T* dy, const T* x, const float* mean, const float* invstd,
                                const float* weight, const float* sum_dy, const float* sum_dy_xhat, int64_t M,
                                int64_t C, bool training, const T* relu_out) {
  if (M * C == 0) return;
  if (use_vectors<T>(C, {dx, dy, x, relu_out})) {
    backward_input_nhwc<T, vector_group<T>()>(dx, dy, x, mean, invstd, weight, sum_dy, sum_dy_xhat, M, C, training,
                                              relu_out);
  } else {
    backward_input_nhwc<T, 1>(dx, dy, x, mean, invstd, weight, sum_dy, sum_dy_xhat, M, C, training, relu_out);
  }
}

}  // namespace

void batchnorm_stats_nhwc(float* mean, float* invstd, float* running_mean, float* running_var, const float* x,
                          int64_t M, int64_t C, double momentum, double eps, float* scratch) {
  launch_stats_nhwc(mean, invstd, running_mean, running_var, x, M, C, momentum, eps, scratch);
}
void batchnorm_stats_nhwc(float* mean, float* invstd, float* running_mean, float* running_var, const bf16* x, int64_t M,
                          int64_t C, double momentum, double eps, float* scratch) {
  launch_stats_nhwc(mean, invstd, running_mean, running_var, dev(x), M, C, momentum, eps, scratch);
}

void batchnorm_normalize_nhwc(float* y, const float* x, const float* mean, const float* invstd, const float* weight,
                              const float* bias, int64_t M, int64_t C, bool relu) {
  launch_normalize_nhwc(y, x, mean, invstd, weight, bias, M, C, relu);
}
void batchnorm_normalize_nhwc(bf16* y, const bf16* x, const float* mean, const float* invstd, const float* weight,
                              const float* bias, int64_t M, int64_t C, bool relu) {
  launch_normalize_nhwc(dev(y), dev(x), mean, invstd, weight, bias, M, C, relu);
}

void batchnorm_backward_sums_nhwc(float* sum_dy, float* sum_dy_xhat, const float* dy, const float* x, const float* mean,
                                  const float* invstd, int64_t M, int64_t C, float* scratch, const float* relu_out) {
  launch_backward_sums_nhwc(sum_dy, sum_dy_xhat, dy, x, mean, invstd, M, C, scratch, relu_out);
}
void batchnorm_backward_sums_nhwc(float* sum_dy, float* sum_dy_xhat, const bf16* dy, const bf16* x, const float* mean,
                                  const float* invstd, int64_t M, int64_t C, float* scratch, const bf16* relu_out) {
  launch_backward_sums_nhwc(sum_dy, sum_dy_xhat, dev(dy), dev(x), mean, invstd, M, C, scratch, dev(relu_out));
}

void batchnorm_backward_input_nhwc(float* dx, const float* dy, const float* x, const float* mean, const float* invstd,
                                   const float* weight, const float* sum_dy, const float* sum_dy_xhat, int64_t M,
                                   int64_t C, bool training, const float* relu_out) {
  launch_backward_input_nhwc(dx, dy, x, mean, invstd, weight, sum_dy, sum_dy_xhat, M, C, training, relu_out);
}
void batchnorm_backward_input_nhwc(bf16* dx, const bf16* dy, const bf16* x, const float* mean, const float* invstd,
                                   const float* weight, const float* sum_dy, const float* sum_dy_xhat, int64_t M,
                                   int64_t C, bool training, const bf16* relu_out) {
  launch_backward_input_nhwc(dev(dx), dev(dy), dev(x), mean, invstd, weight, sum_dy, sum_dy_xhat, M, C, training,
                             dev(relu_out));
}

}  // namespace leuko::kernels::cuda
