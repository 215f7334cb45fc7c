#include "layers/reduce.h"

#include "layers/elementwise.h"
#include "layers/gradcheck/cases.h"
#include "layers/gradcheck/inputs.h"

namespace leuko {

std::vector<GradcheckCase> reduce_cases() {
  using V = const std::vector<Tensor>&;
  std::vector<GradcheckCase> c;
  c.push_back({"sum", "all of (3, 4)", [](V in) { return sum(in[0]); }, {gc::param({3, 4}, 101)}});
  c.push_back({"sum", "dim 1 of (2, 3, 4)", [](V in) { return sum(in[0], {1}); }, {gc::param({2, 3, 4}, 102)}});
  c.push_back({"sum", "dims 0, 2 keepdim of (2, 3, 4, 2)", [](V in) { return sum(in[0], {0, 2}, true); },
               {gc::param({2, 3, 4, 2}, 103)}});
  c.push_back({"sum", "dim -1 of (5, 7)", [](V in) { return sum(in[0], {-1}); }, {gc::param({5, 7}, 104)}});
  c.push_back({"mean", "all of (3, 5)", [](V in) { return mean(in[0]); }, {gc::param({3, 5}, 105)}});
  c.push_back({"mean", "dims 2, 3 of (2, 3, 4, 5)", [](V in) { return mean(in[0], {2, 3}); },
               {gc::param({2, 3, 4, 5}, 106)}});
  c.push_back({"sum_to", "(2, 3, 4) to (3, 1)", [](V in) { return sum_to(in[0], {3, 1}); }, {gc::param({2, 3, 4}, 107)}});
  c.push_back({"expand", "(3, 1) to (2, 3, 4)", [](V in) { return expand(in[0], {2, 3, 4}); }, {gc::param({3, 1}, 108)}});
  c.push_back({"mean", "composed: mean(x * x) - sum(x)", [](V in) { return mean(mul(in[0], in[0])) - sum(in[0]); },
               {gc::param({4, 3}, 109)}});
  return c;
}

}  // namespace leuko
