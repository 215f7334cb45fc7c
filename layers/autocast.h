// The bf16 activations of Precision::bf16 (tensor/device.h bf16_activations()), as PyTorch's
// autocast(bfloat16): what conv2d and linear, the layers that turn float32 into bf16, share.
//
//   conv2d(x float32, w float32)          under bf16 activations: x -> bf16 (recorded, so its
//     = conv2d(x.to(bf16), w)              gradient returns to float32), then the bf16 op.
//   bf16 op on the GPU: w -> a bf16 copy inside the op (not recorded; the op's backward makes
//     the float32 weight gradient itself), products on the tensor cores, bias added in float.
//   bf16 op on the CPU (the reference): through_float with the weight rounded to bf16, so both
//     devices multiply the same values.
//   channels_last_activations(): the convolution's input is also converted to channels_last,
//     and its output is channels_last (cuDNN's NHWC kernels, the filter as (K, R, S, Cg)).
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace leuko {

// x converted to bf16 when bf16_activations() is on and x is float32; otherwise x itself.
Tensor autocast_bf16(const Tensor& x);
// x converted to channels_last when channels_last_activations() is on and x is a 4-D NCHW
// tensor; otherwise x itself. (The first convolution converts the batch; every later one gets
// channels_last already.)
Tensor autocast_channels_last(const Tensor& x);
// A bf16 copy of a float32 parameter for one product (detached: not part of the graph).
Tensor bf16_copy(const Tensor& param);
// A convolution's float32 NCHW master weight as its kernels read it, in the input's dtype and
// memory order: the master itself (float32 NCHW), or a detached copy, bf16 and/or (K, R, S, Cg);
// bf16 channels_last on the GPU in one pass (kernels/layout.h).
Tensor conv_weight(const Tensor& weight, DType dtype, MemoryFormat format);
// The weight gradient as cuDNN wrote it (the input's dtype and order) as the master's: float32
// NCHW (itself when it already is).
Tensor to_master_grad(const Tensor& dw);
// The bias gradient (C,) float32 from g on the GPU, float32 or bf16, viewed as (rows, C, inner):
// (N, C, P*Q) for NCHW, (N*P*Q, C, 1) for channels_last, (N, C, 1) for a linear layer. Summed in
// float, never rounded to bf16.
Tensor bias_grad(const Tensor& g, int64_t rows, int64_t C, int64_t inner);

}  // namespace leuko
