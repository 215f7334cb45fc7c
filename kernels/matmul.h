// General matrix product C = alpha * op(A) @ op(B) + beta * C, row-major, as BLAS's gemm.
//
//   op(A): (M, K), A stored (M, K) with row stride lda, or (K, M) when trans_a
//   op(B): (K, N), B stored (K, N) with row stride ldb, or (N, K) when trans_b
//   C:     (M, N) with row stride ldc
// beta == 0 overwrites C without reading it (C may hold garbage or NaN).
// The CPU version is a cache-blocked loop nest; the CUDA version calls cuBLAS, with TF32 or
// bf16 tensor cores only when the precision setting (tensor/device.h) asks for them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/dtype.h"

namespace leuko::kernels {
namespace cpu {
template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc);
}  // namespace cpu

namespace cuda {
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
// bf16 activations (tensor/device.h bf16_activations()): A and B in bf16, products and sums in
// float32 on the tensor cores, C written in bf16 (an activation or its gradient) or float32 (a
// weight gradient, whose master is float32), rounded once.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const bf16* A, int64_t lda,
          const bf16* B, int64_t ldb, float beta, bf16* C, int64_t ldc);
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const bf16* A, int64_t lda,
          const bf16* B, int64_t ldb, float beta, float* C, int64_t ldc);
}  // namespace cuda
}  // namespace leuko::kernels
