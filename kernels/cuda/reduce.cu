// CUDA sum reduction and expand.
//
// sum_to gives each output one or more blocks of 256 threads. Each thread sums a strided part
// of the output's inputs, the block adds the threads' sums (warp shuffles), and with more than
// one block per output ("chunks"), the blocks' partial sums go to scratch and a second pass
// adds them in a fixed order: no atomics, so the result is the same on every run.
// Many small reductions (per_output <= 32) use one thread per output instead.
// The input may be float32 or bf16 (a bf16 layer's bias gradient): the kernels are templated on
// the input's storage type T, load it into float and sum in float; the output is float32.
#include <algorithm>

#include "kernels/cuda/common.cuh"
#include "kernels/reduce.h"

namespace leuko::kernels::cuda {
namespace {

__device__ __forceinline__ int64_t kept_offset(const Reduction& r, int64_t o) {
  int64_t off = 0;
  for (int d = r.kept_rank - 1; d >= 0; d--) {
    off += (o % r.kept_shape[d]) * r.kept_stride[d];
    o /= r.kept_shape[d];
  }
  return off;
}

__device__ __forceinline__ int64_t red_offset(const Reduction& r, int64_t j) {
  int64_t off = 0;
  for (int d = r.red_rank - 1; d >= 0; d--) {
    off += (j % r.red_shape[d]) * r.red_stride[d];
    j /= r.red_shape[d];
  }
  return off;
}

// grid: r.outputs * chunks blocks (grid-stride over them). Block b sums chunk (b % chunks) of
// output (b / chunks) into out[b] (chunks == 1: the output itself, scaled).
template <typename T>
__global__ void sum_blocks_kernel(float* out, const T* in, Reduction r, int64_t chunks, float scale) {
  __shared__ float scratch[32];
  const int64_t chunk_len = (r.per_output + chunks - 1) / chunks;
  for (int64_t b = blockIdx.x; b < r.outputs * chunks; b += gridDim.x) {
    const int64_t o = b / chunks, c = b % chunks;
    const int64_t base = kept_offset(r, o);
    const int64_t begin = c * chunk_len, end = min(r.per_output, begin + chunk_len);
    float acc = 0.f;
    for (int64_t j = begin + threadIdx.x; j < end; j += blockDim.x) acc += load(in[base + red_offset(r, j)]);
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) out[b] = acc * scale;
  }
}

template <typename T>
__global__ void sum_threads_kernel(float* out, const T* in, Reduction r, float scale) {
  LEUKO_GRID_STRIDE(o, r.outputs) {
    const int64_t base = kept_offset(r, o);
    float acc = 0.f;
    for (int64_t j = 0; j < r.per_output; j++) acc += load(in[base + red_offset(r, j)]);
    out[o] = acc * scale;
  }
}

__global__ void expand_kernel(float* out, const float* in, int64_t n, Broadcast bc, float scale) {
  LEUKO_GRID_STRIDE(i, n) {
    int64_t rest = i, ia = 0;
    for (int d = bc.rank - 1; d >= 0; d--) {
      ia += (rest % bc.shape[d]) * bc.stride_a[d];
      rest /= bc.shape[d];
    }
    out[i] = scale * in[ia];
  }
}

// How many blocks share one output: enough blocks in all to fill the GPU (8 per SM), each
// with at least 4096 elements to sum.
int64_t chunks_for(const Reduction& r) {
  if (r.per_output <= 32) return 0;  // one thread per output
  const int64_t want_blocks = int64_t(leuko::cuda::sm_count()) * 8;
  int64_t chunks = std::max<int64_t>(1, want_blocks / std::max<int64_t>(1, r.outputs));
  chunks = std::min<int64_t>(chunks, std::max<int64_t>(1, r.per_output / 4096));
  return chunks;
}

}  // namespace

int64_t sum_to_scratch(const Reduction& r) {
  const int64_t chunks = chunks_for(r);
  return chunks > 1 ? r.outputs * chunks : 0;
}

namespace {

// sum_to for either input type; the second pass sums float32 partial sums.
template <typename T>
void launch_sum_to(float* out, const T* in, const Reduction& r, double scale, float* scratch) {
  if (r.outputs == 0) return;
  const int64_t chunks = chunks_for(r);
  if (chunks == 0) {
    sum_threads_kernel<<<blocks_for(r.outputs), kThreads, 0, stream()>>>(out, in, r, float(scale));
    LEUKO_CUDA_LAUNCH_CHECK();
    return;
  }
  const int grid = int(std::min<int64_t>(r.outputs * chunks, 1 << 20));
  if (chunks == 1) {
    sum_blocks_kernel<<<grid, kThreads, 0, stream()>>>(out, in, r, 1, float(scale));
    LEUKO_CUDA_LAUNCH_CHECK();
    return;
  }
  sum_blocks_kernel<<<grid, kThreads, 0, stream()>>>(scratch, in, r, chunks, 1.f);
  LEUKO_CUDA_LAUNCH_CHECK();
  // Second pass: scratch is (outputs, chunks); reduce its last dimension.
  Reduction second;
  second.kept_rank = 1;
  second.kept_shape[0] = r.outputs;
  second.kept_stride[0] = chunks;
  second.red_rank = 1;
  second.red_shape[0] = chunks;
  second.red_stride[0] = 1;
  second.outputs = r.outputs;
  second.per_output = chunks;
  sum_blocks_kernel<<<int(std::min<int64_t>(r.outputs, 1 << 20)), kThreads, 0, stream()>>>(out, scratch, second,
                                                                                         1, float(scale));
  LEUKO_CUDA_LAUNCH_CHECK();
}

}  // namespace

void sum_to(float* out, const float* in, const Reduction& r, double scale, float* scratch) {
  launch_sum_to(out, in, r, scale, scratch);
}

void sum_to(float* out, const bf16* in, const Reduction& r, double scale, float* scratch) {
  launch_sum_to(out, dev(in), r, scale, scratch);
}

void expand(float* out, const float* in, int64_t n, const Broadcast& bc, double scale) {
  if (n == 0) return;
  expand_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(out, in, n, bc, float(scale));
  LEUKO_CUDA_LAUNCH_CHECK();
}

}  // namespace leuko::kernels::cuda
