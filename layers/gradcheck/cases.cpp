#include "layers/gradcheck/cases.h"

namespace leuko {

std::vector<GradcheckCase> all_gradcheck_cases() {
  std::vector<GradcheckCase> all;
  for (auto family : {elementwise_cases, reduce_cases, matmul_cases, conv2d_cases, linear_cases, pool_cases,
                      activation_cases, lrn_cases, concat_cases, batchnorm_cases, loss_cases}) {
    std::vector<GradcheckCase> cases = family();
    all.insert(all.end(), cases.begin(), cases.end());
  }
  return all;
}

}  // namespace leuko
