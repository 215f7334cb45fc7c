// ReLU, dropout and flatten: gradient checks, PyTorch's relu, dropout's statistics and
// determinism, the modules and their printouts.
#include <cmath>

#include "fixture.h"
#include "helpers.h"
#include "kernels/activation.h"
#include "layers/activation.h"
#include "layers/elementwise.h"
#include "layers/gradcheck/cases.h"

using namespace leuko;

TEST_CASE("activation: every gradient-check case passes") {
  for (const GradcheckCase& c : activation_cases()) {
    INFO(c.op << ": " << c.name);
    test::check_gradients(c.f, c.inputs, c.rtol);
  }
}

TEST_CASE("relu: PyTorch fixture, zeros included") {
  test::Fixture f = test::load_fixture("activation_relu");
  Tensor x = f.get("input").set_requires_grad();
  Tensor y = relu(x);
  CHECK(test::max_abs_diff(y, f.get("out")) == 0.0);  // max(x, 0) is exact
  y.backward(f.get("grad_out"));
  // Exact: each gradient is either passed through or 0 (0 also at x == 0, as PyTorch's).
  CHECK(test::max_abs_diff(x.grad(), f.get("grad_input")) == 0.0);
  CHECK(ReLU().repr() == f.meta("repr_relu"));
  CHECK(ReLU(true).repr() == f.meta("repr_relu_inplace"));
  CHECK(Dropout().repr() == f.meta("repr_dropout"));
  CHECK(Dropout(0.2).repr() == f.meta("repr_dropout_02"));
  CHECK(Flatten().repr() == f.meta("repr_flatten"));
}

TEST_CASE("relu: values, float32, NaN") {
  Tensor x = Tensor::from_vector(std::vector<float>{-2.f, -0.f, 0.f, 1e-30f, 3.f, NAN}, {6});
  std::vector<float> y = relu(x).to_vector();
  CHECK(y[0] == 0.f);
  CHECK(y[1] == 0.f);
  CHECK(y[2] == 0.f);
  CHECK(y[3] == 1e-30f);
  CHECK(y[4] == 3.f);
  CHECK(std::isnan(y[5]));  // NaN passes through, as PyTorch's relu
}

TEST_CASE("dropout: fraction kept, scaling, mean") {
  const int64_t n = 200000;
  Tensor x = Tensor::ones({n}, DType::f64);
  for (double p : {0.1, 0.3, 0.5, 0.8}) {
    INFO("p = " << p);
    std::vector<double> y = dropout(x, p).to_double_vector();
    int64_t kept = 0;
    bool values_ok = true;
    for (double v : y) {
      if (v != 0.0) kept++;
      values_ok = values_ok && (v == 0.0 || v == 1.0 / (1.0 - p));  // kept values scaled by 1/(1-p)
    }
    CHECK(values_ok);
    // Binomial(n, 1 - p): the fraction kept is within 5 standard deviations of 1 - p.
    const double frac = double(kept) / double(n), sd = std::sqrt(p * (1 - p) / double(n));
    CHECK(std::fabs(frac - (1 - p)) < 5 * sd);
  }
  // The mask is not a pattern: neighbours are independent (a 2x2 table of consecutive pairs
  // holds each combination about a quarter of the time at p = 0.5).
  std::vector<double> y = dropout(x, 0.5).to_double_vector();
  int64_t both = 0;
  for (int64_t i = 0; i + 1 < n; i += 2) both += (y[size_t(i)] != 0.0 && y[size_t(i + 1)] != 0.0);
  const double pairs = double(n / 2), sd = std::sqrt(pairs * 0.25 * 0.75);
  CHECK(std::fabs(double(both) - 0.25 * pairs) < 5 * sd);
}

TEST_CASE("dropout: a seed reproduces the mask; consecutive calls differ") {
  Tensor x = test::randn_t({64, 33}, 3);
  manual_seed(11);
  Tensor a = dropout(x, 0.4);
  Tensor b = dropout(x, 0.4);
  manual_seed(11);
  Tensor c = dropout(x, 0.4);
  CHECK(test::max_abs_diff(a, c) == 0.0);
  CHECK(test::max_abs_diff(a, b) > 0.0);
  // float32 and float64 keep the same elements for the same seed (the mask is a hash).
  manual_seed(11);
  std::vector<float> a32 = dropout(x.to(DType::f32), 0.4).to_vector();
  std::vector<double> a64 = a.to_double_vector();
  bool same_mask = true;
  for (size_t i = 0; i < a64.size(); i++) same_mask = same_mask && ((a32[i] == 0.f) == (a64[i] == 0.0));
  CHECK(same_mask);
  // The mask is the documented hash: element i is kept iff dropout_hash(seed, i) >= p * 2^64.
  Generator g(11);
  const uint64_t seed = g.next_u64(), threshold = uint64_t(std::ldexp(0.4, 64));
  bool matches_hash = true;
  for (size_t i = 0; i < a64.size(); i++)
    matches_hash = matches_hash && ((a64[i] != 0.0) == (kernels::dropout_hash(seed, i) >= threshold));
  CHECK(matches_hash);
}

TEST_CASE("dropout: backward applies the same mask and scale") {
  Tensor x = test::uniform_t({10, 20}, 1.0, 2.0, 5).set_requires_grad();  // no zeros: out == 0 means dropped
  Tensor y = dropout(x, 0.3);
  Tensor g = test::randn_t({10, 20}, 6);
  y.backward(g);
  std::vector<double> yv = y.to_double_vector(), gv = g.to_double_vector(), gx = x.grad().to_double_vector();
  bool ok = true;
  for (size_t i = 0; i < yv.size(); i++) {
    const double want = yv[i] != 0.0 ? gv[i] / 0.7 : 0.0;
    ok = ok && std::fabs(gx[i] - want) <= 1e-15 * std::fabs(want);  // g * (1 / 0.7): one rounding apart
  }
  CHECK(ok);
}

TEST_CASE("dropout: identity in eval and for p = 0; p checked") {
  Tensor x = test::randn_t({3, 4}, 8);
  Tensor e = dropout(x, 0.5, false);
  CHECK(e.shares_storage(x));
  CHECK(test::max_abs_diff(e, x) == 0.0);
  CHECK(test::max_abs_diff(dropout(x, 0.0), x) == 0.0);
  CHECK_THROWS_WITH_AS(dropout(x, 1.0), doctest::Contains("dropout: probability p = 1 must be in [0, 1)"), Error);
  CHECK_THROWS_WITH_AS(dropout(x, -0.1), doctest::Contains("must be in [0, 1)"), Error);
  CHECK_THROWS_WITH_AS(Dropout(1.5), doctest::Contains("Dropout: probability p = 1.5"), Error);
}

TEST_CASE("dropout: module follows train and eval") {
  Dropout m(0.5);
  CHECK(m.parameters().empty());
  Tensor x = Tensor::ones({1000}, DType::f64);
  std::vector<double> y = m(x).to_double_vector();
  int64_t zeros = 0;
  for (double v : y) zeros += v == 0.0;
  CHECK(zeros > 300);  // training: about half dropped (Binomial(1000, 0.5): 300 is > 12 sd away)
  CHECK(zeros < 700);
  m.eval();
  CHECK(test::max_abs_diff(m(x), x) == 0.0);
  m.train();
  CHECK(test::max_abs_diff(m(x), x) > 0.0);
}

TEST_CASE("relu and flatten modules") {
  ReLU r(true);
  CHECK(r.inplace);
  Tensor x = test::randn_t({2, 3, 4, 5}, 12);
  Tensor y = r(x);
  CHECK(!y.shares_storage(x));  // inplace accepted but out of place: x keeps its values
  CHECK(test::max_abs_diff(y, relu(x)) == 0.0);
  Flatten f;
  Tensor z = f(x);
  CHECK(z.shape() == Shape{2, 60});
  CHECK(z.shares_storage(x));  // a view
  CHECK(Flatten(2)(x).shape() == Shape{2, 3, 20});
  CHECK(Flatten(2).repr() == "Flatten(start_dim=2, end_dim=-1)");
  CHECK(f.parameters().empty());
}

TEST_CASE("py_float prints floats as Python's repr") {
  // Python 3: repr(0.5), repr(1.0), repr(1e-4), repr(1e-5), repr(0.1), repr(100.0), repr(1e16),
  // repr(0.0), repr(-2.5), repr(1/3), repr(123456.789)
  CHECK(detail::py_float(0.5) == "0.5");
  CHECK(detail::py_float(1.0) == "1.0");
  CHECK(detail::py_float(1e-4) == "0.0001");
  CHECK(detail::py_float(1e-5) == "1e-05");
  CHECK(detail::py_float(0.1) == "0.1");
  CHECK(detail::py_float(100.0) == "100.0");
  CHECK(detail::py_float(1e16) == "1e+16");
  CHECK(detail::py_float(0.0) == "0.0");
  CHECK(detail::py_float(-2.5) == "-2.5");
  CHECK(detail::py_float(1.0 / 3.0) == "0.3333333333333333");
  CHECK(detail::py_float(123456.789) == "123456.789");
}

TEST_CASE("add_relu: relu(a + b) bit for bit, values and gradients; shapes must match") {
  for (DType dt : {DType::f32, DType::f64}) {
    CAPTURE(dtype_name(dt));
    const Tensor a0 = test::randn_t({2, 3, 5, 7}, 8101, dt), b0 = test::randn_t({2, 3, 5, 7}, 8102, dt);
    const Tensor dy = test::randn_t({2, 3, 5, 7}, 8103, dt);
    auto run = [&](bool fused) {
      Tensor a = a0.detach().clone().set_requires_grad(true), b = b0.detach().clone().set_requires_grad(true);
      Tensor y = fused ? add_relu(a, b) : relu(add(a, b));
      y.backward(dy);
      return std::vector<Tensor>{y.detach(), a.grad(), b.grad()};
    };
    const std::vector<Tensor> fused = run(true), plain = run(false);
    for (size_t i = 0; i < fused.size(); i++) {
      CAPTURE(i);
      CHECK(test::max_abs_diff(fused[i], plain[i]) == 0.0);
    }
  }
  // NaN passes, as relu's does.
  const Tensor n = add_relu(Tensor::from_vector(std::vector<float>{NAN, -1, 2}, {3}), Tensor::zeros({3}));
  CHECK(std::isnan(n.to_vector()[0]));
  CHECK(n.to_vector()[1] == 0.0f);
  CHECK(n.to_vector()[2] == 2.0f);
  CHECK_THROWS_WITH_AS(add_relu(Tensor::zeros({2, 3}), Tensor::zeros({3})), doctest::Contains("no broadcasting"), Error);
}
