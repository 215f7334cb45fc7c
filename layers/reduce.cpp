// Reductions: sum_to is the one kernel (kernels/reduce.h); sum and mean over dims are sum_to
// with the summed dims set to 1, then a reshape. The gradient of a sum is an expand, and the
// gradient of an expand is a sum_to.
//
// bf16 activations: a bf16 input is reduced through_float on both devices (a float32 copy,
// the result rounded to bf16 once). No network reduces a bf16 activation on its hot path (the
// bias gradient of a bf16 layer calls the bf16 kernel of kernels/reduce.h directly).
//
// channels_last (tensor/tensor.h MemoryFormat): the kernels index dims in their shape's order,
// so a channels_last input is reduced through an NCHW copy (through_float converts it; a 4-D
// result comes back channels_last). No network reduces a channels_last activation on its hot
// path either. check_compatible's default refuses a channels_last tensor that got past this.
#include "layers/reduce.h"

#include <algorithm>

#include "kernels/reduce.h"
#include "layers/dispatch.h"
#include "tensor/autograd.h"

namespace leuko {

using detail::dispatch_float;
namespace kc = kernels::cpu;
namespace kg = kernels::cuda;

namespace {

bool is_bf16(const Tensor& x) { return x.defined() && x.dtype() == DType::bf16; }

// bf16 and channels_last inputs go through_float: the op on an NCHW copy, float32 for bf16.
bool needs_reference(const Tensor& x) { return is_bf16(x) || (x.defined() && x.is_channels_last()); }

// x's shape left-padded with 1s to `rank` dims.
Shape pad_left(const Shape& s, size_t rank) {
  Shape out(rank - s.size(), 1);
  out.insert(out.end(), s.begin(), s.end());
  return out;
}

// out (same rank as x, each dim equal or 1) = scale * sum of x over the dims where out is 1.
Tensor reduce_kernel(const Tensor& x, const Shape& out_shape, double scale) {
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  const kernels::Reduction r = kernels::make_reduction(x.shape().data(), out_shape.data(), int(x.dim()));
  if (x.is_cuda()) {
    LEUKO_CUDA_BRANCH({
      const int64_t scratch_n = kg::sum_to_scratch(r);
      Tensor scratch = scratch_n > 0 ? Tensor::empty({scratch_n}, DType::f32, x.device()) : Tensor();
      kg::sum_to(out.data<float>(), x.data<float>(), r, scale, scratch_n > 0 ? scratch.data<float>() : nullptr);
    });
  } else {
    dispatch_float(x, "sum", [&](auto tag) {
      using T = decltype(tag);
      kc::sum_to(out.data<T>(), x.data<T>(), r, scale);
    });
  }
  return out;
}

// out = scale * x broadcast to `shape` (x's shape broadcasts to it).
Tensor expand_kernel(const Tensor& x, const Shape& shape, double scale) {
  const Shape xs = pad_left(x.shape(), shape.size());
  Tensor out = Tensor::empty(shape, x.dtype(), x.device());
  kernels::Broadcast bc;
  bc.rank = int(shape.size());
  int64_t stride = 1;
  for (int d = bc.rank - 1; d >= 0; d--) {
    bc.shape[d] = shape[size_t(d)];
    bc.stride_a[d] = xs[size_t(d)] == 1 ? 0 : stride;
    stride *= xs[size_t(d)];
  }
  const int64_t n = out.numel();
  if (x.is_cuda()) {
    LEUKO_CUDA_BRANCH(kg::expand(out.data<float>(), x.data<float>(), n, bc, scale));
  } else {
    dispatch_float(x, "expand", [&](auto tag) {
      using T = decltype(tag);
      kc::expand(out.data<T>(), x.data<T>(), n, bc, scale);
    });
  }
  return out;
}

void check_broadcastable(const Shape& small, const Shape& big, const char* op) {
  LEUKO_CHECK(small.size() <= big.size() && big.size() <= size_t(kernels::kMaxDims), op, ": cannot broadcast ",
              shape_str(small), " to ", shape_str(big));
  const Shape s = pad_left(small, big.size());
  for (size_t i = 0; i < big.size(); i++) {
    LEUKO_CHECK(s[i] == big[i] || s[i] == 1, op, ": cannot broadcast ", shape_str(small), " to ", shape_str(big));
  }
}

// Sum (scale 1) or mean (scale 1/count) over dims, with the reduced dims kept as 1 in `kept`.
Tensor reduce_dims(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, bool is_mean) {
  if (needs_reference(x)) return detail::through_float(reduce_dims, x, dims, keepdim, is_mean);
  const char* name = is_mean ? "mean" : "sum";
  detail::check_compatible(name, {x});
  LEUKO_CHECK(x.dim() <= kernels::kMaxDims, name, ": at most ", kernels::kMaxDims, " dimensions");
  Shape kept = x.shape();
  std::vector<bool> reduced(size_t(x.dim()), false);
  for (int64_t d : dims) {
    const int64_t dd = d < 0 ? d + x.dim() : d;
    LEUKO_CHECK(dd >= 0 && dd < x.dim(), name, ": dimension ", d, " out of range for ", shape_str(x.shape()));
    LEUKO_CHECK(!reduced[size_t(dd)], name, ": dimension ", d, " named twice");
    reduced[size_t(dd)] = true;
    kept[size_t(dd)] = 1;
  }
  const int64_t count = x.numel() / std::max<int64_t>(1, shape_numel(kept));
  const double scale = is_mean ? 1.0 / double(std::max<int64_t>(1, count)) : 1.0;
  Shape final_shape;
  for (size_t i = 0; i < kept.size(); i++) {
    if (!reduced[i] || keepdim) final_shape.push_back(kept[i]);
  }
  Tensor out = reduce_kernel(x, kept, scale).reshape(final_shape);
  if (autograd::needs_record({x})) {
    const Shape in_shape = x.shape();
    autograd::record(out, name, {x}, [in_shape, kept, scale](const Tensor& g, const std::vector<bool>&) {
      return std::vector<Tensor>{expand_kernel(g.reshape(kept), in_shape, scale)};
    });
  }
  return out;
}

std::vector<int64_t> all_dims(const Tensor& x) {
  std::vector<int64_t> d(size_t(x.dim()));
  for (size_t i = 0; i < d.size(); i++) d[i] = int64_t(i);
  return d;
}

}  // namespace

Tensor sum(const Tensor& x) { return reduce_dims(x, all_dims(x), false, false); }
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return reduce_dims(x, dims, keepdim, false);
}
Tensor mean(const Tensor& x) { return reduce_dims(x, all_dims(x), false, true); }
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return reduce_dims(x, dims, keepdim, true);
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  if (needs_reference(x)) return detail::through_float(sum_to, x, shape);
  detail::check_compatible("sum_to", {x});
  check_broadcastable(shape, x.shape(), "sum_to");
  Tensor out = reduce_kernel(x, pad_left(shape, size_t(x.dim())), 1.0).reshape(shape);
  if (autograd::needs_record({x})) {
    const Shape in_shape = x.shape();
    autograd::record(out, "sum_to", {x}, [in_shape](const Tensor& g, const std::vector<bool>&) {
      return std::vector<Tensor>{expand_kernel(g, in_shape, 1.0)};
    });
  }
  return out;
}

Tensor expand(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  if (needs_reference(x)) return detail::through_float(expand, x, shape);
  detail::check_compatible("expand", {x});
  check_broadcastable(x.shape(), shape, "expand");
  Tensor out = expand_kernel(x, shape, 1.0);
  if (autograd::needs_record({x})) {
    const Shape in_shape = x.shape();
    autograd::record(out, "expand", {x}, [in_shape](const Tensor& g, const std::vector<bool>&) {
      return std::vector<Tensor>{sum_to(g, in_shape)};
    });
  }
  return out;
}

}  // namespace leuko
