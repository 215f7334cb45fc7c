// bf16 activations on the CPU (tensor/device.h bf16_activations()): ReLU, add_relu, dropout and
// the elementwise ops given bf16 inputs. Each must give what the float32 op gives on the same
// values, rounded to bf16 once, and pass a gradient back to a float32 leaf (through
// leaf.to(bf16)) equal to the float32 op's gradient rounded to bf16. The float32 paths keep their
// values bit for bit.
#include <cmath>
#include <functional>
#include <vector>

#include "helpers.h"
#include "kernels/activation.h"
#include "layers/activation.h"
#include "layers/elementwise.h"

using namespace leuko;
using V = const std::vector<Tensor>&;
using Op = std::function<Tensor(V)>;

namespace {

// Runs f on `inputs` (CPU float32) passed as leaf.to(bf16) where as_bf16[i] (else as float32,
// a parameter or a float32 operand), and the float32 reference: f on float32 leaves holding the
// same values. Checks the output's dtype is `want`, its values the reference's rounded to it,
// and every leaf's gradient the reference's, rounded to bf16 where the input went through bf16.
void check_against_float(const Op& f, const std::vector<Tensor>& inputs, const std::vector<bool>& as_bf16, DType want,
                         uint64_t seed = 1) {
  REQUIRE(inputs.size() == as_bf16.size());
  std::vector<Tensor> leaves, args, ref_leaves;
  for (size_t i = 0; i < inputs.size(); i++) {
    leaves.push_back(test::leaf(inputs[i].detach().clone()));
    args.push_back(as_bf16[i] ? leaves.back().to(DType::bf16) : leaves.back());
    Tensor same_values = as_bf16[i] ? inputs[i].detach().to(DType::bf16).to(DType::f32) : inputs[i].detach().clone();
    ref_leaves.push_back(test::leaf(same_values));
  }
  Tensor out = f(args), ref = f(ref_leaves);
  REQUIRE(ref.dtype() == DType::f32);
  CHECK(out.dtype() == want);
  test::check_equal(out, ref.detach().to(want));  // one rounding of the float32 result
  // An upstream gradient bf16 holds exactly: both runs differentiate the same values.
  Tensor up = test::bf16_exact(out.shape(), seed);
  out.backward(up.to(want));
  ref.backward(up);
  for (size_t i = 0; i < inputs.size(); i++) {
    INFO("gradient of input " << i);
    REQUIRE(leaves[i].grad().defined());
    CHECK(leaves[i].grad().dtype() == DType::f32);  // the leaf's own dtype
    Tensor g = ref_leaves[i].grad();
    test::check_equal(leaves[i].grad(), as_bf16[i] ? g.to(DType::bf16).to(DType::f32) : g);
  }
}

Tensor seeded_dropout(const Tensor& x, double p, uint64_t seed) {
  manual_seed(seed);
  return dropout(x, p, true);
}

}  // namespace

// ---- ReLU, add_relu, dropout --------------------------------------------------------------------

TEST_CASE("bf16 relu and add_relu: the float32 op rounded once, gradients rounded") {
  uint64_t seed = 10;
  for (const Shape& s : std::vector<Shape>{{7}, {2, 3, 5, 4}, {40000}}) {
    INFO("shape " << shape_str(s));
    Tensor x = test::bf16_exact(s, seed++), a = test::bf16_exact(s, seed++), b = test::bf16_exact(s, seed++);
    check_against_float([](V in) { return relu(in[0]); }, {x}, {true}, DType::bf16, seed++);
    // a + b is rounded to bf16 once, after the sum in float.
    check_against_float([](V in) { return add_relu(in[0], in[1]); }, {a, b}, {true, true}, DType::bf16, seed++);
    // A bf16 residual sum seen through relu(add(a, b)): the sum rounded, then an exact ReLU.
    check_against_float([](V in) { return relu(add(in[0], in[1])); }, {a, b}, {true, true}, DType::bf16, seed++);
  }
}

TEST_CASE("bf16 relu: NaN passes through, zeros stay zeros") {
  Tensor x = Tensor::from_vector(std::vector<float>{-2.f, -0.f, 0.f, 3.f, NAN}, {5}).to(DType::bf16);
  Tensor y = relu(x);
  CHECK(y.dtype() == DType::bf16);
  std::vector<float> v = y.to_vector();
  CHECK(v[0] == 0.f);
  CHECK(v[1] == 0.f);
  CHECK(v[2] == 0.f);
  CHECK(v[3] == 3.f);
  CHECK(std::isnan(v[4]));
}

TEST_CASE("bf16 relu_grad: bf16 in, bf16 out, nothing recorded") {
  Tensor so = relu(test::bf16_exact({3, 17}, 20).to(DType::bf16)), g = test::bf16_exact({3, 17}, 21).to(DType::bf16);
  Tensor gx = relu_grad(g, so);
  CHECK(gx.dtype() == DType::bf16);
  CHECK(!gx.requires_grad());
  test::check_equal(gx, relu_grad(g.to(DType::f32), so.to(DType::f32)).to(DType::bf16));  // a selection: exact
  CHECK_THROWS_WITH_AS(relu_grad(g.to(DType::f32), so), doctest::Contains("relu backward: a float32 gradient"), Error);
}

TEST_CASE("bf16 dropout: the float32 op's mask and values, rounded once") {
  uint64_t seed = 30;
  for (const Shape& s : std::vector<Shape>{{9}, {4, 3, 7}, {50000}}) {
    for (double p : {0.1, 0.5, 0.7}) {  // 1 / (1 - p) not a power of 2 for 0.1 and 0.7: rounding matters
      INFO("shape " << shape_str(s) << " p " << p);
      Tensor x = test::bf16_exact(s, seed++);
      check_against_float([p](V in) { return seeded_dropout(in[0], p, 5); }, {x}, {true}, DType::bf16, seed++);
    }
  }
  // Eval mode, p = 0: the input itself, still bf16.
  Tensor x = test::bf16_exact({3, 4}, 40).to(DType::bf16);
  CHECK(dropout(x, 0.5, false).shares_storage(x));
  CHECK(dropout(x, 0.0).shares_storage(x));
}

TEST_CASE("bf16 activations: dtype checks") {
  Tensor x = Tensor::zeros({2, 3}, DType::bf16);
  CHECK_THROWS_WITH_AS(add_relu(x, Tensor::zeros({2, 3})), doctest::Contains("add_relu: inputs of different dtypes"),
                       Error);
  CHECK_THROWS_WITH_AS(relu(Tensor::zeros({2}, DType::i64)), doctest::Contains("relu: the input must be a float"),
                       Error);
  CHECK_THROWS_WITH_AS(relu(Tensor()), doctest::Contains("relu: the input tensor is undefined"), Error);
}

// ---- The elementwise ops --------------------------------------------------------------------

TEST_CASE("bf16 binary ops: bf16 with bf16 gives bf16, broadcasting included") {
  uint64_t seed = 50;
  const std::vector<std::pair<Shape, Shape>> shapes = {{{5, 7}, {5, 7}}, {{2, 3, 4}, {3, 1}}, {{4}, {2, 3, 4}}};
  for (const auto& [sa, sb] : shapes) {
    INFO("shapes " << shape_str(sa) << " and " << shape_str(sb));
    Tensor a = test::bf16_exact(sa, seed++), b = test::bf16_exact(sb, seed++);
    Tensor pos = test::bf16_exact(sb, seed++, 0.25, 2.0);  // a divisor away from 0
    check_against_float([](V in) { return add(in[0], in[1]); }, {a, b}, {true, true}, DType::bf16, seed++);
    check_against_float([](V in) { return sub(in[0], in[1]); }, {a, b}, {true, true}, DType::bf16, seed++);
    check_against_float([](V in) { return mul(in[0], in[1]); }, {a, b}, {true, true}, DType::bf16, seed++);
    check_against_float([](V in) { return div(in[0], in[1]); }, {a, pos}, {true, true}, DType::bf16, seed++);
  }
}

TEST_CASE("bf16 binary ops: bf16 with float32 gives float32, as PyTorch's promotion") {
  uint64_t seed = 70;
  Tensor a = test::bf16_exact({3, 4}, seed++), b = test::bf16_exact({4}, seed++),
         pos = test::bf16_exact({3, 4}, seed++, 0.25, 2.0);
  // b is a float32 operand: its values need not be bf16's, but the reference compares exactly.
  check_against_float([](V in) { return add(in[0], in[1]); }, {a, b}, {true, false}, DType::f32, seed++);
  check_against_float([](V in) { return mul(in[0], in[1]); }, {b, a}, {false, true}, DType::f32, seed++);
  check_against_float([](V in) { return div(in[0], in[1]); }, {a, pos}, {false, true}, DType::f32, seed++);
  check_against_float([](V in) { return sub(in[0], in[1]); }, {a, b}, {true, false}, DType::f32, seed++);
  // float64 wins too; int64 is refused as before.
  CHECK(add(a.to(DType::bf16), a.to(DType::f64)).dtype() == DType::f64);
  CHECK_THROWS_AS(add(a.to(DType::bf16), Tensor::zeros({3, 4}, DType::i64)), Error);
}

TEST_CASE("bf16 scalar and unary ops, bias_add") {
  uint64_t seed = 90;
  Tensor x = test::bf16_exact({3, 5, 2}, seed++), pos = test::bf16_exact({3, 5, 2}, seed++, 0.25, 2.0);
  Tensor bias = test::randn_t({5}, seed++, DType::f32);  // a float32 parameter, any values
  const std::vector<std::pair<const char*, Op>> ops = {
      {"add", [](V in) { return in[0] + 0.3; }},  {"sub", [](V in) { return in[0] - 1.7; }},
      {"rsub", [](V in) { return 2.5 - in[0]; }}, {"mul", [](V in) { return in[0] * 0.1; }},
      {"div", [](V in) { return in[0] / 3.0; }},  {"affine", [](V in) { return affine(in[0], -0.7, 0.2); }},
      {"neg", [](V in) { return -in[0]; }},       {"exp", [](V in) { return exp(in[0]); }},
      {"rdiv", [](V in) { return 1.5 / in[0]; }}, {"log", [](V in) { return log(in[0]); }},
  };
  for (const auto& [name, f] : ops) {
    INFO(name);
    const bool positive = std::string(name) == "rdiv" || std::string(name) == "log";
    check_against_float(f, {positive ? pos : x}, {true}, DType::bf16, seed++);
  }
  // bias_add: the bias is a parameter, so a bf16 x keeps bf16; the bias's gradient is float32.
  check_against_float([](V in) { return bias_add(in[0], in[1]); }, {x, bias}, {true, false}, DType::bf16, seed++);
  check_against_float([](V in) { return bias_add(in[0], in[1]); }, {x.reshape({6, 5}), bias}, {true, false},
                      DType::bf16, seed++);
  // A bf16 bias with a bf16 x: bf16; a bf16 bias on a float32 x: promoted to float32.
  check_against_float([](V in) { return bias_add(in[0], in[1]); }, {x, bias}, {true, true}, DType::bf16, seed++);
  check_against_float([](V in) { return bias_add(in[0], in[1]); }, {x, bias}, {false, true}, DType::f32, seed++);
  CHECK_THROWS_WITH_AS(bias_add(x.to(DType::bf16), bias.to(DType::f64)),
                       doctest::Contains("bias_add: a parameter float64[5] on cpu must be float32"), Error);
}

// ---- float32 unchanged ----------------------------------------------------------------------

TEST_CASE("float32 activations keep their values and dtype") {
  const int64_t n = 3001;
  Tensor a = test::randn_t({n}, 110, DType::f32), b = test::randn_t({n}, 111, DType::f32);
  const std::vector<float> av = a.to_vector(), bv = b.to_vector();
  Tensor r = relu(a), ar = add_relu(a, b), ab = a + b;
  CHECK(r.dtype() == DType::f32);
  CHECK(ar.dtype() == DType::f32);
  CHECK(ab.dtype() == DType::f32);
  manual_seed(3);
  Tensor d = dropout(a, 0.3);
  CHECK(d.dtype() == DType::f32);
  Generator g(3);
  const uint64_t seed = g.next_u64(), threshold = uint64_t(std::ldexp(0.3, 64));
  const float scale = float(1.0 / 0.7);
  const std::vector<float> rv = r.to_vector(), arv = ar.to_vector(), abv = ab.to_vector(), dv = d.to_vector();
  bool ok_r = true, ok_ar = true, ok_ab = true, ok_d = true;
  for (size_t i = 0; i < size_t(n); i++) {
    const float s = av[i] + bv[i];  // the float32 sum, as the kernels compute it
    ok_r = ok_r && rv[i] == (av[i] > 0.f ? av[i] : 0.f);
    ok_ar = ok_ar && arv[i] == (s > 0.f ? s : 0.f);
    ok_ab = ok_ab && abv[i] == s;
    ok_d = ok_d && dv[i] == (kernels::dropout_keep(seed, threshold, i) ? av[i] * scale : 0.f);
  }
  CHECK(ok_r);
  CHECK(ok_ar);
  CHECK(ok_ab);
  CHECK(ok_d);
}
