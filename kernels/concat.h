// The one kernel of concatenation: a strided block copy.
//
// Concatenating along dim d views every tensor as (outer, size_d * inner) with outer the
// product of the dims before d and inner of those after. Input i is then a block of `outer`
// rows that lands in the output's rows at column offset_i * inner; the backward copies the
// same block back out of the gradient. Both are copy_rows with the strides swapped.
// The dims are taken in memory order: for channels_last tensors, stored (N, H, W, C), a
// concatenation along the channels is rows = N * H * W pixels of C_i values each.
#pragma once

#include <cstdint>

#include "tensor/dtype.h"

namespace leuko::kernels {

namespace cpu {
// dst[r * dst_stride + c] = src[r * src_stride + c] for r < rows, c < cols.
template <typename T>
void copy_rows(T* dst, int64_t dst_stride, const T* src, int64_t src_stride, int64_t rows, int64_t cols);
}  // namespace cpu

namespace cuda {
void copy_rows(float* dst, int64_t dst_stride, const float* src, int64_t src_stride, int64_t rows, int64_t cols);
// bf16 activations: the same copy of 16-bit elements (strides and counts in elements).
void copy_rows(bf16* dst, int64_t dst_stride, const bf16* src, int64_t src_stride, int64_t rows, int64_t cols);
}  // namespace cuda

}  // namespace leuko::kernels
