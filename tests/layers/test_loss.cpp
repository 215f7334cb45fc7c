// Losses: gradient checks, naive float64 references written from the definitions (explicit
// softmax, PyTorch's documented formulas), PyTorch's values for every combination of class
// weights, label smoothing, ignore_index and reduction, stability at logits of 1e4, errors.
#include <cmath>

#include "fixture.h"
#include "helpers.h"
#include "layers/gradcheck/cases.h"
#include "layers/loss.h"

using namespace leuko;

namespace {

// A new leaf holding t's values. Fixture tensors are shared handles (every get() of a name
// returns the same tensor), so marking them directly would accumulate gradients across checks.
Tensor fresh_leaf(const Tensor& t) { return t.detach().clone().set_requires_grad(true); }

const char* reduction_name(LossReduction r) {
  return r == LossReduction::mean ? "mean" : r == LossReduction::sum ? "sum" : "none";
}

// torch.nn.functional.cross_entropy from its documentation: p = exp(z) / sum exp(z) (small
// logits: no max subtraction needed), per-row loss with weights and smoothing, the mean
// divided by the summed target weights.
std::vector<double> naive_cross_entropy(const std::vector<double>& z, const std::vector<int64_t>& t, int64_t C,
                                        const std::vector<double>& w, double eps, LossReduction r, int64_t ignore) {
  const int64_t N = int64_t(t.size());
  std::vector<double> rows(size_t(N), 0.0);
  double total = 0, denom = 0;
  for (int64_t i = 0; i < N; i++) {
    if (t[size_t(i)] == ignore) continue;
    double s = 0;
    for (int64_t c = 0; c < C; c++) s += std::exp(z[size_t(i * C + c)]);
    auto neg_log_p = [&](int64_t c) { return -std::log(std::exp(z[size_t(i * C + c)]) / s); };
    auto weight = [&](int64_t c) { return w.empty() ? 1.0 : w[size_t(c)]; };
    double smooth = 0;
    for (int64_t c = 0; c < C; c++) smooth += weight(c) * neg_log_p(c);
    const int64_t ti = t[size_t(i)];
    rows[size_t(i)] = (1 - eps) * weight(ti) * neg_log_p(ti) + eps / double(C) * smooth;
    total += rows[size_t(i)];
    denom += weight(ti);
  }
  if (r == LossReduction::none) return rows;
  return {r == LossReduction::sum ? total : total / denom};
}

Tensor ivec(const std::vector<int64_t>& v) { return Tensor::from_vector(v, {int64_t(v.size())}); }

}  // namespace

TEST_CASE("loss: every gradient-check case passes") {
  for (const GradcheckCase& c : loss_cases()) {
    INFO(c.op << ": " << c.name);
    test::check_gradients(c.f, c.inputs, c.rtol);
  }
}

TEST_CASE("loss: log_softmax against an explicit softmax") {
  Tensor x = test::randn_t({5, 7}, 1);
  Tensor out = log_softmax(x, 1);
  std::vector<double> v = x.to_double_vector(), ref(v.size());
  for (size_t i = 0; i < 5; i++) {
    double s = 0;
    for (size_t c = 0; c < 7; c++) s += std::exp(v[i * 7 + c]);
    for (size_t c = 0; c < 7; c++) ref[i * 7 + c] = std::log(std::exp(v[i * 7 + c]) / s);
  }
  CHECK(test::rel_error(out, Tensor::from_vector(ref, {5, 7})) < 1e-13);  // float64 both
  CHECK(log_softmax(test::randn_t({2, 3, 4}, 2)).shape() == Shape{2, 3, 4});
}

TEST_CASE("loss: log_softmax matches PyTorch, including a row with logits 1e4 apart") {
  test::Fixture fx = test::load_fixture("loss_log_softmax");
  Tensor x = fresh_leaf(fx.get("input"));
  Tensor out = log_softmax(x, 1);
  CHECK(test::rel_error(out, fx.get("out")) < 1e-13);  // float64 both
  out.backward(fx.get("grad_out"));
  CHECK(test::rel_error(x.grad(), fx.get("grad_input")) < 1e-12);
  // float32: the same row stays finite and exact to float32 rounding.
  CHECK(test::rel_error(log_softmax(fx.get("input", DType::f32), 1), fx.get("out")) < 1e-6);
}

TEST_CASE("loss: cross_entropy against the naive reference, every option") {
  const int64_t C = 4;
  Tensor z = test::randn_t({6, C}, 3);
  const std::vector<int64_t> t = {3, 0, -100, 1, 3, 2};
  const std::vector<double> w = test::uniform_t({C}, 0.3, 2.0, 4).to_double_vector();
  for (bool weighted : {false, true}) {
    for (double eps : {0.0, 0.25, 1.0}) {
      for (LossReduction r : {LossReduction::mean, LossReduction::sum, LossReduction::none}) {
        INFO((weighted ? "weighted" : "unweighted") << ", smoothing " << eps << ", " << reduction_name(r));
        CrossEntropyOptions o;
        if (weighted) o.weight = Tensor::from_vector(w, {C});
        o.label_smoothing = eps;
        o.reduction = r;
        Tensor out = cross_entropy(z, ivec(t), o);
        const std::vector<double> ref =
            naive_cross_entropy(z.to_double_vector(), t, C, weighted ? w : std::vector<double>{}, eps, r, -100);
        CHECK(out.shape() == (r == LossReduction::none ? Shape{6} : Shape{}));
        CHECK(test::rel_error(out, Tensor::from_vector(ref, out.shape())) < 1e-13);  // float64 both
      }
    }
  }
}

TEST_CASE("loss: cross_entropy matches PyTorch with weights, smoothing, ignore_index, every reduction") {
  test::Fixture fx = test::load_fixture("loss_cross_entropy");
  Tensor targets = fx.get("target"), weight = fx.get("weight");
  for (bool weighted : {false, true}) {
    for (int smooth : {0, 15}) {
      for (LossReduction r : {LossReduction::mean, LossReduction::sum, LossReduction::none}) {
        const std::string tag = std::string(weighted ? "w" : "u") + std::to_string(smooth) + "_" + reduction_name(r);
        INFO(tag);
        Tensor x = fresh_leaf(fx.get("input"));
        CrossEntropyOptions o;
        if (weighted) o.weight = weight;
        o.label_smoothing = smooth / 100.0;
        o.reduction = r;
        o.ignore_index = fx.meta_int("ignore_index");
        Tensor out = cross_entropy(x, targets, o);
        CHECK(test::rel_error(out, fx.get("out_" + tag)) < 1e-13);  // float64 both: ~1e-16 expected
        out.backward(fx.get("grad_out_" + tag));
        CHECK(test::rel_error(x.grad(), fx.get("grad_input_" + tag)) < 1e-12);
      }
    }
  }
  // A valid class as ignore_index: its rows weigh nothing, in the mean's denominator too.
  Tensor x = fresh_leaf(fx.get("input"));
  Tensor out = cross_entropy(x, fx.get("target_ignore2"), {weight, 0.1, LossReduction::mean, 2});
  CHECK(test::rel_error(out, fx.get("out_ignore2")) < 1e-13);
  out.backward(fx.get("grad_out_ignore2"));
  CHECK(test::rel_error(x.grad(), fx.get("grad_input_ignore2")) < 1e-12);
}

TEST_CASE("loss: cross_entropy is stable at logits of 1e4") {
  test::Fixture fx = test::load_fixture("loss_cross_entropy_large");
  CrossEntropyOptions o;
  o.label_smoothing = fx.meta_double("label_smoothing");
  Tensor x = fresh_leaf(fx.get("input"));
  Tensor out = cross_entropy(x, fx.get("target"), o);
  REQUIRE(std::isfinite(out.item()));
  CHECK(test::rel_error(out, fx.get("out")) < 1e-13);  // float64 both
  out.backward(fx.get("grad_out"));
  CHECK(test::rel_error(x.grad(), fx.get("grad_input")) < 1e-12);
  // float32 on the same values: finite, and as exact as float32 allows (loss ~1e4).
  Tensor x32 = fresh_leaf(fx.get("input", DType::f32));
  Tensor out32 = cross_entropy(x32, fx.get("target"), o);
  CHECK(test::rel_error(out32, fx.get("out")) < 1e-6);
  out32.backward(fx.get("grad_out", DType::f32));
  CHECK(test::rel_error(x32.grad(), fx.get("grad_input")) < 1e-6);
}

TEST_CASE("loss: cross_entropy edge cases") {
  Tensor z = test::randn_t({3, 4}, 5);
  // Every row ignored: the mean is 0 / 0 = NaN, as PyTorch; the sum is 0.
  CHECK(std::isnan(cross_entropy(z, ivec({-100, -100, -100})).item()));
  CHECK(cross_entropy(z, ivec({-100, -100, -100}), {Tensor(), 0.0, LossReduction::sum, -100}).item() == 0.0);
  // The module form is the function with fixed options.
  CrossEntropyLoss loss{{Tensor(), 0.1, LossReduction::sum, -100}};
  CHECK(loss(z, ivec({0, 1, 2})).item() ==
        cross_entropy(z, ivec({0, 1, 2}), {Tensor(), 0.1, LossReduction::sum, -100}).item());
  // Backward of the mean without weights: (softmax - one-hot) / N.
  Tensor x = z.clone().set_requires_grad(true);
  cross_entropy(x, ivec({1, 0, 3})).backward();
  std::vector<double> g = x.grad().to_double_vector(), v = z.to_double_vector();
  const int64_t t[] = {1, 0, 3};
  for (int64_t i = 0; i < 3; i++) {
    double s = 0;
    for (int64_t c = 0; c < 4; c++) s += std::exp(v[size_t(i * 4 + c)]);
    for (int64_t c = 0; c < 4; c++) {
      const double expect = (std::exp(v[size_t(i * 4 + c)]) / s - (c == t[i] ? 1.0 : 0.0)) / 3.0;
      CHECK(g[size_t(i * 4 + c)] == doctest::Approx(expect).epsilon(1e-12));
    }
  }
}

TEST_CASE("loss: bce_with_logits against the naive definition") {
  // -[pw * t * log sigmoid(x) + (1 - t) * log(1 - sigmoid(x))] with moderate x.
  Tensor x = test::randn_t({4, 3}, 6) * 2.0;
  Tensor t = test::uniform_t({4, 3}, 0.0, 1.0, 7);
  Tensor pw = test::uniform_t({3}, 0.5, 3.0, 8);
  std::vector<double> xv = x.to_double_vector(), tv = t.to_double_vector(), pv = pw.to_double_vector();
  for (bool use_pw : {false, true}) {
    std::vector<double> ref(xv.size());
    double total = 0;
    for (size_t i = 0; i < xv.size(); i++) {
      const double s = 1 / (1 + std::exp(-xv[i])), p = use_pw ? pv[i % 3] : 1.0;
      ref[i] = -(p * tv[i] * std::log(s) + (1 - tv[i]) * std::log(1 - s));
      total += ref[i];
    }
    INFO((use_pw ? "pos_weight" : "no pos_weight"));
    const Tensor p = use_pw ? pw : Tensor();
    CHECK(test::rel_error(bce_with_logits(x, t, p, LossReduction::none), Tensor::from_vector(ref, {4, 3})) < 1e-12);
    CHECK(bce_with_logits(x, t, p, LossReduction::sum).item() == doctest::Approx(total).epsilon(1e-12));
    CHECK(bce_with_logits(x, t, p).item() == doctest::Approx(total / 12).epsilon(1e-12));
  }
}

TEST_CASE("loss: bce_with_logits matches PyTorch, logits up to 1e4, with and without pos_weight") {
  test::Fixture fx = test::load_fixture("loss_bce");
  for (bool use_pw : {false, true}) {
    for (LossReduction r : {LossReduction::mean, LossReduction::sum, LossReduction::none}) {
      const std::string tag = std::string(use_pw ? "pw" : "plain") + "_" + reduction_name(r);
      INFO(tag);
      Tensor x = fresh_leaf(fx.get("input")), t = fresh_leaf(fx.get("target"));
      Tensor out = bce_with_logits(x, t, use_pw ? fx.get("pos_weight") : Tensor(), r);
      CHECK(test::rel_error(out, fx.get("out_" + tag)) < 1e-13);  // float64 both
      out.backward(fx.get("grad_out_" + tag));
      CHECK(test::rel_error(x.grad(), fx.get("grad_input_" + tag)) < 1e-12);
      CHECK(test::rel_error(t.grad(), fx.get("grad_target_" + tag)) < 1e-12);
      // float32: finite at 1e4, float32-exact.
      Tensor out32 = bce_with_logits(fx.get("input", DType::f32), fx.get("target", DType::f32),
                                     use_pw ? fx.get("pos_weight", DType::f32) : Tensor(), r);
      CHECK(test::rel_error(out32, fx.get("out_" + tag)) < 1e-6);
    }
  }
}

TEST_CASE("loss: errors name the op and the problem") {
  Tensor z = test::randn_t({3, 5}, 9);
  CHECK_THROWS_WITH_AS(cross_entropy(z, ivec({0, 5, 1})),
                       doctest::Contains("cross_entropy: target 5 of row 1 is not a class index in [0, 5)"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(z, ivec({0, -1, 1})), doctest::Contains("target -1 of row 1"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(z, Tensor::zeros({3})), doctest::Contains("cross_entropy: targets must be int64"),
                       Error);
  CHECK_THROWS_WITH_AS(cross_entropy(z, ivec({0, 1})),
                       doctest::Contains("cross_entropy: targets must have shape [3] for logits [3, 5], got [2]"),
                       Error);
  CHECK_THROWS_WITH_AS(cross_entropy(test::randn_t({3, 5, 2}, 10), ivec({0, 1, 2})),
                       doctest::Contains("cross_entropy: logits must be (N, C)"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(z, ivec({0, 1, 2}), {Tensor::ones({4}, DType::f64)}),
                       doctest::Contains("cross_entropy: weight must have shape [5]"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(z, ivec({0, 1, 2}), {Tensor::ones({5}, DType::f64).set_requires_grad(true)}),
                       doctest::Contains("class weights cannot require grad"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(z, ivec({0, 1, 2}), {Tensor(), 1.5}),
                       doctest::Contains("label_smoothing must be in [0, 1], got 1.5"), Error);
  CHECK_THROWS_WITH_AS(bce_with_logits(z, test::randn_t({5, 3}, 11)),
                       doctest::Contains("bce_with_logits: targets [5, 3] must have the shape of the logits [3, 5]"),
                       Error);
  CHECK_THROWS_WITH_AS(bce_with_logits(z, z, Tensor::ones({3}, DType::f64)),
                       doctest::Contains("bce_with_logits: pos_weight must have shape [C]"), Error);
  CHECK_THROWS_WITH_AS(log_softmax(z, 0), doctest::Contains("log_softmax: only the last dimension is supported"),
                       Error);
}
