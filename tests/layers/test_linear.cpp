// linear and Linear on the CPU: gradient checks, a naive float64 reference, PyTorch's float64
// results, the module (names, shapes, init, repr) and the error messages.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "fixture.h"
#include "helpers.h"
#include "layers/gradcheck/cases.h"
#include "layers/linear.h"

using namespace leuko;
using leuko::test::rel_error;

namespace {

// y[n, o] = b[o] + sum_i x[n, i] w[o, i]; for an upstream dy: dx = dy w, dw = dy^T x, db = sum_n dy.
struct Naive {
  Tensor y, dx, dw, db;
};

Naive naive_linear(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& dy) {
  const int64_t N = x.size(0), I = x.size(1), O = w.size(0);
  const std::vector<double> xv = x.to_double_vector(), wv = w.to_double_vector(), dyv = dy.to_double_vector();
  const std::vector<double> bv = b.defined() ? b.to_double_vector() : std::vector<double>(size_t(O), 0.0);
  std::vector<double> y(size_t(N * O)), dx(xv.size(), 0.0), dw(wv.size(), 0.0), db(size_t(O), 0.0);
  for (int64_t n = 0; n < N; n++)
    for (int64_t o = 0; o < O; o++) {
      const double g = dyv[size_t(n * O + o)];
      double acc = bv[size_t(o)];
      db[size_t(o)] += g;
      for (int64_t i = 0; i < I; i++) {
        acc += xv[size_t(n * I + i)] * wv[size_t(o * I + i)];
        dx[size_t(n * I + i)] += g * wv[size_t(o * I + i)];
        dw[size_t(o * I + i)] += g * xv[size_t(n * I + i)];
      }
      y[size_t(n * O + o)] = acc;
    }
  return {Tensor::from_vector(y, {N, O}), Tensor::from_vector(dx, x.shape()), Tensor::from_vector(dw, w.shape()),
          Tensor::from_vector(db, {O})};
}

}  // namespace

TEST_CASE("linear: gradient checks") {
  const std::vector<GradcheckCase> cases = linear_cases();
  CHECK(cases.size() >= 5);
  for (const GradcheckCase& c : cases) {
    INFO("case: " << c.name);
    CHECK((c.op == "linear" || c.op == "linear_relu"));
    test::check_gradients(c.f, c.inputs, c.rtol);
  }
}

TEST_CASE("linear: forward and backward match a naive float64 reference") {
  // (N, in, out, bias); the last crosses the CPU gemm's 256-wide blocks in every dimension.
  struct Config {
    int64_t n, in, out;
    bool bias;
  };
  uint64_t seed = 10;
  for (Config c : {Config{1, 1, 1, true}, Config{3, 7, 5, true}, Config{4, 9, 3, false}, Config{5, 300, 260, true}}) {
    INFO("N " << c.n << ", in " << c.in << ", out " << c.out << ", bias " << c.bias);
    Tensor x = test::leaf(test::randn_t({c.n, c.in}, seed++));
    Tensor w = test::leaf(test::randn_t({c.out, c.in}, seed++));
    Tensor b = c.bias ? test::leaf(test::randn_t({c.out}, seed++)) : Tensor();
    Tensor y = linear(x, w, b);
    Tensor dy = test::randn_t(y.shape(), seed++);
    const Naive ref = naive_linear(x, w, b, dy);
    // float64 against float64 in another summation order
    CHECK(rel_error(y, ref.y) <= 1e-12);
    y.backward(dy);
    CHECK(rel_error(x.grad(), ref.dx) <= 1e-12);
    CHECK(rel_error(w.grad(), ref.dw) <= 1e-12);
    if (b.defined()) CHECK(rel_error(b.grad(), ref.db) <= 1e-12);

    // float32 kernels against the float64 reference: float32 rounding over sums of <= 300 terms
    Tensor x32 = test::leaf(x.detach().to(DType::f32)), w32 = test::leaf(w.detach().to(DType::f32));
    Tensor b32 = b.defined() ? test::leaf(b.detach().to(DType::f32)) : Tensor();
    Tensor y32 = linear(x32, w32, b32);
    CHECK(rel_error(y32, ref.y) <= 1e-5);
    y32.backward(dy.to(DType::f32));
    CHECK(rel_error(x32.grad(), ref.dx) <= 1e-5);
    CHECK(rel_error(w32.grad(), ref.dw) <= 1e-5);
    if (b32.defined()) CHECK(rel_error(b32.grad(), ref.db) <= 1e-5);
  }
}

TEST_CASE("linear: an input without grad gets none") {
  Tensor x = test::randn_t({3, 4}, 31);
  Tensor w = test::leaf(test::randn_t({2, 4}, 32));
  Tensor b = test::leaf(test::randn_t({2}, 33));
  Tensor y = linear(x, w, b);
  Tensor dy = test::randn_t(y.shape(), 34);
  y.backward(dy);
  CHECK_FALSE(x.grad().defined());
  const Naive ref = naive_linear(x, w, b, dy);
  CHECK(rel_error(w.grad(), ref.dw) <= 1e-12);  // float64, another summation order
  CHECK(rel_error(b.grad(), ref.db) <= 1e-12);
}

TEST_CASE("linear: PyTorch's float64 results") {
  for (const char* name : {"conv_linear_bias", "conv_linear_nobias"}) {
    INFO("fixture " << name);
    test::Fixture fx = test::load_fixture(name);
    Tensor x = test::leaf(fx.get("input")), w = test::leaf(fx.get("weight"));
    Tensor b = fx.has("bias") ? test::leaf(fx.get("bias")) : Tensor();
    Tensor y = linear(x, w, b);
    // float64 against float64: the same sums in another order
    CHECK(rel_error(y, fx.get("out")) <= 1e-10);
    y.backward(fx.get("grad_out"));
    CHECK(rel_error(x.grad(), fx.get("grad_input")) <= 1e-10);
    CHECK(rel_error(w.grad(), fx.get("grad_weight")) <= 1e-10);
    if (b.defined()) CHECK(rel_error(b.grad(), fx.get("grad_bias")) <= 1e-10);

    Linear m(w.size(1), w.size(0), b.defined());
    CHECK(m.repr() == fx.meta("repr"));  // as torch.nn.Linear prints
  }
}

TEST_CASE("Linear: parameters, names, shapes and PyTorch's default initialisation") {
  Generator gen(3);
  Linear m(200, 30, true, gen);
  const NamedTensors params = m.named_parameters();
  REQUIRE(params.size() == 2);
  CHECK(params[0].first == "weight");
  CHECK(params[1].first == "bias");
  CHECK(m.weight.shape() == Shape{30, 200});
  CHECK(m.bias.shape() == Shape{30});
  CHECK(params[0].second.shares_storage(m.weight));
  CHECK(m.parameter_count() == 30 * 200 + 30);
  CHECK(m.type_name() == "Linear");
  CHECK(m.extra_repr() == "in_features=200, out_features=30, bias=True");

  // weight: kaiming_uniform_(a = sqrt(5)) = uniform within +-1/sqrt(in); bias the same bound.
  const double bound = 1.0 / std::sqrt(200.0);
  const std::vector<double> wv = m.weight.to_double_vector();
  double max_abs = 0, sum = 0, sq = 0;
  for (double v : wv) {
    max_abs = std::max(max_abs, std::fabs(v));
    sum += v;
    sq += v * v;
  }
  const double n = double(wv.size()), mean = sum / n, var = sq / n - mean * mean;
  CHECK(max_abs <= bound);
  CHECK(max_abs >= 0.95 * bound);  // 6000 draws
  // mean: standard error bound / sqrt(3 n) ~ 0.007 bound; variance bound^2 / 3, ~1.2% standard error
  CHECK(std::fabs(mean) <= 0.05 * bound);
  CHECK(var == doctest::Approx(bound * bound / 3).epsilon(0.1));
  for (double v : m.bias.to_double_vector()) CHECK(std::fabs(v) <= bound);

  Linear nobias(5, 2, false);
  CHECK(nobias.named_parameters().size() == 1);
  CHECK_FALSE(nobias.bias.defined());
  CHECK(nobias.extra_repr() == "in_features=5, out_features=2, bias=False");

  Tensor x = test::randn_t({4, 200}, 41, DType::f32);
  CHECK(test::max_abs_diff(m(x), linear(x, m.weight, m.bias)) == 0.0);
  m.eval();  // a linear layer behaves the same in training and evaluation
  CHECK(test::max_abs_diff(m(x), linear(x, m.weight, m.bias)) == 0.0);
}

TEST_CASE("linear: error messages") {
  Tensor x = test::randn_t({2, 4}, 51);
  CHECK_THROWS_WITH_AS(linear(x, test::randn_t({3, 5}, 52)),
                       doctest::Contains("linear: input [2, 4] has 4 features but weight [3, 5] expects 5"), Error);
  CHECK_THROWS_WITH_AS(linear(test::randn_t({2, 3, 4}, 53), test::randn_t({3, 4}, 54)),
                       doctest::Contains("linear: input must be (N, in_features), got [2, 3, 4]"), Error);
  CHECK_THROWS_WITH_AS(linear(x, test::randn_t({3, 4}, 55), test::randn_t({4}, 56)),
                       doctest::Contains("linear: bias must be (3,)"), Error);
  CHECK_THROWS_WITH_AS(Linear(0, 3), doctest::Contains("Linear: in_features and out_features must be positive"),
                       Error);
}
