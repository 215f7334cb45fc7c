// Batch normalisation: forward through kernels/batchnorm.h, backward recorded beside it.
//
// Both modes run the same two steps: per-channel (mean, invstd) — the batch's in training,
// the running statistics' in eval — then y = (x - mean) * invstd * weight + bias. The backward
// needs two per-channel sums of the upstream gradient, which are also the gradients of bias
// and weight, and then dx (through the statistics in training, affine in eval).
// batch_norm_relu fuses a ReLU into both passes (kernels/batchnorm.h): one write of the output
// instead of two writes and a read, and ReLU's backward folded into the batch norm's.
//
// bf16 activations (tensor/device.h, bf16_activations()): x may be bf16 with float32 weight,
// bias and running statistics. The output and x's gradient are bf16, the statistics and the
// weight and bias gradients float32 (PyTorch keeps a half batch norm's statistics in float).
// The GPU runs the bf16 kernels; the CPU runs the float32 op on a converted copy (through_float).
//
// channels_last (tensor/tensor.h MemoryFormat), float32 or bf16: the output is channels_last,
// with the NCHW op's values. The GPU runs the `_nhwc` kernels on x as an (M, C) matrix, M = N * H
// * W (kernels/batchnorm.h); x's gradient comes back channels_last, as the output's gradient
// arrives (the autograd engine converts). The CPU runs the NCHW op through_float.
#include "layers/batchnorm.h"

#include "kernels/batchnorm.h"
#include "layers/dispatch.h"
#include "tensor/autograd.h"

namespace leuko {

using detail::dispatch_float;
namespace kc = kernels::cpu;
namespace kg = kernels::cuda;

namespace {

// A (C,) per-channel tensor, or undefined. Its device and dtype against a bf16 x were checked by
// check_mixed (float32, not x's dtype).
void check_channels(const char* what, const Tensor& t, const Tensor& x, int64_t C) {
  if (!t.defined()) return;
  // x may be channels_last; t is 1-D, so never is.
  if (x.dtype() != DType::bf16) detail::check_compatible("batch_norm", {x, t}, detail::Layouts::any);
  LEUKO_CHECK(t.dim() == 1 && t.size(0) == C, "batch_norm: ", what, " must have shape [", C, "] for input ",
              shape_str(x.shape()), ", got ", shape_str(t.shape()));
}

template <typename T>
T* ptr(const Tensor& t) {  // null for an undefined (optional) tensor
  return t.defined() ? t.data<T>() : nullptr;
}

// Calls f(T{}) with T the activations' element type on the GPU: float, or bf16 (the per-channel
// tensors are float32 either way).
template <typename F>
void dispatch_cuda(const Tensor& activation, F&& f) {
  if (activation.dtype() == DType::bf16) {
    f(bf16{});
  } else {
    f(float{});
  }
}

// What the backward keeps: the input, the weight, and the statistics it was normalised with;
// with a fused ReLU, also the output (its mask).
// Activations keep their dtype (bf16 under bf16 activations: half the memory of float32).
struct Saved {
  Tensor x;             // (N, C, HW), x's dtype and memory order ((M, C) when channels_last)
  Tensor weight;        // (C,) or undefined
  Tensor mean, invstd;  // (C,), float32 for a bf16 x
  Tensor relu_out;      // as x: the fused ReLU's output; undefined without one
  bool training;
  int64_t N, C, HW;
};

// Gradients of x, weight, bias from g = dL/dy.
std::vector<Tensor> batch_norm_backward(const Saved& s, const Tensor& g, const std::vector<bool>& need) {
  const int64_t N = s.N, C = s.C, HW = s.HW;
  // The two sums are also the bias and weight gradients, as fresh tensors, of the statistics'
  // dtype (float32 for a bf16 g: the parameters' gradients stay float32).
  const DType stat = s.mean.dtype();
  Tensor sum_dy = Tensor::empty({C}, stat, g.device());       // (C,) sum of dy
  Tensor sum_dy_xhat = Tensor::empty({C}, stat, g.device());  // (C,) sum of dy * xhat
  Tensor dx = need[0] ? Tensor::empty_like(g) : Tensor();     // (N, C, HW), g's dtype and order
  // dx in eval mode is affine and needs no sums; the parameters always do.
  const bool sums = need[1] || need[2] || (need[0] && s.training);
  // The engine hands g over in the output's order, which is x's: the kernels read both alike.
  const bool nhwc = s.x.is_channels_last();
  LEUKO_CHECK(g.is_channels_last() == nhwc, "batch_norm backward: the gradient ", g.describe(),
              " is not in the input's memory order");
  if (g.is_cuda()) {
    LEUKO_CUDA_BRANCH(dispatch_cuda(g, [&](auto tag) {
      using T = decltype(tag);   // dy, x, dx, relu_out; the rest float32
      const int64_t M = N * HW;  // channels_last: dy, x, dx, relu_out are (M, C)
      if (sums) {
        const int64_t floats = nhwc ? kg::batchnorm_scratch_nhwc(M, C) : kg::batchnorm_scratch(N, C, HW);
        Tensor scratch = Tensor::empty({floats}, DType::f32, g.device());
        if (nhwc) {
          kg::batchnorm_backward_sums_nhwc(sum_dy.data<float>(), sum_dy_xhat.data<float>(), g.data<T>(), s.x.data<T>(),
                                           s.mean.data<float>(), s.invstd.data<float>(), M, C, scratch.data<float>(),
                                           ptr<T>(s.relu_out));
        } else {
          kg::batchnorm_backward_sums(sum_dy.data<float>(), sum_dy_xhat.data<float>(), g.data<T>(), s.x.data<T>(),
                                      s.mean.data<float>(), s.invstd.data<float>(), N, C, HW, scratch.data<float>(),
                                      ptr<T>(s.relu_out));
        }
      }
      if (need[0] && nhwc) {
        kg::batchnorm_backward_input_nhwc(dx.data<T>(), g.data<T>(), s.x.data<T>(), s.mean.data<float>(),
                                          s.invstd.data<float>(), ptr<float>(s.weight), sum_dy.data<float>(),
                                          sum_dy_xhat.data<float>(), M, C, s.training, ptr<T>(s.relu_out));
      } else if (need[0]) {
        kg::batchnorm_backward_input(dx.data<T>(), g.data<T>(), s.x.data<T>(), s.mean.data<float>(),
                                     s.invstd.data<float>(), ptr<float>(s.weight), sum_dy.data<float>(),
                                     sum_dy_xhat.data<float>(), N, C, HW, s.training, ptr<T>(s.relu_out));
      }
    }));
  } else {
    // The CPU never records a channels_last batch norm: it runs the NCHW op through_float.
    dispatch_float(g, "batch_norm", [&](auto tag) {
      using T = decltype(tag);
      if (sums) {
        kc::batchnorm_backward_sums<T>(sum_dy.data<T>(), sum_dy_xhat.data<T>(), g.data<T>(), s.x.data<T>(),
                                       s.mean.data<T>(), s.invstd.data<T>(), N, C, HW, ptr<T>(s.relu_out));
      }
      if (need[0]) {
        kc::batchnorm_backward_input<T>(dx.data<T>(), g.data<T>(), s.x.data<T>(), s.mean.data<T>(), s.invstd.data<T>(),
                                        ptr<T>(s.weight), sum_dy.data<T>(), sum_dy_xhat.data<T>(), N, C, HW,
                                        s.training, ptr<T>(s.relu_out));
      }
    });
  }
  return {dx, need[1] ? sum_dy_xhat : Tensor(), need[2] ? sum_dy : Tensor()};
}

// batch_norm, and relu(batch_norm) in one op when `relu`.
Tensor batch_norm_impl(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                       const Tensor& running_var, bool training, double momentum, double eps, bool relu) {
  const bool bf16_x = x.defined() && x.dtype() == DType::bf16;
  // channels_last: the CUDA kernels index (N, H, W, C); the CPU goes through NCHW below.
  if (bf16_x) {
    // bf16 activations: float32 parameters and running statistics.
    detail::check_mixed("batch_norm", x, {weight, bias, running_mean, running_var}, detail::Layouts::any);
  } else {
    detail::check_compatible("batch_norm", {x}, detail::Layouts::any);
  }
  const bool nhwc = x.is_channels_last();
  if (!x.is_cuda() && (bf16_x || nhwc)) {
    // The CPU reference: the float32 (or float64) NCHW op on converted copies, its output and x's
    // gradient converted back; the running statistics are passed as they are, and so updated.
    return detail::through_float(batch_norm_impl, x, weight, bias, running_mean, running_var, training, momentum, eps,
                                 relu);
  }
  LEUKO_CHECK(x.dim() >= 2, "batch_norm: input must be (N, C, ...), got ", shape_str(x.shape()));
  const int64_t N = x.size(0), C = x.size(1);
  int64_t HW = 1;  // the trailing (spatial) dims, merged: x is (N, C, HW)
  for (int64_t d = 2; d < x.dim(); d++) HW *= x.size(d);
  check_channels("weight", weight, x, C);
  check_channels("bias", bias, x, C);
  check_channels("running_mean", running_mean, x, C);
  check_channels("running_var", running_var, x, C);
  LEUKO_CHECK(running_mean.defined() == running_var.defined(),
              "batch_norm: give both running_mean and running_var, or neither");
  LEUKO_CHECK(training || running_mean.defined(),
              "batch_norm: eval mode (training=false) needs running_mean and running_var");
  LEUKO_CHECK(!training || N * HW > 1, "batch_norm: expected more than 1 value per channel when training, got input ",
              shape_str(x.shape()));
  LEUKO_CHECK(eps >= 0, "batch_norm: eps must be >= 0, got ", eps);

  const DType stat = bf16_x ? DType::f32 : x.dtype();    // the per-channel statistics' dtype
  Tensor mean = Tensor::empty({C}, stat, x.device());    // (C,)
  Tensor invstd = Tensor::empty({C}, stat, x.device());  // (C,)
  Tensor y = Tensor::empty_like(x);                      // (N, C, HW), x's dtype and memory order
  if (x.is_cuda()) {
    LEUKO_CUDA_BRANCH(dispatch_cuda(x, [&](auto tag) {
      using T = decltype(tag);   // x and y; the rest float32
      const int64_t M = N * HW;  // channels_last: x and y are (M, C)
      if (training) {
        const int64_t floats = nhwc ? kg::batchnorm_scratch_nhwc(M, C) : kg::batchnorm_scratch(N, C, HW);
        Tensor scratch = Tensor::empty({floats}, DType::f32, x.device());
        if (nhwc) {
          kg::batchnorm_stats_nhwc(mean.data<float>(), invstd.data<float>(), ptr<float>(running_mean),
                                   ptr<float>(running_var), x.data<T>(), M, C, momentum, eps, scratch.data<float>());
        } else {
          kg::batchnorm_stats(mean.data<float>(), invstd.data<float>(), ptr<float>(running_mean),
                              ptr<float>(running_var), x.data<T>(), N, C, HW, momentum, eps, scratch.data<float>());
        }
      } else {
        mean.copy_(running_mean.detach());  // a copy: the backward must not see later updates
        kg::batchnorm_invstd(invstd.data<float>(), running_var.data<float>(), C, eps);
      }
      if (nhwc) {
        kg::batchnorm_normalize_nhwc(y.data<T>(), x.data<T>(), mean.data<float>(), invstd.data<float>(),
                                     ptr<float>(weight), ptr<float>(bias), M, C, relu);
      } else {
        kg::batchnorm_normalize(y.data<T>(), x.data<T>(), mean.data<float>(), invstd.data<float>(), ptr<float>(weight),
                                ptr<float>(bias), N, C, HW, relu);
      }
    }));
  } else {
    dispatch_float(x, "batch_norm", [&](auto tag) {
      using T = decltype(tag);
      if (training) {
        kc::batchnorm_stats<T>(mean.data<T>(), invstd.data<T>(), ptr<T>(running_mean), ptr<T>(running_var), x.data<T>(),
                               N, C, HW, momentum, eps);
      } else {
        mean.copy_(running_mean.detach());
        kc::batchnorm_invstd<T>(invstd.data<T>(), running_var.data<T>(), C, eps);
      }
      kc::batchnorm_normalize<T>(y.data<T>(), x.data<T>(), mean.data<T>(), invstd.data<T>(), ptr<T>(weight),
                                 ptr<T>(bias), N, C, HW, relu);
    });
  }

  if (autograd::needs_record({x, weight, bias})) {
    // The output as the ReLU's mask: the next layer keeps it alive anyway, as relu() saves it.
    Saved saved{x.detach(), weight.defined() ? weight.detach() : Tensor(), mean, invstd,
                relu ? y.detach() : Tensor(), training, N, C, HW};
    autograd::record(y, relu ? "batch_norm_relu" : "batch_norm", {x, weight, bias},
                     [saved](const Tensor& g, const std::vector<bool>& need) { return batch_norm_backward(saved, g, need); });
  }
  return y;
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps) {
  return batch_norm_impl(x, weight, bias, running_mean, running_var, training, momentum, eps, false);
}

Tensor batch_norm_relu(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                       const Tensor& running_var, bool training, double momentum, double eps) {
  return batch_norm_impl(x, weight, bias, running_mean, running_var, training, momentum, eps, true);
}

Tensor batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                    const Tensor& running_var, bool training, double momentum, double eps) {
  LEUKO_CHECK(x.defined() && x.dim() == 4, "batch_norm2d: input must be (N, C, H, W), got ",
              x.defined() ? shape_str(x.shape()) : std::string("an undefined tensor"));
  return batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps);
}

// ---- Modules ------------------------------------------------------------------------------

BatchNormBase::BatchNormBase(int64_t num_features_, double eps_, double momentum_, bool affine_,
                             bool track_running_stats_)
    : num_features(num_features_),
      eps(eps_),
      momentum(momentum_),
      affine(affine_),
      track_running_stats(track_running_stats_) {
  LEUKO_CHECK(num_features > 0, "BatchNorm: num_features must be positive, got ", num_features);
  // reset_parameters(): weight ones, bias zeros; reset_running_stats(): mean 0, var 1, count 0.
  if (affine) {
    weight = register_parameter("weight", Tensor::ones({num_features}));
    bias = register_parameter("bias", Tensor::zeros({num_features}));
  }
  if (track_running_stats) {
    running_mean = register_buffer("running_mean", Tensor::zeros({num_features}));
    running_var = register_buffer("running_var", Tensor::ones({num_features}));
    num_batches_tracked = register_buffer("num_batches_tracked", Tensor::zeros({}, DType::i64));
  }
}

Tensor BatchNormBase::forward(const Tensor& x) { return run(x, false); }

Tensor BatchNormBase::forward_relu(const Tensor& x) { return run(x, true); }

Tensor BatchNormBase::run(const Tensor& x, bool relu) {
  check_input_dim(x);
  // Training, or no running statistics to use: batch statistics (PyTorch's bn_training).
  const bool use_batch_stats = training_ || !track_running_stats;
  Tensor y = batch_norm_impl(x, weight, bias, running_mean, running_var, use_batch_stats, momentum, eps, relu);
  if (training_ && track_running_stats) {
    // Counted (after the op succeeded) although leuko, whose momentum is always a number, never
    // reads it: PyTorch counts it, and state dicts carry it.
    if (num_batches_tracked.is_cuda()) {
      LEUKO_CUDA_BRANCH(kg::increment(num_batches_tracked.data<int64_t>()));
    } else {
      num_batches_tracked.data<int64_t>()[0] += 1;
    }
  }
  return y;
}

Tensor bn_relu(BatchNormBase& bn, const Module* relu, const Tensor& x) {
  Tensor y = bn.forward_relu(x);
  trace_call(bn, x.shape(), y.shape());
  if (relu != nullptr) trace_call(*relu, y.shape(), y.shape());
  return y;
}

std::string BatchNormBase::extra_repr() const {
  return std::to_string(num_features) + ", eps=" + detail::py_float(eps) + ", momentum=" + detail::py_float(momentum) +
         ", affine=" + (affine ? "True" : "False") +
         ", track_running_stats=" + (track_running_stats ? "True" : "False");
}

void BatchNorm2d::check_input_dim(const Tensor& x) const {
  LEUKO_CHECK(x.defined() && x.dim() == 4, "BatchNorm2d: expected a 4-D input (N, C, H, W), got ",
              x.defined() ? shape_str(x.shape()) : std::string("an undefined tensor"));
}

void BatchNorm1d::check_input_dim(const Tensor& x) const {
  LEUKO_CHECK(x.defined() && (x.dim() == 2 || x.dim() == 3),
              "BatchNorm1d: expected a 2-D (N, C) or 3-D (N, C, L) input, got ",
              x.defined() ? shape_str(x.shape()) : std::string("an undefined tensor"));
}

}  // namespace leuko
