// conv2d and Conv2d on the CPU: gradient checks, a naive 7-loop float64 reference (forward and
// both backward passes), PyTorch's float64 results, the module (names, shapes, init, repr) and
// the error messages.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "fixture.h"
#include "helpers.h"
#include "layers/activation.h"
#include "layers/conv2d.h"
#include "layers/gradcheck/cases.h"
#include "layers/linear.h"

using namespace leuko;
using leuko::test::load_fixture;
using leuko::test::rel_error;

namespace {

// The textbook definition, loop by loop, in float64: y = conv(x, w) + b and, for an upstream
// gradient dy, dx and dw by the chain rule applied to every term of the same sum.
struct Naive {
  Tensor y, dx, dw, db;
};

Naive naive_conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& dy_or_none,
                   const Conv2dOptions& o) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t K = w.size(0), Cg = w.size(1), R = w.size(2), S = w.size(3), Kg = K / o.groups;
  const int64_t P = (H + 2 * o.padding.h - o.dilation.h * (R - 1) - 1) / o.stride.h + 1;
  const int64_t Q = (W + 2 * o.padding.w - o.dilation.w * (S - 1) - 1) / o.stride.w + 1;
  const std::vector<double> xv = x.to_double_vector(), wv = w.to_double_vector();
  const std::vector<double> bv = b.defined() ? b.to_double_vector() : std::vector<double>(size_t(K), 0.0);
  const std::vector<double> dyv = dy_or_none.defined() ? dy_or_none.to_double_vector() : std::vector<double>();
  std::vector<double> y(size_t(N * K * P * Q)), dx(xv.size(), 0.0), dw(wv.size(), 0.0), db(size_t(K), 0.0);
  for (int64_t n = 0; n < N; n++)
    for (int64_t k = 0; k < K; k++)
      for (int64_t p = 0; p < P; p++)
        for (int64_t q = 0; q < Q; q++) {
          const size_t yi = size_t(((n * K + k) * P + p) * Q + q);
          const double g = dyv.empty() ? 0.0 : dyv[yi];
          double acc = bv[size_t(k)];
          db[size_t(k)] += g;
          for (int64_t c = 0; c < Cg; c++)
            for (int64_t r = 0; r < R; r++)
              for (int64_t s = 0; s < S; s++) {
                const int64_t h = p * o.stride.h - o.padding.h + r * o.dilation.h;
                const int64_t ww = q * o.stride.w - o.padding.w + s * o.dilation.w;
                if (h < 0 || h >= H || ww < 0 || ww >= W) continue;
                const int64_t ci = (k / Kg) * Cg + c;  // the input channel, in k's group
                const size_t xi = size_t(((n * C + ci) * H + h) * W + ww);
                const size_t wi = size_t(((k * Cg + c) * R + r) * S + s);
                acc += wv[wi] * xv[xi];
                dx[xi] += wv[wi] * g;
                dw[wi] += xv[xi] * g;
              }
          y[yi] = acc;
        }
  return {Tensor::from_vector(y, {N, K, P, Q}), Tensor::from_vector(dx, x.shape()), Tensor::from_vector(dw, w.shape()),
          Tensor::from_vector(db, {K})};
}

struct Config {
  const char* name;
  Shape x, w;
  Conv2dOptions opt;
  bool bias = true;
};

// Shapes from tiny to large enough that im2col, col2im and the gemm take their OpenMP paths.
const std::vector<Config> kConfigs = {
    {"3x3", {2, 3, 6, 7}, {4, 3, 3, 3}, {}},
    {"stride 2, padding 1", {3, 4, 9, 8}, {5, 4, 3, 3}, {2, 1}},
    {"padding 2, dilation 2", {1, 3, 10, 9}, {2, 3, 3, 3}, {1, 2, 2}},
    {"groups 2, (2, 3) kernel", {2, 6, 7, 8}, {4, 3, 2, 3}, {{1, 2}, {1, 0}, 1, 2}},
    {"depthwise", {2, 4, 6, 6}, {4, 1, 3, 3}, {1, 1, 1, 4}},
    {"1x1, no bias", {2, 5, 4, 3}, {3, 5, 1, 1}, {}, false},
    {"1x1 stride 2, padding 1", {1, 3, 5, 6}, {2, 3, 1, 1}, {2, 1}},
    {"11x11 stride 4 padding 2", {2, 3, 31, 27}, {4, 3, 11, 11}, {4, 2}},
    {"large: 16 -> 32 channels, 24x20, padding 1", {2, 16, 24, 20}, {32, 16, 3, 3}, {1, 1}},
};

Tensor bias_for(const Config& c, uint64_t seed, DType dt = DType::f64) {
  return c.bias ? test::randn_t({c.w[0]}, seed, dt) : Tensor();
}

}  // namespace

TEST_CASE("conv2d: gradient checks") {
  const std::vector<GradcheckCase> cases = conv2d_cases();
  CHECK(cases.size() >= 10);
  for (const GradcheckCase& c : cases) {
    INFO("case: " << c.name);
    CHECK((c.op == "conv2d" || c.op == "conv2d_relu"));
    test::check_gradients(c.f, c.inputs, c.rtol);
  }
}

TEST_CASE("conv2d: forward and backward match a naive float64 reference") {
  uint64_t seed = 1;
  for (const Config& c : kConfigs) {
    INFO("config: " << c.name);
    Tensor x = test::leaf(test::randn_t(c.x, seed++));
    Tensor w = test::leaf(test::randn_t(c.w, seed++));
    Tensor b = bias_for(c, seed++);
    if (b.defined()) b.set_requires_grad(true);
    Tensor y = conv2d(x, w, b, c.opt);
    Tensor dy = test::randn_t(y.shape(), seed++);
    const Naive ref = naive_conv2d(x, w, b, dy, c.opt);
    REQUIRE(y.shape() == ref.y.shape());
    // float64 against float64, summed in another order: agreement to rounding.
    CHECK(rel_error(y, ref.y) <= 1e-12);
    y.backward(dy);
    CHECK(rel_error(x.grad(), ref.dx) <= 1e-12);
    CHECK(rel_error(w.grad(), ref.dw) <= 1e-12);
    if (b.defined()) CHECK(rel_error(b.grad(), ref.db) <= 1e-12);

    // The float32 kernels against the same float64 reference: float32 rounding, ~1e-7 per
    // operation, grown by sums of up to a few hundred terms.
    Tensor x32 = test::leaf(x.detach().to(DType::f32)), w32 = test::leaf(w.detach().to(DType::f32));
    Tensor b32 = b.defined() ? test::leaf(b.detach().to(DType::f32)) : Tensor();
    Tensor y32 = conv2d(x32, w32, b32, c.opt);
    CHECK(y32.dtype() == DType::f32);
    CHECK(rel_error(y32, ref.y) <= 1e-5);
    y32.backward(dy.to(DType::f32));
    CHECK(rel_error(x32.grad(), ref.dx) <= 1e-5);
    CHECK(rel_error(w32.grad(), ref.dw) <= 1e-5);
    if (b32.defined()) CHECK(rel_error(b32.grad(), ref.db) <= 1e-5);
  }
}

TEST_CASE("conv2d: an input without grad (first layer) gets none; weight and bias do") {
  const Conv2dOptions opt{2, 1};
  Tensor x = test::randn_t({2, 3, 7, 7}, 41);  // data: does not require grad
  Tensor w = test::leaf(test::randn_t({4, 3, 3, 3}, 42));
  Tensor b = test::leaf(test::randn_t({4}, 43));
  Tensor y = conv2d(x, w, b, opt);
  Tensor dy = test::randn_t(y.shape(), 44);
  y.backward(dy);
  CHECK_FALSE(x.grad().defined());
  const Naive ref = naive_conv2d(x, w, b, dy, opt);
  CHECK(rel_error(w.grad(), ref.dw) <= 1e-12);  // float64, another summation order
  CHECK(rel_error(b.grad(), ref.db) <= 1e-12);
}

TEST_CASE("conv2d: gradients accumulate into .grad over two backward passes") {
  Tensor x = test::leaf(test::randn_t({2, 2, 5, 5}, 51));
  Tensor w = test::leaf(test::randn_t({3, 2, 3, 3}, 52));
  Tensor dy = test::randn_t({2, 3, 3, 3}, 53);
  conv2d(x, w).backward(dy);
  Tensor once = w.grad().clone();
  conv2d(x, w).backward(dy);
  // 2 * g, exact in float64 (doubling is exact)
  CHECK(test::max_abs_diff(w.grad(), once * 2.0) == 0.0);
}

TEST_CASE("conv2d: an empty batch gives an empty output and zero weight gradients") {
  Tensor x = test::leaf(Tensor::zeros({0, 3, 5, 5}, DType::f64));
  Tensor w = test::leaf(test::randn_t({4, 3, 3, 3}, 61));
  Tensor b = test::leaf(test::randn_t({4}, 62));
  Tensor y = conv2d(x, w, b, {1, 1});
  CHECK(y.shape() == Shape{0, 4, 5, 5});
  y.backward(Tensor::zeros(y.shape(), DType::f64));
  CHECK(test::max_abs_diff(w.grad(), Tensor::zeros(w.shape(), DType::f64)) == 0.0);
  CHECK(test::max_abs_diff(b.grad(), Tensor::zeros(b.shape(), DType::f64)) == 0.0);
}

TEST_CASE("conv2d: PyTorch's float64 results") {
  for (const char* name : {"conv2d_basic", "conv2d_stride2_pad1", "conv2d_dilation2", "conv2d_groups2",
                           "conv2d_nobias_rect", "conv2d_1x1", "conv2d_alexnet"}) {
    INFO("fixture " << name);
    test::Fixture fx = load_fixture(name);
    Conv2dOptions opt{{fx.meta_int("stride_h"), fx.meta_int("stride_w")},
                      {fx.meta_int("pad_h"), fx.meta_int("pad_w")},
                      {fx.meta_int("dil_h"), fx.meta_int("dil_w")},
                      fx.meta_int("groups")};
    Tensor x = test::leaf(fx.get("input")), w = test::leaf(fx.get("weight"));
    Tensor b = fx.has("bias") ? test::leaf(fx.get("bias")) : Tensor();
    Tensor y = conv2d(x, w, b, opt);
    // float64 against float64: the same sums in another order.
    CHECK(rel_error(y, fx.get("out")) <= 1e-10);
    y.backward(fx.get("grad_out"));
    CHECK(rel_error(x.grad(), fx.get("grad_input")) <= 1e-10);
    CHECK(rel_error(w.grad(), fx.get("grad_weight")) <= 1e-10);
    if (b.defined()) CHECK(rel_error(b.grad(), fx.get("grad_bias")) <= 1e-10);

    // The module of the same configuration prints as torch.nn.Conv2d does.
    Conv2d m(x.size(1), w.size(0), {w.size(2), w.size(3)}, opt, b.defined());
    CHECK(m.repr() == fx.meta("repr"));
  }
}

TEST_CASE("Conv2d: parameters, names, shapes and PyTorch's default initialisation") {
  Generator gen(7);
  Conv2d m(16, 32, {3, 5}, {1, 1, 1, 2}, true, gen);  // groups 2: fan_in = 8 * 3 * 5 = 120
  const NamedTensors params = m.named_parameters();
  REQUIRE(params.size() == 2);
  CHECK(params[0].first == "weight");
  CHECK(params[1].first == "bias");
  CHECK(params[0].second.shape() == Shape{32, 8, 3, 5});
  CHECK(params[1].second.shape() == Shape{32});
  CHECK(params[0].second.shares_storage(m.weight));
  CHECK(m.weight.requires_grad());
  CHECK(m.bias.requires_grad());
  CHECK(m.parameter_count() == 32 * 8 * 3 * 5 + 32);

  // kaiming_uniform_(a = sqrt(5)): uniform within +-1/sqrt(fan_in); bias the same bound.
  const double bound = 1.0 / std::sqrt(120.0);
  const std::vector<double> wv = m.weight.to_double_vector();
  double max_abs = 0, sum = 0, sq = 0;
  for (double v : wv) {
    max_abs = std::max(max_abs, std::fabs(v));
    sum += v;
    sq += v * v;
  }
  const double n = double(wv.size()), mean = sum / n, var = sq / n - mean * mean;
  CHECK(max_abs <= bound);
  CHECK(max_abs >= 0.95 * bound);  // 3840 draws: the largest is within 5% of the bound
  // Uniform(-a, a): mean 0 (standard error a / sqrt(3 n) ~ 0.009 a), variance a^2 / 3 (about
  // 1.5% standard error): both well inside these margins.
  CHECK(std::fabs(mean) <= 0.05 * bound);
  CHECK(var == doctest::Approx(bound * bound / 3).epsilon(0.1));
  for (double v : m.bias.to_double_vector()) CHECK(std::fabs(v) <= bound);

  // The same generator seed gives the same weights.
  Generator gen2(7);
  Conv2d m2(16, 32, {3, 5}, {1, 1, 1, 2}, true, gen2);
  CHECK(test::max_abs_diff(m.weight, m2.weight) == 0.0);

  Conv2d nobias(3, 4, 1, {}, false);
  CHECK(nobias.named_parameters().size() == 1);
  CHECK_FALSE(nobias.bias.defined());
  CHECK(nobias.type_name() == "Conv2d");
  CHECK(nobias.extra_repr() == "3, 4, kernel_size=(1, 1), stride=(1, 1), bias=False");
}

TEST_CASE("Conv2d: forward is the functional conv2d with the module's parameters") {
  Conv2d m(3, 5, 3, {2, 1});
  Tensor x = test::randn_t({2, 3, 9, 8}, 71, DType::f32);
  Tensor y = m(x);
  CHECK(y.shape() == Shape{2, 5, 5, 4});
  CHECK(test::max_abs_diff(y, conv2d(x, m.weight, m.bias, {2, 1})) == 0.0);
  m.eval();  // a convolution behaves the same in training and evaluation
  CHECK_FALSE(m.is_training());
  CHECK(test::max_abs_diff(m(x), y) == 0.0);
  y.backward(Tensor::ones(y.shape()));
  CHECK(m.weight.grad().defined());
  CHECK(m.bias.grad().defined());
  // d(sum y)/d bias[k] = the number of output positions
  for (double v : m.bias.grad().to_double_vector()) CHECK(v == doctest::Approx(2 * 5 * 4));
}

TEST_CASE("conv2d: error messages") {
  Tensor x = test::randn_t({1, 3, 5, 5}, 81);
  CHECK_THROWS_WITH_AS(conv2d(x, test::randn_t({4, 2, 3, 3}, 82)),
                       doctest::Contains("conv2d: input [1, 3, 5, 5] has 3 channels but weight [4, 2, 3, 3]"), Error);
  CHECK_THROWS_WITH_AS(conv2d(test::randn_t({1, 1, 4, 4}, 83), test::randn_t({1, 1, 5, 5}, 84)),
                       doctest::Contains("larger than the padded input (4, 4)"), Error);
  CHECK_NOTHROW(conv2d(test::randn_t({1, 1, 4, 4}, 83), test::randn_t({1, 1, 5, 5}, 84), Tensor(), {1, 1}));
  // dilation 3 makes a 3x3 kernel span 7 > 5 + 2 * 0
  CHECK_THROWS_WITH_AS(conv2d(x, test::randn_t({2, 3, 3, 3}, 85), Tensor(), {1, 0, 3}),
                       doctest::Contains("spans (7, 7), larger than the padded input (5, 5)"), Error);
  CHECK_THROWS_WITH_AS(conv2d(test::randn_t({1, 4, 5, 5}, 86), test::randn_t({3, 2, 3, 3}, 87), Tensor(),
                              {1, 0, 1, 2}),
                       doctest::Contains("3 output channels, not divisible by groups = 2"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, test::randn_t({4, 3, 3, 3}, 88), test::randn_t({3}, 89)),
                       doctest::Contains("conv2d: bias must be (4,)"), Error);
  CHECK_THROWS_WITH_AS(conv2d(test::randn_t({3, 5, 5}, 90), test::randn_t({4, 3, 3, 3}, 91)),
                       doctest::Contains("conv2d: input must be (N, C, H, W), got [3, 5, 5]"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, test::randn_t({4, 3, 3, 3}, 92), Tensor(), {0}),
                       doctest::Contains("conv2d: stride must be positive, got (0, 0)"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, test::randn_t({4, 3, 3, 3}, 93, DType::f32)),
                       doctest::Contains("conv2d: inputs of different dtypes"), Error);
  CHECK_THROWS_WITH_AS(Conv2d(3, 4, 3, {1, 0, 1, 2}), doctest::Contains("in_channels = 3 must be divisible by groups = 2"),
                       Error);
}

TEST_CASE("conv2d_relu and linear_relu: relu of the op bit for bit, values and gradients; Sequential fuses the pairs") {
  for (DType dt : {DType::f32, DType::f64}) {
    for (bool with_bias : {true, false}) {
      CAPTURE(dtype_name(dt));
      CAPTURE(with_bias);
      const Tensor x0 = test::randn_t({2, 3, 9, 8}, 9101, dt), w0 = test::randn_t({5, 3, 3, 3}, 9102, dt);
      const Tensor b0 = with_bias ? test::randn_t({5}, 9103, dt) : Tensor();
      const Tensor dy = test::randn_t({2, 5, 5, 4}, 9104, dt);
      const Conv2dOptions opt{2, 1};
      auto run = [&](bool fused) {
        Tensor x = test::leaf(x0.clone()), w = test::leaf(w0.clone());
        Tensor b = with_bias ? test::leaf(b0.clone()) : Tensor();
        Tensor y = fused ? conv2d_relu(x, w, b, opt) : relu(conv2d(x, w, b, opt));
        y.backward(dy);
        return std::vector<Tensor>{y.detach(), x.grad(), w.grad(), with_bias ? b.grad() : Tensor::zeros({1}, dt)};
      };
      const std::vector<Tensor> fused = run(true), plain = run(false);
      for (size_t i = 0; i < fused.size(); i++) CHECK(test::max_abs_diff(fused[i], plain[i]) == 0.0);

      const Tensor lx = test::randn_t({4, 7}, 9105, dt), lw = test::randn_t({6, 7}, 9106, dt);
      const Tensor lb = with_bias ? test::randn_t({6}, 9107, dt) : Tensor(), ldy = test::randn_t({4, 6}, 9108, dt);
      auto run_linear = [&](bool fuse) {
        Tensor x = test::leaf(lx.clone()), w = test::leaf(lw.clone()), b = with_bias ? test::leaf(lb.clone()) : Tensor();
        Tensor y = fuse ? linear_relu(x, w, b) : relu(linear(x, w, b));
        y.backward(ldy);
        return std::vector<Tensor>{y.detach(), x.grad(), w.grad(), with_bias ? b.grad() : Tensor::zeros({1}, dt)};
      };
      const std::vector<Tensor> lf = run_linear(true), lp = run_linear(false);
      for (size_t i = 0; i < lf.size(); i++) CHECK(test::max_abs_diff(lf[i], lp[i]) == 0.0);
    }
  }
  // Sequential(conv, relu, conv, relu, linear... ): each module + ReLU pair runs fused, every
  // module is still traced, and the result equals the modules run one by one.
  Generator g(9110);
  Sequential seq;
  seq.push_back(std::make_shared<Conv2d>(3, 4, 3, Conv2dOptions{1, 1}, true, g));
  seq.push_back(std::make_shared<ReLU>(true));
  seq.push_back(std::make_shared<Conv2d>(4, 2, 3, Conv2dOptions{}, true, g));
  seq.push_back(std::make_shared<ReLU>(true));
  const Tensor x = test::randn_t({2, 3, 6, 6}, 9111, DType::f32);
  Tensor by_hand = x;
  for (const auto& [name, m] : seq.children()) by_hand = m->forward(by_hand);
  ModuleTrace trace;
  const Tensor y = seq(x);
  CHECK(test::max_abs_diff(y, by_hand) == 0.0);
  REQUIRE(trace.rows.size() == 5);  // the Sequential, then its four children
  CHECK(trace.rows[2].module == seq.children()[1].second.get());
  CHECK(trace.rows[4].output == Shape{2, 2, 4, 4});
  CHECK(y.grad_fn()->name == "conv2d_relu");
  CHECK_THROWS_WITH_AS(ReLU().forward_relu(x), doctest::Contains("ReLU: no fused ReLU"), Error);
}
