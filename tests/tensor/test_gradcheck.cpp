// The gradient checker itself: it must fail on a wrong backward and pass on right ones; then
// every gradient-check case of the foundation's op families.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "helpers.h"
#include "layers/gradcheck/cases.h"

using namespace leuko;
using doctest::Contains;

namespace {

using V = const std::vector<Tensor>&;

// y = x^3 elementwise, with a backward of our own: 3 x^2 * factor, except element `wrong`
// which is multiplied by `wrong_factor`. factor = 1 and wrong < 0 is the correct backward.
Tensor cube(const Tensor& x, double factor, int64_t wrong = -1, double wrong_factor = 1.0) {
  Tensor out;
  {
    autograd::NoGradGuard no_grad;
    out = mul(mul(x, x), x);
  }
  if (autograd::needs_record({x})) {
    autograd::record(out, "cube", {x},
                     [sx = x.detach(), factor, wrong, wrong_factor](const Tensor& g, const std::vector<bool>&) {
                       Tensor gx = mul(mul(mul(g, sx), sx), 3.0 * factor);
                       if (wrong >= 0) gx.data<double>()[wrong] *= wrong_factor;
                       return std::vector<Tensor>{gx};
                     });
  }
  return out;
}

GradcheckResult check(const GradcheckFn& f, const std::vector<Tensor>& in) { return gradcheck(f, in); }

}  // namespace

TEST_CASE("gradcheck passes a correct backward") {
  Tensor x = test::randn_t({3, 4}, 1).set_requires_grad();
  const GradcheckResult r = check([](V in) { return cube(in[0], 1.0); }, {x});
  CHECK(r.ok);
  CHECK(r.checked == 12);
  CHECK(r.max_rel_error < 1e-7);  // central differences of a cubic: error ~eps^2, plus rounding
  CHECK(!r.worst.empty());
}

TEST_CASE("gradcheck fails a backward that is off by a factor") {
  Tensor x = test::randn_t({3, 4}, 2).set_requires_grad();
  // 10% off everywhere: relative error 0.1 / 1.1.
  GradcheckResult r = check([](V in) { return cube(in[0], 1.1); }, {x});
  CHECK_FALSE(r.ok);
  CHECK(r.max_rel_error == doctest::Approx(0.1 / 1.1).epsilon(1e-4));
  CHECK(r.worst.find("input 0") != std::string::npos);
  // 0.1% off: still two orders of magnitude above the tolerance (1e-5).
  r = check([](V in) { return cube(in[0], 1.001); }, {x});
  CHECK_FALSE(r.ok);
  CHECK(r.max_rel_error == doctest::Approx(0.001 / 1.001).epsilon(1e-3));
  // Right everywhere but element 7, which is doubled: found, and named.
  r = check([](V in) { return cube(in[0], 1.0, 7, 2.0); }, {x});
  CHECK_FALSE(r.ok);
  CHECK(r.worst.find("input 0 [7]") != std::string::npos);
  CHECK(r.max_rel_error == doctest::Approx(0.5).epsilon(1e-4));
  // A backward that forgets an input (returns no gradient for it).
  Tensor a = test::randn_t({2}, 3).set_requires_grad(), b = test::randn_t({2}, 4).set_requires_grad();
  r = check(
      [](V in) {
        Tensor out;
        {
          autograd::NoGradGuard no_grad;
          out = mul(in[0], in[1]);
        }
        autograd::record(out, "forgetful_mul", {in[0], in[1]},
                         [sb = in[1].detach()](const Tensor& g, const std::vector<bool>&) {
                           return std::vector<Tensor>{mul(g, sb), Tensor()};
                         });
        return out;
      },
      {a, b});
  CHECK_FALSE(r.ok);
  CHECK(r.worst.find("input 1") != std::string::npos);
  CHECK(r.worst.find("analytic 0 ") != std::string::npos);
}

TEST_CASE("gradcheck: the weighted sum checks every output, not only their sum") {
  // y = (2 x0, 3 x1) with a backward that swaps the two output gradients: checked through
  // sum(y) (weights 1, 1) it would pass; the checker's random weights catch it.
  Tensor x = test::randn_t({2}, 5).set_requires_grad();
  const GradcheckResult r = check(
      [](V in) {
        Tensor out;
        {
          autograd::NoGradGuard no_grad;
          out = Tensor::from_vector(
              std::vector<double>{in[0].to_double_vector()[0] * 2, in[0].to_double_vector()[1] * 3}, {2});
        }
        autograd::record(out, "swapped", {in[0]}, [](const Tensor& g, const std::vector<bool>&) {
          const std::vector<double> gv = g.to_double_vector();
          return std::vector<Tensor>{Tensor::from_vector(std::vector<double>{gv[1] * 2, gv[0] * 3}, {2})};
        });
        return out;
      },
      {x});
  CHECK_FALSE(r.ok);
}

TEST_CASE("gradcheck: inputs restored, fixed inputs skipped, errors") {
  Tensor x = test::randn_t({5}, 6).set_requires_grad();
  Tensor c = test::randn_t({5}, 7);  // not requiring grad: not checked
  const std::vector<double> xv = x.to_double_vector(), cv = c.to_double_vector();
  const GradcheckResult r = check([](V in) { return mul(exp(in[0]), in[1]); }, {x, c});
  CHECK(r.ok);
  CHECK(r.checked == 5);
  CHECK(x.to_double_vector() == xv);  // every perturbed value put back
  CHECK(c.to_double_vector() == cv);
  // A stale gradient from an earlier backward does not leak into the check.
  sum(mul(x, 100.0)).backward();
  CHECK(check([](V in) { return mul(exp(in[0]), in[1]); }, {x, c}).ok);

  CHECK_THROWS_WITH_AS(check([](V in) { return exp(in[0]); }, {Tensor::ones({2}).set_requires_grad()}),
                       Contains("gradcheck: inputs that require grad must be float64 CPU tensors, got float32[2]"),
                       Error);
  CHECK_THROWS_WITH_AS(check([](V in) { return exp(in[0]); }, {test::randn_t({2}, 8)}),
                       Contains("gradcheck: the output does not depend on any input that requires grad"), Error);
}

TEST_CASE("every gradient-check case of elementwise, reduce and matmul") {
  std::vector<GradcheckCase> cases;
  for (auto family : {elementwise_cases, reduce_cases, matmul_cases}) {
    for (GradcheckCase& c : family()) cases.push_back(std::move(c));
  }
  // Every op of the three families has at least one case.
  for (const char* op : {"add", "sub", "mul", "div", "scalar", "exp", "log", "neg", "bias_add", "sum", "mean", "sum_to",
                         "expand", "matmul"}) {
    CAPTURE(op);
    CHECK(std::any_of(cases.begin(), cases.end(), [&](const GradcheckCase& c) { return c.op == op; }));
  }
  for (const GradcheckCase& c : cases) {
    CAPTURE(c.op);
    CAPTURE(c.name);
    test::check_gradients(c.f, c.inputs, c.rtol);
  }
}
