// CUDA NCHW <-> NHWC transposes: one 32 x 32 tile of an image's (rows, cols) matrix per block of
// 32 x 8 threads, staged in shared memory (padded by one column, so the column reads of the
// write phase fall in 32 different banks).
#include <type_traits>

#include "kernels/cuda/common.cuh"
#include "kernels/layout.h"

namespace leuko::kernels::cuda {
namespace {

constexpr int kTile = 32, kRowsPerPass = 8;

// Element conversion on the way through the tile: none (Out = In, any type of that size), or
// float <-> bf16 for a convolution's weight (the tile holds floats then).
template <typename Out, typename In>
struct Convert {
  __device__ static Out apply(In v) { return v; }
};
template <>
struct Convert<__nv_bfloat16, float> {
  __device__ static __nv_bfloat16 apply(float v) { return __float2bfloat16_rn(v); }
};
template <>
struct Convert<float, __nv_bfloat16> {
  __device__ static float apply(__nv_bfloat16 v) { return __bfloat162float(v); }
};
template <typename In>
using TileType = typename std::conditional<std::is_same<In, __nv_bfloat16>::value, float, In>::type;

// out (N, cols, rows) = the transpose of each in (N, rows, cols) matrix, converted from In to
// Out. Grid: (col tiles, row tiles, N).
template <typename Out, typename In>
__global__ void transpose_kernel(Out* out, const In* in, int64_t rows, int64_t cols) {
  using Tile = TileType<In>;  // bf16 is staged as float (a plain type in shared memory)
  __shared__ Tile tile[kTile][kTile + 1];
  const int64_t n = blockIdx.z;
  const In* src = in + n * rows * cols;
  Out* dst = out + n * rows * cols;
  const int64_t c0 = int64_t(blockIdx.x) * kTile, r0 = int64_t(blockIdx.y) * kTile;
  for (int i = threadIdx.y; i < kTile; i += kRowsPerPass) {  // read rows of the tile
    const int64_t r = r0 + i, c = c0 + threadIdx.x;
    if (r < rows && c < cols) tile[i][threadIdx.x] = Convert<Tile, In>::apply(src[r * cols + c]);
  }
  __syncthreads();
  for (int i = threadIdx.y; i < kTile; i += kRowsPerPass) {  // write them as columns
    const int64_t c = c0 + i, r = r0 + threadIdx.x;
    if (r < rows && c < cols) dst[c * rows + r] = Convert<Out, Tile>::apply(tile[threadIdx.x][i]);
  }
}

template <typename Out, typename In>
void transpose(Out* out, const In* in, int64_t N, int64_t rows, int64_t cols) {
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
void to_nhwc(int64_t* out, const int64_t* in, int64_t N, int64_t C, int64_t HW) { transpose(out, in, N, C, HW); }
void to_nchw(int64_t* out, const int64_t* in, int64_t N, int64_t C, int64_t HW) { transpose(out, in, N, HW, C); }
void to_nhwc(bf16* out, const float* in, int64_t N, int64_t C, int64_t HW) { transpose(dev(out), in, N, C, HW); }
void to_nchw(float* out, const bf16* in, int64_t N, int64_t C, int64_t HW) { transpose(out, dev(in), N, HW, C); }

}  // namespace leuko::kernels::cuda
