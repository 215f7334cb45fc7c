// The gradient checker: the analytic backward of any op or composition of ops against central
// finite differences in float64.
//
// For y = f(x1, ..., xk) and a fixed random weight w of y's shape, the checker compares
// d<w, y>/dx (from backward(w)) with ( <w, f(x + eps e_j)> - <w, f(x - eps e_j)> ) / (2 eps)
// for every element j of every input that requires grad. Weighting by w checks every output's
// gradient at once, not only their sum.
// Each element's relative error is |analytic - numeric| / max(|analytic|, |numeric|, floor), with
// floor = 1e-3 * the largest |numeric| (so gradients that are 0 do not divide by 0).
// Inputs must be float64 CPU tensors; keep them away from kinks (ReLU at 0, ties in max-pool),
// where the derivative does not exist and finite differences straddle two slopes.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace leuko {

struct GradcheckOptions {
  double eps = 1e-6;     // finite-difference step
  double rtol = 1e-5;    // largest relative error that passes
  uint64_t seed = 1234;  // of the output weight w
};

struct GradcheckResult {
  bool ok = false;
  double max_rel_error = 0;  // over all checked elements
  double max_abs_error = 0;
  int64_t checked = 0;       // elements compared
  std::string worst;         // "input 0 [17]: analytic 0.25 numeric 0.2500001"
};

using GradcheckFn = std::function<Tensor(const std::vector<Tensor>&)>;

// Checks every input that requires grad. The inputs' values are restored afterwards.
GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace leuko
