// Differentiable matrix product of two 2-D tensors.
#pragma once

#include "tensor/tensor.h"

namespace leuko {

// (M, K) @ (K, N) -> (M, N). Backward: dA = dC @ B^T, dB = A^T @ dC.
Tensor matmul(const Tensor& a, const Tensor& b);

namespace detail {
// out = op(a) @ op(b) (+ out when accumulate), through the CPU or cuBLAS gemm; no autograd.
// The building block of matmul and linear.
void gemm(const Tensor& out, const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, bool accumulate = false);
}  // namespace detail

}  // namespace leuko
