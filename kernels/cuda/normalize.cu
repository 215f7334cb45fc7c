// CUDA uint8 batch normalisation: a grid-stride loop over every value, the table in shared
// memory (3 x 256 floats, read at random by the pixel values).
#include "kernels/cuda/common.cuh"
#include "kernels/normalize.h"

namespace leuko::kernels::cuda {
namespace {

__global__ void normalize_u8_kernel(float* out, const uint8_t* in, const float* table, int64_t n, int64_t plane) {
  __shared__ float t[3 * 256];  // (3, 256)
  for (int i = threadIdx.x; i < 3 * 256; i += blockDim.x) t[i] = table[i];
  __syncthreads();
  LEUKO_GRID_STRIDE(i, n) {
    const int64_t c = (i / plane) % 3;  // the channel of value i in (images, 3, plane)
    out[i] = t[256 * c + in[i]];
  }
}

}  // namespace

void normalize_u8(float* out, const uint8_t* in, const float* table, int64_t images, int64_t plane) {
  const int64_t n = images * 3 * plane;
  if (n == 0) return;
  normalize_u8_kernel<<<blocks_for(n), 256, 0, stream()>>>(out, in, table, n, plane);
  LEUKO_CUDA_LAUNCH_CHECK();
}

}  // namespace leuko::kernels::cuda
