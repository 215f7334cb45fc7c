// Every op of elementwise, reduce and matmul on the GPU (float32) against the CPU (float64),
// forward and backward, on random shapes with odd sizes. Tolerances are relative errors of the
// whole output (||gpu - cpu|| / ||cpu||), stated beside each comparison.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "gpu/gpu_helpers.h"
#include "tensor/device.h"

using namespace leuko;
using leuko::test::PrecisionScope;
using test::check_gpu_matches_cpu;
using V = const std::vector<Tensor>&;

namespace {

// Float32 CPU inputs that require grad (check_gpu_matches_cpu copies them to each side).
Tensor in_n(const Shape& s, uint64_t seed) { return test::randn_t(s, seed, DType::f32).set_requires_grad(); }
Tensor in_u(const Shape& s, double lo, double hi, uint64_t seed) {
  return test::uniform_t(s, lo, hi, seed, DType::f32).set_requires_grad();
}
// Large positive inputs made without the random generator (fast for 10^7 values):
// 0.5 + a scrambled fraction in [0, 1).
Tensor in_pattern(const Shape& s) {
  std::vector<float> v(size_t(shape_numel(s)));
  for (size_t i = 0; i < v.size(); i++) v[i] = 0.5f + float((i * 7919u) % 1000u) / 1000.f;
  return Tensor::from_vector(v, s).set_requires_grad();
}

}  // namespace

TEST_CASE("GPU elementwise binary ops with broadcasting match the CPU") {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{1}, {1}},
      {{3}, {3}},
      {{17}, {17}},
      {{1000003}, {1000003}},
      {{2, 3, 5}, {5}},
      {{5}, {2, 3, 5}},
      {{4, 1}, {1, 3}},
      {{2, 3, 1, 4}, {3, 2, 1}},
      {{7, 1, 5}, {1, 6, 1}},
      {{}, {3, 17}},
      {{3, 17}, {}},
      {{0, 3}, {3}},
      {{2, 1, 2, 1, 2, 1, 2, 1}, {1, 2, 1, 2, 1, 2, 1, 2}},
      {{129, 1, 1001}, {1, 33, 1001}},
  };
  uint64_t seed = 1;
  for (const auto& [sa, sb] : shapes) {
    CAPTURE(shape_str(sa));
    CAPTURE(shape_str(sb));
    // Forward: one float32 rounding per element (1e-6). Backward: the gradients of broadcast
    // inputs are float32 sums on the GPU over up to 33 * 129 terms (1e-5).
    check_gpu_matches_cpu([](V in) { return add(in[0], in[1]); }, {in_n(sa, seed), in_n(sb, seed + 1)}, 1e-5);
    check_gpu_matches_cpu([](V in) { return sub(in[0], in[1]); }, {in_n(sa, seed + 2), in_n(sb, seed + 3)}, 1e-5);
    check_gpu_matches_cpu([](V in) { return mul(in[0], in[1]); }, {in_n(sa, seed + 4), in_n(sb, seed + 5)}, 1e-5);
    // div: divisor in [0.5, 2], away from 0.
    check_gpu_matches_cpu([](V in) { return div(in[0], in[1]); }, {in_n(sa, seed + 6), in_u(sb, 0.5, 2.0, seed + 7)},
                          1e-5);
    seed += 8;
  }
  // x * x: one tensor used twice.
  check_gpu_matches_cpu([](V in) { return mul(in[0], in[0]); }, {in_n({1000003}, 99)}, 1e-6);  // 1e-6: rounding only
}

TEST_CASE("GPU scalar forms, exp, log, neg and bias_add match the CPU") {
  for (const Shape& s : {Shape{1}, Shape{3}, Shape{17}, Shape{1000003}, Shape{3, 5, 7}}) {
    CAPTURE(shape_str(s));
    // One or two float32 roundings per element (1e-6); exp and log: CUDA's expf and logf are
    // within 2 ulp (2e-6; log's inputs in [0.5, 3]).
    check_gpu_matches_cpu([](V in) { return add(in[0], 1.25); }, {in_n(s, 1)}, 1e-6);
    check_gpu_matches_cpu([](V in) { return sub(in[0], 0.3); }, {in_n(s, 2)}, 1e-6);
    check_gpu_matches_cpu([](V in) { return rsub(0.3, in[0]); }, {in_n(s, 3)}, 1e-6);
    check_gpu_matches_cpu([](V in) { return mul(in[0], -3.5); }, {in_n(s, 4)}, 1e-6);
    check_gpu_matches_cpu([](V in) { return div(in[0], 7.0); }, {in_n(s, 5)}, 1e-6);
    check_gpu_matches_cpu([](V in) { return rdiv(2.0, in[0]); }, {in_u(s, 0.5, 3.0, 6)}, 1e-6);
    check_gpu_matches_cpu([](V in) { return affine(in[0], 0.5, -2.0); }, {in_n(s, 7)}, 1e-6);
    check_gpu_matches_cpu([](V in) { return neg(in[0]); }, {in_n(s, 8)}, 1e-6);
    check_gpu_matches_cpu([](V in) { return exp(in[0]); }, {in_n(s, 9)}, 2e-6);
    check_gpu_matches_cpu([](V in) { return log(in[0]); }, {in_u(s, 0.5, 3.0, 10)}, 2e-6);
  }
  // bias_add: the bias gradient is the (N, C, H, W) -> (C,) reduction (1e-5: float32 sums of
  // up to 16 * 1001 terms).
  for (const auto& [x, c] : {std::pair<Shape, int64_t>{{2, 3, 4, 5}, 3},
                             {{16, 7, 1001}, 7},
                             {{1, 1}, 1},
                             {{5, 64, 7, 9}, 64},
                             {{33, 17}, 17}}) {
    CAPTURE(shape_str(x));
    check_gpu_matches_cpu([](V in) { return bias_add(in[0], in[1]); }, {in_n(x, 11), in_n({c}, 12)}, 1e-5);
  }
}

TEST_CASE("GPU sum and mean: every reduction pattern") {
  // Per-output counts from 1 to ~10^6 cover the three kernels: one thread per output
  // (<= 32 summed), one block per output, and several blocks per output with a second pass.
  struct Case {
    Shape shape;
    std::vector<int64_t> dims;
    bool keepdim;
  };
  const std::vector<Case> cases = {
      {{16, 32, 9, 7}, {0, 1, 2, 3}, false},  // all dims
      {{16, 32, 9, 7}, {0}, false},           // first dim
      {{16, 32, 9, 7}, {-1}, false},          // last dim (7: one thread per output)
      {{16, 32, 9, 7}, {1, 2}, true},         // middle dims
      {{16, 32, 9, 7}, {0, 2, 3}, true},      // the bias-gradient pattern (N, C, H, W) -> (1, C, 1, 1)
      {{3, 17, 1, 5}, {0, 2}, false},         // odd sizes, a size-1 dim reduced
      {{1, 1, 1, 1}, {0, 1, 2, 3}, false},
      {{100000, 3}, {0}, false},  // 3 outputs of 10^5: several blocks each, two passes
      {{3, 100000}, {1}, true},   // the same along the contiguous dim
      {{64, 8193}, {1}, false},   // 8193 = 2 * 4096 + 1 per output
      {{1000, 32}, {1}, false},   // exactly 32: the one-thread path's limit
      {{1000, 33}, {1}, false},   // 33: one block per output
      {{40000, 5}, {1}, false},   // many small reductions
      {{7, 33, 129}, {0, 2}, false},
  };
  for (const Case& c : cases) {
    CAPTURE(shape_str(c.shape));
    CAPTURE(c.keepdim);
    const std::vector<int64_t> dims = c.dims;
    const bool keep = c.keepdim;
    // float32 accumulation in a tree of partial sums on the GPU against float64 on the CPU:
    // 1e-5 (inputs are N(0, 1); the sums do not cancel to near 0 in norm).
    check_gpu_matches_cpu([dims, keep](V in) { return sum(in[0], dims, keep); }, {in_n(c.shape, 21)}, 1e-5);
    check_gpu_matches_cpu([dims, keep](V in) { return mean(in[0], dims, keep); }, {in_n(c.shape, 22)}, 1e-5);
  }
  check_gpu_matches_cpu([](V in) { return sum_to(in[0], {1, 32, 1, 1}); }, {in_n({16, 32, 9, 7}, 23)}, 1e-5);
  check_gpu_matches_cpu([](V in) { return sum_to(in[0], {9, 1}); }, {in_n({16, 32, 9, 7}, 24)}, 1e-5);
  check_gpu_matches_cpu([](V in) { return expand(in[0], {5, 32, 9, 7}); }, {in_n({32, 1, 7}, 25)}, 1e-6);
  check_gpu_matches_cpu([](V in) { return expand(in[0], {3, 1000}); }, {in_n({}, 26)}, 1e-6);
}

TEST_CASE("GPU full sums of 10^6 and 1.7 * 10^7 elements (the two-pass reduction)") {
  // Positive inputs, so the sum does not cancel: the float32 tree sum is within ~log2(n)
  // roundings of the float64 sum (1e-5). The gradient (an expand) is exact.
  for (int64_t n : {int64_t(1000003), int64_t(17000000)}) {
    CAPTURE(n);
    check_gpu_matches_cpu([](V in) { return sum(in[0]); }, {in_pattern({n})}, 1e-5);
    check_gpu_matches_cpu([](V in) { return mean(in[0]); }, {in_pattern({n})}, 1e-5);
  }
  // More outputs than the 2^20 blocks of one grid: the block loop wraps around.
  check_gpu_matches_cpu([](V in) { return sum(in[0], {1}); }, {in_pattern({(int64_t(1) << 20) + 3, 33})}, 1e-5);
  // No atomics: the same sum twice gives the same bits.
  Tensor x = in_pattern({17000000}).detach().cuda();
  const float s1 = float(sum(x).item()), s2 = float(sum(x).item());
  CHECK(std::memcmp(&s1, &s2, 4) == 0);
  Tensor y = test::randn_t({64, 128, 17, 3}, 27, DType::f32, Device::CUDA);
  const std::vector<float> b1 = sum(y, {0, 2, 3}).to_vector(), b2 = sum(y, {0, 2, 3}).to_vector();
  CHECK(std::memcmp(b1.data(), b2.data(), b1.size() * 4) == 0);
}

TEST_CASE("GPU matmul (cuBLAS, strict float32) matches the CPU") {
  // Sizes that are multiples of nothing, a 1, and an empty inner dimension. cuBLAS in strict
  // float32 against float64: 1e-5 (accumulation over up to 777 terms).
  for (const auto& [M, K, N] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1},
                                {7, 33, 5},
                                {257, 300, 129},
                                {1000, 3, 777},
                                {3, 777, 1},
                                {1, 129, 1000},
                                {13, 1, 11}}) {
    CAPTURE(M);
    CAPTURE(K);
    CAPTURE(N);
    check_gpu_matches_cpu([](V in) { return matmul(in[0], in[1]); }, {in_n({M, K}, 31), in_n({K, N}, 32)}, 1e-5);
  }
  check_gpu_matches_cpu([](V in) { return matmul(matmul(in[0], in[1]), in[0]); }, {in_n({9, 9}, 33), in_n({9, 9}, 34)},
                        1e-5);
  // K = 0: a matrix of zeros (out is allocated with NaN poison: it must be written).
  Tensor z = matmul(Tensor::zeros({4, 0}, DType::f32, Device::CUDA), Tensor::zeros({0, 6}, DType::f32, Device::CUDA));
  CHECK(z.to_vector() == std::vector<float>(24, 0.f));
  Tensor a = Tensor::zeros({4, 0}, DType::f32, Device::CUDA), b = Tensor::zeros({0, 6}, DType::f32, Device::CUDA);
  Tensor c = Tensor::full({4, 6}, 2.0, DType::f32, Device::CUDA);
  detail::gemm(c, a, false, b, false, /*accumulate=*/true);  // C += nothing
  CHECK(c.to_vector() == std::vector<float>(24, 2.f));
  // The transposed forms: op(A) = (0, 4)^T, op(B) = (6, 0)^T.
  detail::gemm(c, Tensor::zeros({0, 4}, DType::f32, Device::CUDA), true,
               Tensor::zeros({6, 0}, DType::f32, Device::CUDA), true, /*accumulate=*/false);
  CHECK(c.to_vector() == std::vector<float>(24, 0.f));
  // gemm with accumulation and every transposition, against the CPU's.
  for (int t = 0; t < 4; t++) {
    const bool ta = t & 1, tb = t & 2;
    CAPTURE(ta);
    CAPTURE(tb);
    const int64_t M = 65, N = 33, K = 129;
    Tensor A = test::randn_t(ta ? Shape{K, M} : Shape{M, K}, 40 + t, DType::f32);
    Tensor B = test::randn_t(tb ? Shape{N, K} : Shape{K, N}, 50 + t, DType::f32);
    Tensor C0 = test::randn_t({M, N}, 60 + t, DType::f32);
    Tensor cpu = C0.to(DType::f64), gpu = C0.cuda();
    detail::gemm(cpu, A.to(DType::f64), ta, B.to(DType::f64), tb, true);
    detail::gemm(gpu, A.cuda(), ta, B.cuda(), tb, true);
    CHECK(test::rel_error(gpu.cpu(), cpu) <= 1e-5);  // 1e-5: float32 accumulation over 129 terms
  }
}

TEST_CASE("GPU matmul with TF32 tensor cores: a looser tolerance") {
  PrecisionScope tf32(Precision::tf32);
  REQUIRE(precision() == Precision::tf32);
  // TF32 keeps 10 mantissa bits of each operand (relative rounding 2^-11 ~ 5e-4 per product),
  // accumulating in float32: 5e-3 of the norm.
  for (const auto& [M, K, N] : {std::tuple<int64_t, int64_t, int64_t>{257, 300, 129}, {64, 1024, 64}, {7, 33, 5}}) {
    CAPTURE(M);
    CAPTURE(K);
    CAPTURE(N);
    check_gpu_matches_cpu([](V in) { return matmul(in[0], in[1]); }, {in_n({M, K}, 71), in_n({K, N}, 72)}, 5e-3);
  }
}

TEST_CASE("GPU precision is strict float32 again after the TF32 test") { CHECK(precision() == Precision::fp32); }
