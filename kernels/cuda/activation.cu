// CUDA ReLU, the fused add + ReLU, and dropout. ReLU and add + ReLU are element-wise maps,
// 8 elements a thread (map.cuh); dropout is one thread per element in a grid-stride loop, and
// draws its mask with the same inline hash as the CPU (kernels/activation.h), so both keep the
// same elements. Each kernel is templated on the storage type T (float, or __nv_bfloat16 for bf16
// activations): it loads into float, computes in float and stores with one rounding (load/store,
// common.cuh). For float, load and store are the identity.
#include "kernels/activation.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/map.cuh"
#include "kernels/random.h"

namespace leuko::kernels::cuda {
namespace {

// ReLU and its backward select a stored value or +0 (OnStorage, map.cuh): the value keeps its
// bits, a NaN's sign and payload included, as on the CPU; bf16 -> float -> bf16 would give the
// same bits for every other value. -0 is not above 0: it gives +0, as on the CPU.
struct Relu : OnStorage {  // !(v <= 0), not v > 0: a NaN passes, as on the CPU
  template <typename T>
  __device__ T operator()(T v) const { return !(load(v) <= 0.f) ? v : stored_zero<T>(); }
};

struct AddRelu {  // the sum in float, rounded once with the ReLU
  __device__ float operator()(float a, float b) const { return Relu()(a + b); }
};

struct ReluBackward : OnStorage {  // (grad_out, out): grad_out's bits where out > 0, else +0
  template <typename T>
  __device__ T operator()(T g, T out) const { return load(out) > 0.f ? g : stored_zero<T>(); }
};

template <typename T>
__global__ void dropout_kernel(T* out, const T* x, int64_t n, uint64_t seed, uint64_t threshold, float scale,
                               ReplaySeed replay) {
  // In a CUDA graph: the seed of the replay's step, drawn here (a few integer operations).
  if (replay.step != nullptr) seed = xoshiro_draw(step_seed(replay.run_seed, *replay.step), replay.draw);
  LEUKO_GRID_STRIDE(i, n) out[i] = store<T>(dropout_keep(seed, threshold, uint64_t(i)) ? load(x[i]) * scale : 0.f);
}

// The launch, for either storage type (the public functions pass their pointers through dev()).
template <typename T>
void launch_dropout(T* out, const T* x, int64_t n, uint64_t seed, uint64_t threshold, double scale,
                    const ReplaySeed* replay) {
  if (n == 0) return;
  dropout_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(out, x, n, seed, threshold, float(scale),
                                                          replay != nullptr ? *replay : ReplaySeed{});
  LEUKO_CUDA_LAUNCH_CHECK();
}

}  // namespace

void relu_forward(float* out, const float* x, int64_t n) { map1(out, x, n, Relu()); }
void relu_forward(bf16* out, const bf16* x, int64_t n) { map1(dev(out), dev(x), n, Relu()); }

void add_relu_forward(float* out, const float* a, const float* b, int64_t n) { map2(out, a, b, n, AddRelu()); }
void add_relu_forward(bf16* out, const bf16* a, const bf16* b, int64_t n) {
  map2(dev(out), dev(a), dev(b), n, AddRelu());
}

void relu_backward(float* grad_x, const float* grad_out, const float* out, int64_t n) {
  map2(grad_x, grad_out, out, n, ReluBackward());
}
void relu_backward(bf16* grad_x, const bf16* grad_out, const bf16* out, int64_t n) {
  map2(dev(grad_x), dev(grad_out), dev(out), n, ReluBackward());
}

void dropout(float* out, const float* x, int64_t n, uint64_t seed, uint64_t threshold, double scale,
             const ReplaySeed* replay) {
  launch_dropout(out, x, n, seed, threshold, scale, replay);
}
void dropout(bf16* out, const bf16* x, int64_t n, uint64_t seed, uint64_t threshold, double scale,
             const ReplaySeed* replay) {
  launch_dropout(dev(out), dev(x), n, seed, threshold, scale, replay);
}

}  // namespace leuko::kernels::cuda
