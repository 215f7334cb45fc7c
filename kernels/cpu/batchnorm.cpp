// CPU reference for batch normalisation: one channel at a time, sums in float64, two passes
// for the variance (mean first, then the squared deviations: no cancellation).
#include "kernels/batchnorm.h"

#include <cmath>

namespace leuko::kernels::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 15;  // below this, threads cost more than they save
}  // namespace

template <typename T>
void batchnorm_stats(T* mean, T* invstd, T* running_mean, T* running_var, const T* x, int64_t N, int64_t C, int64_t HW,
                     double momentum, double eps) {
  const int64_t M = N * HW;  // values per channel
#pragma omp parallel for if (N * C * HW > kParallelMin)
  for (int64_t c = 0; c < C; c++) {
    double sum = 0;
    for (int64_t n = 0; n < N; n++) {
      const T* xc = x + (n * C + c) * HW;  // (HW,)
      for (int64_t i = 0; i < HW; i++) sum += double(xc[i]);
    }
    const double mu = sum / double(M);
    double sq = 0;
    for (int64_t n = 0; n < N; n++) {
      const T* xc = x + (n * C + c) * HW;
      for (int64_t i = 0; i < HW; i++) sq += (double(xc[i]) - mu) * (double(xc[i]) - mu);
    }
    // Normalisation uses the biased variance (divide by M), the running estimate the unbiased
    // one (M - 1), as PyTorch.
    mean[c] = T(mu);
    invstd[c] = T(1.0 / std::sqrt(sq / double(M) + eps));
    if (running_mean != nullptr) running_mean[c] = T((1 - momentum) * double(running_mean[c]) + momentum * mu);
    if (running_var != nullptr) {
      running_var[c] = T((1 - momentum) * double(running_var[c]) + momentum * sq / double(M - 1));
    }
  }
}

template <typename T>
void batchnorm_invstd(T* invstd, const T* var, int64_t C, double eps) {
  for (int64_t c = 0; c < C; c++) invstd[c] = T(1.0 / std::sqrt(double(var[c]) + eps));
}

template <typename T>
void batchnorm_normalize(T* y, const T* x, const T* mean, const T* invstd, const T* weight, const T* bias, int64_t N,
                         int64_t C, int64_t HW, bool relu) {
#pragma omp parallel for collapse(2) if (N * C * HW > kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    for (int64_t c = 0; c < C; c++) {
      // (x - mean) * scale + bias: subtracting the mean first keeps the precision when the mean
      // is large against the spread (x * scale + (bias - mean * scale) would cancel).
      const T mu = mean[c], scale = invstd[c] * (weight != nullptr ? weight[c] : T(1));
      const T b = bias != nullptr ? bias[c] : T(0);
      const int64_t base = (n * C + c) * HW;
      for (int64_t i = 0; i < HW; i++) y[base + i] = (x[base + i] - mu) * scale + b;
      if (relu) {  // as relu_forward: max(v, 0), a NaN stays NaN
        for (int64_t i = 0; i < HW; i++) y[base + i] = !(y[base + i] <= T(0)) ? y[base + i] : T(0);
      }
    }
  }
}

// The upstream gradient of the batch norm's output: dy itself, or, when a ReLU was fused after
// it (relu_out not null), dy where the ReLU's output is positive and 0 elsewhere.
template <typename T>
inline T masked(const T* dy, const T* relu_out, int64_t i) {
  return relu_out == nullptr || relu_out[i] > T(0) ? dy[i] : T(0);
}

template <typename T>
void batchnorm_backward_sums(T* sum_dy, T* sum_dy_xhat, const T* dy, const T* x, const T* mean, const T* invstd,
                             int64_t N, int64_t C, int64_t HW, const T* relu_out) {
#pragma omp parallel for if (N * C * HW > kParallelMin)
  for (int64_t c = 0; c < C; c++) {
    const double mu = double(mean[c]);
    double s = 0, sx = 0;  // sum dy, sum dy * (x - mean)
    for (int64_t n = 0; n < N; n++) {
      const int64_t base = (n * C + c) * HW;
      for (int64_t i = 0; i < HW; i++) {
        const double g = double(masked(dy, relu_out, base + i));
        s += g;
        sx += g * (double(x[base + i]) - mu);
      }
    }
    sum_dy[c] = T(s);
    sum_dy_xhat[c] = T(sx * double(invstd[c]));
  }
}

template <typename T>
void batchnorm_backward_input(T* dx, const T* dy, const T* x, const T* mean, const T* invstd, const T* weight,
                              const T* sum_dy, const T* sum_dy_xhat, int64_t N, int64_t C, int64_t HW, bool training,
                              const T* relu_out) {
  const T inv_m = T(1) / T(N * HW);
#pragma omp parallel for collapse(2) if (N * C * HW > kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    for (int64_t c = 0; c < C; c++) {
      const T k = invstd[c] * (weight != nullptr ? weight[c] : T(1));  // dy/dx through xhat alone
      const int64_t base = (n * C + c) * HW;
      if (!training) {  // mean and invstd are constants: an affine map
        for (int64_t i = 0; i < HW; i++) dx[base + i] = k * masked(dy, relu_out, base + i);
        continue;
      }
      // Training: mean and var depend on every x of the channel, which removes from dy its
      // mean and its projection on xhat.
      const T mean_dy = sum_dy[c] * inv_m, mean_dy_xhat = sum_dy_xhat[c] * inv_m;
      for (int64_t i = 0; i < HW; i++) {
        const T xhat = (x[base + i] - mean[c]) * invstd[c];
        dx[base + i] = k * (masked(dy, relu_out, base + i) - mean_dy - xhat * mean_dy_xhat);
      }
    }
  }
}

#define LEUKO_INSTANTIATE(T)                                                                                           \
  template void batchnorm_stats<T>(T*, T*, T*, T*, const T*, int64_t, int64_t, int64_t, double, double);               \
  template void batchnorm_invstd<T>(T*, const T*, int64_t, double);                                                    \
  template void batchnorm_normalize<T>(T*, const T*, const T*, const T*, const T*, const T*, int64_t, int64_t,         \
                                       int64_t, bool);                                                                 \
  template void batchnorm_backward_sums<T>(T*, T*, const T*, const T*, const T*, const T*, int64_t, int64_t, int64_t,  \
                                           const T*);                                                                  \
  template void batchnorm_backward_input<T>(T*, const T*, const T*, const T*, const T*, const T*, const T*, const T*,  \
                                            int64_t, int64_t, int64_t, bool, const T*);
LEUKO_INSTANTIATE(float)
LEUKO_INSTANTIATE(double)
#undef LEUKO_INSTANTIATE

}  // namespace leuko::kernels::cpu
