// Pooling kernels: max and average pooling over kh x kw windows, and adaptive average
// pooling, forward and backward, on planes of (N * C) images of H x W.
//
// Window rule (PyTorch's): output (oh, ow) covers input rows [oh * sh - ph, oh * sh - ph + kh)
// and columns likewise, clipped to the image; padding contributes nothing to a max and, for
// count_include_pad, only to an average's divisor.
//
// channels_last (tensor/tensor.h MemoryFormat): the *_nhwc CUDA kernels compute the same values
// on tensors stored (N, H, W, C): x (N, H, W, C), out (N, OH, OW, C). Consecutive threads take
// consecutive channels of one pixel, so a warp reads and writes consecutive addresses (in NCHW
// a plane's pixels are consecutive instead). Each output, and each input gradient, is the same
// float computation in the same order as the NCHW kernel's: the two orders give the same bits.
//
// Backward kernels write every element of grad_x (activation gradients are written, not
// accumulated). The CPU backward scatters each output's gradient into its window, one plane per
// thread; the CUDA backward gathers instead (each input element sums over the windows that
// contain it, in a fixed order) so that no two threads write the same element: no atomics, and
// the same result on every run.
#pragma once

#include <cstdint>

#include "kernels/host_device.h"
#include "tensor/dtype.h"

namespace leuko::kernels {

// The geometry of one pooling: x is (planes, H, W), out is (planes, OH, OW).
struct Pool2d {
  int64_t planes = 0;  // N * C
  int64_t C = 1;       // channels (the *_nhwc kernels need N and C apart: N = planes / C)
  int64_t H = 0, W = 0, OH = 0, OW = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0;
};

// One axis of an average-pooling window: [*lo, *hi) clipped to the input, and the extent the
// divisor counts (PyTorch: the window clipped to the padded input [-pad, size + pad), which in
// ceil_mode can be shorter than the kernel at the far end).
LEUKO_HOST_DEVICE inline int64_t avg_window(int64_t o, int64_t size, int64_t k, int64_t s, int64_t pad,
                                            bool count_include_pad, int64_t* lo, int64_t* hi) {
  const int64_t start = o * s - pad;
  const int64_t end_padded = (start + k < size + pad) ? start + k : size + pad;
  *lo = start > 0 ? start : 0;
  *hi = end_padded < size ? end_padded : size;
  return count_include_pad ? end_padded - start : *hi - *lo;
}

// The output indices whose window [o * s - pad, o * s - pad + k) contains input index i:
// [*first, *last), clipped to [0, out_size). The gather form of the backward walks these.
LEUKO_HOST_DEVICE inline void windows_containing(int64_t i, int64_t out_size, int64_t k, int64_t s, int64_t pad,
                                                 int64_t* first, int64_t* last) {
  // o * s - pad <= i  <=>  o <= (i + pad) / s;   i < o * s - pad + k  <=>  o > (i + pad - k) / s
  const int64_t ip = i + pad;
  *first = ip < k ? 0 : (ip - k) / s + 1;
  const int64_t l = ip / s + 1;
  *last = l < out_size ? l : out_size;
}

// Adaptive pooling's window of output o over an axis of `size` inputs mapped to `out` outputs:
// [floor(o * size / out), ceil((o + 1) * size / out)).
LEUKO_HOST_DEVICE inline int64_t adaptive_start(int64_t o, int64_t size, int64_t out) { return (o * size) / out; }
LEUKO_HOST_DEVICE inline int64_t adaptive_end(int64_t o, int64_t size, int64_t out) {
  return ((o + 1) * size + out - 1) / out;
}
// The outputs whose adaptive window contains input i: [*first, *last).
//   start(o) <= i  <=>  o * size < (i + 1) * out  <=>  o <= ((i + 1) * out - 1) / size
//   end(o) > i     <=>  (o + 1) * size > i * out  <=>  o >= (i * out) / size
LEUKO_HOST_DEVICE inline void adaptive_windows_containing(int64_t i, int64_t size, int64_t out, int64_t* first,
                                                          int64_t* last) {
  *first = (i * out) / size;
  const int64_t l = ((i + 1) * out - 1) / size + 1;
  *last = l < out ? l : out;
}

namespace cpu {
// out, indices: (planes, OH, OW); indices hold the argmax as h * W + w within its plane (as
// PyTorch's return_indices). Ties: the first maximum in row-major window order wins; NaN wins.
template <typename T> void max_pool2d_forward(T* out, int64_t* indices, const T* x, const Pool2d& p);
// grad_x: (planes, H, W), the sum of grad_out over the outputs whose argmax is each element.
template <typename T> void max_pool2d_backward(T* grad_x, const T* grad_out, const int64_t* indices, const Pool2d& p);
template <typename T> void avg_pool2d_forward(T* out, const T* x, const Pool2d& p, bool count_include_pad);
template <typename T>
void avg_pool2d_backward(T* grad_x, const T* grad_out, const Pool2d& p, bool count_include_pad);
// Adaptive pooling uses p.planes, H, W, OH, OW only.
template <typename T> void adaptive_avg_pool2d_forward(T* out, const T* x, const Pool2d& p);
template <typename T> void adaptive_avg_pool2d_backward(T* grad_x, const T* grad_out, const Pool2d& p);
}  // namespace cpu

namespace cuda {
void max_pool2d_forward(float* out, int64_t* indices, const float* x, const Pool2d& p);
void max_pool2d_backward(float* grad_x, const float* grad_out, const int64_t* indices, const Pool2d& p);
void avg_pool2d_forward(float* out, const float* x, const Pool2d& p, bool count_include_pad);
void avg_pool2d_backward(float* grad_x, const float* grad_out, const Pool2d& p, bool count_include_pad);
void adaptive_avg_pool2d_forward(float* out, const float* x, const Pool2d& p);
void adaptive_avg_pool2d_backward(float* grad_x, const float* grad_out, const Pool2d& p);
// bf16 activations (tensor/device.h bf16_activations()): the same kernels on bf16 storage.
// Values are loaded into float; a max keeps its bf16 value (exact), an average is summed in
// float and rounded once, a backward gathers its gradients in float and rounds once. The
// indices stay int64.
void max_pool2d_forward(bf16* out, int64_t* indices, const bf16* x, const Pool2d& p);
void max_pool2d_backward(bf16* grad_x, const bf16* grad_out, const int64_t* indices, const Pool2d& p);
void avg_pool2d_forward(bf16* out, const bf16* x, const Pool2d& p, bool count_include_pad);
void avg_pool2d_backward(bf16* grad_x, const bf16* grad_out, const Pool2d& p, bool count_include_pad);
void adaptive_avg_pool2d_forward(bf16* out, const bf16* x, const Pool2d& p);
void adaptive_avg_pool2d_backward(bf16* grad_x, const bf16* grad_out, const Pool2d& p);

// channels_last: the same kernels on (N, H, W, C) storage; out, grad_out and indices are
// (N, OH, OW, C), x and grad_x (N, H, W, C). The indices keep their meaning, h * W + w within
// the plane (n, c), only their order in memory is the output's (a channels_last int64 tensor).
void max_pool2d_forward_nhwc(float* out, int64_t* indices, const float* x, const Pool2d& p);
void max_pool2d_forward_nhwc(bf16* out, int64_t* indices, const bf16* x, const Pool2d& p);
void max_pool2d_backward_nhwc(float* grad_x, const float* grad_out, const int64_t* indices, const Pool2d& p);
void max_pool2d_backward_nhwc(bf16* grad_x, const bf16* grad_out, const int64_t* indices, const Pool2d& p);
void avg_pool2d_forward_nhwc(float* out, const float* x, const Pool2d& p, bool count_include_pad);
void avg_pool2d_forward_nhwc(bf16* out, const bf16* x, const Pool2d& p, bool count_include_pad);
void avg_pool2d_backward_nhwc(float* grad_x, const float* grad_out, const Pool2d& p, bool count_include_pad);
void avg_pool2d_backward_nhwc(bf16* grad_x, const bf16* grad_out, const Pool2d& p, bool count_include_pad);
void adaptive_avg_pool2d_forward_nhwc(float* out, const float* x, const Pool2d& p);
void adaptive_avg_pool2d_forward_nhwc(bf16* out, const bf16* x, const Pool2d& p);
void adaptive_avg_pool2d_backward_nhwc(float* grad_x, const float* grad_out, const Pool2d& p);
void adaptive_avg_pool2d_backward_nhwc(bf16* grad_x, const bf16* grad_out, const Pool2d& p);
}  // namespace cuda

}  // namespace leuko::kernels
