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

// ---- bf16 activations and channels_last (tensor/device.h) ---------------------------------------
// A bf16 op computes in float32 and rounds its output to bf16 once; a channels_last op computes
// what the NCHW op computes, on the other memory order. The CUDA kernels do that themselves
// (load bf16, compute in float, store bf16; index (N, H, W, C)). On the CPU, the reference, and
// for CUDA ops without such a kernel, `through_float` does it with the float32 NCHW op:
//
//   if (x.dtype() == DType::bf16 && !x.is_cuda()) return detail::through_float(relu, x);
//
// runs relu on a float32 NCHW copy of x and converts its output back: to bf16 if an argument
// was bf16, to channels_last (when the output is 4-D) if an argument was channels_last. Every
// such Tensor argument is converted (differentiably: Tensor::to), every other argument passed as
// it is; the gradients flow back through the same conversions, so they come back to each input
// in its own dtype and memory order.
struct ThroughFloat {
  bool bf16 = false, channels_last = false;  // what the arguments were
};
inline Tensor float_arg(const Tensor& t, ThroughFloat& seen) {
  if (!t.defined()) return t;
  Tensor r = t;
  if (r.dtype() == DType::bf16) seen.bf16 = true, r = r.to(DType::f32);
  if (r.is_channels_last()) seen.channels_last = true, r = r.to(MemoryFormat::nchw);
  return r;
}
template <typename A>
const A& float_arg(const A& a, ThroughFloat&) {
  return a;
}
template <typename F, typename... Args>
Tensor through_float(F&& f, const Args&... args) {
  ThroughFloat seen;
  Tensor out = f(float_arg(args, seen)...);
  if (seen.bf16) out = out.to(DType::bf16);
  if (seen.channels_last && out.dim() == 4) out = out.to(MemoryFormat::channels_last);
  return out;
}
// True when any tensor is channels_last (an NCHW-only op then goes through_float).
inline bool any_channels_last(std::initializer_list<Tensor> tensors) {
  for (const Tensor& t : tensors) {
    if (t.defined() && t.is_channels_last()) return true;
  }
  return false;
}
// True when any tensor is bf16 (an op without bf16 kernels then goes through_float).
inline bool any_bf16(std::initializer_list<Tensor> tensors) {
  for (const Tensor& t : tensors) {
    if (t.defined() && t.dtype() == DType::bf16) return true;
  }
  return false;
}

// The memory orders an op's kernels read. nchw: a channels_last tensor is refused with a
// one-line error (read as NCHW it would give wrong values, silently); any: the op handles both
// (elementwise ops of one order, and those with channels_last kernels or through_float).
enum class Layouts { nchw, any };

// Every tensor is defined and on the device, with the dtype, of the first; with Layouts::nchw,
// none is channels_last.
void check_compatible(const char* op, std::initializer_list<Tensor> tensors, Layouts layouts = Layouts::nchw);
// The tensor has `rank` dimensions; `what` names it in the message ("input", "weight").
void check_rank(const char* op, const char* what, const Tensor& t, int64_t rank);
// CUDA ops work on float32.
void check_cuda_dtype(const char* op, const Tensor& t);
// An op with an activation input x and parameters (batch norm's weight, a convolution's
// weight and bias): all on x's device; x float32, float64 (CPU) or bf16; the parameters of x's
// dtype, or float32 when x is bf16 (float32 masters). Undefined parameters are skipped.
void check_mixed(const char* op, const Tensor& x, std::initializer_list<Tensor> params,
                 Layouts layouts = Layouts::nchw);
// Refuses a channels_last tensor for an op that reads NCHW only.
void check_nchw(const char* op, const Tensor& t);

}  // namespace leuko::detail

// The CUDA branch of an op: compiled in CUDA builds only. In a CPU-only build no CUDA tensor
// can exist, so the branch is unreachable and says so if it were ever reached.
#if LEUKO_WITH_CUDA
#define LEUKO_CUDA_BRANCH(...) __VA_ARGS__
#else
#define LEUKO_CUDA_BRANCH(...) ::leuko::detail::no_cuda_build()
#endif
