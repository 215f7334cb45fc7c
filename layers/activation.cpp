// ReLU and dropout: forward through kernels/activation.h, backward recorded beside it.
#include "layers/activation.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kernels/activation.h"
#include "layers/dispatch.h"
#include "tensor/autograd.h"
#include "tensor/random.h"

namespace leuko {

using detail::dispatch_float;
namespace kc = kernels::cpu;
namespace kg = kernels::cuda;

Tensor relu_grad(const Tensor& g, const Tensor& so) {
  Tensor gx = Tensor::empty_like(so);
  const int64_t m = so.numel();
  if (g.is_cuda()) {
    LEUKO_CUDA_BRANCH(kg::relu_backward(gx.data<float>(), g.data<float>(), so.data<float>(), m));
  } else {
    dispatch_float(g, "relu backward", [&](auto tag) {
      using T = decltype(tag);
      kc::relu_backward(gx.data<T>(), g.data<T>(), so.data<T>(), m);
    });
  }
  return gx;
}

Tensor relu(const Tensor& x) {
  detail::check_compatible("relu", {x});
  Tensor out = Tensor::empty_like(x);
  const int64_t n = x.numel();
  if (x.is_cuda()) {
    LEUKO_CUDA_BRANCH(kg::relu_forward(out.data<float>(), x.data<float>(), n));
  } else {
    dispatch_float(x, "relu", [&](auto tag) {
      using T = decltype(tag);
      kc::relu_forward(out.data<T>(), x.data<T>(), n);
    });
  }
  if (autograd::needs_record({x})) {
    // Saves the output, not the input: the next layer keeps it alive anyway.
    autograd::record(out, "relu", {x}, [so = out.detach()](const Tensor& g, const std::vector<bool>&) {
      return std::vector<Tensor>{relu_grad(g, so)};
    });
  }
  return out;
}

Tensor add_relu(const Tensor& a, const Tensor& b) {
  detail::check_compatible("add_relu", {a, b});
  LEUKO_CHECK(a.shape() == b.shape(), "add_relu: shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()),
              " differ (no broadcasting)");
  Tensor out = Tensor::empty_like(a);
  const int64_t n = a.numel();
  if (a.is_cuda()) {
    LEUKO_CUDA_BRANCH(kg::add_relu_forward(out.data<float>(), a.data<float>(), b.data<float>(), n));
  } else {
    dispatch_float(a, "add_relu", [&](auto tag) {
      using T = decltype(tag);
      kc::add_relu_forward(out.data<T>(), a.data<T>(), b.data<T>(), n);
    });
  }
  if (autograd::needs_record({a, b})) {
    autograd::record(out, "add_relu", {a, b}, [so = out.detach()](const Tensor& g, const std::vector<bool>& need) {
      Tensor gx = relu_grad(g, so);
      return std::vector<Tensor>{need[0] ? gx : Tensor(), need[1] ? gx : Tensor()};
    });
  }
  return out;
}

namespace {
// out = x * mask(seed) * scale, the forward and (applied to the gradient) the backward.
Tensor apply_dropout_mask(const Tensor& x, uint64_t seed, uint64_t threshold, double scale) {
  Tensor out = Tensor::empty_like(x);
  const int64_t n = x.numel();
  if (x.is_cuda()) {
    LEUKO_CUDA_BRANCH(kg::dropout(out.data<float>(), x.data<float>(), n, seed, threshold, scale));
  } else {
    dispatch_float(x, "dropout", [&](auto tag) {
      using T = decltype(tag);
      kc::dropout(out.data<T>(), x.data<T>(), n, seed, threshold, scale);
    });
  }
  return out;
}
}  // namespace

Tensor dropout(const Tensor& x, double p, bool training) {
  detail::check_compatible("dropout", {x});
  LEUKO_CHECK(p >= 0.0 && p < 1.0, "dropout: probability p = ", p, " must be in [0, 1)");
  if (!training || p == 0.0) return x;
  // One seed per call: the mask is then a pure function of (seed, index), so it needs no
  // storage and the backward recomputes it. p < 1 keeps p * 2^64 below 2^64.
  const uint64_t seed = default_generator().next_u64();
  const uint64_t threshold = uint64_t(std::ldexp(p, 64));
  const double scale = 1.0 / (1.0 - p);
  Tensor out = apply_dropout_mask(x, seed, threshold, scale);
  if (autograd::needs_record({x})) {
    // d(x * mask * scale)/dx = mask * scale: the same dropout applied to the gradient.
    autograd::record(out, "dropout", {x}, [seed, threshold, scale](const Tensor& g, const std::vector<bool>&) {
      return std::vector<Tensor>{apply_dropout_mask(g, seed, threshold, scale)};
    });
  }
  return out;
}

// ---- Modules --------------------------------------------------------------------------------

Dropout::Dropout(double p_, bool inplace_) : p(p_), inplace(inplace_) {
  LEUKO_CHECK(p >= 0.0 && p < 1.0, "Dropout: probability p = ", p, " must be in [0, 1)");
}

std::string Dropout::extra_repr() const {
  return "p=" + detail::py_float(p) + ", inplace=" + (inplace ? "True" : "False");
}

std::string Flatten::extra_repr() const { return detail::concat("start_dim=", start_dim, ", end_dim=-1"); }

}  // namespace leuko
