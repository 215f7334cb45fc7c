#include "layers/lrn.h"

#include "layers/gradcheck/cases.h"
#include "layers/gradcheck/inputs.h"

namespace leuko {

std::vector<GradcheckCase> lrn_cases() {
  using V = const std::vector<Tensor>&;
  std::vector<GradcheckCase> c;
  // With the networks' alpha = 1e-4 the cross-channel term is tiny; larger alphas make the
  // gradient through the neighbours' scales as large as the direct one, so both are checked.
  c.push_back({"local_response_norm", "size 5, alpha 1e-4, beta 0.75, k 1 (AlexNet), (2, 7, 3, 3)",
               [](V in) { return local_response_norm(in[0], 5, 1e-4, 0.75, 1.0); }, {gc::param({2, 7, 3, 3}, 501)}});
  c.push_back({"local_response_norm", "size 3, alpha 0.5, beta 0.75, k 2, (1, 6, 2, 3)",
               [](V in) { return local_response_norm(in[0], 3, 0.5, 0.75, 2.0); }, {gc::param({1, 6, 2, 3}, 502)}});
  c.push_back({"local_response_norm", "size 4 (even: asymmetric window), alpha 1, beta 0.5, (2, 5, 2, 2)",
               [](V in) { return local_response_norm(in[0], 4, 1.0, 0.5, 1.0); }, {gc::param({2, 5, 2, 2}, 503)}});
  c.push_back({"local_response_norm", "size 7 > C = 4, alpha 0.3, beta 1.2, (1, 4, 3, 2)",
               [](V in) { return local_response_norm(in[0], 7, 0.3, 1.2, 1.5); }, {gc::param({1, 4, 3, 2}, 504)}});
  c.push_back({"local_response_norm", "3-D input (2, 6, 5), size 2, alpha 0.8",
               [](V in) { return local_response_norm(in[0], 2, 0.8, 0.75, 1.0); }, {gc::param({2, 6, 5}, 505)}});
  c.push_back({"local_response_norm", "size 1, alpha 0.5, (1, 3, 2, 2)",
               [](V in) { return local_response_norm(in[0], 1, 0.5, 0.75, 1.0); }, {gc::param({1, 3, 2, 2}, 506)}});
  return c;
}

}  // namespace leuko
