#include "layers/autocast.h"

#include "kernels/reduce.h"
#include "layers/dispatch.h"
#include "tensor/device.h"

namespace leuko {

Tensor autocast_bf16(const Tensor& x) {
  return bf16_activations() && x.defined() && x.dtype() == DType::f32 ? x.to(DType::bf16) : x;
}

Tensor bf16_copy(const Tensor& param) { return param.detach().to(DType::bf16); }

Tensor bias_grad_bf16(const Tensor& g, int64_t N, int64_t C, int64_t inner) {
  LEUKO_CHECK(g.is_cuda() && g.dtype() == DType::bf16, "bias_grad_bf16: takes a bf16 gradient on the GPU, got ",
              g.describe());
  Tensor out = Tensor::empty({C}, DType::f32, g.device());  // (C,)
#if LEUKO_WITH_CUDA
  const int64_t in_shape[3] = {N, C, inner}, out_shape[3] = {1, C, 1};
  const kernels::Reduction r = kernels::make_reduction(in_shape, out_shape, 3);
  const int64_t floats = kernels::cuda::sum_to_scratch(r);
  Tensor scratch = floats > 0 ? Tensor::empty({floats}, DType::f32, g.device()) : Tensor();  // per-block partials
  kernels::cuda::sum_to(out.data<float>(), g.data<bf16>(), r, 1.0, floats > 0 ? scratch.data<float>() : nullptr);
#else
  (void)N, (void)inner;
  detail::no_cuda_build();
#endif
  return out;
}

}  // namespace leuko
