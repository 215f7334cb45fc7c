// CPU reference for the NCHW <-> NHWC transposes: plain loops, one image per OpenMP task.
#include "kernels/layout.h"

namespace leuko::kernels::cpu {

template <typename T>
void to_nhwc(T* out, const T* in, int64_t N, int64_t C, int64_t HW) {
#pragma omp parallel for if (N * C * HW > (1 << 16))
  for (int64_t n = 0; n < N; n++) {
    const T* src = in + n * C * HW;  // (C, HW)
    T* dst = out + n * C * HW;       // (HW, C)
    for (int64_t c = 0; c < C; c++)
      for (int64_t p = 0; p < HW; p++) dst[p * C + c] = src[c * HW + p];
  }
}

template <typename T>
void to_nchw(T* out, const T* in, int64_t N, int64_t C, int64_t HW) {
#pragma omp parallel for if (N * C * HW > (1 << 16))
  for (int64_t n = 0; n < N; n++) {
    const T* src = in + n * C * HW;  // (HW, C)
    T* dst = out + n * C * HW;       // (C, HW)
    for (int64_t p = 0; p < HW; p++)
      for (int64_t c = 0; c < C; c++) dst[c * HW + p] = src[p * C + c];
  }
}

#define LEUKO_LAYOUT(T)                                                \
  template void to_nhwc<T>(T*, const T*, int64_t, int64_t, int64_t); \
  template void to_nchw<T>(T*, const T*, int64_t, int64_t, int64_t);
LEUKO_LAYOUT(float)
LEUKO_LAYOUT(double)
LEUKO_LAYOUT(bf16)
LEUKO_LAYOUT(int64_t)
#undef LEUKO_LAYOUT

}  // namespace leuko::kernels::cpu
