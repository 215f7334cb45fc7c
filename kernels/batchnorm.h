// Batch-normalisation kernels over x viewed as (N, C, HW): statistics per channel c over the
// M = N * HW values x[n, c, i].
//
//   forward    y = (x - mean[c]) * invstd[c] * weight[c] + bias[c]
//              training: mean, var = the batch's (biased var), invstd = 1 / sqrt(var + eps), and
//              running_mean/var move towards mean and the UNBIASED var M/(M-1) * var (momentum);
//              eval: mean, var = running_mean, running_var.
//   backward   with xhat = (x - mean) * invstd, sum_dy[c] = sum dy, sum_dy_xhat[c] = sum dy * xhat:
//              dbias = sum_dy, dweight = sum_dy_xhat,
//              training: dx = weight * invstd * (dy - sum_dy / M - xhat * sum_dy_xhat / M)
//              eval:     dx = weight * invstd * dy
//   fused ReLU (layers/batchnorm.h, batch_norm_relu): the forward writes max(y, 0) (a NaN stays
//              NaN, as relu_forward), and the backward, given that output as `relu_out`, reads
//              dy where relu_out > 0 and 0 elsewhere: ReLU's backward folded into both passes,
//              so the batch norm's own output never exists.
//
// weight and bias may be null (affine=false: weight 1, bias 0). running_mean/var may be null
// (track_running_stats=false). Activation results and gradients (y, dx) are written; dweight
// and dbias are the sums, written fresh (the autograd engine accumulates them into .grad).
// CPU versions are templated on float/double and accumulate in double; CUDA versions take
// float32 and reduce per channel in blocks, in a fixed order (no atomics: same bits every run).
// bf16 activations (tensor/device.h, bf16_activations()): the CUDA versions have overloads
// whose activations (x, y, dy, dx, relu_out) are bf16, computed in float and rounded once;
// everything per channel (mean, invstd, weight, bias, running statistics, sums, scratch) stays
// float32, as PyTorch's batch norm for half inputs. The CPU runs bf16 through the float32 op.
// channels_last (tensor/tensor.h MemoryFormat): an (N, C, H, W) x stored (N, H, W, C) is an
// (M, C) matrix, M = N * H * W, whose channel c is column c (every C-th element). The CUDA
// `*_nhwc` versions take that view: the same formulas, per column instead of per (N, HW) plane;
// the per-channel arguments are the same. The CPU has none: it runs channels_last through NCHW.
#pragma once

#include <cstdint>

#include "tensor/dtype.h"

namespace leuko::kernels {

namespace cpu {
// Training statistics: mean (C), invstd (C) of x (N, C, HW); updates running_mean/var (C) in
// place when they are not null. M = N * HW must be > 1.
template <typename T>
void batchnorm_stats(T* mean, T* invstd, T* running_mean, T* running_var, const T* x, int64_t N, int64_t C, int64_t HW,
                     double momentum, double eps);
// invstd[c] = 1 / sqrt(var[c] + eps): the eval-mode scale from the running variance.  (C,)
template <typename T>
void batchnorm_invstd(T* invstd, const T* var, int64_t C, double eps);
// y = (x - mean) * invstd * weight + bias, then max(y, 0) when `relu`.   y, x: (N, C, HW); the rest (C,)
template <typename T>
void batchnorm_normalize(T* y, const T* x, const T* mean, const T* invstd, const T* weight, const T* bias, int64_t N,
                         int64_t C, int64_t HW, bool relu);
// sum_dy[c] = sum dy, sum_dy_xhat[c] = sum dy * (x - mean) * invstd.   dy, x: (N, C, HW)
// relu_out: the fused ReLU's output (N, C, HW), masking dy; null without one.
template <typename T>
void batchnorm_backward_sums(T* sum_dy, T* sum_dy_xhat, const T* dy, const T* x, const T* mean, const T* invstd,
                             int64_t N, int64_t C, int64_t HW, const T* relu_out);
// dx, the training (full) or eval (affine) formula above.   dx, dy, x: (N, C, HW)
// sum_dy and sum_dy_xhat are read only in training; relu_out as for the sums.
template <typename T>
void batchnorm_backward_input(T* dx, const T* dy, const T* x, const T* mean, const T* invstd, const T* weight,
                              const T* sum_dy, const T* sum_dy_xhat, int64_t N, int64_t C, int64_t HW, bool training,
                              const T* relu_out);
}  // namespace cpu

namespace cuda {
// Floats of scratch space (per-block partial results) that batchnorm_stats and
// batchnorm_backward_sums need for this shape.
int64_t batchnorm_scratch(int64_t N, int64_t C, int64_t HW);
void batchnorm_stats(float* mean, float* invstd, float* running_mean, float* running_var, const float* x, int64_t N,
                     int64_t C, int64_t HW, double momentum, double eps, float* scratch);
void batchnorm_stats(float* mean, float* invstd, float* running_mean, float* running_var, const bf16* x, int64_t N,
                     int64_t C, int64_t HW, double momentum, double eps, float* scratch);
void batchnorm_invstd(float* invstd, const float* var, int64_t C, double eps);
void batchnorm_normalize(float* y, const float* x, const float* mean, const float* invstd, const float* weight,
                         const float* bias, int64_t N, int64_t C, int64_t HW, bool relu);
void batchnorm_normalize(bf16* y, const bf16* x, const float* mean, const float* invstd, const float* weight,
                         const float* bias, int64_t N, int64_t C, int64_t HW, bool relu);
void batchnorm_backward_sums(float* sum_dy, float* sum_dy_xhat, const float* dy, const float* x, const float* mean,
                             const float* invstd, int64_t N, int64_t C, int64_t HW, float* scratch,
                             const float* relu_out);
void batchnorm_backward_sums(float* sum_dy, float* sum_dy_xhat, const bf16* dy, const bf16* x, const float* mean,
                             const float* invstd, int64_t N, int64_t C, int64_t HW, float* scratch,
                             const bf16* relu_out);
void batchnorm_backward_input(float* dx, const float* dy, const float* x, const float* mean, const float* invstd,
                              const float* weight, const float* sum_dy, const float* sum_dy_xhat, int64_t N, int64_t C,
                              int64_t HW, bool training, const float* relu_out);
void batchnorm_backward_input(bf16* dx, const bf16* dy, const bf16* x, const float* mean, const float* invstd,
                              const float* weight, const float* sum_dy, const float* sum_dy_xhat, int64_t N, int64_t C,
                              int64_t HW, bool training, const bf16* relu_out);

// ---- channels_last: x, y, dy, dx, relu_out are (M, C), M = N * H * W ----
// Floats of scratch space that batchnorm_stats_nhwc and batchnorm_backward_sums_nhwc need.
int64_t batchnorm_scratch_nhwc(int64_t M, int64_t C);
void batchnorm_stats_nhwc(float* mean, float* invstd, float* running_mean, float* running_var, const float* x,
                          int64_t M, int64_t C, double momentum, double eps, float* scratch);
void batchnorm_stats_nhwc(float* mean, float* invstd, float* running_mean, float* running_var, const bf16* x, int64_t M,
                          int64_t C, double momentum, double eps, float* scratch);
void batchnorm_normalize_nhwc(float* y, const float* x, const float* mean, const float* invstd, const float* weight,
                              const float* bias, int64_t M, int64_t C, bool relu);
void batchnorm_normalize_nhwc(bf16* y, const bf16* x, const float* mean, const float* invstd, const float* weight,
                              const float* bias, int64_t M, int64_t C, bool relu);
void batchnorm_backward_sums_nhwc(float* sum_dy, float* sum_dy_xhat, const float* dy, const float* x, const float* mean,
                                  const float* invstd, int64_t M, int64_t C, float* scratch, const float* relu_out);
void batchnorm_backward_sums_nhwc(float* sum_dy, float* sum_dy_xhat, const bf16* dy, const bf16* x, const float* mean,
                                  const float* invstd, int64_t M, int64_t C, float* scratch, const bf16* relu_out);
void batchnorm_backward_input_nhwc(float* dx, const float* dy, const float* x, const float* mean, const float* invstd,
                                   const float* weight, const float* sum_dy, const float* sum_dy_xhat, int64_t M,
                                   int64_t C, bool training, const float* relu_out);
void batchnorm_backward_input_nhwc(bf16* dx, const bf16* dy, const bf16* x, const float* mean, const float* invstd,
                                   const float* weight, const float* sum_dy, const float* sum_dy_xhat, int64_t M,
                                   int64_t C, bool training, const bf16* relu_out);

// *counter += 1 on the device (num_batches_tracked), without a round trip to the host.
void increment(int64_t* counter);
}  // namespace cuda

}  // namespace leuko::kernels
