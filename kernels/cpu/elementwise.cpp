// CPU reference for the elementwise kernels: plain loops, OpenMP for large tensors.
#include <cmath>

#include "kernels/elementwise.h"

namespace leuko::kernels::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 15;  // below this, threads cost more than they save

template <typename T>
inline T apply(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div: return a / b;
  }
  return T(0);
}

template <typename T, BinaryOp OP>
void binary_same(T* out, const T* a, const T* b, int64_t n) {
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) out[i] = apply(OP, a[i], b[i]);
}
}  // namespace

template <typename T>
void binary(BinaryOp op, T* out, const T* a, const T* b, int64_t n, const Broadcast* bc) {
  if (bc == nullptr) {  // one switch outside the loop, so each loop vectorises
    switch (op) {
      case BinaryOp::add: return binary_same<T, BinaryOp::add>(out, a, b, n);
      case BinaryOp::sub: return binary_same<T, BinaryOp::sub>(out, a, b, n);
      case BinaryOp::mul: return binary_same<T, BinaryOp::mul>(out, a, b, n);
      case BinaryOp::div: return binary_same<T, BinaryOp::div>(out, a, b, n);
    }
  }
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) {
    int64_t rest = i, ia = 0, ib = 0;  // decompose i into coordinates, last dimension first
    for (int d = bc->rank - 1; d >= 0; d--) {
      const int64_t coord = rest % bc->shape[d];
      rest /= bc->shape[d];
      ia += coord * bc->stride_a[d];
      ib += coord * bc->stride_b[d];
    }
    out[i] = apply(op, a[ia], b[ib]);
  }
}

template <typename T>
void affine(T* out, const T* x, int64_t n, double alpha, double beta) {
  const T al = T(alpha), be = T(beta);
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) out[i] = al * x[i] + be;
}

template <typename T>
void scalar_div(T* out, double s, const T* x, int64_t n) {
  const T sv = T(s);
#pragma omp parallel for if (n > kParallelMin)
  for (int64_t i = 0; i < n; i++) out[i] = sv / x[i];
}

template <typename T>
void unary(UnaryOp op, T* out, const T* x, int64_t n) {
  switch (op) {
    case UnaryOp::exp:
#pragma omp parallel for if (n > kParallelMin)
      for (int64_t i = 0; i < n; i++) out[i] = std::exp(x[i]);
      break;
    case UnaryOp::log:
#pragma omp parallel for if (n > kParallelMin)
      for (int64_t i = 0; i < n; i++) out[i] = std::log(x[i]);
      break;
    case UnaryOp::neg:
#pragma omp parallel for if (n > kParallelMin)
      for (int64_t i = 0; i < n; i++) out[i] = -x[i];
      break;
  }
}

template <typename T>
void bias_add(T* out, const T* x, const T* bias, int64_t N, int64_t C, int64_t inner, bool relu) {
#pragma omp parallel for collapse(2) if (N * C * inner > kParallelMin)
  for (int64_t n = 0; n < N; n++) {
    for (int64_t c = 0; c < C; c++) {
      const T b = bias[c];
      const int64_t base = (n * C + c) * inner;
      for (int64_t i = 0; i < inner; i++) out[base + i] = x[base + i] + b;
      if (relu) {
        for (int64_t i = 0; i < inner; i++) out[base + i] = !(out[base + i] <= T(0)) ? out[base + i] : T(0);
      }
    }
  }
}

#define LEUKO_INSTANTIATE(T)                                                            \
  template void binary<T>(BinaryOp, T*, const T*, const T*, int64_t, const Broadcast*); \
  template void affine<T>(T*, const T*, int64_t, double, double);                      \
  template void scalar_div<T>(T*, double, const T*, int64_t);                           \
  template void unary<T>(UnaryOp, T*, const T*, int64_t);                               \
  template void bias_add<T>(T*, const T*, const T*, int64_t, int64_t, int64_t, bool);
LEUKO_INSTANTIATE(float)
LEUKO_INSTANTIATE(double)
#undef LEUKO_INSTANTIATE

}  // namespace leuko::kernels::cpu
