// CPU sum reduction (float64 accumulation, so it is the accurate reference) and expand.
#include <vector>

#include "kernels/reduce.h"

namespace leuko::kernels::cpu {

template <typename T>
void sum_to(T* out, const T* in, const Reduction& r, double scale) {
  // Offsets of the summed elements relative to each output's first element: computed once.
  std::vector<int64_t> red_offset(size_t(r.per_output));
  for (int64_t j = 0; j < r.per_output; j++) {
    int64_t rest = j, off = 0;
    for (int d = r.red_rank - 1; d >= 0; d--) {
      off += (rest % r.red_shape[d]) * r.red_stride[d];
      rest /= r.red_shape[d];
    }
    red_offset[size_t(j)] = off;
  }
#pragma omp parallel for if (r.outputs * r.per_output > (1 << 15))
  for (int64_t o = 0; o < r.outputs; o++) {
    int64_t rest = o, base = 0;
    for (int d = r.kept_rank - 1; d >= 0; d--) {
      base += (rest % r.kept_shape[d]) * r.kept_stride[d];
      rest /= r.kept_shape[d];
    }
    double acc = 0;
    for (int64_t j = 0; j < r.per_output; j++) acc += double(in[base + red_offset[size_t(j)]]);
    out[o] = T(acc * scale);
  }
}

template <typename T>
void expand(T* out, const T* in, int64_t n, const Broadcast& bc, double scale) {
  const T s = T(scale);
#pragma omp parallel for if (n > (1 << 15))
  for (int64_t i = 0; i < n; i++) {
    int64_t rest = i, ia = 0;
    for (int d = bc.rank - 1; d >= 0; d--) {
      ia += (rest % bc.shape[d]) * bc.stride_a[d];
      rest /= bc.shape[d];
    }
    out[i] = s * in[ia];
  }
}

template void sum_to<float>(float*, const float*, const Reduction&, double);
template void sum_to<double>(double*, const double*, const Reduction&, double);
template void expand<float>(float*, const float*, int64_t, const Broadcast&, double);
template void expand<double>(double*, const double*, int64_t, const Broadcast&, double);

}  // namespace leuko::kernels::cpu
