// channels_last activations on the CPU (tensor/device.h channels_last_activations()): ReLU,
// add_relu, relu_grad, dropout and the elementwise ops given channels_last inputs, float32 and
// bf16. Each must give the NCHW op's values (compared after .to(nchw)), in the memory order its
// rule says, and pass back to an NCHW float32 leaf (through leaf.to(channels_last), and
// .to(bf16)) the NCHW op's gradient. All of it exactly: the same per-element arithmetic runs on
// either order, and the reductions (a broadcast operand's gradient) run on the same NCHW copies.
#include <algorithm>
#include <functional>
#include <vector>

#include "helpers.h"
#include "layers/activation.h"
#include "layers/elementwise.h"

using namespace leuko;
using V = const std::vector<Tensor>&;
using Op = std::function<Tensor(V)>;

namespace {

constexpr MemoryFormat kNCHW = MemoryFormat::nchw;
constexpr MemoryFormat kCL = MemoryFormat::channels_last;

// Runs f twice on the same values (CPU float32 `inputs`, NCHW): once with each input passed as
// leaf[.to(bf16)].to(channels_last) where as_cl[i], once (the reference) with NCHW leaves of the
// same dtype. Checks the output's memory order is `want`, its values the reference's, and every
// leaf's gradient (float32, NCHW) the reference's, for the same upstream gradient.
void check_against_nchw(const Op& f, const std::vector<Tensor>& inputs, const std::vector<bool>& as_cl, DType dtype,
                        MemoryFormat want, uint64_t seed = 1) {
  REQUIRE(inputs.size() == as_cl.size());
  std::vector<Tensor> leaves, args, ref_leaves, ref_args;
  for (size_t i = 0; i < inputs.size(); i++) {
    leaves.push_back(test::leaf(inputs[i].detach().clone()));
    ref_leaves.push_back(test::leaf(inputs[i].detach().clone()));
    Tensor arg = leaves.back().to(dtype), ref = ref_leaves.back().to(dtype);
    if (as_cl[i]) arg = arg.to(kCL);
    REQUIRE(arg.memory_format() == (as_cl[i] ? kCL : kNCHW));
    args.push_back(arg);
    ref_args.push_back(ref);
  }
  Tensor out = f(args), ref = f(ref_args);
  REQUIRE(ref.memory_format() == kNCHW);
  CHECK(out.memory_format() == want);
  CHECK(out.dtype() == ref.dtype());
  test::check_equal(out.to(kNCHW), ref);
  // An upstream gradient bf16 holds exactly, given in the output's own order.
  Tensor up = test::bf16_exact(ref.shape(), seed).to(ref.dtype());
  out.backward(out.dim() == 4 ? up.to(out.memory_format()) : up);
  ref.backward(up);
  for (size_t i = 0; i < inputs.size(); i++) {
    INFO("gradient of input " << i);
    REQUIRE(leaves[i].grad().defined());
    CHECK(leaves[i].grad().dtype() == DType::f32);     // the leaf's own dtype
    CHECK(leaves[i].grad().memory_format() == kNCHW);  // and order
    test::check_equal(leaves[i].grad(), ref_leaves[i].grad());
  }
}

Tensor seeded_dropout(const Tensor& x, double p, uint64_t seed) {
  manual_seed(seed);
  return dropout(x, p, true);
}

const std::vector<DType> kDtypes = {DType::f32, DType::bf16};
const Shape kShape = {2, 5, 3, 4};  // (N, C, H, W): C, H and W all distinct

}  // namespace

// ---- ReLU, add_relu, relu_grad --------------------------------------------------------------

TEST_CASE("channels_last relu and add_relu: the NCHW op's values, in channels_last") {
  uint64_t seed = 10;
  for (DType dt : kDtypes) {
    INFO(dtype_name(dt));
    Tensor x = test::bf16_exact(kShape, seed++), a = test::bf16_exact(kShape, seed++),
           b = test::bf16_exact(kShape, seed++);
    check_against_nchw([](V in) { return relu(in[0]); }, {x}, {true}, dt, kCL, seed++);
    check_against_nchw([](V in) { return add_relu(in[0], in[1]); }, {a, b}, {true, true}, dt, kCL, seed++);
    // relu(add(a, b)): the residual sum unfused, both ops keeping the order.
    check_against_nchw([](V in) { return relu(add(in[0], in[1])); }, {a, b}, {true, true}, dt, kCL, seed++);
  }
}

TEST_CASE("channels_last add_relu with mixed orders: the output in the first operand's order") {
  uint64_t seed = 30;
  for (DType dt : kDtypes) {
    INFO(dtype_name(dt));
    Tensor a = test::bf16_exact(kShape, seed++), b = test::bf16_exact(kShape, seed++);
    // A channels_last body with an NCHW shortcut, and the reverse; each gradient comes back to
    // its own input's order (the leaves are NCHW float32 either way).
    check_against_nchw([](V in) { return add_relu(in[0], in[1]); }, {a, b}, {true, false}, dt, kCL, seed++);
    check_against_nchw([](V in) { return add_relu(in[0], in[1]); }, {a, b}, {false, true}, dt, kNCHW, seed++);
  }
}

TEST_CASE("channels_last relu and add_relu on float32 run in place order: no copies") {
  Tensor x = test::bf16_exact(kShape, 40).to(kCL), y = test::bf16_exact(kShape, 41).to(kCL);
  Tensor r = relu(x), s = add_relu(x, y);
  REQUIRE(r.is_channels_last());
  REQUIRE(s.is_channels_last());
  // The kernels walked the NHWC buffers as they are: element i of the output is of element i.
  const float *xp = x.data<float>(), *yp = y.data<float>(), *rp = r.data<float>(), *sp = s.data<float>();
  bool ok = true;
  for (int64_t i = 0; i < x.numel(); i++) {
    ok = ok && rp[i] == std::max(xp[i], 0.f) && sp[i] == std::max(xp[i] + yp[i], 0.f);
  }
  CHECK(ok);
}

TEST_CASE("channels_last relu_grad: g converted to the output's order") {
  for (DType dt : kDtypes) {
    INFO(dtype_name(dt));
    Tensor so = relu(test::bf16_exact(kShape, 50).to(dt)), g = test::bf16_exact(kShape, 51).to(dt);
    Tensor want = relu_grad(g, so);  // NCHW both
    for (MemoryFormat fo : {kNCHW, kCL}) {
      for (MemoryFormat fg : {kNCHW, kCL}) {
        Tensor gx = relu_grad(g.to(fg), so.to(fo));
        CHECK(gx.memory_format() == fo);
        CHECK(gx.dtype() == dt);
        CHECK(!gx.requires_grad());
        test::check_equal(gx.to(kNCHW), want);
      }
    }
  }
  CHECK_THROWS_WITH_AS(relu_grad(Tensor::zeros({2, 3}), Tensor::zeros({3, 2})),
                       doctest::Contains("relu backward: a gradient of shape [2, 3]"), Error);
}

// ---- Dropout --------------------------------------------------------------------------------

TEST_CASE("channels_last dropout: the NCHW tensor's mask for the same seed, an NCHW output") {
  uint64_t seed = 60;
  for (DType dt : kDtypes) {
    for (double p : {0.1, 0.5}) {
      INFO(dtype_name(dt) << " p " << p);
      Tensor x = test::bf16_exact(kShape, seed++);
      check_against_nchw([p](V in) { return seeded_dropout(in[0], p, 5); }, {x}, {true}, dt, kNCHW, seed++);
    }
  }
  // Eval mode and p = 0: the input itself, in its own order.
  Tensor x = test::bf16_exact(kShape, 70).to(kCL);
  CHECK(dropout(x, 0.5, false).shares_storage(x));
  CHECK(dropout(x, 0.0).is_channels_last());
}

// ---- The elementwise ops --------------------------------------------------------------------

TEST_CASE("channels_last binary ops of one shape: one order kept, mixed orders give channels_last") {
  uint64_t seed = 80;
  const std::vector<std::pair<const char*, Op>> ops = {
      {"add", [](V in) { return add(in[0], in[1]); }},
      {"sub", [](V in) { return sub(in[0], in[1]); }},
      {"mul", [](V in) { return mul(in[0], in[1]); }},
      {"div", [](V in) { return div(in[0], in[1]); }},
  };
  for (DType dt : kDtypes) {
    for (const auto& [name, f] : ops) {
      INFO(dtype_name(dt) << " " << name);
      Tensor a = test::bf16_exact(kShape, seed++),
             b = test::bf16_exact(kShape, seed++, 0.25, 2.0);  // b: a divisor away from 0
      check_against_nchw(f, {a, b}, {true, true}, dt, kCL, seed++);
      check_against_nchw(f, {a, b}, {true, false}, dt, kCL, seed++);
      check_against_nchw(f, {a, b}, {false, true}, dt, kCL, seed++);
    }
  }
}

TEST_CASE("channels_last binary ops with broadcasting: the NCHW result") {
  uint64_t seed = 120;
  // (the other operand's shape, whether it is channels_last too, the output's order)
  struct Case {
    Shape other;
    bool other_cl;
    MemoryFormat want;
  };
  const std::vector<Case> cases = {
      {{5, 1, 1}, false, kCL},          // per channel
      {{4}, false, kCL},                // along W
      {{1, 5, 1, 1}, true, kCL},        // a 4-D per-channel operand, itself channels_last
      {{2, 5, 3, 1}, true, kCL},        // both channels_last, different shapes
      {{3, 1, 1, 1, 1}, false, kNCHW},  // a 5-D result: no channels_last form
  };
  for (DType dt : kDtypes) {
    for (const Case& c : cases) {
      INFO(dtype_name(dt) << " other " << shape_str(c.other));
      Tensor a = test::bf16_exact(kShape, seed++), b = test::bf16_exact(c.other, seed++, 0.25, 2.0);
      check_against_nchw([](V in) { return add(in[0], in[1]); }, {a, b}, {true, c.other_cl}, dt, c.want, seed++);
      check_against_nchw([](V in) { return mul(in[1], in[0]); }, {a, b}, {true, c.other_cl}, dt, c.want, seed++);
      check_against_nchw([](V in) { return div(in[0], in[1]); }, {a, b}, {true, c.other_cl}, dt, c.want, seed++);
    }
  }
}

TEST_CASE("channels_last scalar and unary ops keep the order") {
  uint64_t seed = 160;
  const std::vector<std::pair<const char*, Op>> ops = {
      {"add", [](V in) { return in[0] + 0.3; }},
      {"rsub", [](V in) { return 2.5 - in[0]; }},
      {"mul", [](V in) { return in[0] * 0.1; }},
      {"div", [](V in) { return in[0] / 3.0; }},
      {"affine", [](V in) { return affine(in[0], -0.7, 0.2); }},
      {"neg", [](V in) { return -in[0]; }},
      {"exp", [](V in) { return exp(in[0]); }},
      {"rdiv", [](V in) { return 1.5 / in[0]; }},
      {"log", [](V in) { return log(in[0]); }},
  };
  for (DType dt : kDtypes) {
    for (const auto& [name, f] : ops) {
      INFO(dtype_name(dt) << " " << name);
      Tensor x = test::bf16_exact(kShape, seed++, 0.25, 2.0);  // positive, for log and rdiv
      check_against_nchw(f, {x}, {true}, dt, kCL, seed++);
    }
  }
}

TEST_CASE("channels_last bias_add: the bias along C, the output channels_last") {
  uint64_t seed = 200;
  for (DType dt : kDtypes) {
    INFO(dtype_name(dt));
    Tensor x = test::bf16_exact(kShape, seed++), bias = test::bf16_exact({kShape[1]}, seed++);
    // The bias passed as x's dtype: float32 with float32, bf16 with bf16.
    check_against_nchw([](V in) { return bias_add(in[0], in[1]); }, {x, bias}, {true, false}, dt, kCL, seed++);
    // A float32 bias (a parameter) on a bf16 channels_last x.
    Tensor xc = x.to(dt).to(kCL);
    Tensor out = bias_add(xc, bias);
    CHECK(out.is_channels_last());
    CHECK(out.dtype() == dt);
    test::check_equal(out.to(kNCHW), bias_add(x.to(dt), bias));
  }
}
