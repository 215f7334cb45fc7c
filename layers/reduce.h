// Differentiable sum and mean reductions, and broadcasting (their adjoint).
// A bf16 x gives a bf16 result: the float32 op on its values, rounded once.
#pragma once

#include <vector>

#include "tensor/tensor.h"

namespace leuko {

// The sum of all elements: a tensor of shape [] (one element).
Tensor sum(const Tensor& x);
// The sum over `dims` (negative counts from the end); keepdim keeps them with size 1.
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);

// Sums x down to `shape`, which x's shape broadcasts from (right-aligned; size-1 or missing
// leading dims are summed over). The gradient of a broadcast.
Tensor sum_to(const Tensor& x, const Shape& shape);
// Copies x out to `shape` by broadcasting. The gradient of a sum.
Tensor expand(const Tensor& x, const Shape& shape);

}  // namespace leuko
