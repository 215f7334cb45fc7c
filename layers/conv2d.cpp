// conv2d: forward through kernels/conv2d.h, bias added in place by the bias_add kernel, and
// the backward (data, filter, bias) recorded beside it as one autograd node. conv2d_relu runs
// a following ReLU in the same bias pass, and its backward masks the gradient first.
// Under bf16 activations (layers/autocast.h) the input is converted to bf16 and the GPU runs
// cuDNN on bf16 tensors with a bf16 copy of the weight; the CPU runs the float32 op on the
// same rounded values (through_float).
#include "layers/conv2d.h"

#include <cmath>
#include <sstream>
#include <vector>

#include "kernels/activation.h"
#include "kernels/conv2d.h"
#include "kernels/elementwise.h"
#include "layers/activation.h"
#include "layers/autocast.h"
#include "layers/dispatch.h"
#include "layers/reduce.h"
#include "tensor/autograd.h"

namespace leuko {

using detail::dispatch_float;
namespace kc = kernels::cpu;
namespace kg = kernels::cuda;
using kernels::Conv2dShape;

namespace {

#if LEUKO_WITH_CUDA
// The cuDNN workspace of the convolution being queued: allocated when cuDNN asks for it, freed
// as soon as the call is queued (WorkspaceScope), as PyTorch does. The caching allocator takes
// the block back, and since all work is on one stream, whatever reuses it runs after the
// convolution. Versions 0 to 16 kept one buffer grown to the largest request instead: up to the
// workspace cap (1 GiB) held through every step on top of the activations, so the step's peak
// (the end of the forward, when the activations are all alive) counted the largest workspace of
// any convolution, though the convolutions running then need little. In a CUDA graph's capture
// the block comes from the graph's pool (tensor/cuda/allocator.cpp) and is reused by the
// capture's later allocations, in the stream's order, which every replay keeps.
Tensor& workspace_slot() {
  static Tensor* ws = new Tensor();  // never destroyed: it may be used during static destruction
  return *ws;
}

// cuDNN's request (kernels/conv2d.h Workspace). A second, larger request within one call (the
// graph API passing the convolution on to the legacy calls) replaces the first buffer.
void* conv_workspace(size_t bytes) {
  Tensor& ws = workspace_slot();
  if (bytes == 0) return nullptr;
  if (!ws.defined() || ws.nbytes() < bytes) {
    ws = Tensor();  // free first, so that an out-of-memory retry can return it to the driver
    ws = Tensor::empty({int64_t((bytes + sizeof(float) - 1) / sizeof(float))}, DType::f32, Device::CUDA);
  }
  return ws.raw_data();
}

// Frees the workspace once the convolution's cuDNN call is queued (or has thrown).
struct WorkspaceScope {
  WorkspaceScope() = default;
  WorkspaceScope(const WorkspaceScope&) = delete;
  WorkspaceScope& operator=(const WorkspaceScope&) = delete;
  ~WorkspaceScope() { workspace_slot() = Tensor(); }
};
#endif

std::string pair_str(const Conv2dOptions::Pair& p) {
  return "(" + std::to_string(p.h) + ", " + std::to_string(p.w) + ")";
}

// Checks the arguments and works out the geometry (output size included).
Conv2dShape conv_shape(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& o) {
  const char* op = "conv2d";
  // A bf16 input with float32 masters; on the GPU any memory order of x (the parameters NCHW).
  const detail::Layouts layouts = x.defined() && x.is_cuda() ? detail::Layouts::any : detail::Layouts::nchw;
  if (x.defined() && x.dtype() == DType::bf16) {
    detail::check_mixed(op, x, {weight, bias}, layouts);
  } else {
    detail::check_mixed(op, x, {}, layouts);
    if (bias.defined()) detail::check_compatible(op, {x, weight, bias}, layouts);
    else detail::check_compatible(op, {x, weight}, layouts);
    detail::check_nchw(op, weight);
  }
  LEUKO_CHECK(x.dim() == 4, "conv2d: input must be (N, C, H, W), got ", shape_str(x.shape()));
  LEUKO_CHECK(weight.dim() == 4, "conv2d: weight must be (out_channels, in_channels / groups, kh, kw), got ",
              shape_str(weight.shape()));
  LEUKO_CHECK(o.stride.h >= 1 && o.stride.w >= 1, "conv2d: stride must be positive, got ", pair_str(o.stride));
  LEUKO_CHECK(o.dilation.h >= 1 && o.dilation.w >= 1, "conv2d: dilation must be positive, got ",
              pair_str(o.dilation));
  LEUKO_CHECK(o.padding.h >= 0 && o.padding.w >= 0, "conv2d: padding must be non-negative, got ",
              pair_str(o.padding));
  LEUKO_CHECK(o.groups >= 1, "conv2d: groups must be positive, got ", o.groups);
  Conv2dShape s;
  s.N = x.size(0), s.C = x.size(1), s.H = x.size(2), s.W = x.size(3);
  s.K = weight.size(0), s.R = weight.size(2), s.S = weight.size(3);
  s.groups = o.groups;
  s.stride_h = o.stride.h, s.stride_w = o.stride.w;
  s.pad_h = o.padding.h, s.pad_w = o.padding.w;
  s.dil_h = o.dilation.h, s.dil_w = o.dilation.w;
  LEUKO_CHECK(s.K >= 1 && weight.size(1) >= 1 && s.R >= 1 && s.S >= 1, "conv2d: weight ",
              shape_str(weight.shape()), " has an empty dimension");
  LEUKO_CHECK(s.K % s.groups == 0, "conv2d: weight ", shape_str(weight.shape()), " has ", s.K,
              " output channels, not divisible by groups = ", s.groups);
  LEUKO_CHECK(s.C == weight.size(1) * s.groups, "conv2d: input ", shape_str(x.shape()), " has ", s.C,
              " channels but weight ", shape_str(weight.shape()), " with groups = ", s.groups, " expects ",
              weight.size(1) * s.groups);
  if (bias.defined()) {
    LEUKO_CHECK(bias.dim() == 1 && bias.size(0) == s.K, "conv2d: bias must be (", s.K, ",) for weight ",
                shape_str(weight.shape()), ", got ", shape_str(bias.shape()));
  }
  s.channels_last = x.is_channels_last();
  s.P = kernels::conv_output_size(s.H, s.R, s.stride_h, s.pad_h, s.dil_h);
  s.Q = kernels::conv_output_size(s.W, s.S, s.stride_w, s.pad_w, s.dil_w);
  LEUKO_CHECK(s.P >= 1 && s.Q >= 1, "conv2d: the kernel (", s.R, ", ", s.S, ") with dilation ",
              pair_str(o.dilation), " spans (", s.dil_h * (s.R - 1) + 1, ", ", s.dil_w * (s.S - 1) + 1,
              "), larger than the padded input (", s.H + 2 * s.pad_h, ", ", s.W + 2 * s.pad_w, ") of input ",
              shape_str(x.shape()), " with padding ", pair_str(o.padding));
  return s;
}

// dx (N, C, H, W) from dy (N, K, P, Q) and w (K, C / groups, R, S), all of one dtype and one
// memory order (channels_last: dx stored (N, H, W, C), w (K, R, S, Cg); GPU only).
Tensor backward_data(const Tensor& dy, const Tensor& w, const Conv2dShape& s) {
  Tensor dx = Tensor::empty({s.N, s.C, s.H, s.W}, dy.dtype(), dy.device(), dy.memory_format());
  if (s.N == 0) return dx;
  if (dy.is_cuda()) {
    LEUKO_CUDA_BRANCH({
      const WorkspaceScope scope;
      if (dy.dtype() == DType::bf16) {
        kg::conv2d_backward_data(dx.data<bf16>(), dy.data<bf16>(), w.data<bf16>(), s, conv_workspace);
      } else {
        kg::conv2d_backward_data(dx.data<float>(), dy.data<float>(), w.data<float>(), s, conv_workspace);
      }
    });
  } else {
    dispatch_float(dy, "conv2d", [&](auto tag) {
      using T = decltype(tag);
      kc::conv2d_backward_data(dx.data<T>(), dy.data<T>(), w.data<T>(), s);
    });
  }
  return dx;
}

// dw (K, C / groups, R, S) from x (N, C, H, W) and dy (N, K, P, Q), summed over the batch, in
// their dtype and memory order (cuDNN writes the filter gradient in the data's type and order:
// bf16 and (K, R, S, Cg) for bf16 channels_last activations; the caller converts).
Tensor backward_filter(const Tensor& x, const Tensor& dy, const Conv2dShape& s) {
  Tensor dw = Tensor::empty({s.K, s.channels_per_group(), s.R, s.S}, dy.dtype(), dy.device(), dy.memory_format());
  if (dy.is_cuda()) {
    LEUKO_CUDA_BRANCH({
      const WorkspaceScope scope;
      if (dy.dtype() == DType::bf16) {
        kg::conv2d_backward_filter(dw.data<bf16>(), x.data<bf16>(), dy.data<bf16>(), s, conv_workspace);
      } else {
        kg::conv2d_backward_filter(dw.data<float>(), x.data<float>(), dy.data<float>(), s, conv_workspace);
      }
    });
  } else {
    dispatch_float(dy, "conv2d", [&](auto tag) {
      using T = decltype(tag);
      kc::conv2d_backward_filter(dw.data<T>(), x.data<T>(), dy.data<T>(), s);
    });
  }
  return dw;
}

// The op on the GPU: x float32 or bf16, NCHW or channels_last; weight and bias float32 masters
// (checked by conv_shape). cuDNN wants the filter in x's dtype and order, so the weight is
// copied to bf16 and/or (K, R, S, Cg) where x needs it (conv_weight; a float32 NCHW weight is
// used as it is); the bias is added in float. Saved for the backward: x and that weight (bf16:
// half the bytes of float32), and the output when it carries the ReLU.
Tensor conv2d_cuda(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dShape& s, bool relu) {
  [[maybe_unused]] const bool bf = x.dtype() == DType::bf16;  // used by the CUDA branch only
  Tensor out = Tensor::empty({s.N, s.K, s.P, s.Q}, x.dtype(), x.device(), x.memory_format());  // (N, K, P, Q)
  const Tensor w = conv_weight(weight, x.dtype(), x.memory_format());  // (K, Cg, R, S), channels_last: (K, R, S, Cg)
  // The bias runs along K: dimension 1 of (N, K, P*Q), or the last of (N*P*Q, K).
  const int64_t rows = s.channels_last ? s.N * s.P * s.Q : s.N, inner = s.channels_last ? 1 : s.P * s.Q;
  if (s.N > 0) {
    LEUKO_CUDA_BRANCH({
      const WorkspaceScope scope;
      if (bf) {
        kg::conv2d_forward(out.data<bf16>(), x.data<bf16>(), w.data<bf16>(), s, conv_workspace);
        if (bias.defined()) kg::bias_add(out.data<bf16>(), out.data<bf16>(), bias.data<float>(), rows, s.K, inner, relu);
        else if (relu) kg::relu_forward(out.data<bf16>(), out.data<bf16>(), out.numel());
      } else {
        kg::conv2d_forward(out.data<float>(), x.data<float>(), w.data<float>(), s, conv_workspace);
        if (bias.defined()) {
          kg::bias_add(out.data<float>(), out.data<float>(), bias.data<float>(), rows, s.K, inner, relu);
        } else if (relu) {
          kg::relu_forward(out.data<float>(), out.data<float>(), out.numel());
        }
      }
    });
  }
  if (autograd::needs_record({x, weight, bias})) {
    // dx needs only w, dw needs only x: save each only if the other's gradient is wanted, so a
    // first layer (input without grad) keeps no reference to w and a frozen layer none to x.
    Tensor sx = weight.requires_grad() ? x.detach() : Tensor();
    Tensor sw = x.requires_grad() ? w : Tensor();
    // With the ReLU, its output (the next layer keeps it anyway) masks the upstream gradient.
    Tensor so = relu ? out.detach() : Tensor();
    autograd::record(out, relu ? "conv2d_relu" : "conv2d", {x, weight, bias},
                     [sx, sw, so, s, rows, inner](const Tensor& g_out, const std::vector<bool>& need) {
      // g in out's dtype and order (the engine hands it over so).
      const Tensor g = so.defined() ? relu_grad(g_out, so) : g_out;  // (N, K, P, Q)
      Tensor gx = need[0] ? backward_data(g, sw, s) : Tensor();       // x's dtype and order
      // To the float32 NCHW master (no copy for float32 NCHW).
      Tensor gw = need[1] ? to_master_grad(backward_filter(sx, g, s)) : Tensor();
      // d/dbias: the sum of g over the batch and every position of each channel, in float32.
      Tensor gb = need[2] ? bias_grad(g, rows, s.K, inner) : Tensor();
      return std::vector<Tensor>{gx, gw, gb};
    });
  }
  return out;
}

// conv2d, and relu(conv2d) in one op when `relu`: the ReLU rides on the bias pass. On the CPU
// x is float32 or float64 NCHW, of the weight's dtype; on the GPU see conv2d_cuda.
Tensor conv2d_impl(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& options, bool relu) {
  const Conv2dShape s = conv_shape(x, weight, bias, options);
  if (x.is_cuda()) return conv2d_cuda(x, weight, bias, s, relu);
  Tensor out = Tensor::empty({s.N, s.K, s.P, s.Q}, x.dtype(), x.device());  // (N, K, P, Q)
  if (s.N > 0) {
    dispatch_float(x, "conv2d", [&](auto tag) {
      using T = decltype(tag);
      kc::conv2d_forward(out.data<T>(), x.data<T>(), weight.data<T>(), s);
      const int64_t PQ = s.P * s.Q;
      if (bias.defined()) kc::bias_add(out.data<T>(), out.data<T>(), bias.data<T>(), s.N, s.K, PQ, relu);
      else if (relu) kc::relu_forward(out.data<T>(), out.data<T>(), s.N * s.K * PQ);
    });
  }
  if (autograd::needs_record({x, weight, bias})) {
    // As conv2d_cuda: each saved only if the other's gradient is wanted.
    Tensor sx = weight.requires_grad() ? x.detach() : Tensor();
    Tensor sw = x.requires_grad() ? weight.detach() : Tensor();
    Tensor so = relu ? out.detach() : Tensor();
    autograd::record(out, relu ? "conv2d_relu" : "conv2d", {x, weight, bias},
                     [sx, sw, so, s](const Tensor& g_out, const std::vector<bool>& need) {
      const Tensor g = so.defined() ? relu_grad(g_out, so) : g_out;
      Tensor gx = need[0] ? backward_data(g, sw, s) : Tensor();
      Tensor gw = need[1] ? backward_filter(sx, g, s) : Tensor();
      // d/dbias: the sum of g over the batch and every position of each channel.
      Tensor gb = need[2] ? sum_to(g.reshape({s.N, s.K, s.P * s.Q}), {1, s.K, 1}).reshape({s.K}) : Tensor();
      return std::vector<Tensor>{gx, gw, gb};
    });
  }
  return out;
}

// The entry of conv2d and conv2d_relu: autocast (bf16, then channels_last: layers/autocast.h),
// then the op. The CPU runs bf16 and channels_last through the float32 NCHW op (through_float),
// with the weight rounded to bf16 for a bf16 input: the values the GPU multiplies.
Tensor conv2d_entry(const Tensor& x_in, const Tensor& weight, const Tensor& bias, const Conv2dOptions& options,
                    bool relu) {
  const Tensor x = autocast_channels_last(autocast_bf16(x_in));
  if (x.defined() && !x.is_cuda() && (x.dtype() == DType::bf16 || x.is_channels_last())) {
    detail::check_mixed("conv2d", x, {weight, bias}, detail::Layouts::any);
    const Tensor w = x.dtype() == DType::bf16 ? weight.to(DType::bf16) : weight;
    return detail::through_float([&](const Tensor& xf, const Tensor& wf) {
      return conv2d_impl(xf, wf, bias, options, relu);
    }, x, w);
  }
  return conv2d_impl(x, weight, bias, options, relu);
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& options) {
  return conv2d_entry(x, weight, bias, options, false);
}

Tensor conv2d_relu(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& options) {
  return conv2d_entry(x, weight, bias, options, true);
}

int64_t conv2d_algorithm_searches() {
#if LEUKO_WITH_CUDA
  return kg::conv2d_algorithm_searches();
#else
  return 0;
#endif
}

// ---- Module -------------------------------------------------------------------------------------

Conv2d::Conv2d(int64_t in_ch, int64_t out_ch, Conv2dOptions::Pair kernel, const Conv2dOptions& opt, bool with_bias,
               Generator& gen)
    : in_channels(in_ch), out_channels(out_ch), kernel_size(kernel), options(opt) {
  LEUKO_CHECK(in_ch >= 1 && out_ch >= 1 && kernel.h >= 1 && kernel.w >= 1, "Conv2d: channels and kernel_size must be ",
              "positive, got ", in_ch, ", ", out_ch, ", kernel_size=", pair_str(kernel));
  LEUKO_CHECK(opt.groups >= 1 && in_ch % opt.groups == 0, "Conv2d: in_channels = ", in_ch,
              " must be divisible by groups = ", opt.groups);
  LEUKO_CHECK(out_ch % opt.groups == 0, "Conv2d: out_channels = ", out_ch, " must be divisible by groups = ",
              opt.groups);
  // PyTorch's reset_parameters: kaiming_uniform_(a = sqrt(5)) gives bound
  // gain * sqrt(3 / fan_in) with gain = sqrt(2 / (1 + 5)), i.e. 1 / sqrt(fan_in).
  weight = register_parameter("weight", Tensor::empty({out_ch, in_ch / opt.groups, kernel.h, kernel.w}));
  init::kaiming_uniform_(weight, std::sqrt(5.0), init::FanMode::fan_in, "leaky_relu", gen);
  if (with_bias) {
    const int64_t fan_in = init::fans(weight).first;
    const double bound = fan_in > 0 ? 1.0 / std::sqrt(double(fan_in)) : 0.0;
    bias = register_parameter("bias", Tensor::empty({out_ch}));
    init::uniform_(bias, -bound, bound, gen);
  }
}

Tensor Conv2d::forward(const Tensor& x) { return conv2d(x, weight, bias, options); }

Tensor Conv2d::forward_relu(const Tensor& x) { return conv2d_relu(x, weight, bias, options); }

std::string Conv2d::extra_repr() const {
  std::ostringstream os;
  os << in_channels << ", " << out_channels << ", kernel_size=" << pair_str(kernel_size)
     << ", stride=" << pair_str(options.stride);
  if (!(options.padding == Conv2dOptions::Pair(0))) os << ", padding=" << pair_str(options.padding);
  if (!(options.dilation == Conv2dOptions::Pair(1))) os << ", dilation=" << pair_str(options.dilation);
  if (options.groups != 1) os << ", groups=" << options.groups;
  if (!bias.defined()) os << ", bias=False";
  return os.str();
}

}  // namespace leuko
