#include "layers/autocast.h"

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
