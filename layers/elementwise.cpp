// Elementwise ops: forward through kernels/elementwise.h, backward recorded beside it.
// The backward closures are themselves written with these ops (the engine runs them with grad
// mode off), so each gradient formula reads like its textbook form.
//
// bf16 activations (tensor/device.h bf16_activations()): none of these ops is on a network's hot
// path, so none has a bf16 kernel. A bf16 input runs through_float (layers/dispatch.h) on both
// devices: the float32 op on converted copies, its output rounded to bf16 once, the gradients
// flowing back through the same conversions.
//
// channels_last (tensor/device.h channels_last_activations()): the unary and scalar ops walk the
// flat buffer, so they take either memory order and their output keeps it (empty_like). A binary
// op runs as it is when its operands have one shape and one order (element i of a meets element
// i of b); broadcasting and mixed orders go through_float, which hands the kernels NCHW copies
// (the broadcast strides index NCHW) and returns a 4-D output as channels_last. bias_add indexes
// NCHW ((N, C, inner), the bias along dim 1), so a channels_last input goes through_float too.
#include "layers/elementwise.h"

#include "kernels/elementwise.h"
#include "layers/dispatch.h"
#include "layers/reduce.h"
#include "tensor/autograd.h"

namespace leuko {

using detail::dispatch_float;
namespace kc = kernels::cpu;
namespace kg = kernels::cuda;
using kernels::BinaryOp;
using kernels::UnaryOp;

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t rank = std::max(a.size(), b.size());
  LEUKO_CHECK(rank <= size_t(kernels::kMaxDims), op, ": at most ", kernels::kMaxDims, " dimensions");
  Shape out(rank);
  for (size_t i = 0; i < rank; i++) {  // right-aligned
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    LEUKO_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ", shape_str(b),
                " do not broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

namespace {

// Strides (in elements) of a contiguous `shape` read as `out` (right-aligned, 0 where broadcast).
void broadcast_strides(const Shape& shape, const Shape& out, int64_t* strides) {
  const size_t pad = out.size() - shape.size();
  int64_t stride = 1;
  for (size_t i = out.size(); i-- > 0;) {
    const int64_t d = i < pad ? 1 : shape[i - pad];
    strides[i] = d == 1 ? 0 : stride;
    stride *= d;
  }
}

Tensor binary(BinaryOp op, const char* name, const Tensor& a, const Tensor& b) {
  if (detail::any_bf16({a, b}) && a.defined() && b.defined()) {
    auto f = [op, name](const Tensor& fa, const Tensor& fb) { return binary(op, name, fa, fb); };
    // PyTorch's type promotion: bf16 with bf16 gives bf16; bf16 with a wider float type gives
    // that type (the bf16 operand converted, differentiably, and the op run in it).
    if (a.dtype() == b.dtype()) return detail::through_float(f, a, b);
    const auto is_float = [](const Tensor& t) { return t.dtype() == DType::f32 || t.dtype() == DType::f64; };
    if (is_float(b)) return f(a.to(b.dtype()), b);
    if (is_float(a)) return f(a, b.to(a.dtype()));
    // bf16 with int64: left to the checks below, which refuse it.
  }
  // Same shape and same memory order: the flat kernel, whatever the order. Otherwise a
  // channels_last operand goes through NCHW (the broadcast strides below index NCHW).
  const bool same = a.defined() && b.defined() && a.shape() == b.shape();
  const bool one_order = same && a.memory_format() == b.memory_format();
  if (!one_order && detail::any_channels_last({a, b})) {
    return detail::through_float([op, name](const Tensor& fa, const Tensor& fb) { return binary(op, name, fa, fb); },
                                 a, b);
  }
  detail::check_compatible(name, {a, b}, one_order ? detail::Layouts::any : detail::Layouts::nchw);
  const Shape out_shape = broadcast_shapes(a.shape(), b.shape(), name);
  // Same shapes: a's memory order too; broadcasting: NCHW (both operands are, by now).
  Tensor out = same ? Tensor::empty_like(a) : Tensor::empty(out_shape, a.dtype(), a.device());
  const int64_t n = out.numel();
  kernels::Broadcast bc;
  if (!same) {
    bc.rank = int(out_shape.size());
    for (int i = 0; i < bc.rank; i++) bc.shape[i] = out_shape[size_t(i)];
    broadcast_strides(a.shape(), out_shape, bc.stride_a);
    broadcast_strides(b.shape(), out_shape, bc.stride_b);
  }
  const kernels::Broadcast* bcp = same ? nullptr : &bc;
  if (a.is_cuda()) {
    LEUKO_CUDA_BRANCH(kg::binary(op, out.data<float>(), a.data<float>(), b.data<float>(), n, bcp));
  } else {
    dispatch_float(a, name, [&](auto tag) {
      using T = decltype(tag);
      kc::binary(op, out.data<T>(), a.data<T>(), b.data<T>(), n, bcp);
    });
  }
  if (autograd::needs_record({a, b})) {
    // add and sub need no saved tensors; mul and div keep their inputs.
    const bool save = op == BinaryOp::mul || op == BinaryOp::div;
    Tensor sa = save ? a.detach() : Tensor(), sb = save ? b.detach() : Tensor();
    const Shape shape_a = a.shape(), shape_b = b.shape();
    autograd::record(out, name, {a, b}, [op, sa, sb, shape_a, shape_b](const Tensor& g, const std::vector<bool>& need) {
      Tensor ga, gb;
      switch (op) {
        case BinaryOp::add:
          ga = g, gb = need[1] ? g : Tensor();
          break;
        case BinaryOp::sub:
          ga = g, gb = need[1] ? neg(g) : Tensor();
          break;
        case BinaryOp::mul:  // d(ab)/da = b, d(ab)/db = a
          if (need[0]) ga = mul(g, sb);
          if (need[1]) gb = mul(g, sa);
          break;
        case BinaryOp::div:  // d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
          if (need[0]) ga = div(g, sb);
          if (need[1]) gb = neg(div(mul(g, sa), mul(sb, sb)));
          break;
      }
      return std::vector<Tensor>{need[0] ? sum_to(ga, shape_a) : Tensor(), need[1] ? sum_to(gb, shape_b) : Tensor()};
    });
  }
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::add, "add", a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::sub, "sub", a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::mul, "mul", a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::div, "div", a, b); }

Tensor affine(const Tensor& x, double alpha, double beta) {
  if (detail::any_bf16({x})) return detail::through_float(affine, x, alpha, beta);
  detail::check_compatible("affine", {x}, detail::Layouts::any);  // elementwise: either order
  Tensor out = Tensor::empty_like(x);
  const int64_t n = x.numel();
  if (x.is_cuda()) {
    LEUKO_CUDA_BRANCH(kg::affine(out.data<float>(), x.data<float>(), n, alpha, beta));
  } else {
    dispatch_float(x, "affine", [&](auto tag) {
      using T = decltype(tag);
      kc::affine(out.data<T>(), x.data<T>(), n, alpha, beta);
    });
  }
  if (autograd::needs_record({x})) {
    autograd::record(out, "affine", {x}, [alpha](const Tensor& g, const std::vector<bool>&) {
      return std::vector<Tensor>{alpha == 1.0 ? g : affine(g, alpha, 0.0)};
    });
  }
  return out;
}

Tensor add(const Tensor& x, double s) { return affine(x, 1.0, s); }
Tensor sub(const Tensor& x, double s) { return affine(x, 1.0, -s); }
Tensor rsub(double s, const Tensor& x) { return affine(x, -1.0, s); }
Tensor mul(const Tensor& x, double s) { return affine(x, s, 0.0); }
Tensor div(const Tensor& x, double s) {
  LEUKO_CHECK(s != 0.0, "div: division by the scalar 0");
  return affine(x, 1.0 / s, 0.0);
}

Tensor rdiv(double s, const Tensor& x) {
  if (detail::any_bf16({x})) return detail::through_float(rdiv, s, x);
  detail::check_compatible("rdiv", {x}, detail::Layouts::any);  // elementwise: either order
  Tensor out = Tensor::empty_like(x);
  const int64_t n = x.numel();
  if (x.is_cuda()) {
    LEUKO_CUDA_BRANCH(kg::scalar_div(out.data<float>(), s, x.data<float>(), n));
  } else {
    dispatch_float(x, "rdiv", [&](auto tag) {
      using T = decltype(tag);
      kc::scalar_div(out.data<T>(), s, x.data<T>(), n);
    });
  }
  if (autograd::needs_record({x})) {  // d(s/x)/dx = -s/x^2 = -out/x
    autograd::record(out, "rdiv", {x}, [sx = x.detach(), so = out.detach()](const Tensor& g, const std::vector<bool>&) {
      return std::vector<Tensor>{neg(div(mul(g, so), sx))};
    });
  }
  return out;
}

namespace {
Tensor unary(UnaryOp op, const char* name, const Tensor& x) {
  if (detail::any_bf16({x})) {
    return detail::through_float([op, name](const Tensor& fx) { return unary(op, name, fx); }, x);
  }
  detail::check_compatible(name, {x}, detail::Layouts::any);  // elementwise: either order
  Tensor out = Tensor::empty_like(x);
  const int64_t n = x.numel();
  if (x.is_cuda()) {
    LEUKO_CUDA_BRANCH(kg::unary(op, out.data<float>(), x.data<float>(), n));
  } else {
    dispatch_float(x, name, [&](auto tag) {
      using T = decltype(tag);
      kc::unary(op, out.data<T>(), x.data<T>(), n);
    });
  }
  if (autograd::needs_record({x})) {
    // exp saves its output (d exp(x) = exp(x)), log its input (d log(x) = 1/x).
    Tensor saved = op == UnaryOp::exp ? out.detach() : op == UnaryOp::log ? x.detach() : Tensor();
    autograd::record(out, name, {x}, [op, saved](const Tensor& g, const std::vector<bool>&) {
      switch (op) {
        case UnaryOp::exp: return std::vector<Tensor>{mul(g, saved)};
        case UnaryOp::log: return std::vector<Tensor>{div(g, saved)};
        case UnaryOp::neg: break;
      }
      return std::vector<Tensor>{neg(g)};
    });
  }
  return out;
}
}  // namespace

Tensor neg(const Tensor& x) { return unary(UnaryOp::neg, "neg", x); }
Tensor exp(const Tensor& x) { return unary(UnaryOp::exp, "exp", x); }
Tensor log(const Tensor& x) { return unary(UnaryOp::log, "log", x); }

Tensor bias_add(const Tensor& x, const Tensor& bias) {
  if (detail::any_bf16({x, bias}) && x.defined() && bias.defined()) {
    // A bf16 activation with its float32 bias (a parameter, as a convolution's): bf16 out, by
    // check_mixed's rule for parameters, where type promotion would give float32.
    // through_float also takes a channels_last x to NCHW (and its output back).
    if (x.dtype() == DType::bf16) {
      if (bias.dtype() != DType::bf16) detail::check_mixed("bias_add", x, {bias}, detail::Layouts::any);
      return detail::through_float(bias_add, x, bias);
    }
    return bias_add(x, bias.to(x.dtype()));  // a bf16 bias on a wider input: promoted to it
  }
  // The kernel reads x as (N, C, inner), the bias along dim 1: a channels_last x (stored N, H,
  // W, C) through an NCHW copy, its output converted back.
  if (x.defined() && x.is_channels_last()) return detail::through_float(bias_add, x, bias);
  detail::check_compatible("bias_add", {x, bias});  // NCHW only
  LEUKO_CHECK(x.dim() >= 2, "bias_add: input must be (N, C, ...), got ", shape_str(x.shape()));
  detail::check_rank("bias_add", "bias", bias, 1);
  const int64_t N = x.size(0), C = x.size(1), inner = x.numel() / std::max<int64_t>(1, N * C);
  LEUKO_CHECK(bias.size(0) == C, "bias_add: bias has ", bias.size(0), " elements for ", C, " channels");
  Tensor out = Tensor::empty_like(x);
  if (x.is_cuda()) {
    LEUKO_CUDA_BRANCH(kg::bias_add(out.data<float>(), x.data<float>(), bias.data<float>(), N, C, inner));
  } else {
    dispatch_float(x, "bias_add", [&](auto tag) {
      using T = decltype(tag);
      kc::bias_add(out.data<T>(), x.data<T>(), bias.data<T>(), N, C, inner);
    });
  }
  if (autograd::needs_record({x, bias})) {
    autograd::record(out, "bias_add", {x, bias}, [N, C, inner](const Tensor& g, const std::vector<bool>& need) {
      // d/dbias: sum of g over every position of each channel.
      Tensor gb = need[1] ? sum_to(g.reshape({N, C, inner}), {1, C, 1}).reshape({C}) : Tensor();
      return std::vector<Tensor>{need[0] ? g : Tensor(), gb};
    });
  }
  return out;
}

}  // namespace leuko
