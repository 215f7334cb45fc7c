#include "layers/batchnorm.h"

#include "layers/elementwise.h"
#include "layers/gradcheck/cases.h"
#include "layers/gradcheck/inputs.h"

namespace leuko {

namespace {
// The checker evaluates f many times; a training forward moves the running statistics it is
// given, so each call gets fresh ones (f stays a pure function of its inputs). The output in
// training depends on the batch statistics only, but the update still runs and is exercised.
Tensor train_bn(const Tensor& x, const Tensor& w, const Tensor& b, double momentum = 0.1, double eps = 1e-5) {
  const int64_t C = x.size(1);
  return batch_norm(x, w, b, Tensor::zeros({C}, DType::f64), Tensor::ones({C}, DType::f64), true, momentum, eps);
}
}  // namespace

std::vector<GradcheckCase> batchnorm_cases() {
  using V = const std::vector<Tensor>&;
  std::vector<GradcheckCase> c;
  uint64_t seed = 1101;
  const auto affine = [](V in) { return train_bn(in[0], in[1], in[2]); };
  // Training: the gradient flows through the batch mean and variance.
  for (const Shape& s : std::vector<Shape>{{2, 3, 4, 5}, {3, 2, 3, 3}, {4, 3, 1, 1}, {5, 4}, {3, 2, 7}}) {
    const int64_t C = s[1];
    c.push_back({"batch_norm",
                 "training, affine, " + shape_str(s),
                 affine,
                 {gc::param(s, seed++), gc::param_uniform({C}, 0.5, 2.0, seed++), gc::param({C}, seed++)}});
  }
  c.push_back({"batch_norm",
               "training, N = 1 with H*W = 6, affine",
               affine,
               {gc::param({1, 3, 2, 3}, seed++), gc::param_uniform({3}, 0.5, 2.0, seed++), gc::param({3}, seed++)}});
  c.push_back({"batch_norm",
               "training, no affine, (2, 3, 3, 2)",
               [](V in) { return train_bn(in[0], Tensor(), Tensor()); },
               {gc::param({2, 3, 3, 2}, seed++)}});
  c.push_back({"batch_norm",
               "training, no running stats, eps 1e-3, (3, 2, 2, 2)",
               [](V in) { return batch_norm(in[0], in[1], in[2], Tensor(), Tensor(), true, 0.1, 1e-3); },
               {gc::param({3, 2, 2, 2}, seed++), gc::param({2}, seed++), gc::param({2}, seed++)}});
  // A large mean against a small spread: the variance must not cancel.
  c.push_back({"batch_norm",
               "training, x = 50 + 0.1 * randn, (2, 2, 3, 3)",
               [](V in) { return train_bn(50.0 + 0.1 * in[0], in[1], in[2]); },
               {gc::param({2, 2, 3, 3}, seed++), gc::param({2}, seed++), gc::param({2}, seed++)}});
  c.push_back({"batch_norm",
               "training, weight and bias only (x fixed)",
               affine,
               {gc::constant({3, 2, 2, 2}, seed++), gc::param({2}, seed++), gc::param({2}, seed++)}});

  // The fused ReLU: the gradient goes through the mask of the output and through the statistics.
  c.push_back({"batch_norm_relu",
               "training, affine, (3, 4, 3, 2)",
               [](V in) {
                 return batch_norm_relu(in[0], in[1], in[2], Tensor::zeros({4}, DType::f64), Tensor::ones({4}, DType::f64),
                                        true);
               },
               {gc::param({3, 4, 3, 2}, seed++), gc::param_uniform({4}, 0.5, 2.0, seed++), gc::param({4}, seed++)}});
  c.push_back({"batch_norm_relu",
               "training, no affine, (4, 2, 5)",
               [](V in) { return batch_norm_relu(in[0], Tensor(), Tensor(), Tensor(), Tensor(), true); },
               {gc::param({4, 2, 5}, seed++)}});

  // Eval: fixed running statistics (constants captured by the case), an affine map of x.
  {
    const Tensor rm = gc::constant({3}, seed++);
    Tensor rv = Tensor::empty({3}, DType::f64);
    Generator g(seed++);
    init::uniform_(rv, 0.5, 2.0, g);
    c.push_back({"batch_norm",
                 "eval, affine, (2, 3, 4, 3)",
                 [rm, rv](V in) { return batch_norm(in[0], in[1], in[2], rm, rv, false); },
                 {gc::param({2, 3, 4, 3}, seed++), gc::param({3}, seed++), gc::param({3}, seed++)}});
    c.push_back({"batch_norm",
                 "eval, no affine, N = 1, (1, 3, 2, 2)",
                 [rm, rv](V in) { return batch_norm(in[0], Tensor(), Tensor(), rm, rv, false); },
                 {gc::param({1, 3, 2, 2}, seed++)}});
    c.push_back({"batch_norm_relu",
                 "eval, affine, (2, 3, 4, 3)",
                 [rm, rv](V in) { return batch_norm_relu(in[0], in[1], in[2], rm, rv, false); },
                 {gc::param({2, 3, 4, 3}, seed++), gc::param({3}, seed++), gc::param({3}, seed++)}});
    c.push_back({"batch_norm",
                 "eval, (N, C) = (4, 3)",
                 [rm, rv](V in) { return batch_norm(in[0], in[1], in[2], rm, rv, false); },
                 {gc::param({4, 3}, seed++), gc::param({3}, seed++), gc::param({3}, seed++)}});
  }
  return c;
}

}  // namespace leuko
