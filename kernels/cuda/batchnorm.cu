// CUDA batch normalisation.
//
// Per-channel reductions (the statistics forward, the two sums backward) split each channel's
// M = N * HW values into `chunks` contiguous ranges, one block of 256 threads each, so that
// even a few channels fill the GPU. Every thread reduces its strided values, the block merges
// its threads in a fixed tree (warp shuffles, then the warps' results), and thread 0 writes the
// block's partial result to scratch. A second kernel, one warp per channel, merges the chunks
// in a fixed order (lane l the chunks l, l + 32, ... in turn, then the 32 lanes in a shuffle
// tree) and finishes. No atomics anywhere: the same input gives the same bits.
//
// The forward statistics use Welford's running (count, mean, M2) per thread and Chan's
// formula to merge them: one pass over x, and no cancellation of E[x^2] - E[x]^2 in float32.
//
// bf16 activations: the kernels are templated on T, the storage type of the activations (x, y,
// dy, dx, the fused ReLU's output): float, or __nv_bfloat16 under bf16 activations. They load
// into float, compute in float and store with one rounding (common.cuh's load/store<T>);
// everything per channel (mean, invstd, weight, bias, running statistics, sums, scratch) is
// float32 either way, as PyTorch's batch norm keeps its statistics in float for half inputs.
// For T = float, load and store are the identity: the float32 kernels are unchanged.
//
// channels_last (the `_nhwc` kernels below): x is an (M, C) matrix, channel c its column c. A
// channel's values are C elements apart, so one thread per channel walking down its column would
// read one element per 32-byte sector. Instead a block is a 32 x 8 tile of threads: threadIdx.x
// picks one of 32 consecutive channels, so a warp reads 32 consecutive elements of one row (128
// bytes in float32, 64 in bf16: whole sectors), and threadIdx.y one of 8 rows, stepping by 8 rows.
// Block (blockIdx.x, blockIdx.y) covers channel tile blockIdx.x over row chunk blockIdx.y. The
// reductions merge the 8 row lanes of a channel in shared memory (a fixed tree), write one
// partial result per (channel, chunk) to scratch, in the NCHW kernels' layout, and the NCHW
// finishing kernels merge the chunks: the same two passes, no atomics, the same bits on every
// run. Here a channel has up to a few hundred chunks (8 blocks per SM over C / 32 channel
// tiles: 528 for C = 64 on 132 SMs), hence a warp per channel in the finishing kernels: a
// thread per channel would merge them in one serial chain of hundreds of dependent divisions.
#include <algorithm>

#include "kernels/batchnorm.h"
#include "kernels/cuda/common.cuh"

namespace leuko::kernels::cuda {
namespace {

// (count, mean, sum of squared deviations) of a set of values.
struct Welford {
  float n, mean, m2;
};

// The statistics of the union of two sets (Chan et al.).
__device__ __forceinline__ Welford merge(const Welford& a, const Welford& b) {
  // An empty side (padding lanes, a thread or chunk with no values) returns the other as it
  // is: the formula below would give the same bits, but for |mean| above ~1e17, where
  // delta * delta * n overflows to inf and inf * 0 would turn the statistics into NaN.
  if (b.n == 0.f) return a;
  if (a.n == 0.f) return b;
  const float n = a.n + b.n;
  const float delta = b.mean - a.mean, fb = b.n / n;
  return {n, a.mean + delta * fb, a.m2 + b.m2 + delta * delta * a.n * fb};
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

// Walks channel c's values j = first, first + step, ... where j = n * HW + i indexes the
// channel's (N, HW) values, keeping (n, i) without a 64-bit division per value.
struct ChannelWalk {
  int64_t n, i, dn, di;
  __device__ ChannelWalk(int64_t first, int64_t step, int64_t HW)
      : n(first / HW), i(first % HW), dn(step / HW), di(step % HW) {}
  __device__ int64_t offset(int64_t c, int64_t C, int64_t HW) const { return (n * C + c) * HW + i; }
  __device__ void next(int64_t HW) {
    n += dn;
    i += di;
    if (i >= HW) {
      i -= HW;
      n++;
    }
  }
};

// How many blocks share one channel: enough blocks in all to fill the GPU (8 per SM), each
// with at least 4096 values.
int64_t chunks_for(int64_t N, int64_t C, int64_t HW) {
  const int64_t want_blocks = int64_t(leuko::cuda::sm_count()) * 8;
  const int64_t chunks = std::max<int64_t>(1, want_blocks / std::max<int64_t>(1, C));
  return std::min<int64_t>(chunks, std::max<int64_t>(1, N * HW / 4096));
}

int grid_for(int64_t blocks) { return int(std::min<int64_t>(std::max<int64_t>(blocks, 1), 65535LL * 16)); }

// ---- Forward ------------------------------------------------------------------------------

// Block b reduces chunk (b % chunks) of channel (b / chunks) to partial[b] = (n, mean, m2).
template <typename T>
__global__ void stats_partial_kernel(float* partial /* (C * chunks, 3) */, const T* x /* (N, C, HW) */, int64_t N,
                                     int64_t C, int64_t HW, int64_t chunks) {
  __shared__ Welford scratch[32];
  const int64_t M = N * HW, chunk_len = (M + chunks - 1) / chunks;
  for (int64_t b = blockIdx.x; b < C * chunks; b += gridDim.x) {  // uniform across the block
    const int64_t c = b / chunks, begin = (b % chunks) * chunk_len, end = min(M, begin + chunk_len);
    Welford w{0.f, 0.f, 0.f};
    ChannelWalk walk(begin + threadIdx.x, blockDim.x, HW);
    for (int64_t j = begin + threadIdx.x; j < end; j += blockDim.x) {
      const float v = load(x[walk.offset(c, C, HW)]);
      w.n += 1.f;
      const float delta = v - w.mean;
      w.mean += delta / w.n;
      w.m2 += delta * (v - w.mean);
      walk.next(HW);
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

// y = (x - mean) * invstd * weight + bias (then the ReLU), in float, rounded to T once.
template <typename T>
__global__ void normalize_kernel(T* y /* (N, C, HW) */, const T* x /* (N, C, HW) */, const float* mean,
                                 const float* invstd, const float* weight, const float* bias, int64_t total, int64_t C,
                                 int64_t HW, bool relu) {
  LEUKO_GRID_STRIDE(idx, total) {
    const int64_t c = (idx / HW) % C;
    const float scale = invstd[c] * (weight != nullptr ? weight[c] : 1.f);
    const float v = (load(x[idx]) - mean[c]) * scale + (bias != nullptr ? bias[c] : 0.f);
    y[idx] = store<T>(!relu || !(v <= 0.f) ? v : 0.f);  // a fused ReLU as relu_forward: NaN stays NaN
  }
}

// dy, or dy masked by a fused ReLU's output (0 where the output is not positive). A bf16
// output keeps the sign of the float it was rounded from, so its mask is the float's (but for
// positive floats below bf16's smallest step, 2^-133, which round to 0 and pass no gradient).
template <typename T>
__device__ __forceinline__ float masked(const T* dy, const T* relu_out, int64_t i) {
  return relu_out == nullptr || load(relu_out[i]) > 0.f ? load(dy[i]) : 0.f;
}

// ---- Backward -----------------------------------------------------------------------------

// Block b sums chunk (b % chunks) of channel (b / chunks): partial[b] = (sum dy, sum dy * (x - mean)).
template <typename T>
__global__ void sums_partial_kernel(float* partial /* (C * chunks, 2) */, const T* dy /* (N, C, HW) */,
                                    const T* x /* (N, C, HW) */, const float* mean /* (C,) */, int64_t N, int64_t C,
                                    int64_t HW, int64_t chunks, const T* relu_out /* (N, C, HW) or null */) {
  __shared__ float scratch[32];
  const int64_t M = N * HW, chunk_len = (M + chunks - 1) / chunks;
  for (int64_t b = blockIdx.x; b < C * chunks; b += gridDim.x) {
    const int64_t c = b / chunks, begin = (b % chunks) * chunk_len, end = min(M, begin + chunk_len);
    const float mu = mean[c];
    float s = 0.f, sx = 0.f;
    ChannelWalk walk(begin + threadIdx.x, blockDim.x, HW);
    for (int64_t j = begin + threadIdx.x; j < end; j += blockDim.x) {
      const int64_t o = walk.offset(c, C, HW);
      const float g = masked(dy, relu_out, o);
      s += g;
      sx += g * (load(x[o]) - mu);
      walk.next(HW);
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

template <typename T>
__global__ void backward_input_kernel(T* dx /* (N, C, HW) */, const T* dy /* (N, C, HW) */, const T* x /* (N, C, HW) */,
                                      const float* mean, const float* invstd, const float* weight, const float* sum_dy,
                                      const float* sum_dy_xhat, int64_t total, int64_t C, int64_t HW, float inv_m,
                                      bool training, const T* relu_out /* (N, C, HW) or null */) {
  LEUKO_GRID_STRIDE(idx, total) {
    const int64_t c = (idx / HW) % C;
    const float k = invstd[c] * (weight != nullptr ? weight[c] : 1.f);
    if (training) {
      const float xhat = (load(x[idx]) - mean[c]) * invstd[c];
      dx[idx] = store<T>(k * (masked(dy, relu_out, idx) - sum_dy[c] * inv_m - xhat * (sum_dy_xhat[c] * inv_m)));
    } else {
      dx[idx] = store<T>(k * masked(dy, relu_out, idx));
    }
  }
}

// ---- channels_last (NHWC): x viewed as (M, C) ------------------------------------------------

constexpr int kTileC = 32;    // channels per block: threadIdx.x, one warp across a row
constexpr int kTileRows = 8;  // row lanes per block: threadIdx.y (kTileC * kTileRows = kThreads)

// How the rows are split: `chunks` ranges of `rows` consecutive rows (the last may be shorter or
// empty), one block per (channel tile, chunk). Enough blocks in all to fill the GPU (8 per SM),
// each with at least 128 rows (16 per thread, 4096 values per block as chunks_for).
struct RowChunks {
  int64_t chunks, rows;
};
RowChunks row_chunks(int64_t M, int64_t C) {
  const int64_t tiles = (C + kTileC - 1) / kTileC;
  const int64_t want_blocks = int64_t(leuko::cuda::sm_count()) * 8;
  int64_t chunks = std::max<int64_t>(1, want_blocks / std::max<int64_t>(1, tiles));
  chunks = std::min<int64_t>({chunks, std::max<int64_t>(1, M / 128), 65535});  // 65535: gridDim.y's limit
  return {chunks, (M + chunks - 1) / chunks};
}
dim3 tile_grid(int64_t C, const RowChunks& rc) {
  return dim3(unsigned((C + kTileC - 1) / kTileC), unsigned(rc.chunks));
}
const dim3 kTileBlock(kTileC, kTileRows);

// Block (tile, chunk) reduces its rows of channels tile * 32 .. + 31 to partial[c, chunk] =
// (n, mean, m2): each thread a Welford triple over its rows, then the 8 row lanes merged.
template <typename T>
__global__ void stats_partial_nhwc_kernel(float* partial /* (C, chunks, 3) */, const T* x /* (M, C) */, int64_t M,
                                          int64_t C, int64_t rows) {
  __shared__ Welford lane[kTileRows][kTileC];
  const int64_t c = int64_t(blockIdx.x) * kTileC + threadIdx.x, chunk = blockIdx.y, chunks = gridDim.y;
  const int64_t begin = chunk * rows, end = min(M, begin + rows);
  Welford w{0.f, 0.f, 0.f};
  if (c < C) {  // a partial last tile: its spare threads add nothing, but join the merge below
    for (int64_t r = begin + threadIdx.y; r < end; r += kTileRows) {
      const float v = load(x[r * C + c]);
      w.n += 1.f;
      const float delta = v - w.mean;
      w.mean += delta / w.n;
      w.m2 += delta * (v - w.mean);
    }
  }
  lane[threadIdx.y][threadIdx.x] = w;
  for (int half = kTileRows / 2; half > 0; half >>= 1) {  // lanes 0..7 -> 0..3 -> 0..1 -> 0
    __syncthreads();
    if (threadIdx.y < half) {
      lane[threadIdx.y][threadIdx.x] = merge(lane[threadIdx.y][threadIdx.x], lane[threadIdx.y + half][threadIdx.x]);
    }
  }
  if (threadIdx.y == 0 && c < C) {  // lane 0 wrote its own result last: no barrier needed
    const Welford t = lane[0][threadIdx.x];
    float* p = partial + 3 * (c * chunks + chunk);
    p[0] = t.n;
    p[1] = t.mean;
    p[2] = t.m2;
  }
}

// y = (x - mean) * invstd * weight + bias (then the ReLU), as normalize_kernel; each thread
// keeps its channel's scale and shift and walks its rows. __restrict__ (y is never x): the
// compiler may then issue the loads of several rows before the first store, keeping more
// memory requests in flight per thread.
template <typename T>
__global__ void normalize_nhwc_kernel(T* __restrict__ y /* (M, C) */, const T* __restrict__ x /* (M, C) */,
                                      const float* mean, const float* invstd, const float* weight, const float* bias,
                                      int64_t M, int64_t C, int64_t rows, bool relu) {
  const int64_t c = int64_t(blockIdx.x) * kTileC + threadIdx.x;
  if (c >= C) return;
  const float mu = mean[c], scale = invstd[c] * (weight != nullptr ? weight[c] : 1.f);
  const float shift = bias != nullptr ? bias[c] : 0.f;
  const int64_t begin = int64_t(blockIdx.y) * rows, end = min(M, begin + rows);
  for (int64_t r = begin + threadIdx.y; r < end; r += kTileRows) {
    const int64_t o = r * C + c;
    const float v = (load(x[o]) - mu) * scale + shift;
    y[o] = store<T>(!relu || !(v <= 0.f) ? v : 0.f);  // NaN stays NaN, as normalize_kernel
  }
}

// Block (tile, chunk): partial[c, chunk] = (sum dy, sum dy * (x - mean)) over its rows.
template <typename T>
__global__ void sums_partial_nhwc_kernel(float* partial /* (C, chunks, 2) */, const T* dy /* (M, C) */,
                                         const T* x /* (M, C) */, const float* mean /* (C,) */, int64_t M, int64_t C,
                                         int64_t rows, const T* relu_out /* (M, C) or null */) {
  __shared__ float2 lane[kTileRows][kTileC];  // (sum dy, sum dy * (x - mean)) per thread
  const int64_t c = int64_t(blockIdx.x) * kTileC + threadIdx.x, chunk = blockIdx.y, chunks = gridDim.y;
  const int64_t begin = chunk * rows, end = min(M, begin + rows);
  float s = 0.f, sx = 0.f;
  if (c < C) {
    const float mu = mean[c];
    for (int64_t r = begin + threadIdx.y; r < end; r += kTileRows) {
      const int64_t o = r * C + c;
      const float g = masked(dy, relu_out, o);
      s += g;
      sx += g * (load(x[o]) - mu);
    }
  }
  lane[threadIdx.y][threadIdx.x] = make_float2(s, sx);
  for (int half = kTileRows / 2; half > 0; half >>= 1) {
    __syncthreads();
    if (threadIdx.y < half) {
      float2& a = lane[threadIdx.y][threadIdx.x];
      const float2 b = lane[threadIdx.y + half][threadIdx.x];
      a.x += b.x;
      a.y += b.y;
    }
  }
  if (threadIdx.y == 0 && c < C) {
    const float2 t = lane[0][threadIdx.x];
    partial[2 * (c * chunks + chunk)] = t.x;
    partial[2 * (c * chunks + chunk) + 1] = t.y;
  }
}

// dx, as backward_input_kernel, with each thread's per-channel factors computed once
// (__restrict__ as normalize_nhwc_kernel: dx is a fresh tensor).
template <typename T>
__global__ void backward_input_nhwc_kernel(T* __restrict__ dx /* (M, C) */, const T* __restrict__ dy /* (M, C) */,
                                           const T* __restrict__ x /* (M, C) */, const float* mean, const float* invstd,
                                           const float* weight, const float* sum_dy, const float* sum_dy_xhat,
                                           int64_t M, int64_t C, int64_t rows, float inv_m, bool training,
                                           const T* __restrict__ relu_out /* (M, C) or null */) {
  const int64_t c = int64_t(blockIdx.x) * kTileC + threadIdx.x;
  if (c >= C) return;
  const float k = invstd[c] * (weight != nullptr ? weight[c] : 1.f);
  const int64_t begin = int64_t(blockIdx.y) * rows, end = min(M, begin + rows);
  if (training) {
    // The sums exist only in training (eval's dx is affine and the caller may skip them).
    const float mu = mean[c], is = invstd[c], mean_dy = sum_dy[c] * inv_m, mean_dy_xhat = sum_dy_xhat[c] * inv_m;
    for (int64_t r = begin + threadIdx.y; r < end; r += kTileRows) {
      const int64_t o = r * C + c;
      const float xhat = (load(x[o]) - mu) * is;
      dx[o] = store<T>(k * (masked(dy, relu_out, o) - mean_dy - xhat * mean_dy_xhat));
    }
  } else {
    for (int64_t r = begin + threadIdx.y; r < end; r += kTileRows) {
      const int64_t o = r * C + c;
      dx[o] = store<T>(k * masked(dy, relu_out, o));
    }
  }
}

__global__ void increment_kernel(int64_t* counter) { *counter += 1; }

}  // namespace

int64_t batchnorm_scratch(int64_t N, int64_t C, int64_t HW) { return 3 * C * chunks_for(N, C, HW); }
int64_t batchnorm_scratch_nhwc(int64_t M, int64_t C) { return 3 * C * row_chunks(M, C).chunks; }

// ---- Launches, for T = float or __nv_bfloat16 (the public overloads below cast with dev()) ----

namespace {

template <typename T>
void launch_stats(float* mean, float* invstd, float* running_mean, float* running_var, const T* x, int64_t N, int64_t C,
                  int64_t HW, double momentum, double eps, float* scratch) {
  if (C == 0) return;
  const int64_t chunks = chunks_for(N, C, HW);
  stats_partial_kernel<<<grid_for(C * chunks), kThreads, 0, stream()>>>(scratch, x, N, C, HW, chunks);
  LEUKO_CUDA_LAUNCH_CHECK();
  stats_finish_kernel<<<warp_blocks(C), kThreads, 0, stream()>>>(mean, invstd, running_mean, running_var, scratch, C,
                                                                 chunks, float(momentum), float(eps));
  LEUKO_CUDA_LAUNCH_CHECK();
}

template <typename T>
void launch_normalize(T* y, const T* x, const float* mean, const float* invstd, const float* weight, const float* bias,
                      int64_t N, int64_t C, int64_t HW, bool relu) {
  const int64_t total = N * C * HW;
  if (total == 0) return;
  normalize_kernel<<<blocks_for(total), kThreads, 0, stream()>>>(y, x, mean, invstd, weight, bias, total, C, HW, relu);
  LEUKO_CUDA_LAUNCH_CHECK();
}

template <typename T>
void launch_backward_sums(float* sum_dy, float* sum_dy_xhat, const T* dy, const T* x, const float* mean,
                          const float* invstd, int64_t N, int64_t C, int64_t HW, float* scratch, const T* relu_out) {
  if (C == 0) return;
  const int64_t chunks = chunks_for(N, C, HW);
  sums_partial_kernel<<<grid_for(C * chunks), kThreads, 0, stream()>>>(scratch, dy, x, mean, N, C, HW, chunks,
                                                                       relu_out);
  LEUKO_CUDA_LAUNCH_CHECK();
  sums_finish_kernel<<<warp_blocks(C), kThreads, 0, stream()>>>(sum_dy, sum_dy_xhat, scratch, invstd, C, chunks);
  LEUKO_CUDA_LAUNCH_CHECK();
}

template <typename T>
void launch_backward_input(T* dx, const T* dy, const T* x, const float* mean, const float* invstd, const float* weight,
                           const float* sum_dy, const float* sum_dy_xhat, int64_t N, int64_t C, int64_t HW,
                           bool training, const T* relu_out) {
  const int64_t total = N * C * HW;
  if (total == 0) return;
  backward_input_kernel<<<blocks_for(total), kThreads, 0, stream()>>>(
      dx, dy, x, mean, invstd, weight, sum_dy, sum_dy_xhat, total, C, HW, 1.f / float(N * HW), training, relu_out);
  LEUKO_CUDA_LAUNCH_CHECK();
}

// channels_last: the partial kernels above, then the NCHW finishing kernels on their scratch.
template <typename T>
void launch_stats_nhwc(float* mean, float* invstd, float* running_mean, float* running_var, const T* x, int64_t M,
                       int64_t C, double momentum, double eps, float* scratch) {
  if (C == 0) return;
  const RowChunks rc = row_chunks(M, C);
  stats_partial_nhwc_kernel<<<tile_grid(C, rc), kTileBlock, 0, stream()>>>(scratch, x, M, C, rc.rows);
  LEUKO_CUDA_LAUNCH_CHECK();
  stats_finish_kernel<<<warp_blocks(C), kThreads, 0, stream()>>>(mean, invstd, running_mean, running_var, scratch, C,
                                                                 rc.chunks, float(momentum), float(eps));
  LEUKO_CUDA_LAUNCH_CHECK();
}

template <typename T>
void launch_normalize_nhwc(T* y, const T* x, const float* mean, const float* invstd, const float* weight,
                           const float* bias, int64_t M, int64_t C, bool relu) {
  if (M * C == 0) return;
  const RowChunks rc = row_chunks(M, C);
  normalize_nhwc_kernel<<<tile_grid(C, rc), kTileBlock, 0, stream()>>>(y, x, mean, invstd, weight, bias, M, C, rc.rows,
                                                                       relu);
  LEUKO_CUDA_LAUNCH_CHECK();
}

template <typename T>
void launch_backward_sums_nhwc(float* sum_dy, float* sum_dy_xhat, const T* dy, const T* x, const float* mean,
                               const float* invstd, int64_t M, int64_t C, float* scratch, const T* relu_out) {
  if (C == 0) return;
  const RowChunks rc = row_chunks(M, C);
  sums_partial_nhwc_kernel<<<tile_grid(C, rc), kTileBlock, 0, stream()>>>(scratch, dy, x, mean, M, C, rc.rows,
                                                                          relu_out);
  LEUKO_CUDA_LAUNCH_CHECK();
  sums_finish_kernel<<<warp_blocks(C), kThreads, 0, stream()>>>(sum_dy, sum_dy_xhat, scratch, invstd, C, rc.chunks);
  LEUKO_CUDA_LAUNCH_CHECK();
}

template <typename T>
void launch_backward_input_nhwc(T* dx, const T* dy, const T* x, const float* mean, const float* invstd,
                                const float* weight, const float* sum_dy, const float* sum_dy_xhat, int64_t M,
                                int64_t C, bool training, const T* relu_out) {
  if (M * C == 0) return;
  const RowChunks rc = row_chunks(M, C);
  backward_input_nhwc_kernel<<<tile_grid(C, rc), kTileBlock, 0, stream()>>>(
      dx, dy, x, mean, invstd, weight, sum_dy, sum_dy_xhat, M, C, rc.rows, 1.f / float(M), training, relu_out);
  LEUKO_CUDA_LAUNCH_CHECK();
}

}  // namespace

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

void increment(int64_t* counter) {
  increment_kernel<<<1, 1, 0, stream()>>>(counter);
  LEUKO_CUDA_LAUNCH_CHECK();
}

}  // namespace leuko::kernels::cuda
