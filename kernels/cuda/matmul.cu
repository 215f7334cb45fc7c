// CUDA GEMM through cuBLAS.
//
// cuBLAS is column-major. A row-major (M, N) matrix is the column-major (N, M) matrix with the
// same memory, so the row-major C = op(A) op(B) is computed as the column-major
// C^T = op(B)^T op(A)^T: swap the operands and M with N, keep the transposition flags.
#include "kernels/cuda/common.cuh"
#include "kernels/matmul.h"
#include "tensor/device.h"

namespace leuko::kernels::cuda {
namespace {

// C = beta * C over the (M, N) matrix C with row stride ldc; beta == 0 writes zeros and never
// reads C (which may hold garbage or NaN). T: float or __nv_bfloat16.
template <typename T>
__global__ void scale_kernel(T* C, int64_t M, int64_t N, int64_t ldc, float beta) {
  LEUKO_GRID_STRIDE(i, M * N) {
    T& c = C[(i / N) * ldc + i % N];
    c = store<T>(beta == 0.f ? 0.f : beta * load(c));
  }
}

// One cuBLAS call for every variant: A and B of type ab, C of type c (cudaDataType), with the
// compute type the precision and the operands allow.
template <typename TC>
void gemm_ex(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const void* A, int64_t lda,
             const void* B, int64_t ldb, float beta, TC* C, int64_t ldc, cudaDataType_t ab, cudaDataType_t c,
             cublasComputeType_t compute) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    // op(A) op(B) is all zeros, so C = beta * C. cuBLAS is not called: an empty operand's
    // leading dimension is 0, which it rejects.
    if (beta != 1.f) {
      scale_kernel<<<blocks_for(M * N), kThreads, 0, stream()>>>(dev(C), M, N, ldc, beta);
      LEUKO_CUDA_LAUNCH_CHECK();
    }
    return;
  }
  cublasHandle_t h = leuko::cuda::cublas();
  LEUKO_CUBLAS_CHECK(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));
  LEUKO_CUBLAS_CHECK(cublasGemmEx(h, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                                  int(N), int(M), int(K), &alpha, B, ab, int(ldb), A, ab, int(lda), &beta, C, c,
                                  int(ldc), compute, CUBLAS_GEMM_DEFAULT));
}

}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  // Strict fp32 by default; TF32 or bf16 tensor-core products only when asked for.
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  if (precision() == Precision::tf32) compute = CUBLAS_COMPUTE_32F_FAST_TF32;
  if (precision() == Precision::bf16) compute = CUBLAS_COMPUTE_32F_FAST_16BF;
  gemm_ex(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, CUDA_R_32F, CUDA_R_32F, compute);
}

// bf16 operands: the products are bf16 already, so plain float32 accumulation (COMPUTE_32F)
// runs them on the tensor cores.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const bf16* A, int64_t lda,
          const bf16* B, int64_t ldb, float beta, bf16* C, int64_t ldc) {
  gemm_ex(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, CUDA_R_16BF, CUDA_R_16BF,
          CUBLAS_COMPUTE_32F);
}

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const bf16* A, int64_t lda,
          const bf16* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_ex(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, CUDA_R_16BF, CUDA_R_32F,
          CUBLAS_COMPUTE_32F);
}

}  // namespace leuko::kernels::cuda
