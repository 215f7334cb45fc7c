#include "layers/autocast.h"

#include "kernels/layout.h"
#include "kernels/reduce.h"
#include "layers/dispatch.h"
#include "tensor/device.h"

namespace leuko {

Tensor autocast_bf16(const Tensor& x) {
  return bf16_activations() && x.defined() && x.dtype() == DType::f32 ? x.to(DType::bf16) : x;
}

Tensor autocast_channels_last(const Tensor& x) {
  return channels_last_activations() && x.defined() && x.dim() == 4 && !x.is_channels_last()
             ? x.to(MemoryFormat::channels_last)
             : x;
}

Tensor bf16_copy(const Tensor& param) { return param.detach().to(DType::bf16); }

Tensor conv_weight(const Tensor& weight, DType dtype, MemoryFormat format) {
  const bool fused = weight.is_cuda() && dtype == DType::bf16 && format == MemoryFormat::channels_last &&
                     weight.dtype() == DType::f32 && !weight.is_channels_last() && weight.dim() == 4;
  if (!fused) return weight.detach().to(dtype).to(format);
  Tensor w = Tensor::empty(weight.shape(), DType::bf16, weight.device(), format);  // stored (K, R, S, Cg)
#if LEUKO_WITH_CUDA
  kernels::cuda::to_nhwc(w.data<bf16>(), weight.data<float>(), weight.size(0), weight.size(1),
                         weight.size(2) * weight.size(3));
#endif
  return w;
}

Tensor to_master_grad(const Tensor& dw) {
  const bool fused = dw.is_cuda() && dw.dtype() == DType::bf16 && dw.is_channels_last();
  if (!fused) return dw.to(DType::f32).to(MemoryFormat::nchw);
  Tensor g = Tensor::empty(dw.shape(), DType::f32, dw.device());  // (K, Cg, R, S)
#if LEUKO_WITH_CUDA
  kernels::cuda::to_nchw(g.data<float>(), dw.data<bf16>(), dw.size(0), dw.size(1), dw.size(2) * dw.size(3));
#endif
  return g;
}

Tensor bias_grad(const Tensor& g, int64_t rows, int64_t C, int64_t inner) {
  LEUKO_CHECK(g.is_cuda() && (g.dtype() == DType::bf16 || g.dtype() == DType::f32),
              "bias_grad: takes a float32 or bf16 gradient on the GPU, got ", g.describe());
  Tensor out = Tensor::empty({C}, DType::f32, g.device());  // (C,)
#if LEUKO_WITH_CUDA
  const int64_t in_shape[3] = {rows, C, inner}, out_shape[3] = {1, C, 1};
  const kernels::Reduction r = kernels::make_reduction(in_shape, out_shape, 3);
  const int64_t floats = kernels::cuda::sum_to_scratch(r);
  Tensor scratch = floats > 0 ? Tensor::empty({floats}, DType::f32, g.device()) : Tensor();  // per-block partials
  float* sp = floats > 0 ? scratch.data<float>() : nullptr;
  if (g.dtype() == DType::bf16) kernels::cuda::sum_to(out.data<float>(), g.data<bf16>(), r, 1.0, sp);
  else kernels::cuda::sum_to(out.data<float>(), g.data<float>(), r, 1.0, sp);
#else
  (void)rows, (void)inner;
  detail::no_cuda_build();
#endif
  return out;
}

}  // namespace leuko
