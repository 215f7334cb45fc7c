// Helpers for writing gradient-check cases: seeded float64 inputs.
#pragma once

#include "tensor/random.h"

namespace leuko::gc {

// Normal(0, 1) float64 values that require grad.
inline Tensor param(const Shape& s, uint64_t seed) {
  Generator g(seed);
  return randn(s, g, DType::f64).set_requires_grad();
}
// Uniform [lo, hi) float64 values that require grad (for log, div: keep away from 0).
inline Tensor param_uniform(const Shape& s, double lo, double hi, uint64_t seed) {
  Generator g(seed);
  Tensor t = Tensor::empty(s, DType::f64);
  init::uniform_(t, lo, hi, g);
  return t.set_requires_grad();
}
// Same, not requiring grad (fixed inputs).
inline Tensor constant(const Shape& s, uint64_t seed) {
  Generator g(seed);
  return randn(s, g, DType::f64);
}

}  // namespace leuko::gc
