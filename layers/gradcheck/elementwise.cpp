#include "layers/elementwise.h"

#include "layers/gradcheck/cases.h"
#include "layers/gradcheck/inputs.h"

namespace leuko {

std::vector<GradcheckCase> elementwise_cases() {
  using V = const std::vector<Tensor>&;
  std::vector<GradcheckCase> c;
  // Same shapes, and broadcasts in both directions (the gradient is summed back).
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{3, 4}, {3, 4}}, {{2, 3, 5}, {5}}, {{4, 1}, {1, 3}}, {{2, 3, 1, 4}, {3, 2, 1}}, {{}, {2, 2}}};
  uint64_t seed = 1;
  for (const auto& [sa, sb] : shapes) {
    const std::string nm = shape_str(sa) + " with " + shape_str(sb);
    c.push_back({"add", nm, [](V in) { return add(in[0], in[1]); }, {gc::param(sa, seed++), gc::param(sb, seed++)}});
    c.push_back({"sub", nm, [](V in) { return sub(in[0], in[1]); }, {gc::param(sa, seed++), gc::param(sb, seed++)}});
    c.push_back({"mul", nm, [](V in) { return mul(in[0], in[1]); }, {gc::param(sa, seed++), gc::param(sb, seed++)}});
    c.push_back({"div", nm, [](V in) { return div(in[0], in[1]); },
                 {gc::param(sa, seed++), gc::param_uniform(sb, 0.5, 2.0, seed++)}});
  }
  c.push_back({"add", "one input fixed", [](V in) { return add(in[0], in[1]); },
               {gc::param({3, 3}, seed++), gc::constant({3}, seed++)}});
  c.push_back({"mul", "same tensor twice (x * x)", [](V in) { return mul(in[0], in[0]); }, {gc::param({7}, seed++)}});
  c.push_back({"scalar", "2.5 * x - 1", [](V in) { return 2.5 * in[0] - 1.0; }, {gc::param({2, 3}, seed++)}});
  c.push_back({"scalar", "3 - x / 4", [](V in) { return 3.0 - in[0] / 4.0; }, {gc::param({5}, seed++)}});
  c.push_back({"scalar", "2 / x", [](V in) { return 2.0 / in[0]; }, {gc::param_uniform({6}, 0.5, 3.0, seed++)}});
  c.push_back({"exp", "(3, 5)", [](V in) { return exp(in[0]); }, {gc::param({3, 5}, seed++)}});
  c.push_back({"log", "(4, 4) in [0.2, 3]", [](V in) { return log(in[0]); },
               {gc::param_uniform({4, 4}, 0.2, 3.0, seed++)}});
  c.push_back({"neg", "(3,)", [](V in) { return neg(in[0]); }, {gc::param({3}, seed++)}});
  c.push_back({"bias_add", "(2, 3, 4, 5) + (3,)", [](V in) { return bias_add(in[0], in[1]); },
               {gc::param({2, 3, 4, 5}, seed++), gc::param({3}, seed++)}});
  c.push_back({"bias_add", "(4, 6) + (6,)", [](V in) { return bias_add(in[0], in[1]); },
               {gc::param({4, 6}, seed++), gc::param({6}, seed++)}});
  return c;
}

}  // namespace leuko
