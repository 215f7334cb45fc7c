// The autograd engine: accumulation, shared subgraphs, deep graphs, freeing, and its errors.
#include <doctest/doctest.h>

#include <cmath>

#include "helpers.h"
#include "tensor/allocator.h"

using namespace leuko;
using doctest::Contains;

namespace {

std::vector<double> values(const Tensor& t) { return t.to_double_vector(); }

// y = copy of x whose recorded backward multiplies the gradient by `factor` and returns it for
// `inputs` copies (to provoke the engine's own checks).
Tensor custom_op(const Tensor& x, double factor, const Shape& grad_shape, size_t n_grads = 1) {
  Tensor out;
  {
    autograd::NoGradGuard no_grad;
    out = x.clone();
  }
  autograd::record(out, "custom", {x}, [factor, grad_shape, n_grads](const Tensor& g, const std::vector<bool>&) {
    Tensor gx = mul(g, factor).reshape(grad_shape);
    return std::vector<Tensor>(n_grads, gx);
  });
  return out;
}

}  // namespace

TEST_CASE("gradients of leaves accumulate (+=) across backward calls") {
  Tensor x = Tensor::from_vector(std::vector<double>{1, -2, 3}, {3}).set_requires_grad();
  CHECK(x.is_leaf());
  CHECK_FALSE(x.grad().defined());  // none until backward reaches it
  sum(mul(x, x)).backward();        // d/dx sum(x^2) = 2x
  CHECK(values(x.grad()) == std::vector<double>{2, -4, 6});
  sum(mul(x, 3.0)).backward();  // + 3
  CHECK(values(x.grad()) == std::vector<double>{5, -1, 9});
  x.zero_grad();  // back to none, as PyTorch's set_to_none
  CHECK_FALSE(x.grad().defined());
  sum(x).backward();
  CHECK(values(x.grad()) == std::vector<double>{1, 1, 1});
}

TEST_CASE("the engine never writes into a gradient the caller still holds") {
  // clone's backward returns the upstream gradient itself; the leaf must get its own copy, or
  // the second backward's += would change the caller's tensor.
  Tensor x = Tensor::zeros({2}, DType::f64).set_requires_grad();
  Tensor up = Tensor::from_vector(std::vector<double>{1, 2}, {2});
  x.clone().backward(up);
  x.clone().backward(up);
  CHECK(values(x.grad()) == std::vector<double>{2, 4});
  CHECK(values(up) == std::vector<double>{1, 2});
  CHECK_FALSE(x.grad().shares_storage(up));
  // The same when the root is the leaf itself.
  Tensor y = Tensor::zeros({2}, DType::f64).set_requires_grad();
  y.backward(up);
  y.backward(up);
  CHECK(values(y.grad()) == std::vector<double>{2, 4});
  CHECK(values(up) == std::vector<double>{1, 2});
  // add's backward hands the same gradient to both inputs: each leaf needs its own copy, or a
  // later backward into one would change the other's.
  Tensor a = Tensor::zeros({2}, DType::f64).set_requires_grad(), b = Tensor::zeros({2}, DType::f64).set_requires_grad();
  sum(add(a, b)).backward();
  CHECK_FALSE(a.grad().shares_storage(b.grad()));
  sum(mul(a, 2.0)).backward();
  CHECK(values(a.grad()) == std::vector<double>{3, 3});
  CHECK(values(b.grad()) == std::vector<double>{1, 1});
}

TEST_CASE("a tensor used twice gets both gradients") {
  Tensor x = Tensor::from_vector(std::vector<double>{0.5, -1.0}, {2}).set_requires_grad();
  // add(x, x): both gradients of the same add node go to the same leaf.
  sum(add(x, x)).backward();
  CHECK(values(x.grad()) == std::vector<double>{2, 2});
  x.zero_grad();

  // A diamond: x -> a = 2x, b = x + 1 -> y = sum(a * b) = sum(2x^2 + 2x), dy/dx = 4x + 2.
  sum(mul(mul(x, 2.0), add(x, 1.0))).backward();
  CHECK(values(x.grad()) == std::vector<double>{4, -2});
  x.zero_grad();

  // An inner node used twice along paths of different lengths: h = exp(x),
  // y = sum(h * neg(neg(h))) = sum(exp(2x)). h's backward must wait for both contributions.
  Tensor h = exp(x);
  sum(mul(h, neg(neg(h)))).backward();
  const std::vector<double> g = values(x.grad());
  CHECK(g[0] == doctest::Approx(2 * std::exp(1.0)).epsilon(1e-14));
  CHECK(g[1] == doctest::Approx(2 * std::exp(-2.0)).epsilon(1e-14));
}

TEST_CASE("a deep chain (10000 ops) neither overflows the stack in backward nor when freed") {
  const int depth = 10000;
  Tensor x = Tensor::from_vector(std::vector<double>{1.0, 2.0}, {2}).set_requires_grad();
  {
    Tensor h = x;
    for (int i = 0; i < depth; i++) h = mul(h, 1.0001);
    sum(h).backward();
    const double want = std::pow(1.0001, depth);
    CHECK(values(x.grad())[0] == doctest::Approx(want).epsilon(1e-10));
    CHECK(values(x.grad())[1] == doctest::Approx(want).epsilon(1e-10));
  }
  // A graph that is never back-propagated (or kept by retain_graph) is freed when its last
  // handle goes: 10000 nested nodes must not be destroyed by 10000 nested destructor calls.
  for (bool run_backward : {false, true}) {
    CAPTURE(run_backward);
    Tensor h = x;
    for (int i = 0; i < depth; i++) h = add(h, 1.0);
    if (run_backward) sum(h).backward(Tensor(), /*retain_graph=*/true);
    h = Tensor();  // frees the whole chain here
    CHECK(x.defined());
  }
  // Deeper still, to make a recursive destructor fail for certain.
  {
    Tensor h = x;
    for (int i = 0; i < 200000; i++) h = neg(h);
  }
  CHECK(x.is_leaf());
}

TEST_CASE("backward errors") {
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3}).set_requires_grad();
  Tensor y = mul(x, 2.0);
  CHECK_THROWS_WITH_AS(y.backward(),
                       Contains("backward() on a non-scalar tensor float64[2, 3] on cpu needs an upstream gradient"),
                       Error);
  CHECK_THROWS_WITH_AS(y.backward(Tensor::ones({3, 2}, DType::f64)),
                       Contains("the upstream gradient float64[3, 2] on cpu does not match the tensor float64[2, 3]"),
                       Error);
  CHECK_THROWS_WITH_AS(y.backward(Tensor::ones({2, 3}, DType::f32)), Contains("does not match"), Error);

  Tensor c = Tensor::ones({2});
  CHECK_THROWS_WITH_AS(sum(c).backward(), Contains("backward() through a tensor that does not require grad"), Error);
  CHECK_THROWS_WITH_AS(c.backward(Tensor::ones({2})), Contains("does not require grad"), Error);

  // The engine checks what a backward returns: shape and count.
  Tensor v = Tensor::ones({2}, DType::f64).set_requires_grad();
  CHECK_THROWS_WITH_AS(sum(custom_op(v, 1.0, {1, 2})).backward(),
                       Contains("backward of 'custom' returned a gradient float64[1, 2] on cpu for input 0 which is "
                                "float64[2] on cpu"),
                       Error);
  CHECK_THROWS_WITH_AS(sum(custom_op(v, 1.0, {2}, 2)).backward(),
                       Contains("backward of 'custom' returned 2 gradients for 1 inputs"), Error);
}

TEST_CASE("a second backward needs retain_graph") {
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2}, {2}).set_requires_grad();
  Tensor y = sum(exp(x));
  y.backward();
  CHECK_THROWS_WITH_AS(y.backward(), Contains("a second time: its graph was freed by the first backward"), Error);

  x.zero_grad();
  Tensor z = sum(exp(x));
  z.backward(Tensor(), /*retain_graph=*/true);
  const std::vector<double> once = values(x.grad());
  z.backward(Tensor(), /*retain_graph=*/true);
  const std::vector<double> twice = values(x.grad());
  CHECK(once[0] == doctest::Approx(std::exp(1.0)).epsilon(1e-15));
  CHECK(twice[0] == 2 * once[0]);
  CHECK(twice[1] == 2 * once[1]);
  z.backward();  // the last one may free the graph
  CHECK(values(x.grad())[0] == 3 * once[0]);
}

TEST_CASE("NoGradGuard records nothing and restores the mode") {
  Tensor x = Tensor::ones({3}, DType::f64).set_requires_grad();
  CHECK(autograd::grad_enabled());
  CHECK(autograd::needs_record({x}));
  CHECK_FALSE(autograd::needs_record({Tensor::ones({3})}));
  CHECK_FALSE(autograd::needs_record({Tensor()}));
  {
    autograd::NoGradGuard guard;
    CHECK_FALSE(autograd::grad_enabled());
    CHECK_FALSE(autograd::needs_record({x}));
    Tensor y = exp(mul(x, 2.0));
    CHECK(y.grad_fn() == nullptr);
    CHECK_FALSE(y.requires_grad());
    {
      autograd::NoGradGuard nested;
      CHECK_FALSE(autograd::grad_enabled());
    }
    CHECK_FALSE(autograd::grad_enabled());  // the inner guard restores "off", not "on"
  }
  CHECK(autograd::grad_enabled());
  Tensor z = exp(x);
  REQUIRE(z.grad_fn() != nullptr);
  CHECK(z.grad_fn()->name == "exp");
  CHECK(z.requires_grad());
  CHECK_FALSE(z.is_leaf());
  // Ops on tensors that do not require grad record nothing.
  CHECK(exp(Tensor::ones({2})).grad_fn() == nullptr);
}

TEST_CASE("only leaves can be marked as requiring grad") {
  Tensor x = Tensor::ones({2}, DType::f64).set_requires_grad();
  Tensor y = mul(x, 2.0);
  CHECK_THROWS_WITH_AS(y.set_requires_grad(true),
                       Contains("set_requires_grad on a tensor computed by 'affine': only leaves"), Error);
  CHECK_THROWS_WITH_AS(Tensor::ones({2}, DType::bf16).set_requires_grad(),
                       Contains("bfloat16 tensors cannot require grad"), Error);
  x.set_requires_grad(false);
  CHECK_FALSE(x.requires_grad());
  CHECK_THROWS_WITH_AS(x.set_grad(Tensor::ones({3}, DType::f64)),
                       Contains("set_grad: gradient shape [3] differs from [2]"), Error);
  // detach: same values, no history.
  Tensor d = y.detach();
  CHECK(d.is_leaf());
  CHECK_FALSE(d.requires_grad());
  CHECK(d.shares_storage(y));
}

TEST_CASE("backward frees the activations the graph saved") {
  // exp saves its output for its backward. Build exp(exp(x)) on 64 Ki float64 values, drop
  // every handle but the loss, and watch the CPU allocator.
  Tensor x = test::randn_t({1 << 16}, 3).set_requires_grad();
  const size_t bytes = x.nbytes();
  for (bool retain : {false, true}) {
    CAPTURE(retain);
    x.zero_grad();
    const size_t base = memory_stats(Device::CPU).current;
    Tensor loss = sum(exp(exp(x)));
    const size_t built = memory_stats(Device::CPU).current;
    CHECK(built >= base + 2 * bytes);  // both exp outputs are held by the graph
    loss.backward(Tensor(), retain);
    const size_t after = memory_stats(Device::CPU).current;
    if (!retain) {
      // What remains is x.grad (one x-sized tensor) and the few bytes of the loss.
      CHECK(after <= base + bytes + 1024);
    } else {
      CHECK(after >= base + 3 * bytes);  // saved outputs kept, plus x.grad
    }
    loss = Tensor();
    CHECK(memory_stats(Device::CPU).current <= base + bytes + 1024);
  }
  // And the gradient is right: d/dx exp(exp(x)) = exp(exp(x)) exp(x).
  const std::vector<double> xv = values(x), g = values(x.grad());
  for (size_t i = 0; i < 8; i++) CHECK(g[i] == doctest::Approx(std::exp(std::exp(xv[i])) * std::exp(xv[i])));
}

TEST_CASE("the graph holds only what backward needs, not every input") {
  // relu(x + 1): add saves nothing and relu saves its output, so once the caller drops x + 1
  // the graph must not keep it (a node holding its input tensors did: twice the activations
  // of a conv / batch norm / ReLU network).
  Tensor x = test::randn_t({1 << 14}, 5).set_requires_grad();
  const size_t bytes = x.nbytes();
  const size_t base = memory_stats(Device::CPU).current;
  Tensor y = add(x, 1.0);
  std::weak_ptr<Storage> y_data = y.impl_ptr()->storage;
  Tensor loss = sum(relu(y));
  y = Tensor();
  CHECK(y_data.expired());
  CHECK(memory_stats(Device::CPU).current <= base + bytes + 1024);  // relu's output, and the loss
  loss.backward();
  const std::vector<double> xv = values(x), g = values(x.grad());
  for (size_t i = 0; i < xv.size(); i++) CHECK(g[i] == (xv[i] + 1.0 > 0 ? 1.0 : 0.0));
}

TEST_CASE("reshape, flatten, clone and to(dtype) are differentiable") {
  Tensor x = test::randn_t({2, 3}, 11).set_requires_grad();
  Tensor w = test::randn_t({3, 2}, 12);
  // d/dx sum(reshape(x) * w) = w read in x's shape.
  sum(mul(x.reshape({3, 2}), w)).backward();
  CHECK(x.grad().shape() == Shape{2, 3});
  CHECK(values(x.grad()) == values(w));
  x.zero_grad();
  sum(mul(x.flatten(0), w.reshape({6}))).backward();
  CHECK(values(x.grad()) == values(w));
  x.zero_grad();
  sum(mul(x.clone(), 5.0)).backward();
  CHECK(values(x.grad()) == std::vector<double>(6, 5.0));
  x.zero_grad();
  // Through float32 and back: the gradient arrives in the leaf's dtype.
  Tensor y = sum(mul(x.to(DType::f32), 3.0));
  CHECK(y.dtype() == DType::f32);
  y.backward();
  CHECK(x.grad().dtype() == DType::f64);
  CHECK(values(x.grad()) == std::vector<double>(6, 3.0));

  test::check_gradients(
      [](const std::vector<Tensor>& in) {
        return mul(in[0].reshape({3, 2}), in[0].reshape({3, 2}));
      },
      {test::randn_t({2, 3}, 13).set_requires_grad()});
  test::check_gradients([](const std::vector<Tensor>& in) { return exp(in[0].clone().flatten(0)); },
                        {test::randn_t({2, 2, 2}, 14).set_requires_grad()});
  // detach cuts the graph: d/dx sum(detach(x) * x) = x.
  Tensor z = test::randn_t({4}, 15).set_requires_grad();
  sum(mul(z.detach(), z)).backward();
  CHECK(values(z.grad()) == values(z));
}

namespace {
// y = copy of x whose backward passes the gradient on unchanged and notes the buffer it got.
Tensor pass_through(const Tensor& x, std::shared_ptr<const void*> seen) {
  Tensor out;
  {
    autograd::NoGradGuard no_grad;
    out = x.clone();
  }
  autograd::record(out, "pass_through", {x}, [seen](const Tensor& g, const std::vector<bool>&) {
    *seen = g.data<double>();
    return std::vector<Tensor>{g};
  });
  return out;
}
}  // namespace

TEST_CASE("a gradient handed to two inputs is shared, not copied, until one of them is added to") {
  // add's backward hands its gradient to both inputs (add_relu's, in a ResNet block, to the body
  // and the shortcut). Both nodes receive that one buffer: the engine copies nothing.
  Tensor x = Tensor::from_vector(std::vector<double>{1, -2, 3}, {3}).set_requires_grad();
  auto seen_p = std::make_shared<const void*>(nullptr), seen_q = std::make_shared<const void*>(nullptr);
  sum(add(pass_through(x, seen_p), pass_through(x, seen_q))).backward();
  CHECK(*seen_p != nullptr);
  CHECK(*seen_p == *seen_q);
  CHECK(values(x.grad()) == std::vector<double>{2, 2, 2});

  // Copy on write: q also feeds t = 3q, so q's node receives a second gradient, which must not be
  // added into the buffer that p's node may still wait for (p also feeds r = 7p). Every order of
  // the operands, so that the engine meets that case (add's backward, then mul's, then p's)
  // whatever order it walks the graph in.
  const std::vector<std::vector<int>> orders = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  for (const std::vector<int>& order : orders) {
    for (bool swap : {false, true}) {
      CAPTURE(order[0] * 100 + order[1] * 10 + order[2]);
      CAPTURE(swap);
      x.zero_grad();
      Tensor p = mul(x, 2.0), q = mul(x, 5.0);
      const Tensor terms[3] = {sum(swap ? add(q, p) : add(p, q)), sum(mul(q, 3.0)), sum(mul(p, 7.0))};
      add(add(terms[order[0]], terms[order[1]]), terms[order[2]]).backward();
      CHECK(values(x.grad()) == std::vector<double>{36, 36, 36});  // 2 * (1 + 7) + 5 * (1 + 3)
    }
  }
}

TEST_CASE("add_relu's backward copies no gradient: its backward holds one extra buffer, not three") {
  // The peak of the CPU allocator during add_relu's backward, in units of one operand's bytes.
  // Before copy on write, the engine copied the gradient for each of the two inputs.
  Tensor a = test::randn_t({1 << 16}, 7).set_requires_grad(), b = test::randn_t({1 << 16}, 8).set_requires_grad();
  const size_t bytes = a.nbytes();
  Tensor pa = mul(a, 1.5), pb = mul(b, -0.5);
  Tensor loss = sum(add_relu(pa, pb));
  pa = Tensor();
  pb = Tensor();
  const size_t base = memory_stats(Device::CPU).current;
  reset_peak_memory(Device::CPU);
  loss.backward();
  const size_t peak = memory_stats(Device::CPU).peak - base;
  // At add_relu's backward: sum's gradient (1) and relu's (1, handed to both edges); add_relu's
  // saved output goes next, before the muls make the two leaves' .grad. Copying relu's gradient
  // for each edge made it 4.
  CHECK(peak <= 3 * bytes);
  const std::vector<double> av = values(a), bv = values(b), ga = values(a.grad()), gb = values(b.grad());
  for (size_t i = 0; i < av.size(); i++) {
    const double on = 1.5 * av[i] - 0.5 * bv[i] > 0 ? 1.0 : 0.0;
    CHECK(ga[i] == 1.5 * on);
    CHECK(gb[i] == -0.5 * on);
  }
}
