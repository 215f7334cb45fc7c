// CPU reference for the pooling kernels: loops over windows, one plane (n, c) per OpenMP
// iteration. The backward passes scatter each output's gradient into its window; a plane is
// one thread's, so the scatter needs no synchronisation and its order is fixed.
#include <algorithm>
#include <limits>

#include "kernels/pool.h"

namespace leuko::kernels::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 15;  // elements; below this, threads cost more than they save
}

template <typename T>
void max_pool2d_forward(T* out, int64_t* indices, const T* x, const Pool2d& p) {
  const int64_t in_plane = p.H * p.W, out_plane = p.OH * p.OW;
#pragma omp parallel for if (p.planes * in_plane > kParallelMin)
  for (int64_t pl = 0; pl < p.planes; pl++) {
    const T* xp = x + pl * in_plane;  // (H, W)
    T* op = out + pl * out_plane;     // (OH, OW)
    int64_t* ip = indices + pl * out_plane;
    for (int64_t oh = 0; oh < p.OH; oh++) {
      const int64_t h0 = std::max<int64_t>(oh * p.sh - p.ph, 0), h1 = std::min(oh * p.sh - p.ph + p.kh, p.H);
      for (int64_t ow = 0; ow < p.OW; ow++) {
        const int64_t w0 = std::max<int64_t>(ow * p.sw - p.pw, 0), w1 = std::min(ow * p.sw - p.pw + p.kw, p.W);
        // Start below every value so the first element always wins a tie (PyTorch's rule);
        // `v != v` lets a NaN through, so a NaN in the window gives NaN as PyTorch does.
        T best = -std::numeric_limits<T>::infinity();
        int64_t arg = h0 * p.W + w0;
        for (int64_t h = h0; h < h1; h++) {
          for (int64_t w = w0; w < w1; w++) {
            const T v = xp[h * p.W + w];
            if (v > best || v != v) {
              best = v;
              arg = h * p.W + w;
            }
          }
        }
        op[oh * p.OW + ow] = best;
        ip[oh * p.OW + ow] = arg;
      }
    }
  }
}

template <typename T>
void max_pool2d_backward(T* grad_x, const T* grad_out, const int64_t* indices, const Pool2d& p) {
  const int64_t in_plane = p.H * p.W, out_plane = p.OH * p.OW;
#pragma omp parallel for if (p.planes * in_plane > kParallelMin)
  for (int64_t pl = 0; pl < p.planes; pl++) {
    T* gx = grad_x + pl * in_plane;  // (H, W)
    const T* go = grad_out + pl * out_plane;  // (OH, OW)
    const int64_t* ip = indices + pl * out_plane;
    std::fill(gx, gx + in_plane, T(0));
    // Overlapping windows (stride < kernel) can share an argmax: its gradients add up.
    for (int64_t o = 0; o < out_plane; o++) gx[ip[o]] += go[o];
  }
}

template <typename T>
void avg_pool2d_forward(T* out, const T* x, const Pool2d& p, bool count_include_pad) {
  const int64_t in_plane = p.H * p.W, out_plane = p.OH * p.OW;
#pragma omp parallel for if (p.planes * in_plane > kParallelMin)
  for (int64_t pl = 0; pl < p.planes; pl++) {
    const T* xp = x + pl * in_plane;  // (H, W)
    T* op = out + pl * out_plane;     // (OH, OW)
    for (int64_t oh = 0; oh < p.OH; oh++) {
      int64_t h0, h1, w0, w1;
      const int64_t dh = avg_window(oh, p.H, p.kh, p.sh, p.ph, count_include_pad, &h0, &h1);
      for (int64_t ow = 0; ow < p.OW; ow++) {
        const int64_t dw = avg_window(ow, p.W, p.kw, p.sw, p.pw, count_include_pad, &w0, &w1);
        T sum = 0;
        for (int64_t h = h0; h < h1; h++)
          for (int64_t w = w0; w < w1; w++) sum += xp[h * p.W + w];
        op[oh * p.OW + ow] = sum / T(dh * dw);
      }
    }
  }
}

template <typename T>
void avg_pool2d_backward(T* grad_x, const T* grad_out, const Pool2d& p, bool count_include_pad) {
  const int64_t in_plane = p.H * p.W, out_plane = p.OH * p.OW;
#pragma omp parallel for if (p.planes * in_plane > kParallelMin)
  for (int64_t pl = 0; pl < p.planes; pl++) {
    T* gx = grad_x + pl * in_plane;           // (H, W)
    const T* go = grad_out + pl * out_plane;  // (OH, OW)
    std::fill(gx, gx + in_plane, T(0));
    for (int64_t oh = 0; oh < p.OH; oh++) {
      int64_t h0, h1, w0, w1;
      const int64_t dh = avg_window(oh, p.H, p.kh, p.sh, p.ph, count_include_pad, &h0, &h1);
      for (int64_t ow = 0; ow < p.OW; ow++) {
        const int64_t dw = avg_window(ow, p.W, p.kw, p.sw, p.pw, count_include_pad, &w0, &w1);
        const T g = go[oh * p.OW + ow] / T(dh * dw);  // d(mean)/d(each summed input) = 1 / divisor
        for (int64_t h = h0; h < h1; h++)
          for (int64_t w = w0; w < w1; w++) gx[h * p.W + w] += g;
      }
    }
  }
}

template <typename T>
void adaptive_avg_pool2d_forward(T* out, const T* x, const Pool2d& p) {
  const int64_t in_plane = p.H * p.W, out_plane = p.OH * p.OW;
#pragma omp parallel for if (p.planes * in_plane > kParallelMin)
  for (int64_t pl = 0; pl < p.planes; pl++) {
    const T* xp = x + pl * in_plane;  // (H, W)
    T* op = out + pl * out_plane;     // (OH, OW)
    for (int64_t oh = 0; oh < p.OH; oh++) {
      const int64_t h0 = adaptive_start(oh, p.H, p.OH), h1 = adaptive_end(oh, p.H, p.OH);
      for (int64_t ow = 0; ow < p.OW; ow++) {
        const int64_t w0 = adaptive_start(ow, p.W, p.OW), w1 = adaptive_end(ow, p.W, p.OW);
        T sum = 0;
        for (int64_t h = h0; h < h1; h++)
          for (int64_t w = w0; w < w1; w++) sum += xp[h * p.W + w];
        op[oh * p.OW + ow] = sum / T((h1 - h0) * (w1 - w0));
      }
    }
  }
}

template <typename T>
void adaptive_avg_pool2d_backward(T* grad_x, const T* grad_out, const Pool2d& p) {
  const int64_t in_plane = p.H * p.W, out_plane = p.OH * p.OW;
#pragma omp parallel for if (p.planes * in_plane > kParallelMin)
  for (int64_t pl = 0; pl < p.planes; pl++) {
    T* gx = grad_x + pl * in_plane;           // (H, W)
    const T* go = grad_out + pl * out_plane;  // (OH, OW)
    std::fill(gx, gx + in_plane, T(0));
    for (int64_t oh = 0; oh < p.OH; oh++) {
      const int64_t h0 = adaptive_start(oh, p.H, p.OH), h1 = adaptive_end(oh, p.H, p.OH);
      for (int64_t ow = 0; ow < p.OW; ow++) {
        const int64_t w0 = adaptive_start(ow, p.W, p.OW), w1 = adaptive_end(ow, p.W, p.OW);
        const T g = go[oh * p.OW + ow] / T((h1 - h0) * (w1 - w0));
        for (int64_t h = h0; h < h1; h++)
          for (int64_t w = w0; w < w1; w++) gx[h * p.W + w] += g;
      }
    }
  }
}

#define LEUKO_INSTANTIATE(T)                                                                     \
  template void max_pool2d_forward<T>(T*, int64_t*, const T*, const Pool2d&);                   \
  template void max_pool2d_backward<T>(T*, const T*, const int64_t*, const Pool2d&);            \
  template void avg_pool2d_forward<T>(T*, const T*, const Pool2d&, bool);                       \
  template void avg_pool2d_backward<T>(T*, const T*, const Pool2d&, bool);                      \
  template void adaptive_avg_pool2d_forward<T>(T*, const T*, const Pool2d&);                    \
  template void adaptive_avg_pool2d_backward<T>(T*, const T*, const Pool2d&);
LEUKO_INSTANTIATE(float)
LEUKO_INSTANTIATE(double)
#undef LEUKO_INSTANTIATE

}  // namespace leuko::kernels::cpu
