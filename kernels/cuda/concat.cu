// CUDA block copy for concatenation: one thread per element of the block, grid-stride.
// A copy moves bits and computes nothing, so one kernel templated on the element type serves
// float32 and bf16 alike.
#include "kernels/concat.h"
#include "kernels/cuda/common.cuh"

namespace leuko::kernels::cuda {
namespace {

template <typename T>
__global__ void copy_rows_kernel(T* dst, int64_t dst_stride, const T* src, int64_t src_stride, int64_t rows,
                                 int64_t cols) {
  LEUKO_GRID_STRIDE(i, rows * cols) {
    const int64_t r = i / cols, c = i % cols;
    dst[r * dst_stride + c] = src[r * src_stride + c];
  }
}

template <typename T>
void launch_copy_rows(T* dst, int64_t dst_stride, const T* src, int64_t src_stride, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  if (n == 0) return;
  copy_rows_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(dst, dst_stride, src, src_stride, rows, cols);
  LEUKO_CUDA_LAUNCH_CHECK();
}

}  // namespace

void copy_rows(float* dst, int64_t dst_stride, const float* src, int64_t src_stride, int64_t rows, int64_t cols) {
  launch_copy_rows(dst, dst_stride, src, src_stride, rows, cols);
}

void copy_rows(bf16* dst, int64_t dst_stride, const bf16* src, int64_t src_stride, int64_t rows, int64_t cols) {
  launch_copy_rows(dev(dst), dst_stride, dev(src), src_stride, rows, cols);
}

}  // namespace leuko::kernels::cuda
