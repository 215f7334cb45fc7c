// CUDA pooling kernels. Forward: one thread per output element. Backward: one thread per
// INPUT element, which gathers the gradients of every window that contains it, walking the
// windows in a fixed order (kernels/pool.h's windows_containing). Two threads never write the
// same element, so there are no atomics and every run gives the same bits.
#include <cfloat>

#include "kernels/cuda/common.cuh"
#include "kernels/pool.h"

namespace leuko::kernels::cuda {
namespace {

__global__ void max_pool2d_forward_kernel(float* out, int64_t* indices, const float* x, Pool2d p) {
  const int64_t total = p.planes * p.OH * p.OW;
  LEUKO_GRID_STRIDE(i, total) {
    const int64_t ow = i % p.OW, oh = (i / p.OW) % p.OH, pl = i / (p.OW * p.OH);
    const float* xp = x + pl * p.H * p.W;  // (H, W)
    const int64_t h0 = max(oh * p.sh - p.ph, int64_t(0)), h1 = min(oh * p.sh - p.ph + p.kh, p.H);
    const int64_t w0 = max(ow * p.sw - p.pw, int64_t(0)), w1 = min(ow * p.sw - p.pw + p.kw, p.W);
    float best = -INFINITY;  // the first maximum wins ties, a NaN wins everything (as the CPU)
    int64_t arg = h0 * p.W + w0;
    for (int64_t h = h0; h < h1; h++) {
      for (int64_t w = w0; w < w1; w++) {
        const float v = xp[h * p.W + w];
        if (v > best || v != v) {
          best = v;
          arg = h * p.W + w;
        }
      }
    }
    out[i] = best;
    indices[i] = arg;
  }
}

__global__ void max_pool2d_backward_kernel(float* grad_x, const float* grad_out, const int64_t* indices, Pool2d p) {
  const int64_t total = p.planes * p.H * p.W;
  LEUKO_GRID_STRIDE(i, total) {
    const int64_t w = i % p.W, h = (i / p.W) % p.H, pl = i / (p.W * p.H);
    const float* go = grad_out + pl * p.OH * p.OW;      // (OH, OW)
    const int64_t* ip = indices + pl * p.OH * p.OW;     // (OH, OW)
    int64_t oh0, oh1, ow0, ow1;
    windows_containing(h, p.OH, p.kh, p.sh, p.ph, &oh0, &oh1);
    windows_containing(w, p.OW, p.kw, p.sw, p.pw, &ow0, &ow1);
    const int64_t me = h * p.W + w;
    float acc = 0.f;
    for (int64_t oh = oh0; oh < oh1; oh++)
      for (int64_t ow = ow0; ow < ow1; ow++)
        if (ip[oh * p.OW + ow] == me) acc += go[oh * p.OW + ow];  // this element was that window's max
    grad_x[i] = acc;
  }
}

__global__ void avg_pool2d_forward_kernel(float* out, const float* x, Pool2d p, bool count_include_pad) {
  const int64_t total = p.planes * p.OH * p.OW;
  LEUKO_GRID_STRIDE(i, total) {
    const int64_t ow = i % p.OW, oh = (i / p.OW) % p.OH, pl = i / (p.OW * p.OH);
    const float* xp = x + pl * p.H * p.W;  // (H, W)
    int64_t h0, h1, w0, w1;
    const int64_t dh = avg_window(oh, p.H, p.kh, p.sh, p.ph, count_include_pad, &h0, &h1);
    const int64_t dw = avg_window(ow, p.W, p.kw, p.sw, p.pw, count_include_pad, &w0, &w1);
    float sum = 0.f;
    for (int64_t h = h0; h < h1; h++)
      for (int64_t w = w0; w < w1; w++) sum += xp[h * p.W + w];
    out[i] = sum / float(dh * dw);
  }
}

__global__ void avg_pool2d_backward_kernel(float* grad_x, const float* grad_out, Pool2d p, bool count_include_pad) {
  const int64_t total = p.planes * p.H * p.W;
  LEUKO_GRID_STRIDE(i, total) {
    const int64_t w = i % p.W, h = (i / p.W) % p.H, pl = i / (p.W * p.H);
    const float* go = grad_out + pl * p.OH * p.OW;  // (OH, OW)
    int64_t oh0, oh1, ow0, ow1;
    windows_containing(h, p.OH, p.kh, p.sh, p.ph, &oh0, &oh1);
    windows_containing(w, p.OW, p.kw, p.sw, p.pw, &ow0, &ow1);
    float acc = 0.f;
    for (int64_t oh = oh0; oh < oh1; oh++) {
      int64_t lo, hi;  // the clipped window is not needed here, only its divisor
      const int64_t dh = avg_window(oh, p.H, p.kh, p.sh, p.ph, count_include_pad, &lo, &hi);
      for (int64_t ow = ow0; ow < ow1; ow++) {
        const int64_t dw = avg_window(ow, p.W, p.kw, p.sw, p.pw, count_include_pad, &lo, &hi);
        acc += go[oh * p.OW + ow] / float(dh * dw);
      }
    }
    grad_x[i] = acc;
  }
}

__global__ void adaptive_avg_pool2d_forward_kernel(float* out, const float* x, Pool2d p) {
  const int64_t total = p.planes * p.OH * p.OW;
  LEUKO_GRID_STRIDE(i, total) {
    const int64_t ow = i % p.OW, oh = (i / p.OW) % p.OH, pl = i / (p.OW * p.OH);
    const float* xp = x + pl * p.H * p.W;  // (H, W)
    const int64_t h0 = adaptive_start(oh, p.H, p.OH), h1 = adaptive_end(oh, p.H, p.OH);
    const int64_t w0 = adaptive_start(ow, p.W, p.OW), w1 = adaptive_end(ow, p.W, p.OW);
    float sum = 0.f;
    for (int64_t h = h0; h < h1; h++)
      for (int64_t w = w0; w < w1; w++) sum += xp[h * p.W + w];
    out[i] = sum / float((h1 - h0) * (w1 - w0));
  }
}

__global__ void adaptive_avg_pool2d_backward_kernel(float* grad_x, const float* grad_out, Pool2d p) {
  const int64_t total = p.planes * p.H * p.W;
  LEUKO_GRID_STRIDE(i, total) {
    const int64_t w = i % p.W, h = (i / p.W) % p.H, pl = i / (p.W * p.H);
    const float* go = grad_out + pl * p.OH * p.OW;  // (OH, OW)
    int64_t oh0, oh1, ow0, ow1;
    adaptive_windows_containing(h, p.H, p.OH, &oh0, &oh1);
    adaptive_windows_containing(w, p.W, p.OW, &ow0, &ow1);
    float acc = 0.f;
    for (int64_t oh = oh0; oh < oh1; oh++) {
      const int64_t dh = adaptive_end(oh, p.H, p.OH) - adaptive_start(oh, p.H, p.OH);
      for (int64_t ow = ow0; ow < ow1; ow++) {
        const int64_t dw = adaptive_end(ow, p.W, p.OW) - adaptive_start(ow, p.W, p.OW);
        acc += go[oh * p.OW + ow] / float(dh * dw);
      }
    }
    grad_x[i] = acc;
  }
}

}  // namespace

void max_pool2d_forward(float* out, int64_t* indices, const float* x, const Pool2d& p) {
  const int64_t n = p.planes * p.OH * p.OW;
  if (n == 0) return;
  max_pool2d_forward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(out, indices, x, p);
  LEUKO_CUDA_LAUNCH_CHECK();
}

void max_pool2d_backward(float* grad_x, const float* grad_out, const int64_t* indices, const Pool2d& p) {
  const int64_t n = p.planes * p.H * p.W;
  if (n == 0) return;
  max_pool2d_backward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(grad_x, grad_out, indices, p);
  LEUKO_CUDA_LAUNCH_CHECK();
}

void avg_pool2d_forward(float* out, const float* x, const Pool2d& p, bool count_include_pad) {
  const int64_t n = p.planes * p.OH * p.OW;
  if (n == 0) return;
  avg_pool2d_forward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(out, x, p, count_include_pad);
  LEUKO_CUDA_LAUNCH_CHECK();
}

void avg_pool2d_backward(float* grad_x, const float* grad_out, const Pool2d& p, bool count_include_pad) {
  const int64_t n = p.planes * p.H * p.W;
  if (n == 0) return;
  avg_pool2d_backward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(grad_x, grad_out, p, count_include_pad);
  LEUKO_CUDA_LAUNCH_CHECK();
}

void adaptive_avg_pool2d_forward(float* out, const float* x, const Pool2d& p) {
  const int64_t n = p.planes * p.OH * p.OW;
  if (n == 0) return;
  adaptive_avg_pool2d_forward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(out, x, p);
  LEUKO_CUDA_LAUNCH_CHECK();
}

void adaptive_avg_pool2d_backward(float* grad_x, const float* grad_out, const Pool2d& p) {
  const int64_t n = p.planes * p.H * p.W;
  if (n == 0) return;
  adaptive_avg_pool2d_backward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(grad_x, grad_out, p);
  LEUKO_CUDA_LAUNCH_CHECK();
}

}  // namespace leuko::kernels::cuda
