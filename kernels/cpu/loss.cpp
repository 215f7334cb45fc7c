// CPU reference for the loss kernels: one row at a time, sums in float64.
#include "kernels/loss.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace leuko::kernels::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 15;  // below this, threads cost more than they save

// log(sum exp(z)) of one row, stable: the max is factored out.
template <typename T>
double logsumexp(const T* z, int64_t C) {
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t c = 0; c < C; c++) m = std::max(m, double(z[c]));
  if (std::isinf(m)) return m;  // all -inf (or an inf): nothing to factor out
  double s = 0;
  for (int64_t c = 0; c < C; c++) s += std::exp(double(z[c]) - m);
  return m + std::log(s);
}

// softplus(-x) = log(1 + exp(-x)) = max(-x, 0) + log1p(exp(-|x|)): never overflows.
inline double softplus_neg(double x) { return std::max(-x, 0.0) + std::log1p(std::exp(-std::fabs(x))); }
// sigmoid(-x) = 1 / (1 + exp(x)), from exp(-|x|) so that exp never overflows.
inline double sigmoid_neg(double x) {
  const double e = std::exp(-std::fabs(x));
  return x >= 0 ? e / (1 + e) : 1 / (1 + e);
}
}  // namespace

template <typename T>
void log_softmax_forward(T* out, const T* x, int64_t N, int64_t C) {
#pragma omp parallel for if (N * C > kParallelMin)
  for (int64_t i = 0; i < N; i++) {
    const T* z = x + i * C;  // (C,)
    const double lse = logsumexp(z, C);
    for (int64_t c = 0; c < C; c++) out[i * C + c] = T(double(z[c]) - lse);
  }
}

template <typename T>
void log_softmax_backward(T* dx, const T* g, const T* out, int64_t N, int64_t C) {
#pragma omp parallel for if (N * C > kParallelMin)
  for (int64_t i = 0; i < N; i++) {
    double sum_g = 0;
    for (int64_t c = 0; c < C; c++) sum_g += double(g[i * C + c]);
    for (int64_t c = 0; c < C; c++) dx[i * C + c] = T(double(g[i * C + c]) - std::exp(double(out[i * C + c])) * sum_g);
  }
}

template <typename T>
void cross_entropy_forward(T* loss, T* weight, T* lse, const T* logits, const int64_t* targets, const T* class_weight,
                           int64_t N, int64_t C, double smoothing, int64_t ignore_index) {
#pragma omp parallel for if (N * C > kParallelMin)
  for (int64_t i = 0; i < N; i++) {
    const T* z = logits + i * C;  // (C,)
    const double l = logsumexp(z, C);
    lse[i] = T(l);
    const int64_t t = targets[i];
    if (t == ignore_index) {
      loss[i] = T(0);
      weight[i] = T(0);
      continue;
    }
    if (t < 0 || t >= C) {  // the op checks first; NaN as the CUDA kernel, should it be called directly
      loss[i] = weight[i] = T(NAN);
      continue;
    }
    const double wt = class_weight != nullptr ? double(class_weight[t]) : 1.0;
    double total = (1 - smoothing) * wt * (l - double(z[t]));
    if (smoothing > 0) {  // the uniform part: every class's -log p, weighted
      double s = 0;
      for (int64_t c = 0; c < C; c++)
        s += (class_weight != nullptr ? double(class_weight[c]) : 1.0) * (l - double(z[c]));
      total += smoothing / double(C) * s;
    }
    loss[i] = T(total);
    weight[i] = T(wt);
  }
}

template <typename T>
void cross_entropy_backward(T* dlogits, const T* logits, const T* lse, const int64_t* targets, const T* class_weight,
                            const T* grad_out, bool per_row, const T* denom, int64_t N, int64_t C, double smoothing,
                            int64_t ignore_index) {
  double W = double(C);  // sum of the class weights
  if (class_weight != nullptr) {
    W = 0;
    for (int64_t c = 0; c < C; c++) W += double(class_weight[c]);
  }
  const double eps_c = smoothing / double(C);
#pragma omp parallel for if (N * C > kParallelMin)
  for (int64_t i = 0; i < N; i++) {
    T* d = dlogits + i * C;  // (C,)
    const int64_t t = targets[i];
    if (t == ignore_index) {
      std::fill(d, d + C, T(0));
      continue;
    }
    if (t < 0 || t >= C) {
      std::fill(d, d + C, T(NAN));
      continue;
    }
    double g = double(per_row ? grad_out[i] : grad_out[0]);
    if (denom != nullptr) g /= double(denom[0]);
    const double wt = (1 - smoothing) * (class_weight != nullptr ? double(class_weight[t]) : 1.0);
    const double a = wt + eps_c * W;  // the total weight on softmax
    for (int64_t c = 0; c < C; c++) {
      const double p = std::exp(double(logits[i * C + c]) - double(lse[i]));
      const double target_mass =
          (c == t ? wt : 0.0) + eps_c * (class_weight != nullptr ? double(class_weight[c]) : 1.0);
      d[c] = T(g * (p * a - target_mass));
    }
  }
}

template <typename T>
void bce_with_logits_forward(T* loss, const T* x, const T* t, const T* pos_weight, int64_t n, int64_t C) {
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) {
    const double xi = double(x[i]), ti = double(t[i]);
    const double lw = pos_weight != nullptr ? 1 + (double(pos_weight[i % C]) - 1) * ti : 1.0;
    loss[i] = T((1 - ti) * xi + lw * softplus_neg(xi));
  }
}

template <typename T>
void bce_with_logits_backward(T* dx, T* dt, T* dpw, const T* x, const T* t, const T* pos_weight, const T* g,
                              bool per_element, double scale, int64_t n, int64_t C) {
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) {
    const double xi = double(x[i]), ti = double(t[i]), gi = double(per_element ? g[i] : g[0]) * scale;
    const double pw = pos_weight != nullptr ? double(pos_weight[i % C]) : 1.0;
    const double lw = 1 + (pw - 1) * ti;
    if (dx != nullptr) dx[i] = T(gi * ((1 - ti) - lw * sigmoid_neg(xi)));
    if (dt != nullptr) dt[i] = T(gi * (-xi + (pw - 1) * softplus_neg(xi)));
    if (dpw != nullptr) dpw[i] = T(gi * ti * softplus_neg(xi));
  }
}

#define LEUKO_INSTANTIATE(T)                                                                                           \
  template void log_softmax_forward<T>(T*, const T*, int64_t, int64_t);                                                \
  template void log_softmax_backward<T>(T*, const T*, const T*, int64_t, int64_t);                                     \
  template void cross_entropy_forward<T>(T*, T*, T*, const T*, const int64_t*, const T*, int64_t, int64_t, double,     \
                                         int64_t);                                                                     \
  template void cross_entropy_backward<T>(T*, const T*, const T*, const int64_t*, const T*, const T*, bool, const T*,  \
                                          int64_t, int64_t, double, int64_t);                                          \
  template void bce_with_logits_forward<T>(T*, const T*, const T*, const T*, int64_t, int64_t);                        \
  template void bce_with_logits_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*, bool, double, int64_t, \
                                            int64_t);
LEUKO_INSTANTIATE(float)
LEUKO_INSTANTIATE(double)
#undef LEUKO_INSTANTIATE

}  // namespace leuko::kernels::cpu
