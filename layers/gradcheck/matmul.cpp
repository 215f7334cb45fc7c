#include "layers/matmul.h"

#include "layers/elementwise.h"
#include "layers/gradcheck/cases.h"
#include "layers/gradcheck/inputs.h"

namespace leuko {

std::vector<GradcheckCase> matmul_cases() {
  using V = const std::vector<Tensor>&;
  std::vector<GradcheckCase> c;
  for (auto [m, k, n] : {std::tuple{3, 4, 5}, std::tuple{1, 7, 1}, std::tuple{6, 1, 3}, std::tuple{5, 9, 4}}) {
    const std::string nm = "(" + std::to_string(m) + ", " + std::to_string(k) + ") @ (" + std::to_string(k) + ", " +
                           std::to_string(n) + ")";
    c.push_back({"matmul", nm, [](V in) { return matmul(in[0], in[1]); },
                 {gc::param({m, k}, uint64_t(200 + m * 10 + n)), gc::param({k, n}, uint64_t(300 + k))}});
  }
  c.push_back({"matmul", "chain (a @ b) @ a", [](V in) { return matmul(matmul(in[0], in[1]), in[0]); },
               {gc::param({3, 3}, 401), gc::param({3, 3}, 402)}});
  return c;
}

}  // namespace leuko
