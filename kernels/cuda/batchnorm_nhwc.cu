// CUDA batch normalisation, channels_last: an (N, C, H, W) x stored (N, H, W, C) viewed as an
// (M, C) matrix, M = N * H * W, channel c its column c (kernels/batchnorm.h's `_nhwc` functions).
// The NCHW kernels are in batchnorm_nchw.cu, what both use in batchnorm_common.cuh (with bf16
// activations).
//
// A channel's values are C elements apart, so one thread per channel walking down its column would
// read one element per 32-byte sector. Instead a block is a 32 x 8 tile of threads: threadIdx.x
// picks one of 32 consecutive channels, so a warp reads 32 consecutive elements of one row (128
// bytes in float32, 64 in bf16: whole sectors), and threadIdx.y one of 8 rows, stepping by 8 rows.
// Block (blockIdx.x, blockIdx.y) covers channel tile blockIdx.x over row chunk blockIdx.y. The
// reductions merge the 8 row lanes of a channel in shared memory (a fixed tree), write one
// partial result per (channel, chunk) to scratch, in the NCHW kernels' layout, and the NCHW
// finishing kernels merge the chunks (batchnorm_finish_stats and _sums): the same two passes, no
// atomics, the same bits on every run. Here a channel has up to a few hundred chunks (8 blocks
// per SM over C / 32 channel tiles: 528 for C = 64 on 132 SMs), hence a warp per channel in the
// finishing kernels: a thread per channel would merge them in one serial chain of hundreds of
// dependent divisions.
#include <algorithm>

#include "kernels/batchnorm.h"
#include "kernels/cuda/batchnorm_common.cuh"

namespace leuko::kernels::cuda {
namespace {

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

// dy[i], or 0 where a fused ReLU's output relu_out[i] (null: none) is not positive, as
// batchnorm_nchw.cu's masked on loaded values (which says why a bf16 output's mask is the float's).
template <typename T>
__device__ __forceinline__ float masked(const T* dy, const T* relu_out, int64_t i) {
  return relu_out == nullptr || load(relu_out[i]) > 0.f ? load(dy[i]) : 0.f;
}

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

}  // namespace

int64_t batchnorm_scratch_nhwc(int64_t M, int64_t C) { return 3 * C * row_chunks(M, C).chunks; }

// ---- Launches, for T = float or __nv_bfloat16 (the public overloads below cast with dev()) ----

namespace {

// channels_last: the partial kernels above, then the NCHW finishing kernels on their scratch.
template <typename T>
void launch_stats_nhwc(float* mean, float* invstd, float* running_mean, float* running_var, const T* x, int64_t M,
                       int64_t C, double momentum, double eps, float* scratch) {
  if (C == 0) return;
  const RowChunks rc = row_chunks(M, C);
  stats_partial_nhwc_kernel<<<tile_grid(C, rc), kTileBlock, 0, stream()>>>(scratch, x, M, C, rc.rows);
  LEUKO_CUDA_LAUNCH_CHECK();
  batchnorm_finish_stats(mean, invstd, running_mean, running_var, scratch, C, rc.chunks, momentum, eps);
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
  batchnorm_finish_sums(sum_dy, sum_dy_xhat, scratch, invstd, C, rc.chunks);
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
