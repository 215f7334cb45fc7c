// Concatenation: every tensor is viewed as (outer, size along dim * inner) and copied as a block
// of rows into its column range of the output (kernels/concat.h); the backward copies the same
// blocks back out of the gradient.
//
// bf16 activations: cat keeps its inputs' dtype (all the same). The GPU copies bf16 elements
// as they are; the CPU concatenates float32 copies and converts the result (through_float's
// rule, by hand: through_float converts Tensor arguments, not a vector of them).
#include "layers/concat.h"

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
    if (!first.is_cuda()) {
      std::vector<Tensor> floats;  // float32 copies, differentiable: the gradients come back as bf16
      for (const Tensor& t : tensors) floats.push_back(t.to(DType::f32));
      return cat(floats, dim).to(DType::bf16);
    }
  } else {
    for (const Tensor& t : tensors) detail::check_compatible("cat", {first, t});
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
  int64_t outer = 1, inner = 1;  // every tensor is (outer, size along dim, inner)
  for (int64_t d = 0; d < dim; d++) outer *= first.size(d);
  for (int64_t d = dim + 1; d < rank; d++) inner *= first.size(d);
  const int64_t out_row = out_shape[size_t(dim)] * inner;  // elements per output row

  Tensor out = Tensor::empty(out_shape, first.dtype(), first.device());
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
    auto backward = [offsets, shapes, dim, outer, inner, out_row](const Tensor& g, const std::vector<bool>& need) {
      std::vector<Tensor> grads(shapes.size());
      for (size_t i = 0; i < shapes.size(); i++) {
        if (!need[i]) continue;
        grads[i] = Tensor::empty(shapes[i], g.dtype(), g.device());  // input i's shape
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
