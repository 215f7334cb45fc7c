#include "layers/linear.h"

#include "layers/gradcheck/cases.h"
#include "layers/gradcheck/inputs.h"

namespace leuko {

std::vector<GradcheckCase> linear_cases() {
  using V = const std::vector<Tensor>&;
  std::vector<GradcheckCase> c;
  // (N, in, out)
  for (auto [n, in, out] : {std::tuple{3, 4, 5}, std::tuple{1, 7, 2}, std::tuple{6, 1, 3}, std::tuple{4, 9, 1}}) {
    const std::string nm = "(" + std::to_string(n) + ", " + std::to_string(in) + ") -> " + std::to_string(out);
    const uint64_t seed = uint64_t(600 + 100 * n + 10 * in + out);
    c.push_back({"linear", nm, [](V in_) { return linear(in_[0], in_[1], in_[2]); },
                 {gc::param({n, in}, seed), gc::param({out, in}, seed + 1), gc::param({out}, seed + 2)}});
  }
  c.push_back({"linear", "(2, 6) -> 4, no bias", [](V in) { return linear(in[0], in[1]); },
               {gc::param({2, 6}, 701), gc::param({4, 6}, 702)}});
  c.push_back({"linear", "input without grad", [](V in) { return linear(in[0], in[1], in[2]); },
               {gc::constant({3, 5}, 703), gc::param({2, 5}, 704), gc::param({2}, 705)}});
  c.push_back({"linear", "two layers, weight shared: linear(linear(x, w), w)",
               [](V in) { return linear(linear(in[0], in[1]), in[1], in[2]); },
               {gc::param({2, 3}, 706), gc::param({3, 3}, 707), gc::param({3}, 708)}});
  c.push_back({"linear_relu", "(4, 6) -> 5, bias", [](V in) { return linear_relu(in[0], in[1], in[2]); },
               {gc::param({4, 6}, 709), gc::param({5, 6}, 710), gc::param({5}, 711)}});
  c.push_back({"linear_relu", "(3, 4) -> 6, no bias", [](V in) { return linear_relu(in[0], in[1]); },
               {gc::param({3, 4}, 712), gc::param({6, 4}, 713)}});
  return c;
}

}  // namespace leuko
