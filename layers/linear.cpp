// linear: one gemm forward (bias added in place by the bias_add kernel), two gemms and a
// column sum backward, recorded as one autograd node. Under bf16 activations (layers/autocast.h)
// the input is converted to bf16 and the GPU multiplies bf16 operands (a bf16 copy of the
// weight) with cuBLAS; the CPU runs the float32 op on the same rounded values.
#include "layers/linear.h"

#include <cmath>

#include "kernels/activation.h"
#include "kernels/elementwise.h"
#include "layers/activation.h"
#include "layers/autocast.h"
#include "layers/dispatch.h"
#include "layers/matmul.h"
#include "layers/reduce.h"
#include "tensor/autograd.h"

namespace leuko {

using detail::dispatch_float;

namespace {

// The bf16 op on the GPU: x (N, in) bf16, weight (out, in) and bias (out,) float32 (checked by
// linear_impl). The product multiplies a bf16 copy of the weight; the bias is added in float.
// The weight's gradient is written in float32 directly (cuBLAS: bf16 operands, float32 output).
Tensor linear_bf16_cuda(const Tensor& x, const Tensor& weight, const Tensor& bias, bool relu) {
  const int64_t N = x.size(0), out_f = weight.size(0);
  const Tensor wb = bf16_copy(weight);                             // (out, in) bf16
  Tensor out = Tensor::empty({N, out_f}, DType::bf16, x.device());  // (N, out) bf16
  detail::gemm(out, x, false, wb, true);                            // (N, in) @ (out, in)^T
  if (N > 0) {
    LEUKO_CUDA_BRANCH({
      if (bias.defined()) {
        kernels::cuda::bias_add(out.data<bf16>(), out.data<bf16>(), bias.data<float>(), N, out_f, 1, relu);
      } else if (relu) {
        kernels::cuda::relu_forward(out.data<bf16>(), out.data<bf16>(), out.numel());
      }
    });
  }
  if (autograd::needs_record({x, weight, bias})) {
    Tensor sx = weight.requires_grad() ? x.detach() : Tensor();
    Tensor sw = x.requires_grad() ? wb : Tensor();
    Tensor so = relu ? out.detach() : Tensor();
    autograd::record(out, relu ? "linear_relu" : "linear", {x, weight, bias},
                     [sx, sw, so](const Tensor& g_out, const std::vector<bool>& need) {
      const Tensor g = so.defined() ? relu_grad(g_out, so) : g_out;  // (N, out) bf16
      Tensor gx, gw, gb;
      if (need[0]) {  // (N, out) @ (out, in) -> (N, in) bf16, as x
        gx = Tensor::empty({g.size(0), sw.size(1)}, DType::bf16, g.device());
        detail::gemm(gx, g, false, sw, false);
      }
      if (need[1]) {  // (N, out)^T @ (N, in) -> (out, in) float32, as the weight
        gw = Tensor::empty({g.size(1), sx.size(1)}, DType::f32, g.device());
        detail::gemm(gw, g, true, sx, false);
      }
      if (need[2]) gb = bias_grad(g, g.size(0), g.size(1), 1);  // (out,) float32
      return std::vector<Tensor>{gx, gw, gb};
    });
  }
  return out;
}

// linear, and relu(linear) in one op when `relu`: the ReLU rides on the bias pass.
Tensor linear_impl(const Tensor& x, const Tensor& weight, const Tensor& bias, bool relu) {
  if (x.defined() && x.dtype() == DType::bf16) detail::check_mixed("linear", x, {weight, bias});  // float32 masters
  else if (bias.defined()) detail::check_compatible("linear", {x, weight, bias});
  else detail::check_compatible("linear", {x, weight});
  LEUKO_CHECK(x.dim() == 2, "linear: input must be (N, in_features), got ", shape_str(x.shape()),
              " (flatten it first)");
  LEUKO_CHECK(weight.dim() == 2, "linear: weight must be (out_features, in_features), got ",
              shape_str(weight.shape()));
  const int64_t N = x.size(0), in = x.size(1), out_f = weight.size(0);
  LEUKO_CHECK(weight.size(1) == in, "linear: input ", shape_str(x.shape()), " has ", in, " features but weight ",
              shape_str(weight.shape()), " expects ", weight.size(1));
  if (bias.defined()) {
    LEUKO_CHECK(bias.dim() == 1 && bias.size(0) == out_f, "linear: bias must be (", out_f, ",) for weight ",
                shape_str(weight.shape()), ", got ", shape_str(bias.shape()));
  }
  if (x.dtype() == DType::bf16) return linear_bf16_cuda(x, weight, bias, relu);
  Tensor out = Tensor::empty({N, out_f}, x.dtype(), x.device());  // (N, out)
  detail::gemm(out, x, false, weight, true);                       // (N, in) @ (out, in)^T
  if (bias.defined() && N > 0) {  // each row gets the bias: bias_add with C = out, inner = 1
    if (x.is_cuda()) {
      LEUKO_CUDA_BRANCH(
          kernels::cuda::bias_add(out.data<float>(), out.data<float>(), bias.data<float>(), N, out_f, 1, relu));
    } else {
      dispatch_float(x, "linear", [&](auto tag) {
        using T = decltype(tag);
        kernels::cpu::bias_add(out.data<T>(), out.data<T>(), bias.data<T>(), N, out_f, 1, relu);
      });
    }
  } else if (relu && N > 0) {
    if (x.is_cuda()) {
      LEUKO_CUDA_BRANCH(kernels::cuda::relu_forward(out.data<float>(), out.data<float>(), out.numel()));
    } else {
      dispatch_float(x, "linear", [&](auto tag) {
        using T = decltype(tag);
        kernels::cpu::relu_forward(out.data<T>(), out.data<T>(), out.numel());
      });
    }
  }
  if (autograd::needs_record({x, weight, bias})) {
    // dx needs only the weight and dweight only x: save each only when the other is wanted.
    Tensor sx = weight.requires_grad() ? x.detach() : Tensor();
    Tensor sw = x.requires_grad() ? weight.detach() : Tensor();
    Tensor so = relu ? out.detach() : Tensor();  // the ReLU's output masks the gradient
    autograd::record(out, relu ? "linear_relu" : "linear", {x, weight, bias},
                     [sx, sw, so](const Tensor& g_out, const std::vector<bool>& need) {
      const Tensor g = so.defined() ? relu_grad(g_out, so) : g_out;
      Tensor gx, gw, gb;
      if (need[0]) {  // (N, out) @ (out, in) -> (N, in)
        gx = Tensor::empty({g.size(0), sw.size(1)}, g.dtype(), g.device());
        detail::gemm(gx, g, false, sw, false);
      }
      if (need[1]) {  // (N, out)^T @ (N, in) -> (out, in)
        gw = Tensor::empty({g.size(1), sx.size(1)}, g.dtype(), g.device());
        detail::gemm(gw, g, true, sx, false);
      }
      if (need[2]) gb = sum_to(g, {1, g.size(1)}).reshape({g.size(1)});  // sum over the batch
      return std::vector<Tensor>{gx, gw, gb};
    });
  }
  return out;
}

}  // namespace

namespace {
// The entry of linear and linear_relu: autocast, then the op (on the CPU, bf16 runs through
// float32 with the weight rounded to bf16, the values the GPU multiplies).
Tensor linear_entry(const Tensor& x_in, const Tensor& weight, const Tensor& bias, bool relu) {
  const Tensor x = autocast_bf16(x_in);
  if (x.defined() && x.dtype() == DType::bf16 && !x.is_cuda()) {
    detail::check_mixed("linear", x, {weight, bias});
    return detail::through_float([&](const Tensor& xf, const Tensor& wf) { return linear_impl(xf, wf, bias, relu); },
                                 x, weight.to(DType::bf16));
  }
  return linear_impl(x, weight, bias, relu);
}
}  // namespace

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  return linear_entry(x, weight, bias, false);
}

Tensor linear_relu(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  return linear_entry(x, weight, bias, true);
}

// ---- Module -------------------------------------------------------------------------------------

Linear::Linear(int64_t in, int64_t out, bool with_bias, Generator& gen) : in_features(in), out_features(out) {
  LEUKO_CHECK(in >= 1 && out >= 1, "Linear: in_features and out_features must be positive, got ", in, " and ", out);
  // PyTorch's reset_parameters: kaiming_uniform_(a = sqrt(5)) gives bound
  // gain * sqrt(3 / fan_in) with gain = sqrt(2 / (1 + 5)), i.e. 1 / sqrt(in).
  weight = register_parameter("weight", Tensor::empty({out, in}));
  init::kaiming_uniform_(weight, std::sqrt(5.0), init::FanMode::fan_in, "leaky_relu", gen);
  if (with_bias) {
    const double bound = 1.0 / std::sqrt(double(in));
    bias = register_parameter("bias", Tensor::empty({out}));
    init::uniform_(bias, -bound, bound, gen);
  }
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight, bias); }

Tensor Linear::forward_relu(const Tensor& x) { return linear_relu(x, weight, bias); }

std::string Linear::extra_repr() const {
  return "in_features=" + std::to_string(in_features) + ", out_features=" + std::to_string(out_features) +
         ", bias=" + (bias.defined() ? "True" : "False");
}

}  // namespace leuko
