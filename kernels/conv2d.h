// 2-D convolution kernels (cross-correlation, as PyTorch's conv2d), forward and the two
// backward passes, without bias (layers/conv2d.cpp adds the bias with the bias_add kernel).
//
//   y[n, k, p, q] = sum over c, r, s of  w[k, c, r, s] * x[n, g*Cg + c, p*sh - ph + r*dh, q*sw - pw + s*dw]
//
// for output channel k of group g = k / Kg (Cg = C / groups input channels and Kg = K / groups
// output channels per group); x is read as 0 outside the image (zero padding).
//
// The CPU versions lower the convolution to matrix products (im2col + kernels::cpu::gemm):
// one image's receptive fields are unfolded into the columns of a (Cg*R*S, P*Q) matrix, so that
// the convolution of a group is the product w_g (Kg, Cg*R*S) @ col (Cg*R*S, P*Q). The data
// gradient is the transposed product followed by col2im, which folds the columns back onto the
// image, summing where receptive fields overlap. The CUDA versions call cuDNN.
//
// Every kernel writes its whole output (activation gradients and weight gradients alike are
// fresh results; the autograd engine does the accumulation into .grad).
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/dtype.h"

namespace leuko::kernels {

// The geometry of one convolution. x: (N, C, H, W), w: (K, C / groups, R, S), y: (N, K, P, Q).
struct Conv2dShape {
  int64_t N = 0, C = 0, H = 0, W = 0;  // input
  int64_t K = 0, R = 0, S = 0;         // output channels, kernel height and width
  int64_t groups = 1;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1;
  int64_t P = 0, Q = 0;  // output height and width
  // The memory order of x, y and their gradients (tensor/tensor.h MemoryFormat): false, NCHW;
  // true, channels_last: x stored (N, H, W, C), y (N, P, Q, K) and w (K, R, S, C / groups). The
  // CPU kernels read NCHW only (layers/conv2d.cpp gives them NCHW copies).
  bool channels_last = false;

  int64_t channels_per_group() const { return C / groups; }  // Cg
  int64_t filters_per_group() const { return K / groups; }   // Kg
  int64_t col_rows() const { return channels_per_group() * R * S; }
  // A 1x1 convolution with stride 1 and no padding reads x as it is: im2col would be a copy.
  bool pointwise() const {
    return R == 1 && S == 1 && stride_h == 1 && stride_w == 1 && pad_h == 0 && pad_w == 0;
  }
};

// floor((in + 2 pad - dil (k - 1) - 1) / stride) + 1, the output size along one axis; it is
// < 1 when the dilated kernel is larger than the padded input (the caller reports that).
inline int64_t conv_output_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil) {
  const int64_t span = in + 2 * pad - dil * (k - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;
}

namespace cpu {
// Unfolds `channels` planes of one image.   col: (channels*R*S, P*Q), x: (channels, H, W)
template <typename T> void im2col(T* col, const T* x, int64_t channels, const Conv2dShape& s);
// The adjoint of im2col: x = the sum of every column entry that was read from each element.
// x: (channels, H, W) written in full; col: (channels*R*S, P*Q)
template <typename T> void col2im(T* x, const T* col, int64_t channels, const Conv2dShape& s);

// y: (N, K, P, Q) from x: (N, C, H, W) and w: (K, Cg, R, S).
template <typename T> void conv2d_forward(T* y, const T* x, const T* w, const Conv2dShape& s);
// dx: (N, C, H, W) from dy: (N, K, P, Q) and w: (K, Cg, R, S).
template <typename T> void conv2d_backward_data(T* dx, const T* dy, const T* w, const Conv2dShape& s);
// dw: (K, Cg, R, S) from x: (N, C, H, W) and dy: (N, K, P, Q), summed over images 0..N-1 in order.
template <typename T> void conv2d_backward_filter(T* dw, const T* x, const T* dy, const Conv2dShape& s);
}  // namespace cpu

namespace cuda {
// cuDNN's scratch memory, owned by the caller: returns device memory of at least `bytes` bytes
// (nullptr for 0), valid for work queued on the stream until the next call. May throw
// OutOfMemory; the convolution then falls back to an algorithm that needs no workspace.
// layers/conv2d.cpp allocates it for each call and frees it once the call is queued.
using Workspace = void* (*)(size_t bytes);

// float32, same layouts as the CPU versions. The algorithm of each direction is chosen once per
// geometry and precision (tensor/device.h) and cached: see kernels/cuda/conv2d.cpp.
void conv2d_forward(float* y, const float* x, const float* w, const Conv2dShape& s, Workspace ws);
void conv2d_backward_data(float* dx, const float* dy, const float* w, const Conv2dShape& s, Workspace ws);
void conv2d_backward_filter(float* dw, const float* x, const float* dy, const Conv2dShape& s, Workspace ws);
// bf16 activations (tensor/device.h bf16_activations()): x, w, y and the gradients in bf16,
// products and sums in float32 on the tensor cores, each output rounded once. The caller
// converts the float32 master weight to bf16 (and the bf16 weight gradient back to float32).
void conv2d_forward(bf16* y, const bf16* x, const bf16* w, const Conv2dShape& s, Workspace ws);
void conv2d_backward_data(bf16* dx, const bf16* dy, const bf16* w, const Conv2dShape& s, Workspace ws);
void conv2d_backward_filter(bf16* dw, const bf16* x, const bf16* dy, const Conv2dShape& s, Workspace ws);

// How many algorithm searches have run so far (one per new geometry, precision and direction):
// a second call with the same geometry must not search again.
int64_t conv2d_algorithm_searches();

// Which cuDNN interface runs the convolutions: the legacy cudnnConvolution* calls (eight fixed
// algorithms per direction, kernels/cuda/conv2d.cpp), or the graph (backend) API, whose engines
// cuDNN's heuristics offer and benchmark mode times (kernels/cuda/conv2d_graph.cpp). A
// convolution the graph API has no engine for runs the legacy way. LEUKO_CUDNN_API=graph or
// legacy (the default until a GPU run measures the graph API), read once; set_conv_api overrides
// it for the convolutions that follow (each interface keeps its own choices).
enum class ConvApi { legacy, graph };
ConvApi conv_api();
void set_conv_api(ConvApi api);
// How many convolution directions (geometry, type, direction) the graph API has planned: tests
// check that it ran rather than handing every call to the legacy path.
int64_t conv2d_graph_plans();
}  // namespace cuda

}  // namespace leuko::kernels
