// ReLU and dropout: forward through kernels/activation.h, backward recorded beside it.
//
// bf16 activations (tensor/device.h bf16_activations()): each op keeps its input's dtype. On the
// GPU the bf16 kernels compute in float and round once, and the backward saves the bf16 output
// (half the bytes of float32). On the CPU a bf16 input goes through_float (layers/dispatch.h):
// the float32 op on a converted copy, the reference the GPU is tested against.
//
// channels_last (tensor/device.h channels_last_activations()): ReLU, add_relu and ReLU's
// backward are elementwise, so their kernels read any memory order as long as all operands share
// it; the output keeps the input's order (empty_like). Dropout's mask depends on the storage
// index, so dropout runs on an NCHW copy (see dropout below).
#include "layers/activation.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "kernels/activation.h"
#include "layers/dispatch.h"
#include "tensor/autograd.h"
#include "tensor/random.h"
#if LEUKO_WITH_CUDA
#include "tensor/cuda/graph.h"
#endif

namespace leuko {

using detail::dispatch_float;
namespace kc = kernels::cpu;
namespace kg = kernels::cuda;

namespace {
// The checks of an activation op: defined, float32 or float64 (CPU) or bf16, and, for add_relu,
// the second input on the first's device with its dtype (check_compatible would refuse bf16 on
// the GPU, where these ops have bf16 kernels). Either memory order (Layouts::any): the kernels
// walk flat buffers, and each op below gives them operands of one order.
void check_activation(const char* op, const Tensor& x, const Tensor& other = Tensor()) {
  detail::check_mixed(op, x, {}, detail::Layouts::any);
  if (!other.defined()) return;
  LEUKO_CHECK(other.device() == x.device() && other.dtype() == x.dtype(), op,
              ": inputs of different dtypes or devices (", x.describe(), " and ", other.describe(), ")");
}

// Calls f(T{}) with T = float or bf16, the storage type of a CUDA activation (as dispatch_float
// on the CPU): the kernels of kernels/activation.h have an overload for each.
template <typename F>
void dispatch_cuda(const Tensor& t, F&& f) {
  if (t.dtype() == DType::bf16)
    f(bf16{});
  else
    f(float{});
}
}  // namespace

Tensor relu_grad(const Tensor& g_in, const Tensor& so) {
  LEUKO_CHECK(g_in.dtype() == so.dtype(), "relu backward: a ", dtype_name(g_in.dtype()), " gradient for a ",
              dtype_name(so.dtype()), " output");
  LEUKO_CHECK(g_in.shape() == so.shape(), "relu backward: a gradient of shape ", shape_str(g_in.shape()),
              " for an output of shape ", shape_str(so.shape()));
  // The kernel pairs g and out element by element in storage: one memory order for both. Inside
  // a backward the engine already hands g over in the output's order; a caller may not.
  const Tensor g = g_in.memory_format() == so.memory_format() ? g_in : g_in.detach().to(so.memory_format());
  if (so.dtype() == DType::bf16 && !so.is_cuda()) {
    // Records nothing, so not through_float: float copies (detached), and the selected values,
    // already bf16, round back exactly.
    return relu_grad(g.detach().to(DType::f32), so.detach().to(DType::f32)).to(DType::bf16);
  }
  Tensor gx = Tensor::empty_like(so);  // out's shape, dtype and memory order
  const int64_t m = so.numel();
  if (g.is_cuda()) {
    LEUKO_CUDA_BRANCH(dispatch_cuda(g, [&](auto tag) {
      using T = decltype(tag);
      kg::relu_backward(gx.data<T>(), g.data<T>(), so.data<T>(), m);
    }));
  } else {
    dispatch_float(g, "relu backward", [&](auto tag) {
      using T = decltype(tag);
      kc::relu_backward(gx.data<T>(), g.data<T>(), so.data<T>(), m);
    });
  }
  return gx;
}

Tensor relu(const Tensor& x) {
  check_activation("relu", x);
  if (x.dtype() == DType::bf16 && !x.is_cuda()) return detail::through_float(relu, x);
  Tensor out = Tensor::empty_like(x);  // x's dtype and memory order: bf16 stays bf16, NHWC stays NHWC
  const int64_t n = x.numel();
  if (x.is_cuda()) {
    LEUKO_CUDA_BRANCH(dispatch_cuda(x, [&](auto tag) {
      using T = decltype(tag);
      kg::relu_forward(out.data<T>(), x.data<T>(), n);
    }));
  } else {
    dispatch_float(x, "relu", [&](auto tag) {
      using T = decltype(tag);
      kc::relu_forward(out.data<T>(), x.data<T>(), n);
    });
  }
  if (autograd::needs_record({x})) {
    // Saves the output, not the input: the next layer keeps it alive anyway (bf16 under bf16
    // activations).
    autograd::record(out, "relu", {x}, [so = out.detach()](const Tensor& g, const std::vector<bool>&) {
      return std::vector<Tensor>{relu_grad(g, so)};
    });
  }
  return out;
}

Tensor add_relu(const Tensor& a, const Tensor& b_in) {
  check_activation("add_relu", a, b_in);
  LEUKO_CHECK(a.shape() == b_in.shape(), "add_relu: shapes ", shape_str(a.shape()), " and ",
              shape_str(b_in.shape()), " differ (no broadcasting)");
  // The kernel adds element i of a to element i of b in storage: b in a's order. A residual
  // block's shortcut may be NCHW while its body's output is channels_last (or the reverse); the
  // conversion is differentiable, so b's gradient comes back in b's own order.
  const Tensor b = b_in.to(a.memory_format());
  // Before through_float, which would otherwise give channels_last when either input is.
  if (a.dtype() == DType::bf16 && !a.is_cuda()) return detail::through_float(add_relu, a, b);
  Tensor out = Tensor::empty_like(a);  // a's dtype and memory order
  const int64_t n = a.numel();
  if (a.is_cuda()) {
    LEUKO_CUDA_BRANCH(dispatch_cuda(a, [&](auto tag) {
      using T = decltype(tag);
      kg::add_relu_forward(out.data<T>(), a.data<T>(), b.data<T>(), n);
    }));
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
// out = x * mask(seed) * scale, the forward and (applied to the gradient) the backward. On the
// GPU x may be bf16 (the kernel scales in float and rounds once); on the CPU a bf16 x never
// reaches here (dropout goes through_float). With `replay` (a step being recorded as a CUDA
// graph), the GPU draws the seed itself at each replay (kernels/activation.h ReplaySeed).
Tensor apply_dropout_mask(const Tensor& x, uint64_t seed, uint64_t threshold, double scale,
                          const std::optional<kernels::ReplaySeed>& replay) {
  Tensor out = Tensor::empty_like(x);
  const int64_t n = x.numel();
  if (x.is_cuda()) {
    LEUKO_CUDA_BRANCH(dispatch_cuda(x, [&](auto tag) {
      using T = decltype(tag);
      kg::dropout(out.data<T>(), x.data<T>(), n, seed, threshold, scale, replay ? &*replay : nullptr);
    }));
  } else {
    dispatch_float(x, "dropout", [&](auto tag) {
      using T = decltype(tag);
      kc::dropout(out.data<T>(), x.data<T>(), n, seed, threshold, scale);
    });
  }
  return out;
}

// While a CUDA graph records the step: where each replay finds its seed. The host's draw is
// frozen at the capture, so the step must have been seeded by seed_step (the trainer and the
// bench do), whose seeds the device can recompute for the step each replay runs.
std::optional<kernels::ReplaySeed> replay_seed(const Tensor& x, const Generator& gen, int64_t draw) {
#if LEUKO_WITH_CUDA
  if (x.is_cuda() && cuda::capturing()) {
    LEUKO_CHECK(gen.step_seeded(), "dropout: a step recorded as a CUDA graph must be seeded with seed_step() ",
                "(tensor/random.h), or every replay would drop the same elements");
    return kernels::ReplaySeed{gen.run_seed(), draw, cuda::replay_step()};
  }
#else
  (void)x, (void)gen, (void)draw;
#endif
  return std::nullopt;
}
}  // namespace

Tensor dropout(const Tensor& x, double p, bool training) {
  check_activation("dropout", x);
  LEUKO_CHECK(p >= 0.0 && p < 1.0, "dropout: probability p = ", p, " must be in [0, 1)");
  if (!training || p == 0.0) return x;
  // The mask is a hash of each element's storage index: on an NHWC buffer it would drop other
  // elements than the NCHW op with the same seed (the reference, and PyTorch's order). So a
  // channels_last x is dropped as an NCHW copy and the output is NCHW; the engine converts the
  // gradient back to x's order. (In the networks dropout runs on 2-D tensors anyway.)
  if (x.is_channels_last()) return dropout(x.to(MemoryFormat::nchw), p, training);
  // The float32 dropout draws the same seed from the default generator: the CPU's bf16 result
  // is the GPU's, element for element.
  if (x.dtype() == DType::bf16 && !x.is_cuda()) return detail::through_float(dropout, x, p, training);
  // One seed per call: the mask is then a pure function of (seed, index), so it needs no
  // storage and the backward recomputes it. p < 1 keeps p * 2^64 below 2^64.
  Generator& gen = default_generator();
  const int64_t draw = gen.draws();
  const uint64_t seed = gen.next_u64();
  const std::optional<kernels::ReplaySeed> replay = replay_seed(x, gen, draw);
  const uint64_t threshold = uint64_t(std::ldexp(p, 64));
  const double scale = 1.0 / (1.0 - p);
  Tensor out = apply_dropout_mask(x, seed, threshold, scale, replay);
  if (autograd::needs_record({x})) {
    // d(x * mask * scale)/dx = mask * scale: the same dropout applied to the gradient.
    autograd::record(out, "dropout", {x}, [seed, threshold, scale, replay](const Tensor& g, const std::vector<bool>&) {
      return std::vector<Tensor>{apply_dropout_mask(g, seed, threshold, scale, replay)};
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
