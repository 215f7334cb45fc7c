#include "layers/matmul.h"

#include "kernels/matmul.h"
#include "layers/dispatch.h"
#include "tensor/autograd.h"

namespace leuko {

namespace detail {
void gemm(const Tensor& out, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, bool accumulate) {
  // a stored (M, K) or (K, M); b stored (K, N) or (N, K); out (M, N); all row-major.
  const int64_t M = trans_a ? a.size(1) : a.size(0), K = trans_a ? a.size(0) : a.size(1);
  const int64_t N = trans_b ? b.size(0) : b.size(1);
  const int64_t lda = a.size(1), ldb = b.size(1), ldc = out.size(1);
  const float beta = accumulate ? 1.f : 0.f;
  if (out.is_cuda() && a.dtype() == DType::bf16) {  // bf16 activations: out bf16 or float32
    LEUKO_CHECK(b.dtype() == DType::bf16, "matmul: a bf16 operand with a ", dtype_name(b.dtype()), " one");
    LEUKO_CUDA_BRANCH({
      if (out.dtype() == DType::bf16) {
        kernels::cuda::gemm(trans_a, trans_b, M, N, K, 1.f, a.data<bf16>(), lda, b.data<bf16>(), ldb, beta,
                            out.data<bf16>(), ldc);
      } else {
        kernels::cuda::gemm(trans_a, trans_b, M, N, K, 1.f, a.data<bf16>(), lda, b.data<bf16>(), ldb, beta,
                            out.data<float>(), ldc);
      }
    });
  } else if (out.is_cuda()) {
    LEUKO_CUDA_BRANCH(kernels::cuda::gemm(trans_a, trans_b, M, N, K, 1.f, a.data<float>(), lda, b.data<float>(), ldb,
                                          beta, out.data<float>(), ldc));
  } else {
    dispatch_float(out, "matmul", [&](auto tag) {
      using T = decltype(tag);
      kernels::cpu::gemm<T>(trans_a, trans_b, M, N, K, T(1), a.data<T>(), lda, b.data<T>(), ldb,
                            accumulate ? T(1) : T(0), out.data<T>(), ldc);
    });
  }
}
}  // namespace detail

Tensor matmul(const Tensor& a, const Tensor& b) {
  // bf16 operands (not on a network's path: linear has its own bf16 op) run through float32.
  if (detail::any_bf16({a, b}) && a.dtype() == b.dtype()) return detail::through_float(matmul, a, b);
  detail::check_compatible("matmul", {a, b});
  detail::check_rank("matmul", "first operand", a, 2);
  detail::check_rank("matmul", "second operand", b, 2);
  LEUKO_CHECK(a.size(1) == b.size(0), "matmul: shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()),
              " do not chain (inner sizes ", a.size(1), " and ", b.size(0), ")");
  Tensor out = Tensor::empty({a.size(0), b.size(1)}, a.dtype(), a.device());
  detail::gemm(out, a, false, b, false);
  if (autograd::needs_record({a, b})) {
    autograd::record(out, "matmul", {a, b}, [sa = a.detach(), sb = b.detach()](const Tensor& g, const std::vector<bool>& need) {
      Tensor ga, gb;
      if (need[0]) {  // (M, N) @ (K, N)^T -> (M, K)
        ga = Tensor::empty_like(sa);
        detail::gemm(ga, g, false, sb, true);
      }
      if (need[1]) {  // (M, K)^T @ (M, N) -> (K, N)
        gb = Tensor::empty_like(sb);
        detail::gemm(gb, sa, true, g, false);
      }
      return std::vector<Tensor>{ga, gb};
    });
  }
  return out;
}

}  // namespace leuko
