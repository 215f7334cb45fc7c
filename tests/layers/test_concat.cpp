// Concatenation: gradient checks, element placement by index, PyTorch's values, errors.
#include "fixture.h"
#include "helpers.h"
#include "layers/concat.h"
#include "layers/gradcheck/cases.h"

using namespace leuko;

TEST_CASE("cat: every gradient-check case passes") {
  for (const GradcheckCase& c : concat_cases()) {
    INFO(c.op << ": " << c.name);
    test::check_gradients(c.f, c.inputs, c.rtol);
  }
}

TEST_CASE("cat: every element lands where its index says, along each dim") {
  // Three (2, s, 3, 2)-like tensors concatenated along each dim d: out[..., off + j, ...] must
  // equal input[..., j, ...], checked by decomposing every output index.
  for (int64_t dim = 0; dim < 4; dim++) {
    INFO("dim " << dim);
    std::vector<Tensor> xs;
    std::vector<int64_t> sizes = {2, 1, 3};
    for (size_t i = 0; i < sizes.size(); i++) {
      Shape s = {2, 3, 4, 2};
      s[size_t(dim)] = sizes[i];
      xs.push_back(test::randn_t(s, 100 + uint64_t(dim) * 10 + i));
    }
    Tensor out = cat(xs, dim);
    Shape os = {2, 3, 4, 2};
    os[size_t(dim)] = 6;
    REQUIRE(out.shape() == os);
    std::vector<double> ov = out.to_double_vector();
    bool ok = true;
    for (int64_t e = 0; e < out.numel(); e++) {
      int64_t idx[4], rest = e;
      for (int d = 3; d >= 0; d--) {
        idx[d] = rest % os[size_t(d)];
        rest /= os[size_t(d)];
      }
      size_t which = 0;  // which input holds this position along dim
      int64_t j = idx[dim];
      while (j >= sizes[which]) j -= sizes[which++];
      idx[dim] = j;
      const Shape& is = xs[which].shape();
      const int64_t flat = ((idx[0] * is[1] + idx[1]) * is[2] + idx[2]) * is[3] + idx[3];
      ok = ok && ov[size_t(e)] == xs[which].to_double_vector()[size_t(flat)];
    }
    CHECK(ok);
  }
}

TEST_CASE("cat: PyTorch fixtures, forward and backward") {
  for (const char* name : {"concat_channels", "concat_dim0", "concat_last"}) {
    INFO("fixture " << std::string(name));
    test::Fixture f = test::load_fixture(name);
    std::vector<Tensor> xs;
    for (int64_t i = 0; i < f.meta_int("inputs"); i++) {
      xs.push_back(f.get("input" + std::to_string(i)).set_requires_grad());
    }
    Tensor y = cat(xs, f.meta_int("dim"));
    CHECK(test::max_abs_diff(y, f.get("out")) == 0.0);  // a copy: exact
    y.backward(f.get("grad_out"));
    for (size_t i = 0; i < xs.size(); i++) {
      CHECK(test::max_abs_diff(xs[i].grad(), f.get("grad_input" + std::to_string(i))) == 0.0);  // exact slices
    }
  }
}

TEST_CASE("cat: inputs that need no gradient, empty inputs, float32, a single input") {
  Tensor a = test::randn_t({2, 3}, 1).set_requires_grad();
  Tensor b = test::randn_t({2, 0}, 2);  // empty along dim 1
  Tensor c = test::randn_t({2, 4}, 3);
  Tensor y = cat({a, b, c}, 1);
  CHECK(y.shape() == Shape{2, 7});
  y.backward(Tensor::ones({2, 7}, DType::f64));
  CHECK(a.grad().to_double_vector() == std::vector<double>(6, 1.0));
  CHECK(!c.grad().defined());
  Tensor f32 = cat({a.detach().to(DType::f32), c.to(DType::f32)}, 1);
  CHECK(test::max_abs_diff(f32, cat({a.detach(), c}, 1).to(DType::f32)) == 0.0);
  Tensor single = cat({c}, 0);
  CHECK(!single.shares_storage(c));  // a new tensor, as torch.cat's
  CHECK(test::max_abs_diff(single, c) == 0.0);
}

TEST_CASE("cat: errors") {
  Tensor a = test::randn_t({2, 3, 4}, 1);
  CHECK_THROWS_WITH_AS(cat({}, 0), doctest::Contains("cat: no tensors to concatenate"), Error);
  CHECK_THROWS_WITH_AS(cat({a, test::randn_t({2, 3, 5}, 2)}, 1),
                       doctest::Contains("cat: shapes [2, 3, 4] and [2, 3, 5] differ outside dimension 1"), Error);
  CHECK_THROWS_WITH_AS(cat({a, test::randn_t({2, 3}, 3)}, 0), doctest::Contains("differ outside dimension 0"), Error);
  CHECK_THROWS_WITH_AS(cat({a, a}, 3), doctest::Contains("cat: dim 3 out of range for 3-dimensional tensors"), Error);
  CHECK_THROWS_WITH_AS(cat({a, a.to(DType::f32)}, 0), doctest::Contains("cat: inputs of different dtypes"), Error);
  CHECK_THROWS_WITH_AS(cat({Tensor::scalar(1.0), Tensor::scalar(2.0)}, 0),
                       doctest::Contains("cat: cannot concatenate 0-dimensional tensors"), Error);
}
