// CUDA block copy for concatenation (kernels/concat.h): `rows` rows of `cols` elements from src
// (row stride src_stride) to dst (row stride dst_stride).
//
// A copy moves bits and computes nothing, so one kernel serves float32 and bf16 alike, and it
// copies units of U bytes: the widest of 16, 8, 4 and 2 that divides both addresses, both strides
// and the row's width in bytes. GoogLeNet's channels_last concatenations copy rows of 16 to 384
// bf16 channels: 16-byte units, eight channels a load. One thread per unit; a unit's row and
// column come from one division by the units per row, done as a multiply-high
// (kernels/divider.h) in 32 bits whenever every offset of the copy fits (the division routine
// of 64 bits, once per element, kept the old kernel at a third of PyTorch's speed).
#include <climits>

#include "kernels/concat.h"
#include "kernels/cuda/common.cuh"
#include "kernels/divider.h"

namespace leuko::kernels::cuda {
namespace {

// Strides and counts in units. The loop counter is 64-bit (adding the grid's stride could pass
// 2^31); the index arithmetic is in I.
template <typename U, typename I>
__global__ void copy_units_kernel(U* dst, I dst_stride, const U* src, I src_stride, int64_t units,
                                  Divider<I> per_row) {
  for (int64_t u = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; u < units; u += int64_t(gridDim.x) * blockDim.x) {
    I r, c;
    per_row.divmod(I(u), &r, &c);
    dst[r * dst_stride + c] = src[r * src_stride + c];
  }
}

template <typename U>
void launch_units(void* dst, int64_t dst_stride_b, const void* src, int64_t src_stride_b, int64_t rows,
                  int64_t cols_b) {
  const int64_t size = sizeof(U), per_row = cols_b / size, units = rows * per_row;
  const int64_t dst_stride = dst_stride_b / size, src_stride = src_stride_b / size;
  // 32-bit indices when every offset either side computes (r * stride + c) fits.
  const bool fits32 = units <= INT_MAX && (rows - 1) * dst_stride + per_row <= INT_MAX &&
                      (rows - 1) * src_stride + per_row <= INT_MAX;
  U* d = static_cast<U*>(dst);
  const U* s = static_cast<const U*>(src);
  if (fits32)
    copy_units_kernel<U, int32_t><<<blocks_for(units), kThreads, 0, stream()>>>(
        d, int32_t(dst_stride), s, int32_t(src_stride), units, Divider<int32_t>(per_row));
  else
    copy_units_kernel<U, int64_t><<<blocks_for(units), kThreads, 0, stream()>>>(d, dst_stride, s, src_stride, units,
                                                                                  Divider<int64_t>(per_row));
  LEUKO_CUDA_LAUNCH_CHECK();
}

// Widths in bytes: the widest unit that divides every one of them.
void copy_bytes(void* dst, int64_t dst_stride_b, const void* src, int64_t src_stride_b, int64_t rows, int64_t cols_b) {
  if (rows == 0 || cols_b == 0) return;
  const uint64_t all = reinterpret_cast<uintptr_t>(dst) | reinterpret_cast<uintptr_t>(src) | uint64_t(dst_stride_b) |
                       uint64_t(src_stride_b) | uint64_t(cols_b);
  if (all % 16 == 0) return launch_units<uint4>(dst, dst_stride_b, src, src_stride_b, rows, cols_b);
  if (all % 8 == 0) return launch_units<uint2>(dst, dst_stride_b, src, src_stride_b, rows, cols_b);
  if (all % 4 == 0) return launch_units<uint32_t>(dst, dst_stride_b, src, src_stride_b, rows, cols_b);
  launch_units<uint16_t>(dst, dst_stride_b, src, src_stride_b, rows, cols_b);  // bf16 elements: 2 bytes
}

}  // namespace

void copy_rows(float* dst, int64_t dst_stride, const float* src, int64_t src_stride, int64_t rows, int64_t cols) {
  const int64_t e = sizeof(float);
  copy_bytes(dst, dst_stride * e, src, src_stride * e, rows, cols * e);
}

void copy_rows(bf16* dst, int64_t dst_stride, const bf16* src, int64_t src_stride, int64_t rows, int64_t cols) {
  const int64_t e = sizeof(bf16);
  copy_bytes(dst, dst_stride * e, src, src_stride * e, rows, cols * e);
}

}  // namespace leuko::kernels::cuda
