// CUDA NCHW <-> NHWC transposes: one 32 x 32 tile of an image's (rows, cols) matrix per block of
// 32 x 8 threads, staged in shared memory (padded by one column, so the column reads of the
// write phase fall in 32 different banks).
#include "kernels/cuda/common.cuh"
#include "kernels/layout.h"

namespace leuko::kernels::cuda {
namespace {

constexpr int kTile = 32, kRowsPerPass = 8;

// out (N, cols, rows) = the transpose of each in (N, rows, cols) matrix. Grid: (col tiles, row
// tiles, N); T is moved as it is (no arithmetic: any element type of its size).
template <typename T>
__global__ void transpose_kernel(T* out, const T* in, int64_t rows, int64_t cols) {
  __shared__ T tile[kTile][kTile + 1];
  const int64_t n = blockIdx.z;
  const T* src = in + n * rows * cols;
  T* dst = out + n * rows * cols;
  const int64_t c0 = int64_t(blockIdx.x) * kTile, r0 = int64_t(blockIdx.y) * kTile;
  for (int i = threadIdx.y; i < kTile; i += kRowsPerPass) {  // read rows of the tile
    const int64_t r = r0 + i, c = c0 + threadIdx.x;
    if (r < rows && c < cols) tile[i][threadIdx.x] = src[r * cols + c];
  }
  __syncthreads();
  for (int i = threadIdx.y; i < kTile; i += kRowsPerPass) {  // write them as columns
    const int64_t c = c0 + i, r = r0 + threadIdx.x;
    if (r < rows && c < cols) dst[c * rows + r] = tile[threadIdx.x][i];
  }
}

template <typename T>
void transpose(T* out, const T* in, int64_t N, int64_t rows, int64_t cols) {
  if (N == 0 || rows == 0 || cols == 0) return;
  LEUKO_CHECK(N <= 65535, "layout transpose on the GPU: a batch of ", N, " images is beyond the grid's 65535");
  const dim3 grid(unsigned((cols + kTile - 1) / kTile), unsigned((rows + kTile - 1) / kTile), unsigned(N));
  LEUKO_CHECK(grid.y <= 65535, "layout transpose on the GPU: ", rows, " rows are beyond the grid");
  transpose_kernel<<<grid, dim3(kTile, kRowsPerPass), 0, stream()>>>(out, in, rows, cols);
  LEUKO_CUDA_LAUNCH_CHECK();
}

// bf16 moves as its 16 bits (a plain integer type in shared memory).
uint16_t* bits(bf16* p) { return reinterpret_cast<uint16_t*>(p); }
const uint16_t* bits(const bf16* p) { return reinterpret_cast<const uint16_t*>(p); }

}  // namespace

// NCHW -> NHWC: each image's (C, HW) matrix transposed; NHWC -> NCHW: its (HW, C) matrix.
void to_nhwc(float* out, const float* in, int64_t N, int64_t C, int64_t HW) { transpose(out, in, N, C, HW); }
void to_nhwc(bf16* out, const bf16* in, int64_t N, int64_t C, int64_t HW) {
  transpose(bits(out), bits(in), N, C, HW);
}
void to_nchw(float* out, const float* in, int64_t N, int64_t C, int64_t HW) { transpose(out, in, N, HW, C); }
void to_nchw(bf16* out, const bf16* in, int64_t N, int64_t C, int64_t HW) {
  transpose(bits(out), bits(in), N, HW, C);
}

}  // namespace leuko::kernels::cuda
