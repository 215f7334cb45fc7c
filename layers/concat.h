// Differentiable concatenation.
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace leuko {

// Joins tensors along `dim` (negative counts from the end), as torch.cat: all have the same
// rank, device and dtype, and the same sizes except along dim. Inception modules concatenate
// their branches along the channels, dim 1. The result is a new tensor; the backward hands each
// input a copy of its slice of the gradient. The result has the first input's memory order
// (channels_last stays channels_last); an input in the other order is converted to it.
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim);

}  // namespace leuko
