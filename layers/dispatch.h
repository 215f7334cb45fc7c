// Helpers every op file uses: argument checks and the choice of kernel by device and dtype.
//
//   if (x.is_cuda()) {
//     LEUKO_CUDA_BRANCH(kernels::cuda::relu_forward(out.data<float>(), x.data<float>(), n));
//   } else {
//     dispatch_float(x, "relu", [&](auto tag) {
//       using T = decltype(tag);
//       kernels::cpu::relu_forward(out.data<T>(), x.data<T>(), n);
//     });
//   }
#pragma once

#include <initializer_list>

#include "tensor/tensor.h"

namespace leuko::detail {

// Calls f(T{}) with T = float or double, the element type of a CPU tensor.
template <typename F>
void dispatch_float(const Tensor& t, const char* op, F&& f) {
  switch (t.dtype()) {
    case DType::f32: f(float{}); return;
    case DType::f64: f(double{}); return;
    case DType::bf16:
    case DType::i64: break;
  }
  LEUKO_FAIL(op, ": ", dtype_name(t.dtype()), " is a storage type here; convert the tensor to float32 first");
}

// Every tensor is defined and on the device, with the dtype, of the first.
void check_compatible(const char* op, std::initializer_list<Tensor> tensors);
// The tensor has `rank` dimensions; `what` names it in the message ("input", "weight").
void check_rank(const char* op, const char* what, const Tensor& t, int64_t rank);
// CUDA ops work on float32.
void check_cuda_dtype(const char* op, const Tensor& t);

}  // namespace leuko::detail

// The CUDA branch of an op: compiled in CUDA builds only. In a CPU-only build no CUDA tensor
// can exist, so the branch is unreachable and says so if it were ever reached.
#if LEUKO_WITH_CUDA
#define LEUKO_CUDA_BRANCH(...) __VA_ARGS__
#else
#define LEUKO_CUDA_BRANCH(...) ::leuko::detail::no_cuda_build()
#endif
