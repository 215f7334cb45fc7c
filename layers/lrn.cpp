// Local response normalisation: forward through kernels/lrn.h, backward recorded beside it.
// The forward keeps its per-element scale (k + alpha/size * window sum of squares) for the
// backward, which also needs the input and the output.
#include "layers/lrn.h"

#include <algorithm>

#include "kernels/lrn.h"
#include "layers/dispatch.h"
#include "tensor/autograd.h"

namespace leuko {

using detail::dispatch_float;
namespace kc = kernels::cpu;
namespace kg = kernels::cuda;

Tensor local_response_norm(const Tensor& x, int64_t size, double alpha, double beta, double k) {
  // bf16 activations: no bf16 kernel (no network of leuko's uses it); float32 on both devices.
  if (x.defined() && x.dtype() == DType::bf16) {
    return detail::through_float(
        [&](const Tensor& xf) { return local_response_norm(xf, size, alpha, beta, k); }, x);
  }
  detail::check_compatible("local_response_norm", {x});
  LEUKO_CHECK(x.dim() >= 3, "local_response_norm: input must be (N, C, ...) with at least 3 dimensions, got ",
              shape_str(x.shape()));
  LEUKO_CHECK(size >= 1, "local_response_norm: size ", size, " must be >= 1");
  kernels::Lrn l;
  l.N = x.size(0), l.C = x.size(1), l.inner = x.numel() / std::max<int64_t>(1, l.N * l.C);
  l.size = size, l.alpha = alpha, l.beta = beta, l.k = k;
  Tensor out = Tensor::empty_like(x);    // (N, C, ...)
  Tensor scale = Tensor::empty_like(x);  // (N, C, ...) k + alpha/size * window sum of squares
  if (x.is_cuda()) {
    LEUKO_CUDA_BRANCH(kg::lrn_forward(out.data<float>(), scale.data<float>(), x.data<float>(), l));
  } else {
    dispatch_float(x, "local_response_norm", [&](auto tag) {
      using T = decltype(tag);
      kc::lrn_forward(out.data<T>(), scale.data<T>(), x.data<T>(), l);
    });
  }
  if (autograd::needs_record({x})) {
    const Tensor sx = x.detach(), so = out.detach();
    autograd::record(out, "local_response_norm", {x}, [l, sx, so, scale](const Tensor& g, const std::vector<bool>&) {
      Tensor gx = Tensor::empty_like(sx);  // (N, C, ...)
      if (g.is_cuda()) {
        LEUKO_CUDA_BRANCH(kg::lrn_backward(gx.data<float>(), g.data<float>(), sx.data<float>(), so.data<float>(),
                                           scale.data<float>(), l));
      } else {
        dispatch_float(g, "local_response_norm backward", [&](auto tag) {
          using T = decltype(tag);
          kc::lrn_backward(gx.data<T>(), g.data<T>(), sx.data<T>(), so.data<T>(), scale.data<T>(), l);
        });
      }
      return std::vector<Tensor>{gx};
    });
  }
  return out;
}

std::string LocalResponseNorm::extra_repr() const {
  return detail::concat(size, ", alpha=", detail::py_float(alpha), ", beta=", detail::py_float(beta),
                        ", k=", detail::py_float(k));
}

}  // namespace leuko
