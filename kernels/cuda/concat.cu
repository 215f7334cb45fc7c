// CUDA block copy for concatenation: one thread per element of the block, grid-stride.
#include "kernels/concat.h"
#include "kernels/cuda/common.cuh"

namespace leuko::kernels::cuda {
namespace {

__global__ void copy_rows_kernel(float* dst, int64_t dst_stride, const float* src, int64_t src_stride, int64_t rows,
                                 int64_t cols) {
  LEUKO_GRID_STRIDE(i, rows * cols) {
    const int64_t r = i / cols, c = i % cols;
    dst[r * dst_stride + c] = src[r * src_stride + c];
  }
}

}  // namespace

void copy_rows(float* dst, int64_t dst_stride, const float* src, int64_t src_stride, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  if (n == 0) return;
  copy_rows_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(dst, dst_stride, src, src_stride, rows, cols);
  LEUKO_CUDA_LAUNCH_CHECK();
}

}  // namespace leuko::kernels::cuda
