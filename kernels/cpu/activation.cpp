// CPU reference for ReLU, the fused add + ReLU, and dropout: plain loops, OpenMP for large tensors.
#include "kernels/activation.h"

namespace leuko::kernels::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 15;  // below this, threads cost more than they save
}

template <typename T>
void relu_forward(T* out, const T* x, int64_t n) {
  // !(v <= 0) rather than v > 0: a comparison with NaN is false, so NaN passes through and a
  // diverging run shows NaN instead of silently becoming 0.
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) out[i] = !(x[i] <= T(0)) ? x[i] : T(0);
}

template <typename T>
void add_relu_forward(T* out, const T* a, const T* b, int64_t n) {
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) {
    const T v = a[i] + b[i];
    out[i] = !(v <= T(0)) ? v : T(0);
  }
}

template <typename T>
void relu_backward(T* grad_x, const T* grad_out, const T* out, int64_t n) {
  // The output decides: out > 0 exactly where x > 0, and saving the output (needed anyway by
  // the next layer) costs no extra memory.
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) grad_x[i] = out[i] > T(0) ? grad_out[i] : T(0);
}

template <typename T>
void dropout(T* out, const T* x, int64_t n, uint64_t seed, uint64_t threshold, double scale) {
  const T s = T(scale);
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) out[i] = dropout_keep(seed, threshold, uint64_t(i)) ? x[i] * s : T(0);
}

#define LEUKO_INSTANTIATE(T)                                              \
  template void relu_forward<T>(T*, const T*, int64_t);                   \
  template void add_relu_forward<T>(T*, const T*, const T*, int64_t);    \
  template void relu_backward<T>(T*, const T*, const T*, int64_t);        \
  template void dropout<T>(T*, const T*, int64_t, uint64_t, uint64_t, double);
LEUKO_INSTANTIATE(float)
LEUKO_INSTANTIATE(double)
#undef LEUKO_INSTANTIATE

}  // namespace leuko::kernels::cpu
