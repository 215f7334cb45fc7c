// Differentiable local response normalisation across channels, and its module.
#pragma once

#include <cstdint>
#include <string>

#include "layers/module.h"
#include "tensor/tensor.h"

namespace leuko {

// torch.nn.functional.local_response_norm: x is (N, C, ...) with at least 3 dims;
//   out = x / (k + alpha / size * (sum of x^2 over `size` neighbouring channels))^beta,
// the window running from size/2 channels before to (size-1)/2 after, zero beyond the edges,
// the sum always divided by `size` (see kernels/lrn.h for the formula and its gradient).
Tensor local_response_norm(const Tensor& x, int64_t size, double alpha = 1e-4, double beta = 0.75, double k = 1.0);

// torch.nn.LocalResponseNorm. No parameters.
class LocalResponseNorm : public Module {
 public:
  explicit LocalResponseNorm(int64_t size_, double alpha_ = 1e-4, double beta_ = 0.75, double k_ = 1.0)
      : size(size_), alpha(alpha_), beta(beta_), k(k_) {}
  Tensor forward(const Tensor& x) override { return local_response_norm(x, size, alpha, beta, k); }
  std::string type_name() const override { return "LocalResponseNorm"; }
  std::string extra_repr() const override;  // "5, alpha=0.0001, beta=0.75, k=1.0"
  int64_t size;
  double alpha, beta, k;
};

}  // namespace leuko
