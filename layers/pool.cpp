// Pooling: forward through kernels/pool.h, backward recorded beside it. Max pooling saves its
// argmax indices (int64, as PyTorch's) rather than its input: the backward needs only where
// each maximum was. The average poolings save nothing but the shape.
//
// bf16 activations: pooling keeps its input's dtype. On the GPU the kernels are bf16-native
// (load, compute in float, round once); on the CPU a bf16 input runs the float32 op on a
// converted copy (detail::through_float), the reference the GPU is tested against.
//
// channels_last (tensor/tensor.h MemoryFormat): pooling keeps its input's memory order, as it
// keeps its dtype. The GPU has kernels for both orders (kernels/pool.h, the *_nhwc ones); the
// CPU pools an NCHW copy (through_float) and converts the output back. The argmax indices of a
// channels_last output are a channels_last int64 tensor: the same values (h * W + w within the
// plane) as the NCHW op's, stored in the output's order, so index i of the output's storage is
// index i of the indices' storage, which is what the backward kernels walk.
#include "layers/pool.h"

#include "kernels/pool.h"
#include "layers/dispatch.h"
#include "tensor/autograd.h"

namespace leuko {

using detail::dispatch_float;
namespace kc = kernels::cpu;
namespace kg = kernels::cuda;

int64_t pool_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, bool ceil_mode) {
  const int64_t num = in + 2 * pad - kernel + (ceil_mode ? stride - 1 : 0);
  // Floor division also for a negative numerator (a window larger than the padded input), so
  // the caller sees a size <= 0 and reports it.
  int64_t out = (num >= 0 ? num / stride : -((-num + stride - 1) / stride)) + 1;
  // ceil_mode may add a window that starts in the right padding: PyTorch drops it.
  if (ceil_mode && (out - 1) * stride >= in + pad) out--;
  return out;
}

namespace {

// A bf16 or channels_last tensor on the CPU: its op runs the float32 NCHW op (through_float).
bool cpu_reference(const Tensor& x) {
  return x.defined() && !x.is_cuda() && (x.dtype() == DType::bf16 || x.is_channels_last());
}

// The input of a pooling op: float32, float64 (CPU) or bf16, in either memory order (the CUDA
// kernels index both). check_compatible rejects bf16 on the GPU, where these ops have bf16
// kernels.
void check_input(const char* op, const Tensor& x) {
  if (x.defined() && x.dtype() == DType::bf16) return;
  detail::check_compatible(op, {x}, detail::Layouts::any);
}

// A backward receives its output's gradient in the output's memory order (tensor/autograd.h);
// the kernels index that order, so a gradient in the other would be read wrongly, silently.
void check_grad_order(const char* op, const Tensor& g, MemoryFormat format) {
  LEUKO_CHECK(g.memory_format() == format, op, " backward: the gradient ", g.describe(), " is not ",
              memory_format_name(format), " as the output was");
}

// Calls f(T{}) with T = float or bf16, the storage type of a CUDA tensor (the kernels in
// kernels/pool.h have an overload for each).
template <typename F>
void dispatch_cuda(const Tensor& t, F&& f) {
  if (t.dtype() == DType::bf16) {
    f(bf16{});
  } else {
    f(float{});
  }
}

// Checks the arguments of a pooling op and returns its geometry.
kernels::Pool2d pool_geometry(const char* op, const Tensor& x, int64_t kernel, int64_t stride, int64_t padding,
                              bool ceil_mode) {
  check_input(op, x);
  detail::check_rank(op, "input", x, 4);
  LEUKO_CHECK(kernel >= 1 && stride >= 1 && padding >= 0, op, ": kernel ", kernel, ", stride ", stride,
              " and padding ", padding, " must be >= 1, >= 1 and >= 0");
  // Larger padding would allow windows made only of padding (a max of nothing).
  LEUKO_CHECK(padding <= kernel / 2, op, ": padding ", padding, " must be at most half the kernel size ", kernel);
  kernels::Pool2d p;
  p.planes = x.size(0) * x.size(1);
  p.C = x.size(1);
  p.H = x.size(2), p.W = x.size(3);
  p.kh = p.kw = kernel;
  p.sh = p.sw = stride;
  p.ph = p.pw = padding;
  p.OH = pool_output_size(p.H, kernel, stride, padding, ceil_mode);
  p.OW = pool_output_size(p.W, kernel, stride, padding, ceil_mode);
  LEUKO_CHECK(p.OH >= 1 && p.OW >= 1, op, ": input ", shape_str(x.shape()), " is too small for kernel ", kernel,
              ", stride ", stride, ", padding ", padding, " (output ", p.OH, "x", p.OW, ")");
  return p;
}

}  // namespace

std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding,
                                                  bool ceil_mode) {
  if (cpu_reference(x)) {
    // through_float by hand (it returns one tensor): the float32 NCHW op picks the same values
    // (exact in bf16) and the same argmax; both come back in x's dtype and memory order.
    const Tensor xf = x.dtype() == DType::bf16 ? x.to(DType::f32) : x;
    auto [out, indices] = max_pool2d_with_indices(xf.to(MemoryFormat::nchw), kernel, stride, padding, ceil_mode);
    return {out.to(x.dtype()).to(x.memory_format()), indices.to(x.memory_format())};
  }
  const kernels::Pool2d p = pool_geometry("max_pool2d", x, kernel, stride, padding, ceil_mode);
  const Shape out_shape{x.size(0), x.size(1), p.OH, p.OW};
  const MemoryFormat format = x.memory_format();  // the CPU gets here with NCHW only
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device(), format);
  Tensor indices = Tensor::empty(out_shape, DType::i64, x.device(), format);  // out's order; argmax h * W + w
  if (x.is_cuda()) {
    LEUKO_CUDA_BRANCH(dispatch_cuda(x, [&](auto tag) {
      using T = decltype(tag);
      if (format == MemoryFormat::channels_last) {
        kg::max_pool2d_forward_nhwc(out.data<T>(), indices.data<int64_t>(), x.data<T>(), p);
      } else {
        kg::max_pool2d_forward(out.data<T>(), indices.data<int64_t>(), x.data<T>(), p);
      }
    }));
  } else {
    dispatch_float(x, "max_pool2d", [&](auto tag) {
      using T = decltype(tag);
      kc::max_pool2d_forward(out.data<T>(), indices.data<int64_t>(), x.data<T>(), p);
    });
  }
  if (autograd::needs_record({x})) {
    const Shape in_shape = x.shape();
    const Tensor idx = indices.detach();
    autograd::record(out, "max_pool2d", {x}, [p, in_shape, idx, format](const Tensor& g, const std::vector<bool>&) {
      check_grad_order("max_pool2d", g, format);
      Tensor gx = Tensor::empty(in_shape, g.dtype(), g.device(), format);  // (N, C, H, W), x's order
      if (g.is_cuda()) {
        LEUKO_CUDA_BRANCH(dispatch_cuda(g, [&](auto tag) {
          using T = decltype(tag);
          if (format == MemoryFormat::channels_last) {
            kg::max_pool2d_backward_nhwc(gx.data<T>(), g.data<T>(), idx.data<int64_t>(), p);
          } else {
            kg::max_pool2d_backward(gx.data<T>(), g.data<T>(), idx.data<int64_t>(), p);
          }
        }));
      } else {
        dispatch_float(g, "max_pool2d backward", [&](auto tag) {
          using T = decltype(tag);
          kc::max_pool2d_backward(gx.data<T>(), g.data<T>(), idx.data<int64_t>(), p);
        });
      }
      return std::vector<Tensor>{gx};
    });
  }
  return {out, indices};
}

Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding, bool ceil_mode) {
  return max_pool2d_with_indices(x, kernel, stride, padding, ceil_mode).first;
}

Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding, bool ceil_mode,
                  bool count_include_pad) {
  if (cpu_reference(x)) {
    return detail::through_float(avg_pool2d, x, kernel, stride, padding, ceil_mode, count_include_pad);
  }
  const kernels::Pool2d p = pool_geometry("avg_pool2d", x, kernel, stride, padding, ceil_mode);
  const MemoryFormat format = x.memory_format();  // the CPU gets here with NCHW only
  Tensor out = Tensor::empty({x.size(0), x.size(1), p.OH, p.OW}, x.dtype(), x.device(), format);
  if (x.is_cuda()) {
    LEUKO_CUDA_BRANCH(dispatch_cuda(x, [&](auto tag) {
      using T = decltype(tag);
      if (format == MemoryFormat::channels_last) {
        kg::avg_pool2d_forward_nhwc(out.data<T>(), x.data<T>(), p, count_include_pad);
      } else {
        kg::avg_pool2d_forward(out.data<T>(), x.data<T>(), p, count_include_pad);
      }
    }));
  } else {
    dispatch_float(x, "avg_pool2d", [&](auto tag) {
      using T = decltype(tag);
      kc::avg_pool2d_forward(out.data<T>(), x.data<T>(), p, count_include_pad);
    });
  }
  if (autograd::needs_record({x})) {
    const Shape in_shape = x.shape();
    auto backward = [p, in_shape, count_include_pad, format](const Tensor& g, const std::vector<bool>&) {
      check_grad_order("avg_pool2d", g, format);
      Tensor gx = Tensor::empty(in_shape, g.dtype(), g.device(), format);  // (N, C, H, W), x's order
      if (g.is_cuda()) {
        LEUKO_CUDA_BRANCH(dispatch_cuda(g, [&](auto tag) {
          using T = decltype(tag);
          if (format == MemoryFormat::channels_last) {
            kg::avg_pool2d_backward_nhwc(gx.data<T>(), g.data<T>(), p, count_include_pad);
          } else {
            kg::avg_pool2d_backward(gx.data<T>(), g.data<T>(), p, count_include_pad);
          }
        }));
      } else {
        dispatch_float(g, "avg_pool2d backward", [&](auto tag) {
          using T = decltype(tag);
          kc::avg_pool2d_backward(gx.data<T>(), g.data<T>(), p, count_include_pad);
        });
      }
      return std::vector<Tensor>{gx};
    };
    autograd::record(out, "avg_pool2d", {x}, backward);
  }
  return out;
}

Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w) {
  if (cpu_reference(x)) return detail::through_float(adaptive_avg_pool2d, x, out_h, out_w);
  check_input("adaptive_avg_pool2d", x);
  detail::check_rank("adaptive_avg_pool2d", "input", x, 4);
  LEUKO_CHECK(out_h >= 1 && out_w >= 1, "adaptive_avg_pool2d: output size ", out_h, "x", out_w, " must be positive");
  LEUKO_CHECK(x.size(2) >= 1 && x.size(3) >= 1, "adaptive_avg_pool2d: empty input plane ", shape_str(x.shape()));
  kernels::Pool2d p;
  p.planes = x.size(0) * x.size(1);
  p.C = x.size(1);
  p.H = x.size(2), p.W = x.size(3), p.OH = out_h, p.OW = out_w;
  const MemoryFormat format = x.memory_format();  // the CPU gets here with NCHW only
  Tensor out = Tensor::empty({x.size(0), x.size(1), out_h, out_w}, x.dtype(), x.device(), format);
  if (x.is_cuda()) {
    LEUKO_CUDA_BRANCH(dispatch_cuda(x, [&](auto tag) {
      using T = decltype(tag);
      if (format == MemoryFormat::channels_last) {
        kg::adaptive_avg_pool2d_forward_nhwc(out.data<T>(), x.data<T>(), p);
      } else {
        kg::adaptive_avg_pool2d_forward(out.data<T>(), x.data<T>(), p);
      }
    }));
  } else {
    dispatch_float(x, "adaptive_avg_pool2d", [&](auto tag) {
      using T = decltype(tag);
      kc::adaptive_avg_pool2d_forward(out.data<T>(), x.data<T>(), p);
    });
  }
  if (autograd::needs_record({x})) {
    const Shape in_shape = x.shape();
    auto backward = [p, in_shape, format](const Tensor& g, const std::vector<bool>&) {
      check_grad_order("adaptive_avg_pool2d", g, format);
      Tensor gx = Tensor::empty(in_shape, g.dtype(), g.device(), format);  // (N, C, H, W), x's order
      if (g.is_cuda()) {
        LEUKO_CUDA_BRANCH(dispatch_cuda(g, [&](auto tag) {
          using T = decltype(tag);
          if (format == MemoryFormat::channels_last) {
            kg::adaptive_avg_pool2d_backward_nhwc(gx.data<T>(), g.data<T>(), p);
          } else {
            kg::adaptive_avg_pool2d_backward(gx.data<T>(), g.data<T>(), p);
          }
        }));
      } else {
        dispatch_float(g, "adaptive_avg_pool2d backward", [&](auto tag) {
          using T = decltype(tag);
          kc::adaptive_avg_pool2d_backward(gx.data<T>(), g.data<T>(), p);
        });
      }
      return std::vector<Tensor>{gx};
    };
    autograd::record(out, "adaptive_avg_pool2d", {x}, backward);
  }
  return out;
}

// ---- Modules --------------------------------------------------------------------------------

namespace {
const char* py_bool(bool b) { return b ? "True" : "False"; }
}  // namespace

MaxPool2d::MaxPool2d(int64_t kernel_size_, int64_t stride_, int64_t padding_, bool ceil_mode_)
    : kernel_size(kernel_size_), stride(stride_ == 0 ? kernel_size_ : stride_), padding(padding_),
      ceil_mode(ceil_mode_) {}

Tensor MaxPool2d::forward(const Tensor& x) { return max_pool2d(x, kernel_size, stride, padding, ceil_mode); }

std::string MaxPool2d::extra_repr() const {
  return detail::concat("kernel_size=", kernel_size, ", stride=", stride, ", padding=", padding,
                        ", dilation=1, ceil_mode=", py_bool(ceil_mode));
}

AvgPool2d::AvgPool2d(int64_t kernel_size_, int64_t stride_, int64_t padding_, bool ceil_mode_,
                     bool count_include_pad_)
    : kernel_size(kernel_size_), stride(stride_ == 0 ? kernel_size_ : stride_), padding(padding_),
      ceil_mode(ceil_mode_), count_include_pad(count_include_pad_) {}

Tensor AvgPool2d::forward(const Tensor& x) {
  return avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad);
}

std::string AvgPool2d::extra_repr() const {  // PyTorch prints these three only
  return detail::concat("kernel_size=", kernel_size, ", stride=", stride, ", padding=", padding);
}

std::string AdaptiveAvgPool2d::extra_repr() const {
  if (square_) return detail::concat("output_size=", out_h);
  return detail::concat("output_size=(", out_h, ", ", out_w, ")");
}

}  // namespace leuko
