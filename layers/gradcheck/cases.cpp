#include "layers/gradcheck/cases.h"

namespace leuko {

std::vector<GradcheckCase> all_gradcheck_cases() {
  std::vector<GradcheckCase> all;
  for (auto family : {elementwise_cases, reduce_cases, matmul_cases}) {
    std::vector<GradcheckCase> cases = family();
    all.insert(all.end(), cases.begin(), cases.end());
  }
  return all;
}

}  // namespace leuko
