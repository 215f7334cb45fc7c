// Batch normalisation: gradient checks, a naive float64 reference written from the
// definitions, PyTorch's BatchNorm2d/1d over several training steps and in eval (running
// statistics, num_batches_tracked, gradients), the modules and the error messages.
#include <algorithm>
#include <cmath>

#include "fixture.h"
#include "helpers.h"
#include "layers/activation.h"
#include "layers/batchnorm.h"
#include "layers/gradcheck/cases.h"

using namespace leuko;

namespace {

// A new leaf holding t's values. Fixture tensors are shared handles (every get() of a name
// returns the same tensor), so marking them directly would accumulate gradients across checks.
Tensor fresh_leaf(const Tensor& t) { return t.detach().clone().set_requires_grad(true); }

// Channel c of x (N, C, HW) with its own offset and scale, as after a convolution.
Tensor channel_data(const Shape& s, uint64_t seed) {
  std::vector<double> v = test::randn_t(s, seed).to_double_vector();
  const int64_t C = s[1], HW = shape_numel(s) / (s[0] * C);
  for (size_t i = 0; i < v.size(); i++) {
    const int64_t c = (int64_t(i) / HW) % C;
    v[i] = v[i] * (0.5 + double(c)) + 3.0 * double(c) - 2.0;
  }
  return Tensor::from_vector(v, s);
}

struct NaiveBn {
  std::vector<double> y, running_mean, running_var;
};

// Batch norm from its definition, one channel at a time: mean, biased variance for the
// normalisation, unbiased variance for the running estimate.
NaiveBn naive_bn(const std::vector<double>& x, int64_t N, int64_t C, int64_t HW, const std::vector<double>& w,
                 const std::vector<double>& b, std::vector<double> rm, std::vector<double> rv, bool training,
                 double momentum, double eps) {
  NaiveBn r;
  r.y.resize(x.size());
  for (int64_t c = 0; c < C; c++) {
    double mean = rm[size_t(c)], var = rv[size_t(c)];
    if (training) {
      double s = 0;
      for (int64_t n = 0; n < N; n++)
        for (int64_t i = 0; i < HW; i++) s += x[size_t((n * C + c) * HW + i)];
      mean = s / double(N * HW);
      double q = 0;
      for (int64_t n = 0; n < N; n++)
        for (int64_t i = 0; i < HW; i++) q += std::pow(x[size_t((n * C + c) * HW + i)] - mean, 2);
      var = q / double(N * HW);
      rm[size_t(c)] = (1 - momentum) * rm[size_t(c)] + momentum * mean;
      rv[size_t(c)] = (1 - momentum) * rv[size_t(c)] + momentum * q / double(N * HW - 1);
    }
    for (int64_t n = 0; n < N; n++) {
      for (int64_t i = 0; i < HW; i++) {
        const size_t k = size_t((n * C + c) * HW + i);
        r.y[k] = (x[k] - mean) / std::sqrt(var + eps) * w[size_t(c)] + b[size_t(c)];
      }
    }
  }
  r.running_mean = rm;
  r.running_var = rv;
  return r;
}

Tensor vec(const std::vector<double>& v) { return Tensor::from_vector(v, {int64_t(v.size())}); }

// A module's state from a fixture's step-0 tensors (converted to the module's float32).
void load_initial_state(BatchNormBase& bn, const test::Fixture& fx) {
  bn.load_state_dict({{"weight", fx.get("weight")},
                      {"bias", fx.get("bias")},
                      {"running_mean", fx.get("running_mean0")},
                      {"running_var", fx.get("running_var0")},
                      {"num_batches_tracked", Tensor::zeros({}, DType::i64)}});
}

// A fixture of fx_batchnorm.py's _steps through the module, in float32 against PyTorch's
// float64: training steps (outputs, running statistics, the last step's gradients), the
// counter, then eval.
void check_module_steps(BatchNormBase& bn, const std::string& name) {
  test::Fixture fx = test::load_fixture(name);
  load_initial_state(bn, fx);
  const int64_t steps = fx.meta_int("steps");
  bn.train();
  for (int64_t k = 0; k < steps; k++) {
    INFO(name << " training step " << k);
    Tensor x = fx.get("input" + std::to_string(k), DType::f32);
    const bool last = k == steps - 1;
    if (last) x = fresh_leaf(x);
    Tensor out = bn(x);
    // float32 against float64: outputs of size ~1 to ~1e-6 relative.
    CHECK(test::rel_error(out, fx.get("out" + std::to_string(k))) < 1e-5);
    CHECK(test::rel_error(bn.running_mean, fx.get("running_mean" + std::to_string(k + 1))) < 1e-5);
    CHECK(test::rel_error(bn.running_var, fx.get("running_var" + std::to_string(k + 1))) < 1e-5);
    if (last) {
      out.backward(fx.get("grad_out", DType::f32));
      CHECK(test::rel_error(x.grad(), fx.get("grad_input")) < 1e-4);  // float32, through the statistics
      CHECK(test::rel_error(bn.weight.grad(), fx.get("grad_weight")) < 1e-5);
      CHECK(test::rel_error(bn.bias.grad(), fx.get("grad_bias")) < 1e-5);
    }
  }
  CHECK(bn.num_batches_tracked.dtype() == DType::i64);
  CHECK(bn.num_batches_tracked.item() == double(fx.meta_int("num_batches_tracked")));

  bn.eval();
  bn.zero_grad();
  Tensor x = fresh_leaf(fx.get("input_eval", DType::f32));
  Tensor rm_before = bn.running_mean.clone();
  Tensor out = bn(x);
  CHECK(test::rel_error(out, fx.get("out_eval")) < 1e-5);  // float32 against float64
  out.backward(fx.get("grad_out_eval", DType::f32));
  CHECK(test::rel_error(x.grad(), fx.get("grad_input_eval")) < 1e-5);
  CHECK(test::rel_error(bn.weight.grad(), fx.get("grad_weight_eval")) < 1e-5);
  CHECK(test::rel_error(bn.bias.grad(), fx.get("grad_bias_eval")) < 1e-5);
  // Eval changes neither the statistics nor the counter.
  CHECK(test::max_abs_diff(bn.running_mean, rm_before) == 0.0);
  CHECK(bn.num_batches_tracked.item() == double(fx.meta_int("num_batches_tracked")));
}

}  // namespace

TEST_CASE("batch_norm: every gradient-check case passes") {
  for (const GradcheckCase& c : batchnorm_cases()) {
    INFO(c.op << ": " << c.name);
    test::check_gradients(c.f, c.inputs, c.rtol);
  }
}

TEST_CASE("batch_norm: forward and running statistics against the naive float64 reference") {
  const double momentum = 0.3, eps = 1e-4;
  for (const Shape& s : std::vector<Shape>{{3, 4, 5, 2}, {1, 3, 2, 3}, {6, 2, 1, 1}, {5, 3}, {2, 3, 7}}) {
    INFO("shape " << shape_str(s));
    const int64_t N = s[0], C = s[1], HW = shape_numel(s) / (N * C);
    Tensor x = channel_data(s, 11);
    const std::vector<double> w = test::uniform_t({C}, 0.5, 2.0, 12).to_double_vector();
    const std::vector<double> b = test::randn_t({C}, 13).to_double_vector();
    const std::vector<double> rm = test::randn_t({C}, 14).to_double_vector();
    const std::vector<double> rv = test::uniform_t({C}, 0.5, 2.0, 15).to_double_vector();
    for (bool training : {true, false}) {
      INFO((training ? "training" : "eval"));
      Tensor trm = vec(rm), trv = vec(rv);
      Tensor y = batch_norm(x, vec(w), vec(b), trm, trv, training, momentum, eps);
      NaiveBn ref = naive_bn(x.to_double_vector(), N, C, HW, w, b, rm, rv, training, momentum, eps);
      CHECK(y.shape() == s);
      CHECK(test::rel_error(y, Tensor::from_vector(ref.y, s)) < 1e-12);  // float64 both
      CHECK(test::rel_error(trm, vec(ref.running_mean)) < 1e-12);
      CHECK(test::rel_error(trv, vec(ref.running_var)) < 1e-12);
    }
  }
}

TEST_CASE("batch_norm: training normalises each channel to mean 0 and variance 1 (no affine)") {
  Tensor x = channel_data({4, 3, 5, 5}, 21);
  Tensor y = batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true);
  std::vector<double> v = y.to_double_vector();
  for (int64_t c = 0; c < 3; c++) {
    double s = 0, q = 0;
    for (int64_t n = 0; n < 4; n++)
      for (int64_t i = 0; i < 25; i++) s += v[size_t((n * 3 + c) * 25 + i)];
    for (int64_t n = 0; n < 4; n++)
      for (int64_t i = 0; i < 25; i++) q += std::pow(v[size_t((n * 3 + c) * 25 + i)] - s / 100, 2);
    CHECK(std::fabs(s / 100) < 1e-12);
    // var / (var + eps) with eps = 1e-5: exactly 1 only without eps.
    const double var = q / 100;
    CHECK(var == doctest::Approx(1.0).epsilon(1e-4));
    CHECK(var < 1.0);
  }
}

TEST_CASE("batch_norm: a large mean against a small spread keeps its precision (float32)") {
  // 100 + 0.1 * randn in float32: E[x^2] - E[x]^2 in float32 would be off by ~6e-4 against a
  // variance of 0.01. Storing the mean in float32 alone shifts xhat by up to
  // ulp(100) / 2 / 0.1 ~ 4e-5, hence the tolerance.
  Tensor x32 = (test::randn_t({8, 2, 16, 16}, 31) * 0.1 + 100.0).to(DType::f32);
  Tensor y32 = batch_norm(x32, Tensor(), Tensor(), Tensor(), Tensor(), true);
  Tensor y64 = batch_norm(x32.to(DType::f64), Tensor(), Tensor(), Tensor(), Tensor(), true);
  CHECK(test::rel_error(y32, y64) < 1e-4);  // float32 against float64 on the same float32 input
}

TEST_CASE("batch_norm: PyTorch BatchNorm2d, three training steps then eval (float64, functional)") {
  test::Fixture fx = test::load_fixture("batchnorm_2d");
  const double momentum = fx.meta_double("momentum"), eps = fx.meta_double("eps");
  Tensor w = fresh_leaf(fx.get("weight")), b = fresh_leaf(fx.get("bias"));
  Tensor rm = fx.get("running_mean0").clone(), rv = fx.get("running_var0").clone();
  for (int k = 0; k < 3; k++) {
    INFO("training step " << k);
    Tensor x = fx.get("input" + std::to_string(k));
    if (k == 2) x = fresh_leaf(x);
    Tensor out = batch_norm2d(x, w, b, rm, rv, true, momentum, eps);
    // float64 against float64: ~1e-15 relative expected.
    CHECK(test::rel_error(out, fx.get("out" + std::to_string(k))) < 1e-12);
    CHECK(test::rel_error(rm, fx.get("running_mean" + std::to_string(k + 1))) < 1e-12);
    CHECK(test::rel_error(rv, fx.get("running_var" + std::to_string(k + 1))) < 1e-12);
    if (k == 2) {
      w.zero_grad();
      b.zero_grad();
      out.backward(fx.get("grad_out"));
      CHECK(test::rel_error(x.grad(), fx.get("grad_input")) < 1e-10);
      CHECK(test::rel_error(w.grad(), fx.get("grad_weight")) < 1e-10);
      CHECK(test::rel_error(b.grad(), fx.get("grad_bias")) < 1e-10);
    }
  }
  w.zero_grad();
  b.zero_grad();
  Tensor x = fresh_leaf(fx.get("input_eval"));
  Tensor out = batch_norm2d(x, w, b, rm, rv, false, momentum, eps);
  CHECK(test::rel_error(out, fx.get("out_eval")) < 1e-12);  // float64 both
  out.backward(fx.get("grad_out_eval"));
  CHECK(test::rel_error(x.grad(), fx.get("grad_input_eval")) < 1e-10);
  CHECK(test::rel_error(w.grad(), fx.get("grad_weight_eval")) < 1e-10);
  CHECK(test::rel_error(b.grad(), fx.get("grad_bias_eval")) < 1e-10);
}

TEST_CASE("batch_norm: PyTorch's batch statistics without affine or running statistics (N = 1)") {
  test::Fixture fx = test::load_fixture("batchnorm_plain");
  const double eps = fx.meta_double("eps");
  for (const std::string mode : {"train", "eval"}) {
    INFO(mode);
    // Functional, float64: without running statistics PyTorch uses the batch's in both modes.
    Tensor x = fresh_leaf(fx.get("input_" + mode));
    Tensor out = batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, eps);
    CHECK(test::rel_error(out, fx.get("out_" + mode)) < 1e-12);  // float64 both
    out.backward(fx.get("grad_out_" + mode));
    CHECK(test::rel_error(x.grad(), fx.get("grad_input_" + mode)) < 1e-10);
    // The module makes that choice itself, in either mode.
    BatchNorm2d bn(3, eps, 0.1, false, false);
    bn.train(mode == "train");
    CHECK(test::rel_error(bn(fx.get("input_" + mode, DType::f32)), fx.get("out_" + mode)) < 1e-5);  // float32
  }
}

TEST_CASE("batch_norm: BatchNorm2d and BatchNorm1d modules against PyTorch (float32)") {
  BatchNorm2d bn2(3, 1e-3, 0.2);
  check_module_steps(bn2, "batchnorm_2d");
  BatchNorm1d bn1(4);
  check_module_steps(bn1, "batchnorm_1d");
}

TEST_CASE("batch_norm: float32 on the CPU agrees with float64") {
  Tensor x = channel_data({4, 3, 6, 5}, 41);
  Tensor w = test::uniform_t({3}, 0.5, 2.0, 42), b = test::randn_t({3}, 43);
  for (bool training : {true, false}) {
    INFO((training ? "training" : "eval"));
    Tensor rm64 = test::randn_t({3}, 44), rv64 = test::uniform_t({3}, 0.5, 2.0, 45);
    Tensor rm32 = rm64.to(DType::f32), rv32 = rv64.to(DType::f32);
    Tensor x32 = x.to(DType::f32).set_requires_grad(true), x64 = x.clone().set_requires_grad(true);
    Tensor y32 = batch_norm(x32, w.to(DType::f32), b.to(DType::f32), rm32, rv32, training);
    Tensor y64 = batch_norm(x64, w, b, rm64, rv64, training);
    CHECK(test::rel_error(y32, y64) < 1e-6);  // float32 rounding of values ~1
    CHECK(test::rel_error(rm32, rm64) < 1e-6);
    CHECK(test::rel_error(rv32, rv64) < 1e-6);
    Tensor g = test::randn_t(y64.shape(), 46);
    y32.backward(g.to(DType::f32));
    y64.backward(g);
    CHECK(test::rel_error(x32.grad(), x64.grad()) < 1e-5);  // float32, through the statistics
  }
}

TEST_CASE("batch_norm: errors name the op and the problem") {
  Tensor x = test::randn_t({2, 3, 4, 4}, 51);
  Tensor rm = Tensor::zeros({3}, DType::f64), rv = Tensor::ones({3}, DType::f64);
  CHECK_THROWS_WITH_AS(batch_norm(x, Tensor::ones({4}, DType::f64), Tensor(), rm, rv, true),
                       doctest::Contains("batch_norm: weight must have shape [3] for input [2, 3, 4, 4], got [4]"),
                       Error);
  CHECK_THROWS_WITH_AS(batch_norm(x, Tensor(), Tensor(), Tensor::zeros({3, 1}, DType::f64), rv, true),
                       doctest::Contains("batch_norm: running_mean must have shape [3]"), Error);
  CHECK_THROWS_WITH_AS(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), false),
                       doctest::Contains("batch_norm: eval mode (training=false) needs running_mean and running_var"),
                       Error);
  CHECK_THROWS_WITH_AS(batch_norm(x, Tensor(), Tensor(), rm, Tensor(), true),
                       doctest::Contains("give both running_mean and running_var"), Error);
  CHECK_THROWS_WITH_AS(
      batch_norm(test::randn_t({1, 3, 1, 1}, 52), Tensor(), Tensor(), rm, rv, true),
      doctest::Contains("expected more than 1 value per channel when training, got input [1, 3, 1, 1]"), Error);
  CHECK_THROWS_WITH_AS(batch_norm(test::randn_t({3}, 53), Tensor(), Tensor(), rm, rv, true),
                       doctest::Contains("batch_norm: input must be (N, C, ...), got [3]"), Error);
  CHECK_THROWS_WITH_AS(batch_norm(x, Tensor::ones({3}), Tensor(), rm, rv, true),
                       doctest::Contains("batch_norm: inputs of different dtypes"), Error);
  CHECK_THROWS_WITH_AS(batch_norm2d(test::randn_t({2, 3, 4}, 54), Tensor(), Tensor(), Tensor(), Tensor(), true),
                       doctest::Contains("batch_norm2d: input must be (N, C, H, W), got [2, 3, 4]"), Error);
  BatchNorm2d bn(3);
  CHECK_THROWS_WITH_AS(bn(Tensor::zeros({2, 3})), doctest::Contains("BatchNorm2d: expected a 4-D input"), Error);
  CHECK_THROWS_WITH_AS(bn(Tensor::zeros({2, 4, 2, 2})), doctest::Contains("batch_norm: weight must have shape [4]"),
                       Error);
  CHECK(bn.num_batches_tracked.item() == 0.0);  // a failed forward counts nothing
  BatchNorm1d bn1(3);
  CHECK_THROWS_WITH_AS(bn1(Tensor::zeros({2, 3, 2, 2})), doctest::Contains("BatchNorm1d: expected a 2-D (N, C) or 3-D"),
                       Error);
  CHECK_THROWS_WITH_AS(BatchNorm2d(0), doctest::Contains("num_features must be positive"), Error);
}

TEST_CASE("batch_norm: modules have PyTorch's names, initialisation, printout and modes") {
  BatchNorm2d bn(64);
  const NamedTensors state = bn.state_dict();
  REQUIRE(state.size() == 5);
  const char* names[] = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"};
  for (size_t i = 0; i < 5; i++) CHECK(state[i].first == names[i]);
  CHECK(bn.named_parameters().size() == 2);
  CHECK(bn.parameter_count() == 128);
  CHECK(bn.weight.requires_grad());
  CHECK(!bn.running_mean.requires_grad());
  CHECK(bn.num_batches_tracked.shape() == Shape{});
  CHECK(bn.num_batches_tracked.dtype() == DType::i64);
  // reset_parameters: weight 1, bias 0; reset_running_stats: mean 0, var 1, count 0.
  CHECK(test::max_abs_diff(bn.weight, Tensor::ones({64})) == 0.0);
  CHECK(test::max_abs_diff(bn.bias, Tensor::zeros({64})) == 0.0);
  CHECK(test::max_abs_diff(bn.running_mean, Tensor::zeros({64})) == 0.0);
  CHECK(test::max_abs_diff(bn.running_var, Tensor::ones({64})) == 0.0);
  CHECK(bn.num_batches_tracked.item() == 0.0);
  CHECK(bn.repr() == "BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)");
  CHECK(BatchNorm1d(10, 1e-3, 0.01, false, false).repr() ==
        "BatchNorm1d(10, eps=0.001, momentum=0.01, affine=False, track_running_stats=False)");

  // Without affine or tracking, the corresponding tensors are absent (PyTorch's None).
  BatchNorm2d plain(8, 1e-5, 0.1, false, true);
  CHECK(plain.named_parameters().empty());
  CHECK(plain.named_buffers().size() == 3);
  CHECK(!plain.weight.defined());
  BatchNorm2d untracked(8, 1e-5, 0.1, true, false);
  CHECK(untracked.named_buffers().empty());
  CHECK(untracked.state_dict().size() == 2);

  // Training moves the statistics and counts; eval changes nothing.
  BatchNorm2d m(3, 1e-5, 0.5);
  Tensor x = channel_data({2, 3, 3, 3}, 61).to(DType::f32);
  m(x);
  m(x);
  CHECK(m.num_batches_tracked.item() == 2.0);
  const std::vector<double> rm = m.running_mean.to_double_vector();
  CHECK(rm[2] != 0.0);
  m.eval();
  Tensor y = m(x);
  CHECK(m.num_batches_tracked.item() == 2.0);
  CHECK(m.running_mean.to_double_vector() == rm);
  // Eval normalises with the running statistics: different from the batch's.
  m.train();
  BatchNorm2d fresh(3);
  CHECK(test::max_abs_diff(y, fresh(x)) > 1e-3);
}

TEST_CASE("batch_norm_relu: relu(batch_norm) bit for bit, values and gradients, training and eval, float32 and float64") {
  for (DType dt : {DType::f32, DType::f64}) {
    for (bool training : {true, false}) {
      CAPTURE(dtype_name(dt));
      CAPTURE(training);
      const Shape s{3, 4, 5, 6};
      const Tensor x0 = channel_data(s, 7101).to(dt), w0 = test::uniform_t({4}, 0.5, 2.0, 7102, dt);
      const Tensor b0 = test::randn_t({4}, 7103, dt), dy = test::randn_t(s, 7104, dt);
      auto run = [&](bool fused) {
        Tensor x = fresh_leaf(x0), w = fresh_leaf(w0), b = fresh_leaf(b0);
        Tensor rm = Tensor::zeros({4}, dt), rv = Tensor::ones({4}, dt);
        Tensor y = fused ? batch_norm_relu(x, w, b, rm, rv, training) : relu(batch_norm(x, w, b, rm, rv, training));
        y.backward(dy);
        return std::vector<Tensor>{y.detach(), x.grad(), w.grad(), b.grad(), rm, rv};
      };
      const std::vector<Tensor> fused = run(true), plain = run(false);
      for (size_t i = 0; i < fused.size(); i++) {
        CAPTURE(i);
        CHECK(test::max_abs_diff(fused[i], plain[i]) == 0.0);
      }
      // About half the outputs are clipped, and their gradient is cut.
      const std::vector<double> y = fused[0].to_double_vector();
      const auto zeros = std::count(y.begin(), y.end(), 0.0);
      CHECK(zeros > int64_t(y.size()) / 4);
      CHECK(zeros < 3 * int64_t(y.size()) / 4);
    }
  }
}

TEST_CASE("batch_norm_relu: the module's fused call counts the batch and traces both modules") {
  BatchNorm2d bn(3);
  ReLU act;
  Tensor x = channel_data({2, 3, 4, 4}, 7201).to(DType::f32);
  ModuleTrace trace;
  Tensor y = bn_relu(bn, &act, x);
  CHECK(test::max_abs_diff(y, relu(batch_norm(x, bn.weight, bn.bias, Tensor(), Tensor(), true))) == 0.0);
  CHECK(bn.num_batches_tracked.data<int64_t>()[0] == 1);
  REQUIRE(trace.rows.size() == 2);
  CHECK(trace.rows[0].module == &bn);
  CHECK(trace.rows[1].module == &act);
  CHECK(trace.rows[1].output == Shape{2, 3, 4, 4});
  CHECK(y.grad_fn()->name == "batch_norm_relu");
}
