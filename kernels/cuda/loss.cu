// CUDA loss kernels. The row ops (log-softmax, cross-entropy) give each row one warp: the
// lanes stride over the C classes, and the row's max and sums are warp shuffles (butterflies,
// which leave the same bits in every lane, in a fixed order: no atomics). A block of 256
// threads handles 8 rows at a time. Binary cross-entropy is elementwise.
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/loss.h"

namespace leuko::kernels::cuda {
namespace {

constexpr int kRowsPerBlock = kThreads / 32;

// Max of v over the 32 lanes of a warp; every lane gets the result.
__device__ __forceinline__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// log(sum exp(z)) of one row of C values, computed by a whole warp (lane = this thread's lane),
// kept as its two parts: the max m and log(sum exp(z - m)). Callers form z - lse as
// (z - m) - log_s: z - m is exact, where z - (m + log_s) would round m + log_s to the ulp of
// m first (0.001 for logits near 1e4: a 1e-3 error in log-probabilities near 0).
struct RowLse {
  float m, log_s;
};
__device__ RowLse row_logsumexp(const float* z /* (C,) */, int64_t C, int lane) {
  float m = -INFINITY;
  for (int64_t c = lane; c < C; c += 32) m = fmaxf(m, z[c]);
  m = warp_max(m);
  if (isinf(m)) return {m, 0.f};  // same in every lane: all -inf, or an inf (the result is then inf or NaN)
  float s = 0.f;
  for (int64_t c = lane; c < C; c += 32) s += expf(z[c] - m);
  return {m, logf(warp_sum(s))};
}

// The rows of this warp: row = global warp index, then strided by all warps of the grid.
#define LEUKO_WARP_ROWS(row, N)                                                               \
  for (int64_t row = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5; row < int64_t(N); \
       row += (int64_t(gridDim.x) * blockDim.x) >> 5)

int row_blocks(int64_t N) { return leuko::cuda::blocks_for(N, kRowsPerBlock); }

__global__ void log_softmax_forward_kernel(float* out, const float* x, int64_t N, int64_t C) {
  const int lane = threadIdx.x & 31;
  LEUKO_WARP_ROWS(i, N) {
    const float* z = x + i * C;  // (C,)
    const RowLse r = row_logsumexp(z, C, lane);
    for (int64_t c = lane; c < C; c += 32) out[i * C + c] = (z[c] - r.m) - r.log_s;
  }
}

__global__ void log_softmax_backward_kernel(float* dx, const float* g, const float* out, int64_t N, int64_t C) {
  const int lane = threadIdx.x & 31;
  LEUKO_WARP_ROWS(i, N) {
    float s = 0.f;
    for (int64_t c = lane; c < C; c += 32) s += g[i * C + c];
    s = warp_sum(s);
    for (int64_t c = lane; c < C; c += 32) dx[i * C + c] = g[i * C + c] - expf(out[i * C + c]) * s;
  }
}

__global__ void cross_entropy_forward_kernel(float* loss, float* weight, float* lse, const float* logits,
                                             const int64_t* targets, const float* class_weight, int64_t N, int64_t C,
                                             float smoothing, int64_t ignore_index) {
  const int lane = threadIdx.x & 31;
  LEUKO_WARP_ROWS(i, N) {
    const float* z = logits + i * C;  // (C,)
    const RowLse r = row_logsumexp(z, C, lane);
    const int64_t t = targets[i];
    float total = 0.f, wt = 0.f;
    if (t != ignore_index && (t < 0 || t >= C)) {
      total = wt = NAN;  // no host sync to throw: make it visible in the loss instead
    } else if (t != ignore_index) {
      wt = class_weight != nullptr ? class_weight[t] : 1.f;
      total = (1.f - smoothing) * wt * ((r.m - z[t]) + r.log_s);  // -log p_t
      if (smoothing > 0.f) {  // the uniform part: every class's -log p, weighted (whole warp)
        float s = 0.f;
        for (int64_t c = lane; c < C; c += 32) {
          s += (class_weight != nullptr ? class_weight[c] : 1.f) * ((r.m - z[c]) + r.log_s);  // w_c * -log p_c
        }
        total += smoothing / float(C) * warp_sum(s);
      }
    }
    if (lane == 0) {
      loss[i] = total;
      weight[i] = wt;
      lse[i] = r.m + r.log_s;
    }
  }
}

__global__ void cross_entropy_backward_kernel(float* dlogits, const float* logits, const float* lse,
                                              const int64_t* targets, const float* class_weight, const float* grad_out,
                                              bool per_row, const float* denom, int64_t N, int64_t C, float smoothing,
                                              int64_t ignore_index) {
  const int lane = threadIdx.x & 31;
  const float eps_c = smoothing / float(C);
  // W = sum of the class weights, needed only with smoothing: each warp sums it once.
  float W = float(C);
  if (class_weight != nullptr && smoothing > 0.f) {
    float s = 0.f;
    for (int64_t c = lane; c < C; c += 32) s += class_weight[c];
    W = warp_sum(s);
  }
  LEUKO_WARP_ROWS(i, N) {
    float* d = dlogits + i * C;  // (C,)
    const int64_t t = targets[i];
    if (t == ignore_index || t < 0 || t >= C) {
      const float v = t == ignore_index ? 0.f : NAN;
      for (int64_t c = lane; c < C; c += 32) d[c] = v;
      continue;
    }
    float g = per_row ? grad_out[i] : grad_out[0];
    if (denom != nullptr) g /= denom[0];
    const float wt = (1.f - smoothing) * (class_weight != nullptr ? class_weight[t] : 1.f);
    const float a = wt + eps_c * W;  // the total weight on softmax
    for (int64_t c = lane; c < C; c += 32) {
      const float p = expf(logits[i * C + c] - lse[i]);
      const float target_mass = (c == t ? wt : 0.f) + eps_c * (class_weight != nullptr ? class_weight[c] : 1.f);
      d[c] = g * (p * a - target_mass);
    }
  }
}

// softplus(-x) = max(-x, 0) + log1p(exp(-|x|)), and sigmoid(-x), both without overflow.
__device__ __forceinline__ float softplus_neg(float x) { return fmaxf(-x, 0.f) + log1pf(expf(-fabsf(x))); }
__device__ __forceinline__ float sigmoid_neg(float x) {
  const float e = expf(-fabsf(x));
  return x >= 0.f ? e / (1.f + e) : 1.f / (1.f + e);
}

__global__ void bce_forward_kernel(float* loss, const float* x, const float* t, const float* pos_weight, int64_t n,
                                   int64_t C) {
  LEUKO_GRID_STRIDE(i, n) {
    const float lw = pos_weight != nullptr ? 1.f + (pos_weight[i % C] - 1.f) * t[i] : 1.f;
    loss[i] = (1.f - t[i]) * x[i] + lw * softplus_neg(x[i]);
  }
}

__global__ void bce_backward_kernel(float* dx, float* dt, float* dpw, const float* x, const float* t,
                                    const float* pos_weight, const float* g, bool per_element, float scale, int64_t n,
                                    int64_t C) {
  LEUKO_GRID_STRIDE(i, n) {
    const float xi = x[i], ti = t[i], gi = (per_element ? g[i] : g[0]) * scale;
    const float pw = pos_weight != nullptr ? pos_weight[i % C] : 1.f;
    const float lw = 1.f + (pw - 1.f) * ti;
    if (dx != nullptr) dx[i] = gi * ((1.f - ti) - lw * sigmoid_neg(xi));
    if (dt != nullptr) dt[i] = gi * (-xi + (pw - 1.f) * softplus_neg(xi));
    if (dpw != nullptr) dpw[i] = gi * ti * softplus_neg(xi);
  }
}

}  // namespace

void log_softmax_forward(float* out, const float* x, int64_t N, int64_t C) {
  if (N == 0 || C == 0) return;
  log_softmax_forward_kernel<<<row_blocks(N), kThreads, 0, stream()>>>(out, x, N, C);
  LEUKO_CUDA_LAUNCH_CHECK();
}

void log_softmax_backward(float* dx, const float* g, const float* out, int64_t N, int64_t C) {
  if (N == 0 || C == 0) return;
  log_softmax_backward_kernel<<<row_blocks(N), kThreads, 0, stream()>>>(dx, g, out, N, C);
  LEUKO_CUDA_LAUNCH_CHECK();
}

void cross_entropy_forward(float* loss, float* weight, float* lse, const float* logits, const int64_t* targets,
                           const float* class_weight, int64_t N, int64_t C, double smoothing, int64_t ignore_index) {
  if (N == 0) return;
  cross_entropy_forward_kernel<<<row_blocks(N), kThreads, 0, stream()>>>(
      loss, weight, lse, logits, targets, class_weight, N, C, float(smoothing), ignore_index);
  LEUKO_CUDA_LAUNCH_CHECK();
}

void cross_entropy_backward(float* dlogits, const float* logits, const float* lse, const int64_t* targets,
                            const float* class_weight, const float* grad_out, bool per_row, const float* denom,
                            int64_t N, int64_t C, double smoothing, int64_t ignore_index) {
  if (N == 0 || C == 0) return;
  cross_entropy_backward_kernel<<<row_blocks(N), kThreads, 0, stream()>>>(
      dlogits, logits, lse, targets, class_weight, grad_out, per_row, denom, N, C, float(smoothing), ignore_index);
  LEUKO_CUDA_LAUNCH_CHECK();
}

void bce_with_logits_forward(float* loss, const float* x, const float* t, const float* pos_weight, int64_t n,
                             int64_t C) {
  if (n == 0) return;
  bce_forward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(loss, x, t, pos_weight, n, C);
  LEUKO_CUDA_LAUNCH_CHECK();
}

void bce_with_logits_backward(float* dx, float* dt, float* dpw, const float* x, const float* t, const float* pos_weight,
                              const float* g, bool per_element, double scale, int64_t n, int64_t C) {
  if (n == 0) return;
  bce_backward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(dx, dt, dpw, x, t, pos_weight, g, per_element,
                                                                float(scale), n, C);
  LEUKO_CUDA_LAUNCH_CHECK();
}

}  // namespace leuko::kernels::cuda
