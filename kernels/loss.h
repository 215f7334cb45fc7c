// Loss kernels: log-softmax over rows, the fused softmax cross-entropy, and binary
// cross-entropy on logits.
//
// Rows are the N rows of an (N, C) matrix. Each row's max is subtracted before exp, so large
// logits (1e4) neither overflow nor lose the small ones: lse = max + log(sum exp(z - max)).
//
// Cross-entropy, as torch.nn.functional.cross_entropy with class weights w (1 when null),
// label smoothing eps and C classes; for a row with target t (rows whose target is
// ignore_index give 0 and weigh 0):
//   loss    = (1 - eps) * w[t] * (lse - z[t]) + eps / C * sum_c w[c] * (lse - z[c])
//   weight  = w[t]                     (the mean reduction divides the summed loss by the
//                                       summed weights: PyTorch's rule for both terms)
//   dloss/dz[c] = p[c] * ((1 - eps) * w[t] + eps / C * W) - ((1 - eps) * w[t] * [c == t] + eps / C * w[c])
// where p = softmax(z) and W = sum_c w[c]; without weights this is p - (smoothed one-hot).
// The CUDA forward cannot throw on a target outside [0, C) without a host synchronisation: it
// writes NaN to that row's loss and weight (so a mean or sum is NaN) and the backward NaN to
// the row's gradient. The CPU op checks targets before calling the kernels.
//
// Every kernel writes its whole output. CPU versions are templated on float/double and sum in
// double; CUDA versions take float32 and give each row one warp (lanes stride over C, warp
// shuffles reduce in a fixed order).
#pragma once

#include <cstdint>

namespace leuko::kernels {

namespace cpu {
// out = z - logsumexp(z) per row.   out, x: (N, C)
template <typename T>
void log_softmax_forward(T* out, const T* x, int64_t N, int64_t C);
// dx = g - softmax * sum(g) per row, with softmax = exp(out).   dx, g, out: (N, C)
template <typename T>
void log_softmax_backward(T* dx, const T* g, const T* out, int64_t N, int64_t C);

// Per-row loss (N,), weight (N,) and logsumexp (N,) (saved for the backward).
// logits: (N, C), targets: (N,), class_weight: (C,) or null.
template <typename T>
void cross_entropy_forward(T* loss, T* weight, T* lse, const T* logits, const int64_t* targets, const T* class_weight,
                           int64_t N, int64_t C, double smoothing, int64_t ignore_index);
// dlogits (N, C) for upstream gradient grad_out: one value per row (per_row, reduction none)
// or one for all (mean, sum); `denom` (one value, the summed weights) divides it when not null.
template <typename T>
void cross_entropy_backward(T* dlogits, const T* logits, const T* lse, const int64_t* targets, const T* class_weight,
                            const T* grad_out, bool per_row, const T* denom, int64_t N, int64_t C, double smoothing,
                            int64_t ignore_index);

// loss = (1 - t) * x + lw * (log1p(exp(-|x|)) + max(-x, 0)), lw = 1 + (pos_weight[c] - 1) * t,
// elementwise over n values; c = i % C indexes pos_weight (C,) along the last dim (null: lw = 1).
template <typename T>
void bce_with_logits_forward(T* loss, const T* x, const T* t, const T* pos_weight, int64_t n, int64_t C);
// Gradients of the elementwise loss times the upstream gradient g: g[i] (per_element) or
// g[0] * scale (mean: scale = 1/n; sum: 1). dx, dt, dpw (per element, summed over rows by the
// caller) are written where not null.
//   dx = (1 - t) - lw * sigmoid(-x),  dt = -x + (pos_weight - 1) * softplus(-x),  dpw = t * softplus(-x)
template <typename T>
void bce_with_logits_backward(T* dx, T* dt, T* dpw, const T* x, const T* t, const T* pos_weight, const T* g,
                              bool per_element, double scale, int64_t n, int64_t C);
}  // namespace cpu

namespace cuda {
void log_softmax_forward(float* out, const float* x, int64_t N, int64_t C);
void log_softmax_backward(float* dx, const float* g, const float* out, int64_t N, int64_t C);
void cross_entropy_forward(float* loss, float* weight, float* lse, const float* logits, const int64_t* targets,
                           const float* class_weight, int64_t N, int64_t C, double smoothing, int64_t ignore_index);
void cross_entropy_backward(float* dlogits, const float* logits, const float* lse, const int64_t* targets,
                            const float* class_weight, const float* grad_out, bool per_row, const float* denom,
                            int64_t N, int64_t C, double smoothing, int64_t ignore_index);
void bce_with_logits_forward(float* loss, const float* x, const float* t, const float* pos_weight, int64_t n,
                             int64_t C);
void bce_with_logits_backward(float* dx, float* dt, float* dpw, const float* x, const float* t, const float* pos_weight,
                              const float* g, bool per_element, double scale, int64_t n, int64_t C);
}  // namespace cuda

}  // namespace leuko::kernels
