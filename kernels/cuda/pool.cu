// CUDA pooling kernels. Forward: one thread per output element. Backward: one thread per
// INPUT element, which gathers the gradients of every window that contains it, walking the
// windows in a fixed order (kernels/pool.h's windows_containing). Two threads never write the
// same element, so there are no atomics and every run gives the same bits.
//
// Every kernel is templated on its storage type T, float or __nv_bfloat16 (bf16 activations):
// it loads values into float, computes in float and stores with one rounding (common.cuh's
// load and store<T>). For float both are the identity, so the float32 kernels are unchanged.
//
// And on its memory order L, Nchw or Nhwc (channels_last): L says where each thread's element
// lies, and the loops over a window are the same for both (kernels/pool.h).
#include <cfloat>

#include "kernels/cuda/common.cuh"
#include "kernels/pool.h"

namespace leuko::kernels::cuda {
namespace {

// ---- Memory orders ----------------------------------------------------------------------------
// A tensor of planes (n, c) of hw pixels each. The element at pixel q of plane pl = n * C + c
// lies at base(pl, hw) + q * step. split(i) inverts that: the plane and pixel of element i.
//
// NCHW: the planes one after another, each contiguous. Consecutive threads take consecutive
// pixels of one plane.
struct Nchw {
  static constexpr int64_t step = 1;
  explicit Nchw(const Pool2d&) {}
  __device__ int64_t base(int64_t pl, int64_t hw) const { return pl * hw; }
  __device__ void split(int64_t i, int64_t hw, int64_t* pl, int64_t* q) const {
    *pl = i / hw;
    *q = i % hw;
  }
};
// NHWC (channels_last): the C channels of a pixel side by side, so a plane's pixels are C
// elements apart. Consecutive threads take consecutive channels of one pixel: a warp's loads
// and stores are consecutive addresses (coalesced).
struct Nhwc {
  int64_t step;  // C
  explicit Nhwc(const Pool2d& p) : step(p.C) {}
  __device__ int64_t base(int64_t pl, int64_t hw) const { return (pl / step) * hw * step + pl % step; }
  __device__ void split(int64_t i, int64_t hw, int64_t* pl, int64_t* q) const {
    const int64_t c = i % step, pixel = i / step;  // pixel: n * hw + q
    *q = pixel % hw;
    *pl = (pixel / hw) * step + c;
  }
};

template <typename T, typename L>
__global__ void max_pool2d_forward_kernel(T* out, int64_t* indices, const T* x, Pool2d p, L lay) {
  const int64_t total = p.planes * p.OH * p.OW;
  LEUKO_GRID_STRIDE(i, total) {
    int64_t pl, q;
    lay.split(i, p.OH * p.OW, &pl, &q);
    const int64_t ow = q % p.OW, oh = q / p.OW;
    const T* xp = x + lay.base(pl, p.H * p.W);  // plane pl: pixel (h, w) at xp[(h * W + w) * step]
    const int64_t h0 = max(oh * p.sh - p.ph, int64_t(0)), h1 = min(oh * p.sh - p.ph + p.kh, p.H);
    const int64_t w0 = max(ow * p.sw - p.pw, int64_t(0)), w1 = min(ow * p.sw - p.pw + p.kw, p.W);
    float best = -INFINITY;  // the first maximum wins ties, a NaN wins everything (as the CPU)
    int64_t arg = h0 * p.W + w0;
    for (int64_t h = h0; h < h1; h++) {
      for (int64_t w = w0; w < w1; w++) {
        const float v = load(xp[(h * p.W + w) * lay.step]);
        if (v > best || v != v) {
          best = v;
          arg = h * p.W + w;
        }
      }
    }
    out[i] = store<T>(best);  // a value of x: exact in T
    indices[i] = arg;         // in out's order; the value is the pixel within the plane either way
  }
}

template <typename T, typename L>
__global__ void max_pool2d_backward_kernel(T* grad_x, const T* grad_out, const int64_t* indices, Pool2d p, L lay) {
  const int64_t total = p.planes * p.H * p.W;
  LEUKO_GRID_STRIDE(i, total) {
    int64_t pl, q;
    lay.split(i, p.H * p.W, &pl, &q);
    const int64_t w = q % p.W, h = q / p.W;
    const T* go = grad_out + lay.base(pl, p.OH * p.OW);       // plane pl of (OH, OW), pixels step apart
    const int64_t* ip = indices + lay.base(pl, p.OH * p.OW);  // the same
    int64_t oh0, oh1, ow0, ow1;
    windows_containing(h, p.OH, p.kh, p.sh, p.ph, &oh0, &oh1);
    windows_containing(w, p.OW, p.kw, p.sw, p.pw, &ow0, &ow1);
    const int64_t me = h * p.W + w;
    float acc = 0.f;
    for (int64_t oh = oh0; oh < oh1; oh++)
      for (int64_t ow = ow0; ow < ow1; ow++)
        if (ip[(oh * p.OW + ow) * lay.step] == me) acc += load(go[(oh * p.OW + ow) * lay.step]);  // it was the max
    grad_x[i] = store<T>(acc);
  }
}

template <typename T, typename L>
__global__ void avg_pool2d_forward_kernel(T* out, const T* x, Pool2d p, bool count_include_pad, L lay) {
  const int64_t total = p.planes * p.OH * p.OW;
  LEUKO_GRID_STRIDE(i, total) {
    int64_t pl, q;
    lay.split(i, p.OH * p.OW, &pl, &q);
    const int64_t ow = q % p.OW, oh = q / p.OW;
    const T* xp = x + lay.base(pl, p.H * p.W);  // plane pl: pixel (h, w) at xp[(h * W + w) * step]
    int64_t h0, h1, w0, w1;
    const int64_t dh = avg_window(oh, p.H, p.kh, p.sh, p.ph, count_include_pad, &h0, &h1);
    const int64_t dw = avg_window(ow, p.W, p.kw, p.sw, p.pw, count_include_pad, &w0, &w1);
    float sum = 0.f;
    for (int64_t h = h0; h < h1; h++)
      for (int64_t w = w0; w < w1; w++) sum += load(xp[(h * p.W + w) * lay.step]);
    out[i] = store<T>(sum / float(dh * dw));
  }
}

template <typename T, typename L>
__global__ void avg_pool2d_backward_kernel(T* grad_x, const T* grad_out, Pool2d p, bool count_include_pad, L lay) {
  const int64_t total = p.planes * p.H * p.W;
  LEUKO_GRID_STRIDE(i, total) {
    int64_t pl, q;
    lay.split(i, p.H * p.W, &pl, &q);
    const int64_t w = q % p.W, h = q / p.W;
    const T* go = grad_out + lay.base(pl, p.OH * p.OW);  // plane pl of (OH, OW), pixels step apart
    int64_t oh0, oh1, ow0, ow1;
    windows_containing(h, p.OH, p.kh, p.sh, p.ph, &oh0, &oh1);
    windows_containing(w, p.OW, p.kw, p.sw, p.pw, &ow0, &ow1);
    float acc = 0.f;
    for (int64_t oh = oh0; oh < oh1; oh++) {
      int64_t lo, hi;  // the clipped window is not needed here, only its divisor
      const int64_t dh = avg_window(oh, p.H, p.kh, p.sh, p.ph, count_include_pad, &lo, &hi);
      for (int64_t ow = ow0; ow < ow1; ow++) {
        const int64_t dw = avg_window(ow, p.W, p.kw, p.sw, p.pw, count_include_pad, &lo, &hi);
        acc += load(go[(oh * p.OW + ow) * lay.step]) / float(dh * dw);
      }
    }
    grad_x[i] = store<T>(acc);
  }
}

template <typename T, typename L>
__global__ void adaptive_avg_pool2d_forward_kernel(T* out, const T* x, Pool2d p, L lay) {
  const int64_t total = p.planes * p.OH * p.OW;
  LEUKO_GRID_STRIDE(i, total) {
    int64_t pl, q;
    lay.split(i, p.OH * p.OW, &pl, &q);
    const int64_t ow = q % p.OW, oh = q / p.OW;
    const T* xp = x + lay.base(pl, p.H * p.W);  // plane pl: pixel (h, w) at xp[(h * W + w) * step]
    const int64_t h0 = adaptive_start(oh, p.H, p.OH), h1 = adaptive_end(oh, p.H, p.OH);
    const int64_t w0 = adaptive_start(ow, p.W, p.OW), w1 = adaptive_end(ow, p.W, p.OW);
    float sum = 0.f;
    for (int64_t h = h0; h < h1; h++)
      for (int64_t w = w0; w < w1; w++) sum += load(xp[(h * p.W + w) * lay.step]);
    out[i] = store<T>(sum / float((h1 - h0) * (w1 - w0)));
  }
}

template <typename T, typename L>
__global__ void adaptive_avg_pool2d_backward_kernel(T* grad_x, const T* grad_out, Pool2d p, L lay) {
  const int64_t total = p.planes * p.H * p.W;
  LEUKO_GRID_STRIDE(i, total) {
    int64_t pl, q;
    lay.split(i, p.H * p.W, &pl, &q);
    const int64_t w = q % p.W, h = q / p.W;
    const T* go = grad_out + lay.base(pl, p.OH * p.OW);  // plane pl of (OH, OW), pixels step apart
    int64_t oh0, oh1, ow0, ow1;
    adaptive_windows_containing(h, p.H, p.OH, &oh0, &oh1);
    adaptive_windows_containing(w, p.W, p.OW, &ow0, &ow1);
    float acc = 0.f;
    for (int64_t oh = oh0; oh < oh1; oh++) {
      const int64_t dh = adaptive_end(oh, p.H, p.OH) - adaptive_start(oh, p.H, p.OH);
      for (int64_t ow = ow0; ow < ow1; ow++) {
        const int64_t dw = adaptive_end(ow, p.W, p.OW) - adaptive_start(ow, p.W, p.OW);
        acc += load(go[(oh * p.OW + ow) * lay.step]) / float(dh * dw);
      }
    }
    grad_x[i] = store<T>(acc);
  }
}

// The launches, one per kernel, for either storage type and memory order. The forwards have a
// thread per output element, the backwards one per input element.
template <typename L, typename T>
void launch_max_pool2d_forward(T* out, int64_t* indices, const T* x, const Pool2d& p) {
  const int64_t n = p.planes * p.OH * p.OW;
  if (n == 0) return;
  max_pool2d_forward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(out, indices, x, p, L(p));
  LEUKO_CUDA_LAUNCH_CHECK();
}

template <typename L, typename T>
void launch_max_pool2d_backward(T* grad_x, const T* grad_out, const int64_t* indices, const Pool2d& p) {
  const int64_t n = p.planes * p.H * p.W;
  if (n == 0) return;
  max_pool2d_backward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(grad_x, grad_out, indices, p, L(p));
  LEUKO_CUDA_LAUNCH_CHECK();
}

template <typename L, typename T>
void launch_avg_pool2d_forward(T* out, const T* x, const Pool2d& p, bool count_include_pad) {
  const int64_t n = p.planes * p.OH * p.OW;
  if (n == 0) return;
  avg_pool2d_forward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(out, x, p, count_include_pad, L(p));
  LEUKO_CUDA_LAUNCH_CHECK();
}

template <typename L, typename T>
void launch_avg_pool2d_backward(T* grad_x, const T* grad_out, const Pool2d& p, bool count_include_pad) {
  const int64_t n = p.planes * p.H * p.W;
  if (n == 0) return;
  avg_pool2d_backward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(grad_x, grad_out, p, count_include_pad, L(p));
  LEUKO_CUDA_LAUNCH_CHECK();
}

template <typename L, typename T>
void launch_adaptive_avg_pool2d_forward(T* out, const T* x, const Pool2d& p) {
  const int64_t n = p.planes * p.OH * p.OW;
  if (n == 0) return;
  adaptive_avg_pool2d_forward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(out, x, p, L(p));
  LEUKO_CUDA_LAUNCH_CHECK();
}

template <typename L, typename T>
void launch_adaptive_avg_pool2d_backward(T* grad_x, const T* grad_out, const Pool2d& p) {
  const int64_t n = p.planes * p.H * p.W;
  if (n == 0) return;
  adaptive_avg_pool2d_backward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(grad_x, grad_out, p, L(p));
  LEUKO_CUDA_LAUNCH_CHECK();
}

}  // namespace

// float32 and bf16 (dev() turns the host's bf16 pointers into the device's __nv_bfloat16), NCHW
// and channels_last (_nhwc).
void max_pool2d_forward(float* out, int64_t* indices, const float* x, const Pool2d& p) {
  launch_max_pool2d_forward<Nchw>(dev(out), indices, dev(x), p);
}
void max_pool2d_forward(bf16* out, int64_t* indices, const bf16* x, const Pool2d& p) {
  launch_max_pool2d_forward<Nchw>(dev(out), indices, dev(x), p);
}
void max_pool2d_forward_nhwc(float* out, int64_t* indices, const float* x, const Pool2d& p) {
  launch_max_pool2d_forward<Nhwc>(dev(out), indices, dev(x), p);
}
void max_pool2d_forward_nhwc(bf16* out, int64_t* indices, const bf16* x, const Pool2d& p) {
  launch_max_pool2d_forward<Nhwc>(dev(out), indices, dev(x), p);
}

void max_pool2d_backward(float* grad_x, const float* grad_out, const int64_t* indices, const Pool2d& p) {
  launch_max_pool2d_backward<Nchw>(dev(grad_x), dev(grad_out), indices, p);
}
void max_pool2d_backward(bf16* grad_x, const bf16* grad_out, const int64_t* indices, const Pool2d& p) {
  launch_max_pool2d_backward<Nchw>(dev(grad_x), dev(grad_out), indices, p);
}
void max_pool2d_backward_nhwc(float* grad_x, const float* grad_out, const int64_t* indices, const Pool2d& p) {
  launch_max_pool2d_backward<Nhwc>(dev(grad_x), dev(grad_out), indices, p);
}
void max_pool2d_backward_nhwc(bf16* grad_x, const bf16* grad_out, const int64_t* indices, const Pool2d& p) {
  launch_max_pool2d_backward<Nhwc>(dev(grad_x), dev(grad_out), indices, p);
}

void avg_pool2d_forward(float* out, const float* x, const Pool2d& p, bool count_include_pad) {
  launch_avg_pool2d_forward<Nchw>(dev(out), dev(x), p, count_include_pad);
}
void avg_pool2d_forward(bf16* out, const bf16* x, const Pool2d& p, bool count_include_pad) {
  launch_avg_pool2d_forward<Nchw>(dev(out), dev(x), p, count_include_pad);
}
void avg_pool2d_forward_nhwc(float* out, const float* x, const Pool2d& p, bool count_include_pad) {
  launch_avg_pool2d_forward<Nhwc>(dev(out), dev(x), p, count_include_pad);
}
void avg_pool2d_forward_nhwc(bf16* out, const bf16* x, const Pool2d& p, bool count_include_pad) {
  launch_avg_pool2d_forward<Nhwc>(dev(out), dev(x), p, count_include_pad);
}

void avg_pool2d_backward(float* grad_x, const float* grad_out, const Pool2d& p, bool count_include_pad) {
  launch_avg_pool2d_backward<Nchw>(dev(grad_x), dev(grad_out), p, count_include_pad);
}
void avg_pool2d_backward(bf16* grad_x, const bf16* grad_out, const Pool2d& p, bool count_include_pad) {
  launch_avg_pool2d_backward<Nchw>(dev(grad_x), dev(grad_out), p, count_include_pad);
}
void avg_pool2d_backward_nhwc(float* grad_x, const float* grad_out, const Pool2d& p, bool count_include_pad) {
  launch_avg_pool2d_backward<Nhwc>(dev(grad_x), dev(grad_out), p, count_include_pad);
}
void avg_pool2d_backward_nhwc(bf16* grad_x, const bf16* grad_out, const Pool2d& p, bool count_include_pad) {
  launch_avg_pool2d_backward<Nhwc>(dev(grad_x), dev(grad_out), p, count_include_pad);
}

void adaptive_avg_pool2d_forward(float* out, const float* x, const Pool2d& p) {
  launch_adaptive_avg_pool2d_forward<Nchw>(dev(out), dev(x), p);
}
void adaptive_avg_pool2d_forward(bf16* out, const bf16* x, const Pool2d& p) {
  launch_adaptive_avg_pool2d_forward<Nchw>(dev(out), dev(x), p);
}
void adaptive_avg_pool2d_forward_nhwc(float* out, const float* x, const Pool2d& p) {
  launch_adaptive_avg_pool2d_forward<Nhwc>(dev(out), dev(x), p);
}
void adaptive_avg_pool2d_forward_nhwc(bf16* out, const bf16* x, const Pool2d& p) {
  launch_adaptive_avg_pool2d_forward<Nhwc>(dev(out), dev(x), p);
}

void adaptive_avg_pool2d_backward(float* grad_x, const float* grad_out, const Pool2d& p) {
  launch_adaptive_avg_pool2d_backward<Nchw>(dev(grad_x), dev(grad_out), p);
}
void adaptive_avg_pool2d_backward(bf16* grad_x, const bf16* grad_out, const Pool2d& p) {
  launch_adaptive_avg_pool2d_backward<Nchw>(dev(grad_x), dev(grad_out), p);
}
void adaptive_avg_pool2d_backward_nhwc(float* grad_x, const float* grad_out, const Pool2d& p) {
  launch_adaptive_avg_pool2d_backward<Nhwc>(dev(grad_x), dev(grad_out), p);
}
void adaptive_avg_pool2d_backward_nhwc(bf16* grad_x, const bf16* grad_out, const Pool2d& p) {
  launch_adaptive_avg_pool2d_backward<Nhwc>(dev(grad_x), dev(grad_out), p);
}

}  // namespace leuko::kernels::cuda
