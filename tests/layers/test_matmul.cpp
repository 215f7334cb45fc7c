// Matrix products: the CPU gemm for all four transpositions, odd sizes and sizes beyond its
// 256 blocking, accumulation, matmul's gradients, against naive float64 loops; the errors.
#include <doctest/doctest.h>

#include <cmath>
#include <tuple>

#include "helpers.h"

using namespace leuko;
using doctest::Contains;

namespace {

// C = op(A) op(B) (+ C0), naively in float64. A is stored (M, K), or (K, M) when ta; B is
// stored (K, N), or (N, K) when tb.
std::vector<double> naive_gemm(const std::vector<double>& A, bool ta, const std::vector<double>& B, bool tb, int64_t M,
                               int64_t N, int64_t K, const std::vector<double>* C0) {
  std::vector<double> C(size_t(M * N), 0.0);
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) {
      double acc = C0 ? (*C0)[size_t(i * N + j)] : 0.0;
      for (int64_t k = 0; k < K; k++) {
        const double a = ta ? A[size_t(k * M + i)] : A[size_t(i * K + k)];
        const double b = tb ? B[size_t(j * K + k)] : B[size_t(k * N + j)];
        acc += a * b;
      }
      C[size_t(i * N + j)] = acc;
    }
  return C;
}

// Largest |x - ref| over the largest |ref|: the error relative to the result's scale.
double rel_to_scale(const std::vector<double>& x, const std::vector<double>& ref) {
  REQUIRE(x.size() == ref.size());
  double scale = 0, m = 0;
  for (size_t i = 0; i < x.size(); i++) {
    if (!std::isfinite(x[i])) return INFINITY;
    scale = std::max(scale, std::fabs(ref[i]));
    m = std::max(m, std::fabs(x[i] - ref[i]));
  }
  return m / std::max(scale, 1e-300);
}

}  // namespace

TEST_CASE("CPU gemm: four transpositions, odd sizes, beyond the 256 blocking, with accumulation") {
  // (M, N, K): ones, odd sizes, and 257 / 300 / 260 > 256 so that the column panels and the
  // depth slices each run more than once with a ragged last block, and M = 257 leaves one
  // row outside the 4-row register blocks.
  const std::vector<std::tuple<int64_t, int64_t, int64_t>> sizes = {
      {1, 1, 1}, {7, 33, 1}, {1, 257, 7}, {33, 7, 300}, {5, 3, 2}, {257, 300, 260}, {6, 4, 0}};
  uint64_t seed = 100;
  for (const auto& [M, N, K] : sizes) {
    for (int t = 0; t < 4; t++) {
      const bool ta = t & 1, tb = t & 2;
      for (bool accumulate : {false, true}) {
        CAPTURE(M);
        CAPTURE(N);
        CAPTURE(K);
        CAPTURE(ta);
        CAPTURE(tb);
        CAPTURE(accumulate);
        Tensor a = test::randn_t(ta ? Shape{K, M} : Shape{M, K}, seed++);
        Tensor b = test::randn_t(tb ? Shape{N, K} : Shape{K, N}, seed++);
        Tensor c0 = test::randn_t({M, N}, seed++);
        const std::vector<double> c0v = c0.to_double_vector();
        const std::vector<double> want =
            naive_gemm(a.to_double_vector(), ta, b.to_double_vector(), tb, M, N, K, accumulate ? &c0v : nullptr);
        // float64: only the order of the additions differs (<= ~K * 1e-16 of the scale).
        Tensor c = accumulate ? c0.clone() : Tensor::full({M, N}, NAN, DType::f64);  // NaN: must be overwritten
        detail::gemm(c, a, ta, b, tb, accumulate);
        CHECK(rel_to_scale(c.to_double_vector(), want) <= 1e-13);
        // float32: rounded inputs and float32 accumulation over up to 300 terms (<= 2e-5).
        Tensor c32 = accumulate ? c0.to(DType::f32) : Tensor::full({M, N}, NAN, DType::f32);
        detail::gemm(c32, a.to(DType::f32), ta, b.to(DType::f32), tb, accumulate);
        CHECK(rel_to_scale(c32.to_double_vector(), want) <= 2e-5);
      }
    }
  }
}

TEST_CASE("CPU gemm in float32: long sums are summed in blocks, not in one running sum") {
  // 0.1f added 16384 times: one running float32 sum drifts by ~1e-4 relative (each add to a
  // total near 1000 rounds to 6e-5, mostly the same way); sums of 256-term slices added to C
  // stay within ~1e-6. Convolutions in deep layers sum 4608 terms (512 channels x 3 x 3).
  const int64_t K = 16384;
  Tensor a = Tensor::full({1, K}, 1.0, DType::f32);  // (1, K)
  Tensor b = Tensor::full({K, 1}, 0.1, DType::f32);  // (K, 1)
  Tensor c = Tensor::full({1, 1}, NAN, DType::f32);  // (1, 1)
  detail::gemm(c, a, false, b, false, false);
  const double want = double(K) * double(0.1f);
  CHECK(std::fabs(c.to_double_vector()[0] - want) / want <= 1e-5);
}

TEST_CASE("matmul forward and gradients against naive loops") {
  for (const auto& [M, K, N] :
       {std::tuple<int64_t, int64_t, int64_t>{33, 300, 7}, {1, 1, 1}, {4, 9, 1}, {17, 5, 260}}) {
    CAPTURE(M);
    CAPTURE(K);
    CAPTURE(N);
    Tensor a = test::randn_t({M, K}, 7).set_requires_grad(), b = test::randn_t({K, N}, 8).set_requires_grad();
    Tensor g = test::randn_t({M, N}, 9);
    const std::vector<double> av = a.to_double_vector(), bv = b.to_double_vector(), gv = g.to_double_vector();
    Tensor c = matmul(a, b);
    CHECK(c.shape() == Shape{M, N});
    CHECK(rel_to_scale(c.to_double_vector(), naive_gemm(av, false, bv, false, M, N, K, nullptr)) <= 1e-13);
    c.backward(g);
    // dA = G B^T: (M, N) @ (K, N)^T; dB = A^T G: (M, K)^T @ (M, N).
    CHECK(rel_to_scale(a.grad().to_double_vector(), naive_gemm(gv, false, bv, true, M, K, N, nullptr)) <= 1e-13);
    CHECK(rel_to_scale(b.grad().to_double_vector(), naive_gemm(av, true, gv, false, K, N, M, nullptr)) <= 1e-13);
    // float32 forward against the float64 reference (<= 2e-5).
    CHECK(rel_to_scale(matmul(a.detach().to(DType::f32), b.detach().to(DType::f32)).to_double_vector(),
                       naive_gemm(av, false, bv, false, M, N, K, nullptr)) <= 2e-5);
  }
  // An empty inner dimension gives zeros, as in PyTorch.
  CHECK(matmul(Tensor::zeros({3, 0}), Tensor::zeros({0, 4})).to_vector() == std::vector<float>(12, 0.f));
  CHECK(matmul(Tensor::zeros({0, 5}), Tensor::zeros({5, 2})).shape() == Shape{0, 2});
  // Only the inputs that require grad get a gradient.
  Tensor w = test::randn_t({3, 2}, 10).set_requires_grad();
  sum(matmul(test::randn_t({4, 3}, 11), w)).backward();
  CHECK(w.grad().defined());
}

TEST_CASE("matmul errors") {
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({2, 3}), Tensor::zeros({4, 5})),
                       Contains("matmul: shapes [2, 3] and [4, 5] do not chain (inner sizes 3 and 4)"), Error);
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({3}), Tensor::zeros({3, 2})),
                       Contains("matmul: first operand must have 2 dimensions, got [3]"), Error);
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({2, 3}), Tensor::zeros({1, 3, 2})),
                       Contains("matmul: second operand must have 2 dimensions, got [1, 3, 2]"), Error);
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({2, 3}), Tensor::zeros({3, 2}, DType::f64)),
                       Contains("matmul: inputs of different dtypes"), Error);
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({2, 3}, DType::i64), Tensor::zeros({3, 2}, DType::i64)),
                       Contains("matmul: int64 is a storage type here"), Error);
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({2, 3}, DType::bf16), Tensor::zeros({3, 2})),
                       Contains("matmul: inputs of different dtypes"), Error);
  // Two bf16 operands (bf16 activations): the float32 product, rounded once.
  CHECK(matmul(Tensor::ones({2, 3}, DType::bf16), Tensor::ones({3, 2}, DType::bf16)).dtype() == DType::bf16);
}
