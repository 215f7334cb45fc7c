// CPU optimizer updates: the reference for the fused CUDA versions, element by element.
#include <algorithm>
#include <cmath>

#include "kernels/optim.h"

namespace leuko::kernels::cpu {

template <typename T>
void sgd_update(T* p, const T* g, T* buf, int64_t n, const SgdHyper& h, bool first) {
#pragma omp parallel for if (n > (1 << 16))
  for (int64_t i = 0; i < n; i++) {
    T d = g[i] + T(h.weight_decay) * p[i];
    if (h.momentum != 0) {
      buf[i] = first ? d : T(h.momentum) * buf[i] + T(1 - h.dampening) * d;
      d = h.nesterov ? d + T(h.momentum) * buf[i] : buf[i];
    }
    p[i] -= T(h.lr) * d;
  }
}

template <typename T>
void adam_update(T* p, const T* g, T* m, T* v, T* vmax, int64_t n, const AdamHyper& h) {
  const T step_size = T(h.lr / h.bias_correction1);
  const T sqrt_bc2 = T(std::sqrt(h.bias_correction2));
#pragma omp parallel for if (n > (1 << 16))
  for (int64_t i = 0; i < n; i++) {
    T d = g[i];
    if (h.decoupled) p[i] *= T(1 - h.lr * h.weight_decay);
    else d += T(h.weight_decay) * p[i];
    m[i] = T(h.beta1) * m[i] + T(1 - h.beta1) * d;
    v[i] = T(h.beta2) * v[i] + T(1 - h.beta2) * d * d;
    T second = v[i];
    if (h.amsgrad) second = vmax[i] = std::max(vmax[i], v[i]);
    p[i] -= step_size * m[i] / (std::sqrt(second) / sqrt_bc2 + T(h.eps));
  }
}

template void sgd_update<float>(float*, const float*, float*, int64_t, const SgdHyper&, bool);
template void sgd_update<double>(double*, const double*, double*, int64_t, const SgdHyper&, bool);
template void adam_update<float>(float*, const float*, float*, float*, float*, int64_t, const AdamHyper&);
template void adam_update<double>(double*, const double*, double*, double*, double*, int64_t, const AdamHyper&);

}  // namespace leuko::kernels::cpu
