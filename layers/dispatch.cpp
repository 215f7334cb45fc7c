#include "layers/dispatch.h"

namespace leuko::detail {

void check_compatible(const char* op, std::initializer_list<Tensor> tensors) {
  const Tensor* first = nullptr;
  for (const Tensor& t : tensors) {
    LEUKO_CHECK(t.defined(), op, ": an input tensor is undefined");
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

}  // namespace leuko::detail
