// Local response normalisation: gradient checks, a naive reference written as PyTorch defines
// it (pad the squares, average `size` channels), PyTorch's values, errors and the module.
#include <cmath>

#include "fixture.h"
#include "helpers.h"
#include "layers/gradcheck/cases.h"
#include "layers/lrn.h"

using namespace leuko;

namespace {
// torch.nn.functional.local_response_norm step by step: squares, zero-padded with size/2
// channels in front and (size-1)/2 behind, averaged over `size` consecutive channels (stride
// 1), then x / (k + alpha * avg)^beta.
std::vector<double> naive_lrn(const std::vector<double>& x, int64_t N, int64_t C, int64_t inner, int64_t size,
                              double alpha, double beta, double k) {
  const int64_t front = size / 2, back = (size - 1) / 2, Cp = C + front + back;
  std::vector<double> out(x.size());
  for (int64_t n = 0; n < N; n++) {
    for (int64_t i = 0; i < inner; i++) {
      std::vector<double> padded(size_t(Cp), 0.0);  // the squares of this column, zero-padded
      for (int64_t c = 0; c < C; c++) {
        const double v = x[size_t((n * C + c) * inner + i)];
        padded[size_t(c + front)] = v * v;
      }
      for (int64_t c = 0; c < C; c++) {  // output c averages padded[c .. c + size)
        double avg = 0;
        for (int64_t j = 0; j < size; j++) avg += padded[size_t(c + j)];
        avg /= double(size);
        const size_t e = size_t((n * C + c) * inner + i);
        out[e] = x[e] / std::pow(k + alpha * avg, beta);
      }
    }
  }
  return out;
}
}  // namespace

TEST_CASE("lrn: every gradient-check case passes") {
  for (const GradcheckCase& c : lrn_cases()) {
    INFO(c.op << ": " << c.name);
    test::check_gradients(c.f, c.inputs, c.rtol);
  }
}

TEST_CASE("lrn: forward against the naive float64 reference") {
  struct Cfg {
    Shape shape;
    int64_t size;
    double alpha, beta, k;
  };
  const std::vector<Cfg> cfgs = {{{2, 9, 3, 4}, 5, 1e-4, 0.75, 1.0}, {{1, 7, 5, 3}, 4, 0.7, 0.6, 2.0},
                                 {{3, 2, 6}, 5, 0.5, 1.1, 1.0},      {{1, 10, 2, 2}, 1, 0.3, 0.75, 1.0},
                                 {{2, 5, 1, 1}, 11, 0.9, 0.75, 0.5}, {{1, 6, 2, 3, 2}, 3, 0.4, 0.75, 1.0}};
  uint64_t seed = 20;
  for (const Cfg& c : cfgs) {
    INFO("input " << shape_str(c.shape) << " size " << c.size << " alpha " << c.alpha);
    Tensor x = test::randn_t(c.shape, seed++) * 3.0;
    const int64_t N = c.shape[0], C = c.shape[1], inner = x.numel() / (N * C);
    Tensor y = local_response_norm(x, c.size, c.alpha, c.beta, c.k);
    Tensor ref = Tensor::from_vector(naive_lrn(x.to_double_vector(), N, C, inner, c.size, c.alpha, c.beta, c.k),
                                     c.shape);
    CHECK(test::rel_error(y, ref) < 1e-14);  // float64 both, sums in a different order: rounding only
  }
}

TEST_CASE("lrn: PyTorch fixtures, forward and backward") {
  for (const char* name : {"lrn_alexnet", "lrn_strong", "lrn_even_size", "lrn_size_above_c", "lrn_3d", "lrn_5d"}) {
    INFO("fixture " << std::string(name));
    test::Fixture f = test::load_fixture(name);
    Tensor x = f.get("input").set_requires_grad();
    LocalResponseNorm m(f.meta_int("size"), f.meta_double("alpha"), f.meta_double("beta"), f.meta_double("k"));
    Tensor y = m(x);
    CHECK(test::rel_error(y, f.get("out")) < 1e-13);  // float64 vs float64: rounding only
    y.backward(f.get("grad_out"));
    CHECK(test::rel_error(x.grad(), f.get("grad_input")) < 1e-12);  // hand-derived vs autograd, float64
    CHECK(m.repr() == f.meta("repr"));
  }
}

TEST_CASE("lrn: float32 agrees with float64 on the CPU") {
  Tensor x = test::randn_t({2, 8, 5, 5}, 31);
  Tensor g = test::randn_t({2, 8, 5, 5}, 32);
  Tensor x64 = x.detach().set_requires_grad(), x32 = x.to(DType::f32).set_requires_grad();
  Tensor y64 = local_response_norm(x64, 5, 0.5, 0.75, 1.0), y32 = local_response_norm(x32, 5, 0.5, 0.75, 1.0);
  CHECK(test::rel_error(y32, y64) < 1e-6);  // float32 rounding of a few multiply-adds and a pow
  y64.backward(g);
  y32.backward(g.to(DType::f32));
  CHECK(test::rel_error(x32.grad(), x64.grad()) < 1e-5);
}

TEST_CASE("lrn: errors and module") {
  CHECK_THROWS_WITH_AS(local_response_norm(test::randn_t({4, 5}, 1), 3),
                       doctest::Contains("local_response_norm: input must be (N, C, ...) with at least 3 dimensions, "
                                         "got [4, 5]"),
                       Error);
  CHECK_THROWS_WITH_AS(local_response_norm(test::randn_t({1, 4, 2}, 1), 0),
                       doctest::Contains("local_response_norm: size 0 must be >= 1"), Error);
  LocalResponseNorm m(5);
  CHECK(m.parameters().empty());
  CHECK(m.state_dict().empty());
  CHECK(m.alpha == 1e-4);  // PyTorch's defaults
  CHECK(m.beta == 0.75);
  CHECK(m.k == 1.0);
  Tensor x = test::randn_t({1, 6, 3, 3}, 2);
  CHECK(test::max_abs_diff(m(x), local_response_norm(x, 5)) == 0.0);
}
