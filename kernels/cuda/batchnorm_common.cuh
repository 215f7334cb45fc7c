// CUDA batch normalisation: what the two layouts' files share. batchnorm_nchw.cu has the kernels
// for x viewed as (N, C, HW) (NCHW tensors), batchnorm_nhwc.cu those for x viewed as (M, C)
// (channels_last); kernels/batchnorm.h declares the functions of both.
//
// Both layouts reduce a channel's values in the same two passes: a partial kernel writes one
// partial result per (channel, chunk) to scratch, (C, chunks, 3) Welford triples for the
// statistics or (C, chunks, 2) sums for the backward, and a finishing kernel, one warp per
// channel, merges each channel's chunks in a fixed order and writes the per-channel results.
// The finishing kernels live in batchnorm_nchw.cu, defined once; both layouts run them through
// batchnorm_finish_stats and batchnorm_finish_sums below. No atomics anywhere: the same input
// gives the same bits on every run.
//
// bf16 activations: the kernels are templated on T, the storage type of the activations (x, y,
// dy, dx, the fused ReLU's output): float, or __nv_bfloat16 under bf16 activations. They load
// into float, compute in float and store with one rounding (common.cuh's load/store<T>, and
// batchnorm_nchw.cu's load4/store4, which do the same 4 at a time); everything per channel
// (mean, invstd, weight, bias, running statistics, sums, scratch) is float32 either way, as
// PyTorch's batch norm keeps its statistics in float for half inputs. For T = float, load and
// store are the identity.
#pragma once

#include <cstdint>

#include "kernels/cuda/common.cuh"

namespace leuko::kernels::cuda {

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

// 1 / x by the hardware's approximation (MUFU.RCP: at most 1 ulp off; a subnormal x, never
// here, flushed). `1.f / x` is an IEEE division, and even __fdividef adds a rescaling for
// subnormal divisors: about ten instructions either way, and the former a branch to a slow path.
__device__ __forceinline__ float approx_rcp(float x) {
  float r;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
  return r;
}

// The finishing launches (batchnorm_nchw.cu), after a layout's partial kernel has filled
// `partial` with chunks results per channel, channel c's at c * chunks .. c * chunks + chunks - 1.
// Statistics: merges the (n, mean, m2) triples, writes mean and invstd = 1 / sqrt(var + eps) and
// moves the running statistics (null: not tracked) by momentum.
void batchnorm_finish_stats(float* mean, float* invstd, float* running_mean, float* running_var, const float* partial,
                            int64_t C, int64_t chunks, double momentum, double eps);
// Backward: adds the (sum dy, sum dy * (x - mean)) pairs, writes sum_dy and
// sum_dy_xhat = sum dy * (x - mean) * invstd.
void batchnorm_finish_sums(float* sum_dy, float* sum_dy_xhat, const float* partial, const float* invstd, int64_t C,
                           int64_t chunks);

}  // namespace leuko::kernels::cuda
