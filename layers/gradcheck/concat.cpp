#include "layers/concat.h"

#include "layers/elementwise.h"
#include "layers/gradcheck/cases.h"
#include "layers/gradcheck/inputs.h"

namespace leuko {

std::vector<GradcheckCase> concat_cases() {
  using V = const std::vector<Tensor>&;
  std::vector<GradcheckCase> c;
  c.push_back({"cat", "channels (Inception): (2, 3, 4, 4), (2, 1, 4, 4), (2, 5, 4, 4) on dim 1",
               [](V in) { return cat({in[0], in[1], in[2]}, 1); },
               {gc::param({2, 3, 4, 4}, 601), gc::param({2, 1, 4, 4}, 602), gc::param({2, 5, 4, 4}, 603)}});
  c.push_back({"cat", "dim 0: (2, 3), (4, 3)", [](V in) { return cat({in[0], in[1]}, 0); },
               {gc::param({2, 3}, 604), gc::param({4, 3}, 605)}});
  c.push_back({"cat", "last dim (-1): (2, 3, 2), (2, 3, 5)", [](V in) { return cat({in[0], in[1]}, -1); },
               {gc::param({2, 3, 2}, 606), gc::param({2, 3, 5}, 607)}});
  c.push_back({"cat", "one input fixed", [](V in) { return cat({in[0], in[1]}, 1); },
               {gc::param({2, 2, 3}, 608), gc::constant({2, 4, 3}, 609)}});
  c.push_back({"cat", "same tensor twice: cat(x, 2x)", [](V in) { return cat({in[0], in[0] * 2.0}, 1); },
               {gc::param({3, 2, 2}, 610)}});
  return c;
}

}  // namespace leuko
