// CPU convolution: im2col + gemm, and col2im for the data gradient (see kernels/conv2d.h).
//
// The images of a batch are processed one after the other, each through the blocked gemm of
// kernels/cpu/matmul.cpp, which spreads its rows over the OpenMP threads; im2col and col2im
// are parallel over the rows of the column matrix and over channels. One column buffer is
// reused for every image and group.
#include <algorithm>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/matmul.h"

namespace leuko::kernels::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 15;  // below this many elements, threads cost more than they save
}  // namespace

template <typename T>
void im2col(T* col, const T* x, int64_t channels, const Conv2dShape& s) {
  const int64_t rows = channels * s.R * s.S, PQ = s.P * s.Q;
#pragma omp parallel for if (rows * PQ > kParallelMin)
  for (int64_t row = 0; row < rows; row++) {  // row = (c * R + r) * S + kw
    const int64_t kw = row % s.S, r = (row / s.S) % s.R, c = row / (s.R * s.S);
    const T* plane = x + c * s.H * s.W;  // (H, W)
    T* out = col + row * PQ;             // (P, Q)
    for (int64_t p = 0; p < s.P; p++) {
      const int64_t h = p * s.stride_h - s.pad_h + r * s.dil_h;
      if (h < 0 || h >= s.H) {  // the whole output row reads padding
        std::fill(out + p * s.Q, out + (p + 1) * s.Q, T(0));
        continue;
      }
      for (int64_t q = 0; q < s.Q; q++) {
        const int64_t w = q * s.stride_w - s.pad_w + kw * s.dil_w;
        out[p * s.Q + q] = (w >= 0 && w < s.W) ? plane[h * s.W + w] : T(0);
      }
    }
  }
}

template <typename T>
void col2im(T* x, const T* col, int64_t channels, const Conv2dShape& s) {
  const int64_t PQ = s.P * s.Q;
  // Channel c gathers only from rows (c, *, *) of col, so channels are independent: one thread
  // per channel, each adding in a fixed order, gives the same sums on every run.
#pragma omp parallel for if (channels * s.R * s.S * PQ > kParallelMin)
  for (int64_t c = 0; c < channels; c++) {
    T* plane = x + c * s.H * s.W;  // (H, W)
    std::fill(plane, plane + s.H * s.W, T(0));
    for (int64_t r = 0; r < s.R; r++) {
      for (int64_t kw = 0; kw < s.S; kw++) {
        const T* in = col + ((c * s.R + r) * s.S + kw) * PQ;  // (P, Q)
        for (int64_t p = 0; p < s.P; p++) {
          const int64_t h = p * s.stride_h - s.pad_h + r * s.dil_h;
          if (h < 0 || h >= s.H) continue;  // padding: nothing to give back
          for (int64_t q = 0; q < s.Q; q++) {
            const int64_t w = q * s.stride_w - s.pad_w + kw * s.dil_w;
            if (w >= 0 && w < s.W) plane[h * s.W + w] += in[p * s.Q + q];
          }
        }
      }
    }
  }
}

template <typename T>
void conv2d_forward(T* y, const T* x, const T* w, const Conv2dShape& s) {
  const int64_t Cg = s.channels_per_group(), Kg = s.filters_per_group();
  const int64_t rows = s.col_rows(), PQ = s.P * s.Q, HW = s.H * s.W;
  std::vector<T> col(s.pointwise() ? 0 : size_t(rows * PQ));  // (Cg*R*S, P*Q)
  for (int64_t n = 0; n < s.N; n++) {
    for (int64_t g = 0; g < s.groups; g++) {
      const T* xg = x + (n * s.C + g * Cg) * HW;  // (Cg, H, W)
      const T* wg = w + g * Kg * rows;            // (Kg, Cg*R*S)
      T* yg = y + (n * s.K + g * Kg) * PQ;        // (Kg, P*Q)
      const T* cols = xg;  // pointwise: x itself is the (Cg, H*W) column matrix
      if (!s.pointwise()) {
        im2col(col.data(), xg, Cg, s);
        cols = col.data();
      }
      gemm<T>(false, false, Kg, PQ, rows, T(1), wg, rows, cols, PQ, T(0), yg, PQ);
    }
  }
}

template <typename T>
void conv2d_backward_data(T* dx, const T* dy, const T* w, const Conv2dShape& s) {
  const int64_t Cg = s.channels_per_group(), Kg = s.filters_per_group();
  const int64_t rows = s.col_rows(), PQ = s.P * s.Q, HW = s.H * s.W;
  std::vector<T> col(s.pointwise() ? 0 : size_t(rows * PQ));  // (Cg*R*S, P*Q)
  for (int64_t n = 0; n < s.N; n++) {
    for (int64_t g = 0; g < s.groups; g++) {
      T* dxg = dx + (n * s.C + g * Cg) * HW;       // (Cg, H, W)
      const T* dyg = dy + (n * s.K + g * Kg) * PQ;  // (Kg, P*Q)
      const T* wg = w + g * Kg * rows;              // (Kg, Cg*R*S)
      // dcol = w_g^T @ dy_g: the gradient of every column entry.
      if (s.pointwise()) {  // the columns are x itself: write its gradient directly
        gemm<T>(true, false, rows, PQ, Kg, T(1), wg, rows, dyg, PQ, T(0), dxg, PQ);
        continue;
      }
      gemm<T>(true, false, rows, PQ, Kg, T(1), wg, rows, dyg, PQ, T(0), col.data(), PQ);
      col2im(dxg, col.data(), Cg, s);
    }
  }
}

template <typename T>
void conv2d_backward_filter(T* dw, const T* x, const T* dy, const Conv2dShape& s) {
  const int64_t Cg = s.channels_per_group(), Kg = s.filters_per_group();
  const int64_t rows = s.col_rows(), PQ = s.P * s.Q, HW = s.H * s.W;
  if (s.N == 0) {  // an empty batch: the gradient is 0, and still written
    std::fill(dw, dw + s.K * rows, T(0));
    return;
  }
  std::vector<T> col(s.pointwise() ? 0 : size_t(rows * PQ));  // (Cg*R*S, P*Q)
  // dw_g = sum over n of dy_g[n] @ col[n]^T, the images added in order n = 0, 1, ...: the
  // first product overwrites (beta 0), the next ones accumulate (beta 1). Deterministic.
  for (int64_t n = 0; n < s.N; n++) {
    for (int64_t g = 0; g < s.groups; g++) {
      const T* xg = x + (n * s.C + g * Cg) * HW;    // (Cg, H, W)
      const T* dyg = dy + (n * s.K + g * Kg) * PQ;  // (Kg, P*Q)
      T* dwg = dw + g * Kg * rows;                   // (Kg, Cg*R*S)
      const T* cols = xg;
      if (!s.pointwise()) {
        im2col(col.data(), xg, Cg, s);
        cols = col.data();
      }
      gemm<T>(false, true, Kg, rows, PQ, T(1), dyg, PQ, cols, PQ, n == 0 ? T(0) : T(1), dwg, rows);
    }
  }
}

#define LEUKO_INSTANTIATE(T)                                                                   \
  template void im2col<T>(T*, const T*, int64_t, const Conv2dShape&);                          \
  template void col2im<T>(T*, const T*, int64_t, const Conv2dShape&);                          \
  template void conv2d_forward<T>(T*, const T*, const T*, const Conv2dShape&);                 \
  template void conv2d_backward_data<T>(T*, const T*, const T*, const Conv2dShape&);           \
  template void conv2d_backward_filter<T>(T*, const T*, const T*, const Conv2dShape&);
LEUKO_INSTANTIATE(float)
LEUKO_INSTANTIATE(double)
#undef LEUKO_INSTANTIATE

}  // namespace leuko::kernels::cpu
