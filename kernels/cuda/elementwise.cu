// CUDA elementwise kernels. Operands of one shape are element-wise maps, 8 elements a thread
// (map.cuh), and so is the channel bias; the broadcast form is one thread per element in a
// grid-stride loop that decomposes the flat index into coordinates with the strides passed by
// value.
#include <climits>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/map.cuh"
#include "kernels/divider.h"
#include "kernels/elementwise.h"

namespace leuko::kernels::cuda {
namespace {

template <BinaryOp OP>
__device__ __forceinline__ float apply(float a, float b) {
  if constexpr (OP == BinaryOp::add) return a + b;
  if constexpr (OP == BinaryOp::sub) return a - b;
  if constexpr (OP == BinaryOp::mul) return a * b;
  return a / b;
}

template <BinaryOp OP>
struct Binary {
  __device__ float operator()(float a, float b) const { return apply<OP>(a, b); }
};

template <BinaryOp OP>
__global__ void binary_bcast_kernel(float* out, const float* a, const float* b, int64_t n, Broadcast bc) {
  LEUKO_GRID_STRIDE(i, n) {
    int64_t rest = i, ia = 0, ib = 0;
    for (int d = bc.rank - 1; d >= 0; d--) {
      const int64_t coord = rest % bc.shape[d];
      rest /= bc.shape[d];
      ia += coord * bc.stride_a[d];
      ib += coord * bc.stride_b[d];
    }
    out[i] = apply<OP>(a[ia], b[ib]);
  }
}

template <BinaryOp OP>
void launch_binary(float* out, const float* a, const float* b, int64_t n, const Broadcast* bc) {
  if (bc == nullptr) return map2(out, a, b, n, Binary<OP>());
  binary_bcast_kernel<OP><<<blocks_for(n), kThreads, 0, stream()>>>(out, a, b, n, *bc);
  LEUKO_CUDA_LAUNCH_CHECK();
}

struct Affine {
  float alpha, beta;
  __device__ float operator()(float x) const { return alpha * x + beta; }
};

struct ScalarDiv {
  float s;
  __device__ float operator()(float x) const { return s / x; }
};

template <UnaryOp OP>
struct Unary {
  __device__ float operator()(float x) const {
    if constexpr (OP == UnaryOp::exp) return expf(x);
    else if constexpr (OP == UnaryOp::log) return logf(x);
    else return -x;
  }
};

// T: the activation's storage type (float, or __nv_bfloat16 for bf16 activations); the bias is
// float32 either way (a parameter). The sum and the ReLU are computed in float and rounded once.
// Element i belongs to channel (i / inner) % C: two divisions by numbers fixed at launch, done
// as multiply-highs (kernels/divider.h) in 32 bits when the tensor has fewer than 2^31
// elements (the 64-bit division routine, twice per element, made the old kernel
// arithmetic-bound). With kPacked (x and out aligned to 8 elements), a thread loads and stores
// 8 elements at once (map.cuh's packs); the values are the same either way.
template <typename T, typename I, bool kPacked>
__global__ void bias_add_kernel(T* out, const T* x, const float* bias, int64_t total, Divider<I> inner,
                                Divider<I> channels, bool relu) {
  auto one = [&](int64_t i, T v) {
    I q, c, n;
    q = inner.div(I(i));
    channels.divmod(q, &n, &c);
    const float s = load(v) + bias[c];
    return store<T>(!relu || !(s <= 0.f) ? s : 0.f);  // a fused ReLU as relu_forward: NaN stays NaN
  };
  const int64_t first = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  int64_t done = 0;
  if constexpr (kPacked) {
    const int64_t packs = total / kMapPack;
    for (int64_t p = first; p < packs; p += stride) {
      MapPack<T> v = reinterpret_cast<const MapPack<T>*>(x)[p];
#pragma unroll
      for (int k = 0; k < kMapPack; k++) v.v[k] = one(p * kMapPack + k, v.v[k]);
      reinterpret_cast<MapPack<T>*>(out)[p] = v;
    }
    done = packs * kMapPack;
  }
  for (int64_t i = done + first; i < total; i += stride) out[i] = one(i, x[i]);
}

template <typename T, typename I>
void launch_bias_add_as(T* out, const T* x, const float* bias, int64_t total, int64_t C, int64_t inner, bool relu) {
  const bool packed = pack_aligned(out) && pack_aligned(x);
  const Divider<I> by_inner(inner), by_channels(C);
  if (packed)
    bias_add_kernel<T, I, true><<<map_blocks(total, true), kThreads, 0, stream()>>>(out, x, bias, total, by_inner,
                                                                                      by_channels, relu);
  else
    bias_add_kernel<T, I, false><<<map_blocks(total, false), kThreads, 0, stream()>>>(out, x, bias, total, by_inner,
                                                                                        by_channels, relu);
  LEUKO_CUDA_LAUNCH_CHECK();
}

// out may be x (the convolution and linear layers add the bias in place).
template <typename T>
void launch_bias_add(T* out, const T* x, const float* bias, int64_t N, int64_t C, int64_t inner, bool relu) {
  const int64_t total = N * C * inner;
  if (total == 0) return;
  if (total <= INT_MAX) launch_bias_add_as<T, int32_t>(out, x, bias, total, C, inner, relu);
  else launch_bias_add_as<T, int64_t>(out, x, bias, total, C, inner, relu);
}

}  // namespace

void binary(BinaryOp op, float* out, const float* a, const float* b, int64_t n, const Broadcast* bc) {
  if (n == 0) return;
  switch (op) {
    case BinaryOp::add: return launch_binary<BinaryOp::add>(out, a, b, n, bc);
    case BinaryOp::sub: return launch_binary<BinaryOp::sub>(out, a, b, n, bc);
    case BinaryOp::mul: return launch_binary<BinaryOp::mul>(out, a, b, n, bc);
    case BinaryOp::div: return launch_binary<BinaryOp::div>(out, a, b, n, bc);
  }
}

void affine(float* out, const float* x, int64_t n, double alpha, double beta) {
  map1(out, x, n, Affine{float(alpha), float(beta)});
}

void scalar_div(float* out, double s, const float* x, int64_t n) { map1(out, x, n, ScalarDiv{float(s)}); }

void unary(UnaryOp op, float* out, const float* x, int64_t n) {
  switch (op) {
    case UnaryOp::exp: return map1(out, x, n, Unary<UnaryOp::exp>());
    case UnaryOp::log: return map1(out, x, n, Unary<UnaryOp::log>());
    case UnaryOp::neg: return map1(out, x, n, Unary<UnaryOp::neg>());
  }
}

void bias_add(float* out, const float* x, const float* bias, int64_t N, int64_t C, int64_t inner, bool relu) {
  launch_bias_add(out, x, bias, N, C, inner, relu);
}

void bias_add(bf16* out, const bf16* x, const float* bias, int64_t N, int64_t C, int64_t inner, bool relu) {
  launch_bias_add(dev(out), dev(x), bias, N, C, inner, relu);
}

}  // namespace leuko::kernels::cuda
