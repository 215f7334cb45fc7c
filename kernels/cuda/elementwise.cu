// CUDA elementwise kernels. Operands of one shape are element-wise maps, 8 elements a thread
// (map.cuh); the broadcast form is one thread per element in a grid-stride loop that decomposes
// the flat index into coordinates with the strides passed by value.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/map.cuh"
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
template <typename T>
__global__ void bias_add_kernel(T* out, const T* x, const float* bias, int64_t total, int64_t C, int64_t inner,
                                bool relu) {
  LEUKO_GRID_STRIDE(i, total) {
    const float v = load(x[i]) + bias[(i / inner) % C];
    out[i] = store<T>(!relu || !(v <= 0.f) ? v : 0.f);  // a fused ReLU as relu_forward: NaN stays NaN
  }
}

// out may be x (the convolution and linear layers add the bias in place).
template <typename T>
void launch_bias_add(T* out, const T* x, const float* bias, int64_t N, int64_t C, int64_t inner, bool relu) {
  const int64_t total = N * C * inner;
  if (total == 0) return;
  bias_add_kernel<<<blocks_for(total), kThreads, 0, stream()>>>(out, x, bias, total, C, inner, relu);
  LEUKO_CUDA_LAUNCH_CHECK();
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
