#include "layers/dispatch.h"

namespace leuko::detail {

void check_nchw(const char* op, const Tensor& t) {
  LEUKO_CHECK(!t.defined() || !t.is_channels_last(), op, ": takes NCHW tensors, got ", t.describe(),
              " (convert it with .to(MemoryFormat::nchw))");
}

void check_compatible(const char* op, std::initializer_list<Tensor> tensors, Layouts layouts) {
  const Tensor* first = nullptr;
  for (const Tensor& t : tensors) {
    LEUKO_CHECK(t.defined(), op, ": an input tensor is undefined");
    if (layouts == Layouts::nchw) check_nchw(op, t);
    if (first == nullptr) {
      first = &t;
      continue;
    }
    LEUKO_CHECK(t.device() == first->device(), op, ": inputs on different devices (", first->describe(),
                " and ", t.describe(), ")");
    LEUKO_CHECK(t.dtype() == first->dtype(), op, ": inputs of different dtypes (", first->describe(), " and ",
                t.describe(), ")");
  }
  if (first != nullptr && first->is_cuda()) check_cuda_dtype(op, *first);
}

void check_rank(const char* op, const char* what, const Tensor& t, int64_t rank) {
  LEUKO_CHECK(t.dim() == rank, op, ": ", what, " must have ", rank, " dimensions, got ", shape_str(t.shape()));
}

void check_cuda_dtype(const char* op, const Tensor& t) {
  LEUKO_CHECK(t.dtype() == DType::f32, op, " on the GPU takes float32, got ", dtype_name(t.dtype()));
}

void check_mixed(const char* op, const Tensor& x, std::initializer_list<Tensor> params, Layouts layouts) {
  LEUKO_CHECK(x.defined(), op, ": the input tensor is undefined");
  if (layouts == Layouts::nchw) check_nchw(op, x);
  const bool bf16 = x.dtype() == DType::bf16;
  LEUKO_CHECK(!x.is_cuda() || bf16 || x.dtype() == DType::f32, op, " on the GPU takes float32 or bfloat16, got ",
              dtype_name(x.dtype()));
  LEUKO_CHECK(x.dtype() != DType::i64, op, ": the input must be a float tensor, got ", x.describe());
  const DType want = bf16 ? DType::f32 : x.dtype();
  for (const Tensor& p : params) {
    if (!p.defined()) continue;
    LEUKO_CHECK(p.device() == x.device(), op, ": inputs on different devices (", x.describe(), " and ",
                p.describe(), ")");
    LEUKO_CHECK(p.dtype() == want, op, ": a parameter ", p.describe(), " must be ", dtype_name(want),
                " for the input ", x.describe());
    check_nchw(op, p);  // parameters are always NCHW
  }
}

}  // namespace leuko::detail
