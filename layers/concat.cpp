// Concatenation: every tensor is viewed as (outer, size along dim * inner) and copied as a block
// of rows into its column range of the output (kernels/concat.h); the backward copies the same
// blocks back out of the gradient.
//
// bf16 activations: cat keeps its inputs' dtype (all the same). The GPU copies bf16 elements
// as they are; the CPU concatenates float32 copies and converts the result (through_float's
// rule, by hand: through_float converts Tensor arguments, not a vector of them).
//
// channels_last (tensor/tensor.h MemoryFormat): the blocks are taken in memory order, where a
// channels_last tensor's dims are (N, H, W, C). Along the channels (dim 1, GoogLeNet's
// Inception blocks) each input is then an (N * H * W, C_i) matrix and the output the
// (N * H * W, sum C_i) one: the same row copy, natively on both devices. Along N, H or W it is
// the same copy with other outer and inner sizes. The output takes the first input's memory
// order; inputs in the other order are converted to it first (differentiably).
#include "layers/concat.h"

#include <utility>
#include <vector>

#include "kernels/concat.h"
#include "layers/dispatch.h"
#include "tensor/autograd.h"

namespace leuko {

using detail::dispatch_float;

namespace {
// dst's columns [dst_col, dst_col + cols) of each of `rows` rows <- src's [src_col, ...), where
// rows are dst_stride and src_stride elements long.
void copy_block(const Tensor& dst, int64_t dst_stride, int64_t dst_col, const Tensor& src, int64_t src_stride,
                int64_t src_col, int64_t rows, int64_t cols) {
  if (dst.is_cuda()) {
    LEUKO_CUDA_BRANCH({
      if (dst.dtype() == DType::bf16) {
        kernels::cuda::copy_rows(dst.data<bf16>() + dst_col, dst_stride, src.data<bf16>() + src_col, src_stride, rows,
                                 cols);
      } else {
        kernels::cuda::copy_rows(dst.data<float>() + dst_col, dst_stride, src.data<float>() + src_col, src_stride, rows,
                                 cols);
      }
    });
  } else {
    dispatch_float(dst, "cat", [&](auto tag) {
      using T = decltype(tag);
      kernels::cpu::copy_rows(dst.data<T>() + dst_col, dst_stride, src.data<T>() + src_col, src_stride, rows, cols);
    });
  }
}

// Concatenating along `dim` views every tensor, in its memory order, as (outer, size along
// dim, inner): outer the product of the dims stored before dim, inner of those after.
// NCHW stores the dims in their order; channels_last stores (N, H, W, C), so along the
// channels outer = N * H * W and inner = 1.
std::pair<int64_t, int64_t> outer_inner(const Shape& shape, int64_t dim, MemoryFormat format) {
  std::vector<int64_t> stored(shape.size());  // the dims, outermost first, as memory holds them
  for (size_t d = 0; d < stored.size(); d++) stored[d] = int64_t(d);
  if (format == MemoryFormat::channels_last) stored = {0, 2, 3, 1};
  int64_t outer = 1, inner = 1;
  bool after = false;
  for (int64_t d : stored) {
    if (d == dim) {
      after = true;
    } else {
      (after ? inner : outer) *= shape[size_t(d)];
    }
  }
  return {outer, inner};
}
}  // namespace

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  LEUKO_CHECK(!tensors.empty(), "cat: no tensors to concatenate");
  const Tensor& first = tensors[0];
  if (first.defined() && first.dtype() == DType::bf16) {
    // check_compatible rejects bf16 on the GPU, where cat copies it natively: check by hand.
    for (const Tensor& t : tensors) {
      LEUKO_CHECK(t.defined(), "cat: an input tensor is undefined");
      LEUKO_CHECK(t.device() == first.device(), "cat: inputs on different devices (", first.describe(), " and ",
                  t.describe(), ")");
      LEUKO_CHECK(t.dtype() == DType::bf16, "cat: inputs of different dtypes (", first.describe(), " and ",
                  t.describe(), "); convert them to one dtype first");
    }
  } else {
    // Either memory order: inputs in another order than the first's are converted below.
    for (const Tensor& t : tensors) detail::check_compatible("cat", {first, t}, detail::Layouts::any);
  }
  const int64_t rank = first.dim();
  LEUKO_CHECK(rank >= 1, "cat: cannot concatenate 0-dimensional tensors");
  LEUKO_CHECK(dim >= -rank && dim < rank, "cat: dim ", dim, " out of range for ", rank, "-dimensional tensors");
  if (dim < 0) dim += rank;
  Shape out_shape = first.shape();
  out_shape[size_t(dim)] = 0;
  for (const Tensor& t : tensors) {
    bool same = t.dim() == rank;
    for (int64_t d = 0; same && d < rank; d++) same = d == dim || t.size(d) == first.size(d);
    LEUKO_CHECK(same, "cat: shapes ", shape_str(first.shape()), " and ", shape_str(t.shape()),
                " differ outside dimension ", dim);
    out_shape[size_t(dim)] += t.size(dim);
  }
  if (first.dtype() == DType::bf16 && !first.is_cuda()) {
    std::vector<Tensor> floats;  // float32 copies, differentiable: the gradients come back as bf16
    for (const Tensor& t : tensors) floats.push_back(t.to(DType::f32));
    return cat(floats, dim).to(DType::bf16);
  }
  const MemoryFormat format = first.memory_format();
  for (const Tensor& t : tensors) {
    if (t.memory_format() == format) continue;
    std::vector<Tensor> same;  // mixed orders: all in the first's (4-D, as the shapes were checked)
    for (const Tensor& u : tensors) same.push_back(u.to(format));
    return cat(same, dim);
  }
  const std::pair<int64_t, int64_t> blocks = outer_inner(first.shape(), dim, format);
  const int64_t outer = blocks.first, inner = blocks.second;  // every tensor: (outer, size along dim, inner)
  const int64_t out_row = out_shape[size_t(dim)] * inner;     // elements per output row

  Tensor out = Tensor::empty(out_shape, first.dtype(), first.device(), format);
  std::vector<int64_t> offsets;  // each input's first column in an output row
  std::vector<Shape> shapes;
  int64_t col = 0;
  for (const Tensor& t : tensors) {
    const int64_t cols = t.size(dim) * inner;
    copy_block(out, out_row, col, t, cols, 0, outer, cols);
    offsets.push_back(col);
    shapes.push_back(t.shape());
    col += cols;
  }
  if (autograd::needs_record(tensors)) {
    auto backward = [offsets, shapes, dim, outer, inner, out_row, format](const Tensor& g,
                                                                          const std::vector<bool>& need) {
      // g comes in the output's order (tensor/autograd.h), the order the offsets index.
      LEUKO_CHECK(g.memory_format() == format, "cat backward: the gradient ", g.describe(), " is not ",
                  memory_format_name(format), " as the output was");
      std::vector<Tensor> grads(shapes.size());
      for (size_t i = 0; i < shapes.size(); i++) {
        if (!need[i]) continue;
        grads[i] = Tensor::empty(shapes[i], g.dtype(), g.device(), format);  // input i's shape and order
        const int64_t cols = shapes[i][size_t(dim)] * inner;
        copy_block(grads[i], cols, 0, g, out_row, offsets[i], outer, cols);
      }
      return grads;
    };
    autograd::record(out, "cat", tensors, backward);
  }
  return out;
}

}  // namespace leuko
