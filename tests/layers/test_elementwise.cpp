// Elementwise ops: forward values against naive float64 loops (broadcasting of every kind),
// scalar forms, exp/log/neg, bias_add, and the errors.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>

#include "helpers.h"

using namespace leuko;
using doctest::Contains;

namespace {

// Naive broadcasting: the value of `v` (shape s) at the output coordinate `coord` of shape
// `out`, dimensions right-aligned, size-1 dimensions read at index 0.
double at(const std::vector<double>& v, const Shape& s, const Shape& out, const std::vector<int64_t>& coord) {
  const size_t pad = out.size() - s.size();
  int64_t idx = 0;
  for (size_t j = 0; j < s.size(); j++) idx = idx * s[j] + (s[j] == 1 ? 0 : coord[j + pad]);
  return v[size_t(idx)];
}

// The broadcast result of op over a (shape sa) and b (shape sb), by coordinates.
std::vector<double> naive_binary(const std::function<double(double, double)>& op, const std::vector<double>& a,
                                 const Shape& sa, const std::vector<double>& b, const Shape& sb, Shape* out_shape) {
  const size_t rank = std::max(sa.size(), sb.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; i++) {
    const int64_t da = i + sa.size() < rank ? 1 : sa[i + sa.size() - rank];
    const int64_t db = i + sb.size() < rank ? 1 : sb[i + sb.size() - rank];
    out[i] = da == 1 ? db : da;
  }
  *out_shape = out;
  std::vector<double> r(size_t(shape_numel(out)));
  std::vector<int64_t> coord(rank, 0);
  for (size_t i = 0; i < r.size(); i++) {
    int64_t rest = int64_t(i);
    for (size_t d = rank; d-- > 0;) {
      coord[d] = rest % out[d];
      rest /= out[d];
    }
    r[i] = op(at(a, sa, out, coord), at(b, sb, out, coord));
  }
  return r;
}

// The values rounded to float32 (and back).
std::vector<double> f32(const std::vector<double>& v) {
  std::vector<double> r;
  for (double e : v) r.push_back(double(float(e)));
  return r;
}

// Largest |x - ref| / max(|ref|, 1e-300) over elements.
double max_rel(const std::vector<double>& x, const std::vector<double>& ref) {
  REQUIRE(x.size() == ref.size());
  double m = 0;
  for (size_t i = 0; i < x.size(); i++) m = std::max(m, std::fabs(x[i] - ref[i]) / std::max(std::fabs(ref[i]), 1e-300));
  return m;
}

struct BinaryCase {
  const char* name;
  std::function<Tensor(const Tensor&, const Tensor&)> op;
  std::function<double(double, double)> ref;
};

const std::vector<BinaryCase>& binary_cases() {
  static const std::vector<BinaryCase> cases = {
      {"add", [](const Tensor& a, const Tensor& b) { return add(a, b); }, [](double x, double y) { return x + y; }},
      {"sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); }, [](double x, double y) { return x - y; }},
      {"mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }, [](double x, double y) { return x * y; }},
      {"div", [](const Tensor& a, const Tensor& b) { return div(a, b); }, [](double x, double y) { return x / y; }},
      {"operator+", [](const Tensor& a, const Tensor& b) { return a + b; }, [](double x, double y) { return x + y; }},
      {"operator-", [](const Tensor& a, const Tensor& b) { return a - b; }, [](double x, double y) { return x - y; }},
      {"operator*", [](const Tensor& a, const Tensor& b) { return a * b; }, [](double x, double y) { return x * y; }},
      {"operator/", [](const Tensor& a, const Tensor& b) { return a / b; }, [](double x, double y) { return x / y; }},
  };
  return cases;
}

}  // namespace

TEST_CASE("binary ops with broadcasting match a naive float64 loop") {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{3, 4}, {3, 4}},           // same shape: the non-broadcast kernel
      {{2, 3, 5}, {5}},           // rank mismatch, b broadcast over leading dims
      {{5}, {2, 3, 5}},           // rank mismatch, a broadcast
      {{4, 1}, {1, 3}},           // both broadcast
      {{2, 3, 1, 4}, {3, 2, 1}},  // -> (2, 3, 2, 4)
      {{7, 1, 5}, {1, 6, 1}},     // -> (7, 6, 5)
      {{1}, {3, 1, 2}},           // a one-element tensor
      {{}, {2, 2}},               // 0-d scalars on either side
      {{2, 2}, {}},
      {{}, {}},
      {{0, 3}, {3}},  // an empty result
      {{3, 1}, {3, 0}},
      {{2, 1, 2, 1, 2, 1, 2, 1}, {1, 2, 1, 2, 1, 2, 1, 2}},  // 8 dimensions, the most there are
      {{64, 1, 700}, {1, 8, 700}},                           // 358,400 elements: the OpenMP path
      {{300, 200}, {300, 200}},                              // 60,000 elements without broadcast: OpenMP too
  };
  uint64_t seed = 1;
  for (const auto& [sa, sb] : shapes) {
    CAPTURE(shape_str(sa));
    CAPTURE(shape_str(sb));
    Tensor a = test::randn_t(sa, seed++);
    Tensor b = test::uniform_t(sb, 0.5, 2.0, seed++);  // away from 0 for div
    const std::vector<double> av = a.to_double_vector(), bv = b.to_double_vector();
    for (const BinaryCase& c : binary_cases()) {
      CAPTURE(c.name);
      Shape want_shape;
      const std::vector<double> want = naive_binary(c.ref, av, sa, bv, sb, &want_shape);
      // float64: the same IEEE operation on the same operands, so exactly equal.
      Tensor out = c.op(a, b);
      CHECK(out.shape() == want_shape);
      CHECK(out.dtype() == DType::f64);
      CHECK(out.to_double_vector() == want);
      // float32: the float64 result of the float32 operands, rounded to float32, is the
      // correctly rounded float32 result (float64 has more than 2 * 24 + 2 bits), so exact.
      Tensor out32 = c.op(a.to(DType::f32), b.to(DType::f32));
      CHECK(out32.dtype() == DType::f32);
      CHECK(out32.shape() == want_shape);
      CHECK(out32.to_double_vector() == f32(naive_binary(c.ref, f32(av), sa, f32(bv), sb, &want_shape)));
    }
  }
}

TEST_CASE("scalar forms, exp, log and neg match naive float64 loops") {
  Tensor x = test::randn_t({3, 7}, 21);
  Tensor pos = test::uniform_t({5, 3}, 0.1, 5.0, 22);
  const std::vector<double> xv = x.to_double_vector(), pv = pos.to_double_vector();
  auto map = [](const std::vector<double>& v, const std::function<double(double)>& f) {
    std::vector<double> r;
    for (double e : v) r.push_back(f(e));
    return r;
  };
  // Exact in float64: each is one IEEE operation (a multiply by 1 and an add of 0 change nothing).
  CHECK(add(x, 1.25).to_double_vector() == map(xv, [](double e) { return e + 1.25; }));
  CHECK((x + 1.25).to_double_vector() == map(xv, [](double e) { return e + 1.25; }));
  CHECK((1.25 + x).to_double_vector() == map(xv, [](double e) { return e + 1.25; }));
  CHECK(sub(x, 0.3).to_double_vector() == map(xv, [](double e) { return e - 0.3; }));
  CHECK((x - 0.3).to_double_vector() == map(xv, [](double e) { return e - 0.3; }));
  CHECK(rsub(0.3, x).to_double_vector() == map(xv, [](double e) { return 0.3 - e; }));
  CHECK((0.3 - x).to_double_vector() == map(xv, [](double e) { return 0.3 - e; }));
  CHECK(mul(x, -3.5).to_double_vector() == map(xv, [](double e) { return -3.5 * e; }));
  CHECK((x * -3.5).to_double_vector() == map(xv, [](double e) { return -3.5 * e; }));
  CHECK((-3.5 * x).to_double_vector() == map(xv, [](double e) { return -3.5 * e; }));
  CHECK(rdiv(2.0, pos).to_double_vector() == map(pv, [](double e) { return 2.0 / e; }));
  CHECK((2.0 / pos).to_double_vector() == map(pv, [](double e) { return 2.0 / e; }));
  CHECK(neg(x).to_double_vector() == map(xv, [](double e) { return -e; }));
  CHECK((-x).to_double_vector() == map(xv, [](double e) { return -e; }));
  // div by a scalar multiplies by the reciprocal: within one rounding of x / s.
  CHECK(max_rel(div(x, 3.0).to_double_vector(), map(xv, [](double e) { return e / 3.0; })) <= 2.3e-16);
  CHECK(max_rel((x / 3.0).to_double_vector(), map(xv, [](double e) { return e / 3.0; })) <= 2.3e-16);
  CHECK(max_rel(affine(x, 0.5, -2.0).to_double_vector(), map(xv, [](double e) { return 0.5 * e - 2.0; })) <= 2.3e-16);
  // exp and log: the C library's, within 1e-15 relative.
  CHECK(max_rel(exp(x).to_double_vector(), map(xv, [](double e) { return std::exp(e); })) <= 1e-15);
  CHECK(max_rel(log(pos).to_double_vector(), map(pv, [](double e) { return std::log(e); })) <= 1e-15);
  // float32 versions against the float64 reference: within float32 rounding (<= 1e-6).
  CHECK(max_rel(exp(x.to(DType::f32)).to_double_vector(), map(xv, [](double e) { return std::exp(e); })) <= 1e-6);
  CHECK(max_rel(log(pos.to(DType::f32)).to_double_vector(), map(pv, [](double e) { return std::log(e); })) <= 1e-6);
  CHECK(affine(x.to(DType::f32), 0.5, -2.0).to_double_vector() ==
        map(xv, [](double e) { return double(0.5f * float(e) - 2.0f); }));  // exact: the same float ops
  // Large tensors (the OpenMP path) give the same values as small ones.
  Tensor big = test::randn_t({100000}, 23);
  const std::vector<double> bv = big.to_double_vector();
  CHECK(exp(big).to_double_vector() == map(bv, [](double e) { return std::exp(e); }));
  CHECK(add(big, 2.0).to_double_vector() == map(bv, [](double e) { return e + 2.0; }));
  CHECK(rdiv(1.0, big).to_double_vector() == map(bv, [](double e) { return 1.0 / e; }));
  // Outputs are new tensors.
  CHECK_FALSE(exp(x).shares_storage(x));
  CHECK_FALSE(add(x, x).shares_storage(x));
}

TEST_CASE("bias_add matches a naive loop") {
  for (const Shape& s : {Shape{2, 3, 4, 5}, Shape{4, 6}, Shape{1, 1, 1, 1}, Shape{3, 2, 7}, Shape{64, 16, 9, 9}}) {
    CAPTURE(shape_str(s));
    Tensor x = test::randn_t(s, 31), bias = test::randn_t({s[1]}, 32);
    const std::vector<double> xv = x.to_double_vector(), bv = bias.to_double_vector();
    const int64_t N = s[0], C = s[1], inner = shape_numel(s) / (N * C);
    std::vector<double> want(xv.size());
    for (int64_t n = 0; n < N; n++)
      for (int64_t c = 0; c < C; c++)
        for (int64_t i = 0; i < inner; i++)
          want[size_t((n * C + c) * inner + i)] = xv[size_t((n * C + c) * inner + i)] + bv[size_t(c)];
    Tensor out = bias_add(x, bias);
    CHECK(out.shape() == s);
    CHECK(out.to_double_vector() == want);
    // float32: one rounded add of rounded operands, as the reference computes it (exact).
    std::vector<double> want32(xv.size());
    for (size_t i = 0; i < xv.size(); i++)
      want32[i] = double(float(xv[i]) + float(bv[(i / size_t(inner)) % size_t(C)]));
    CHECK(bias_add(x.to(DType::f32), bias.to(DType::f32)).to_double_vector() == want32);
  }
  Tensor empty = bias_add(Tensor::zeros({0, 3, 2}, DType::f64), Tensor::ones({3}, DType::f64));
  CHECK(empty.shape() == Shape{0, 3, 2});
}

TEST_CASE("elementwise errors") {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4});
  CHECK_THROWS_WITH_AS(add(a, b), Contains("add: shapes [2, 3] and [4] do not broadcast"), Error);
  CHECK_THROWS_WITH_AS(mul(a, Tensor::zeros({3, 2})), Contains("mul: shapes [2, 3] and [3, 2] do not broadcast"),
                       Error);
  CHECK_THROWS_WITH_AS(div(Tensor::zeros({5, 1, 3}), Tensor::zeros({2, 4})),
                       Contains("div: shapes [5, 1, 3] and [2, 4] do not broadcast"), Error);
  CHECK_THROWS_WITH_AS(sub(a, Tensor::zeros({2, 3}, DType::f64)),
                       Contains("sub: inputs of different dtypes (float32[2, 3] on cpu and float64[2, 3] on cpu)"),
                       Error);
  CHECK_THROWS_WITH_AS(add(a, Tensor()), Contains("add: an input tensor is undefined"), Error);
  CHECK_THROWS_WITH_AS(add(Tensor::zeros({2}, DType::i64), Tensor::zeros({2}, DType::i64)),
                       Contains("add: int64 is a storage type here; convert the tensor to float32 first"), Error);
  CHECK_THROWS_WITH_AS(exp(Tensor::zeros({2}, DType::i64)), Contains("exp: int64 is a storage type here"), Error);
  CHECK_THROWS_WITH_AS(div(a, 0.0), Contains("div: division by the scalar 0"), Error);
  const Shape nine(9, 1);
  CHECK_THROWS_WITH_AS(add(Tensor::zeros(nine), Tensor::zeros({1})), Contains("add: at most 8 dimensions"), Error);
  CHECK_THROWS_WITH_AS(bias_add(Tensor::zeros({3}), Tensor::zeros({3})),
                       Contains("bias_add: input must be (N, C, ...), got [3]"), Error);
  CHECK_THROWS_WITH_AS(bias_add(Tensor::zeros({2, 3, 4}), Tensor::zeros({4})),
                       Contains("bias_add: bias has 4 elements for 3 channels"), Error);
  CHECK_THROWS_WITH_AS(bias_add(Tensor::zeros({2, 3}), Tensor::zeros({3, 1})),
                       Contains("bias_add: bias must have 1 dimensions, got [3, 1]"), Error);
  CHECK(broadcast_shapes({2, 1, 4}, {3, 1}, "test") == Shape{2, 3, 4});
  CHECK_THROWS_WITH_AS(broadcast_shapes({2}, {3}, "myop"), Contains("myop: shapes [2] and [3] do not broadcast"),
                       Error);
}
