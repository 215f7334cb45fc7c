// CPU reference for local response normalisation: per element, a loop over its channel window.
#include <algorithm>
#include <cmath>

#include "kernels/lrn.h"

namespace leuko::kernels::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 14;  // elements; each costs `size` multiply-adds
}

template <typename T>
void lrn_forward(T* out, T* scale, const T* x, const Lrn& l) {
  const int64_t before = l.size / 2, after = (l.size - 1) / 2;  // the window around channel c
  const T coef = T(l.alpha / double(l.size)), k = T(l.k), beta = T(l.beta);
#pragma omp parallel for collapse(2) if (l.N * l.C * l.inner > kParallelMin)
  for (int64_t n = 0; n < l.N; n++) {
    for (int64_t c = 0; c < l.C; c++) {
      const int64_t c0 = std::max<int64_t>(c - before, 0), c1 = std::min(c + after, l.C - 1);
      const T* xn = x + n * l.C * l.inner;  // (C, inner)
      const int64_t row = (n * l.C + c) * l.inner;
      for (int64_t i = 0; i < l.inner; i++) {
        T sq = 0;
        for (int64_t cc = c0; cc <= c1; cc++) sq += xn[cc * l.inner + i] * xn[cc * l.inner + i];
        const T s = k + coef * sq;
        scale[row + i] = s;
        out[row + i] = x[row + i] * std::pow(s, -beta);
      }
    }
  }
}

template <typename T>
void lrn_backward(T* grad_x, const T* grad_out, const T* x, const T* out, const T* scale, const Lrn& l) {
  // Channel c's window holds j for c in [j - after, j + before]: the window read backwards.
  const int64_t before = l.size / 2, after = (l.size - 1) / 2;
  const T coef = T(2.0 * l.alpha * l.beta / double(l.size)), beta = T(l.beta);
#pragma omp parallel for collapse(2) if (l.N * l.C * l.inner > kParallelMin)
  for (int64_t n = 0; n < l.N; n++) {
    for (int64_t j = 0; j < l.C; j++) {
      const int64_t c0 = std::max<int64_t>(j - after, 0), c1 = std::min(j + before, l.C - 1);
      const int64_t base = n * l.C * l.inner;  // start of (C, inner) for this n
      const int64_t row = base + j * l.inner;
      for (int64_t i = 0; i < l.inner; i++) {
        T acc = 0;  // sum over c of g[c] out[c] / scale[c]
        for (int64_t c = c0; c <= c1; c++) {
          const int64_t e = base + c * l.inner + i;
          acc += grad_out[e] * out[e] / scale[e];
        }
        grad_x[row + i] = grad_out[row + i] * std::pow(scale[row + i], -beta) - coef * x[row + i] * acc;
      }
    }
  }
}

#define LEUKO_INSTANTIATE(T)                                        \
  template void lrn_forward<T>(T*, T*, const T*, const Lrn&); \
  template void lrn_backward<T>(T*, const T*, const T*, const T*, const T*, const Lrn&);
LEUKO_INSTANTIATE(float)
LEUKO_INSTANTIATE(double)
#undef LEUKO_INSTANTIATE

}  // namespace leuko::kernels::cpu
