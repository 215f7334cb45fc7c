// Reductions: sum and mean over every subset of dimensions against a naive float64 loop,
// keepdim, sum_to and expand, and the errors.
#include <doctest/doctest.h>

#include <cmath>

#include "helpers.h"

using namespace leuko;
using doctest::Contains;

namespace {

// Naive sum of x (shape s, 4-D) over the dims whose bit is set in `mask`, in the order of the
// kept dims, as float64. out_shape gets the keepdim shape.
std::vector<double> naive_sum(const std::vector<double>& x, const Shape& s, unsigned mask, Shape* kept) {
  *kept = s;
  for (size_t d = 0; d < 4; d++) {
    if (mask & (1u << d)) (*kept)[d] = 1;
  }
  std::vector<double> out(size_t(shape_numel(*kept)), 0.0);
  for (int64_t i0 = 0; i0 < s[0]; i0++)
    for (int64_t i1 = 0; i1 < s[1]; i1++)
      for (int64_t i2 = 0; i2 < s[2]; i2++)
        for (int64_t i3 = 0; i3 < s[3]; i3++) {
          const int64_t in_idx = ((i0 * s[1] + i1) * s[2] + i2) * s[3] + i3;
          const int64_t o0 = mask & 1 ? 0 : i0, o1 = mask & 2 ? 0 : i1, o2 = mask & 4 ? 0 : i2, o3 = mask & 8 ? 0 : i3;
          const int64_t out_idx = ((o0 * (*kept)[1] + o1) * (*kept)[2] + o2) * (*kept)[3] + o3;
          out[size_t(out_idx)] += x[size_t(in_idx)];
        }
  return out;
}

double max_rel(const std::vector<double>& x, const std::vector<double>& ref) {
  REQUIRE(x.size() == ref.size());
  double scale = 0, m = 0;
  for (double r : ref) scale = std::max(scale, std::fabs(r));
  for (size_t i = 0; i < x.size(); i++) m = std::max(m, std::fabs(x[i] - ref[i]));
  return m / std::max(scale, 1e-300);
}

}  // namespace

TEST_CASE("sum and mean over every subset of the dims of a 4-D tensor, keepdim or not") {
  const Shape s{3, 4, 5, 6};
  Tensor x = test::randn_t(s, 41);
  const std::vector<double> xv = x.to_double_vector();
  const Tensor x32 = x.to(DType::f32);
  const std::vector<double> x32v = x32.to_double_vector();
  for (unsigned mask = 0; mask < 16; mask++) {
    std::vector<int64_t> dims;
    for (int64_t d = 0; d < 4; d++) {
      if (mask & (1u << d)) dims.push_back(d);
    }
    CAPTURE(mask);
    Shape kept;
    const std::vector<double> want = naive_sum(xv, s, mask, &kept);
    int64_t count = 1;
    Shape squeezed;
    for (size_t d = 0; d < 4; d++) {
      if (mask & (1u << d))
        count *= s[d];
      else
        squeezed.push_back(s[d]);
    }
    std::vector<double> want32 = naive_sum(x32v, s, mask, &kept);
    for (double& v : want32) v = double(float(v));
    std::vector<double> want_mean;
    for (double v : want) want_mean.push_back(v / double(count));

    for (bool keepdim : {false, true}) {
      CAPTURE(keepdim);
      Tensor out = sum(x, dims, keepdim);
      CHECK(out.shape() == (keepdim ? kept : squeezed));
      // float64 sums in another order than the naive loop: within a few roundings of 1e-16.
      CHECK(max_rel(out.to_double_vector(), want) <= 1e-14);
      Tensor m = mean(x, dims, keepdim);
      CHECK(m.shape() == (keepdim ? kept : squeezed));
      CHECK(max_rel(m.to_double_vector(), want_mean) <= 1e-14);
      // float32 input: the kernel accumulates in float64 and rounds once, so it matches the
      // naive float64 sum of the same float32 values, rounded, to one float32 ulp (1.2e-7).
      CHECK(max_rel(sum(x32, dims, keepdim).to_double_vector(), want32) <= 1.2e-7);
    }
    // The same dims counted from the end.
    std::vector<int64_t> neg_dims;
    for (int64_t d : dims) neg_dims.push_back(d - 4);
    CHECK(sum(x, neg_dims, true).to_double_vector() == sum(x, dims, true).to_double_vector());
  }
  // No dims named: nothing is reduced (unlike torch.sum(x, dim=[]), which sums everything).
  CHECK(sum(x, {}).shape() == s);
  CHECK(sum(x, {}).to_double_vector() == xv);
}

TEST_CASE("sum and mean of everything give a 0-d tensor") {
  Tensor x = test::randn_t({7, 9, 2}, 42);
  double total = 0;
  for (double v : x.to_double_vector()) total += v;
  Tensor s = sum(x);
  CHECK(s.dim() == 0);
  CHECK(s.item() == doctest::Approx(total).epsilon(1e-13));
  CHECK(mean(x).item() == doctest::Approx(total / 126).epsilon(1e-13));
  CHECK(sum(Tensor::scalar(2.5, DType::f64)).item() == 2.5);
  // A million float32 values of 0.1: float64 accumulation gives 100000 to float32 precision
  // (a float32 running sum would drift by ~1%).
  Tensor tenths = Tensor::full({1000000}, 0.1);
  CHECK(sum(tenths).item() == doctest::Approx(1e6 * double(0.1f)).epsilon(1e-7));
  // Sums over empty dimensions are 0.
  CHECK(sum(Tensor::zeros({0, 3})).item() == 0.0);
  CHECK(sum(Tensor::ones({0, 3}), {0}).to_vector() == std::vector<float>(3, 0.f));
  // The bias-gradient pattern (N, C, H, W) -> (C,) over a large tensor (the OpenMP path).
  Tensor big = test::randn_t({8, 16, 20, 20}, 43);
  Shape kept;
  const std::vector<double> want = naive_sum(big.to_double_vector(), big.shape(), 1 | 4 | 8, &kept);
  CHECK(max_rel(sum(big, {0, 2, 3}).to_double_vector(), want) <= 1e-14);
}

TEST_CASE("sum_to and expand") {
  Tensor x = test::randn_t({2, 3, 4}, 44);
  const std::vector<double> xv = x.to_double_vector();
  // sum_to a shape with fewer dims: the missing leading dims and the size-1 dims are summed.
  Tensor s = sum_to(x, {3, 1});
  CHECK(s.shape() == Shape{3, 1});
  for (int64_t c = 0; c < 3; c++) {
    double want = 0;
    for (int64_t n = 0; n < 2; n++)
      for (int64_t w = 0; w < 4; w++) want += xv[size_t((n * 3 + c) * 4 + w)];
    CHECK(s.to_double_vector()[size_t(c)] == doctest::Approx(want).epsilon(1e-14));
  }
  CHECK(sum_to(x, {1, 1, 4}).shape() == Shape{1, 1, 4});
  CHECK(sum_to(x, {}).shape() == Shape{});
  CHECK(sum_to(x, {}).item() == doctest::Approx(sum(x).item()).epsilon(1e-14));
  CHECK(sum_to(x, {2, 3, 4}).shares_storage(x));  // same shape: x itself

  // expand copies along the broadcast dims.
  Tensor b = Tensor::from_vector(std::vector<double>{1, 2, 3}, {3, 1});
  Tensor e = expand(b, {2, 3, 4});
  CHECK(e.shape() == Shape{2, 3, 4});
  const std::vector<double> ev = e.to_double_vector();
  for (int64_t n = 0; n < 2; n++)
    for (int64_t c = 0; c < 3; c++)
      for (int64_t w = 0; w < 4; w++) CHECK(ev[size_t((n * 3 + c) * 4 + w)] == double(c + 1));
  CHECK(expand(Tensor::scalar(7.0, DType::f64), {2, 2}).to_double_vector() == std::vector<double>(4, 7.0));
  CHECK(expand(b, {3, 1}).shares_storage(b));
  // expand then sum_to is multiplication by the number of copies.
  CHECK(sum_to(expand(b, {5, 3, 2}), {3, 1}).to_double_vector() == std::vector<double>{10, 20, 30});
  // The gradient of mean is 1 / count everywhere.
  Tensor y = test::randn_t({4, 5}, 45).set_requires_grad();
  mean(y, {1}).backward(Tensor::ones({4}, DType::f64));
  CHECK(y.grad().to_double_vector() == std::vector<double>(20, 1.0 / 5));
}

TEST_CASE("reduce errors") {
  Tensor x = Tensor::zeros({2, 3, 4});
  CHECK_THROWS_WITH_AS(sum(x, {3}), Contains("sum: dimension 3 out of range for [2, 3, 4]"), Error);
  CHECK_THROWS_WITH_AS(sum(x, {-4}), Contains("sum: dimension -4 out of range for [2, 3, 4]"), Error);
  CHECK_THROWS_WITH_AS(mean(x, {1, -2}), Contains("mean: dimension -2 named twice"), Error);
  CHECK_THROWS_WITH_AS(sum(Tensor::zeros({2}, DType::i64)), Contains("sum: int64 is a storage type here"), Error);
  CHECK(sum(Tensor::zeros({2}, DType::bf16)).dtype() == DType::bf16);  // bf16 activations: through float32
  CHECK_THROWS_WITH_AS(sum_to(x, {5}), Contains("sum_to: cannot broadcast [5] to [2, 3, 4]"), Error);
  CHECK_THROWS_WITH_AS(sum_to(x, {1, 1, 1, 1}), Contains("sum_to: cannot broadcast [1, 1, 1, 1] to [2, 3, 4]"), Error);
  CHECK_THROWS_WITH_AS(expand(x, {3, 4}), Contains("expand: cannot broadcast [2, 3, 4] to [3, 4]"), Error);
  CHECK_THROWS_WITH_AS(expand(Tensor::zeros({2}), {3}), Contains("expand: cannot broadcast [2] to [3]"), Error);
  const Shape nine(9, 1);
  CHECK_THROWS_WITH_AS(sum(Tensor::zeros(nine)), Contains("sum: at most 8 dimensions"), Error);
}
