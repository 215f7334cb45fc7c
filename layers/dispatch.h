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

// ---- bf16 activations (tensor/device.h, bf16_activations()) -----------------------------------
// A bf16 op computes in float32 and rounds its output to bf16 once. The CUDA kernels do that
// themselves (load bf16, compute in float, store bf16). On the CPU, the reference, and for
// CUDA ops without a bf16 kernel, `through_float` does it with the float32 op:
//
//   if (x.dtype() == DType::bf16 && !x.is_cuda()) return detail::through_float(relu, x);
//
// runs relu on a float32 copy of x and converts its output to bf16. Every bf16 tensor argument
// is converted (differentiably, Tensor::to), every other argument passed as it is; the
// gradients flow back through the same conversions, so they are bf16 where the input was.
inline Tensor float_arg(const Tensor& t) { return t.defined() && t.dtype() == DType::bf16 ? t.to(DType::f32) : t; }
template <typename A>
const A& float_arg(const A& a) {
  return a;
}
template <typename F, typename... Args>
Tensor through_float(F&& f, const Args&... args) {
  Tensor out = f(float_arg(args)...);
  return out.to(DType::bf16);
}
// The output of an op under bf16 activations: bf16 when any input is (the dtype of an
// activation), else the dtype of the first.
inline bool any_bf16(std::initializer_list<Tensor> tensors) {
  for (const Tensor& t : tensors) {
    if (t.defined() && t.dtype() == DType::bf16) return true;
  }
  return false;
}

// Every tensor is defined and on the device, with the dtype, of the first.
void check_compatible(const char* op, std::initializer_list<Tensor> tensors);
// The tensor has `rank` dimensions; `what` names it in the message ("input", "weight").
void check_rank(const char* op, const char* what, const Tensor& t, int64_t rank);
// CUDA ops work on float32.
void check_cuda_dtype(const char* op, const Tensor& t);
// An op with an activation input x and parameters (batch norm's weight, a convolution's
// weight and bias): all on x's device; x float32, float64 (CPU) or bf16; the parameters of x's
// dtype, or float32 when x is bf16 (float32 masters). Undefined parameters are skipped.
void check_mixed(const char* op, const Tensor& x, std::initializer_list<Tensor> params);

}  // namespace leuko::detail

// The CUDA branch of an op: compiled in CUDA builds only. In a CPU-only build no CUDA tensor
// can exist, so the branch is unreachable and says so if it were ever reached.
#if LEUKO_WITH_CUDA
#define LEUKO_CUDA_BRANCH(...) __VA_ARGS__
#else
#define LEUKO_CUDA_BRANCH(...) ::leuko::detail::no_cuda_build()
#endif
