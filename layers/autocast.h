// The bf16 activations of Precision::bf16 (tensor/device.h bf16_activations()), as PyTorch's
// autocast(bfloat16): what conv2d and linear, the layers that turn float32 into bf16, share.
//
//   conv2d(x float32, w float32)          under bf16 activations: x -> bf16 (recorded, so its
//     = conv2d(x.to(bf16), w)              gradient returns to float32), then the bf16 op.
//   bf16 op on the GPU: w -> a bf16 copy inside the op (not recorded; the op's backward makes
//     the float32 weight gradient itself), products on the tensor cores, bias added in float.
//   bf16 op on the CPU (the reference): through_float with the weight rounded to bf16, so both
//     devices multiply the same values.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace leuko {

// x converted to bf16 when bf16_activations() is on and x is float32; otherwise x itself.
Tensor autocast_bf16(const Tensor& x);
// A bf16 copy of a float32 parameter for one product (detached: not part of the graph).
Tensor bf16_copy(const Tensor& param);
// The bias gradient (C,) float32 from g (N, C, inner) bf16 on the GPU: summed in float and
// never rounded to bf16.
Tensor bias_grad_bf16(const Tensor& g, int64_t N, int64_t C, int64_t inner);

}  // namespace leuko
