// The gradient-check cases of every op: the same list runs in the tests (tests/layers/) and
// in `leuko gradcheck [OP...]`, so a student can rerun exactly what the tests check.
//
// Each op family lists its cases in layers/gradcheck/<family>.cpp: small float64 inputs (the
// ones that require grad are checked), at several shapes, with padding, strides and values
// near the kinks of ReLU and max-pool where they apply (near, not at: finite differences need
// the function to be smooth within eps of the point).
#pragma once

#include <string>
#include <vector>

#include "tensor/gradcheck.h"

namespace leuko {

struct GradcheckCase {
  std::string op;    // the op's name, as `leuko gradcheck OP` takes it: "conv2d"
  std::string name;  // what this case covers: "stride 2, padding 1, no bias"
  GradcheckFn f;
  std::vector<Tensor> inputs;
  double rtol = 1e-5;
};

// One function per op family, each in layers/gradcheck/<family>.cpp.
std::vector<GradcheckCase> elementwise_cases();  // add sub mul div scalar exp log neg bias_add
std::vector<GradcheckCase> reduce_cases();       // sum mean sum_to expand
std::vector<GradcheckCase> matmul_cases();       // matmul
std::vector<GradcheckCase> conv2d_cases();       // conv2d
std::vector<GradcheckCase> linear_cases();       // linear
std::vector<GradcheckCase> pool_cases();         // max_pool2d avg_pool2d adaptive_avg_pool2d
std::vector<GradcheckCase> activation_cases();   // relu dropout flatten
std::vector<GradcheckCase> lrn_cases();          // local_response_norm
std::vector<GradcheckCase> concat_cases();       // cat
std::vector<GradcheckCase> batchnorm_cases();    // batch_norm2d
std::vector<GradcheckCase> loss_cases();         // log_softmax cross_entropy bce_with_logits

// Every case, in family order.
std::vector<GradcheckCase> all_gradcheck_cases();

}  // namespace leuko
