#include "layers/loss.h"

#include "layers/elementwise.h"
#include "layers/gradcheck/cases.h"
#include "layers/gradcheck/inputs.h"

namespace leuko {

std::vector<GradcheckCase> loss_cases() {
  using V = const std::vector<Tensor>&;
  std::vector<GradcheckCase> c;
  uint64_t seed = 1201;
  c.push_back({"log_softmax", "(4, 5)", [](V in) { return log_softmax(in[0], 1); }, {gc::param({4, 5}, seed++)}});
  c.push_back({"log_softmax",
               "last dim of (2, 3, 6)",
               [](V in) { return log_softmax(in[0]); },
               {gc::param({2, 3, 6}, seed++)}});
  c.push_back({"log_softmax",
               "logits in [-30, 30], (3, 7)",
               [](V in) { return log_softmax(in[0]); },
               {gc::param_uniform({3, 7}, -30, 30, seed++)}});

  // cross_entropy: logits (N, C) checked, the int64 targets fixed (input 1). Class weights in
  // [0.2, 2], fixed.
  const Tensor targets = Tensor::from_vector(std::vector<int64_t>{2, 0, 3, 3, 1}, {5});
  const Tensor ignored = Tensor::from_vector(std::vector<int64_t>{2, -100, 0, 3, -100}, {5});
  const Tensor weight = [&] {
    Tensor w = Tensor::empty({4}, DType::f64);
    Generator g(seed++);
    init::uniform_(w, 0.2, 2.0, g);
    return w;
  }();
  struct Variant {
    std::string name;
    CrossEntropyOptions opt;
  };
  std::vector<Variant> variants;
  variants.push_back({"mean", {}});
  variants.push_back({"weighted, mean", {weight, 0.0, LossReduction::mean, -100}});
  variants.push_back({"smoothing 0.1, mean", {Tensor(), 0.1, LossReduction::mean, -100}});
  variants.push_back({"weighted, smoothing 0.2, mean", {weight, 0.2, LossReduction::mean, -100}});
  variants.push_back({"weighted, smoothing 0.2, sum", {weight, 0.2, LossReduction::sum, -100}});
  variants.push_back({"weighted, smoothing 0.2, none", {weight, 0.2, LossReduction::none, -100}});
  variants.push_back({"smoothing 1.0, none", {Tensor(), 1.0, LossReduction::none, -100}});
  for (const Variant& v : variants) {
    const CrossEntropyOptions opt = v.opt;
    c.push_back({"cross_entropy",
                 v.name + ", (5, 4)",
                 [opt](V in) { return cross_entropy(in[0], in[1], opt); },
                 {gc::param({5, 4}, seed++), targets}});
  }
  c.push_back({"cross_entropy",
               "ignore_index -100 on 2 rows, weighted, smoothing 0.1, mean",
               [weight](V in) {
                 return cross_entropy(in[0], in[1], {weight, 0.1, LossReduction::mean, -100});
               },
               {gc::param({5, 4}, seed++), ignored}});
  c.push_back({"cross_entropy",
               "logits in [-30, 30], smoothing 0.1, mean",
               [](V in) {
                 return cross_entropy(in[0], in[1], {Tensor(), 0.1, LossReduction::mean, -100});
               },
               {gc::param_uniform({5, 4}, -30, 30, seed++), targets}});
  c.push_back({"cross_entropy",
               "composed: cross_entropy(x * x), (5, 4)",
               [](V in) { return cross_entropy(in[0] * in[0], in[1]); },
               {gc::param({5, 4}, seed++), targets}});

  // bce_with_logits: logits, targets in [0, 1] and pos_weight in [0.5, 3] all checked.
  const Shape s{3, 4};
  for (LossReduction r : {LossReduction::mean, LossReduction::sum, LossReduction::none}) {
    const std::string rn = r == LossReduction::mean ? "mean" : r == LossReduction::sum ? "sum" : "none";
    c.push_back({"bce_with_logits",
                 rn + ", (3, 4)",
                 [r](V in) { return bce_with_logits(in[0], in[1], Tensor(), r); },
                 {gc::param(s, seed++), gc::param_uniform(s, 0.0, 1.0, seed++)}});
    c.push_back(
        {"bce_with_logits",
         rn + ", pos_weight (4,)",
         [r](V in) { return bce_with_logits(in[0], in[1], in[2], r); },
         {gc::param(s, seed++), gc::param_uniform(s, 0.0, 1.0, seed++), gc::param_uniform({4}, 0.5, 3.0, seed++)}});
  }
  c.push_back({"bce_with_logits",
               "logits in [-30, 30], pos_weight, mean",
               [](V in) { return bce_with_logits(in[0], in[1], in[2]); },
               {gc::param_uniform({4, 5}, -30, 30, seed++), gc::param_uniform({4, 5}, 0.0, 1.0, seed++),
                gc::param_uniform({5}, 0.5, 3.0, seed++)}});
  c.push_back({"bce_with_logits",
               "1-D (7,), fixed targets, sum",
               [](V in) { return bce_with_logits(in[0], in[1], Tensor(), LossReduction::sum); },
               {gc::param({7}, seed++), gc::constant({7}, seed++)}});
  return c;
}

}  // namespace leuko
