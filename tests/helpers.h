// Shared by the test files: random inputs, comparisons and the gradient check as a doctest
// assertion.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "layers/ops.h"
#include "tensor/device.h"
#include "tensor/gradcheck.h"

namespace leuko::test {

using leuko::PrecisionScope;  // tensor/device.h

// float32 values (N, C, ...) with a different mean and scale per channel, as after a
// convolution: what the batch norm tests normalise. `base` shifts every value.
inline Tensor per_channel_randn(const Shape& s, uint64_t seed, double base = 0.0);

// Normal(0, 1) values, or uniform in [lo, hi).
inline Tensor randn_t(const Shape& s, uint64_t seed, DType dt = DType::f64, Device dev = Device::CPU) {
  Generator g(seed);
  return randn(s, g, dt, dev);
}
inline Tensor uniform_t(const Shape& s, double lo, double hi, uint64_t seed, DType dt = DType::f64,
                        Device dev = Device::CPU) {
  Generator g(seed);
  Tensor t = Tensor::empty(s, dt, dev);
  init::uniform_(t, lo, hi, g);
  return t;
}

// ||a - b|| / max(||b||, tiny): the relative error of a against the reference b. NaN anywhere
// (an unwritten, poisoned element) gives infinity.
inline double rel_error(const Tensor& a, const Tensor& ref) {
  REQUIRE(a.shape() == ref.shape());
  std::vector<double> x = a.to_double_vector(), y = ref.to_double_vector();
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); i++) {
    if (!std::isfinite(x[i]) || !std::isfinite(y[i])) return INFINITY;
    num += (x[i] - y[i]) * (x[i] - y[i]);
    den += y[i] * y[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

// Largest |a - b| over elements (infinity if any is not finite).
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  std::vector<double> x = a.to_double_vector(), y = b.to_double_vector();
  double m = 0;
  for (size_t i = 0; i < x.size(); i++) {
    if (!std::isfinite(x[i]) || !std::isfinite(y[i])) return INFINITY;
    m = std::max(m, std::fabs(x[i] - y[i]));
  }
  return m;
}

// float32 values that bf16 holds exactly (so a bf16 run and a float32 run see the same numbers):
// shift + scale * N(0, 1), rounded to bf16.
inline Tensor bf16_exact(const Shape& s, uint64_t seed, double scale = 1.0, double shift = 0.0) {
  return affine(randn_t(s, seed, DType::f32), scale, shift).to(DType::bf16).to(DType::f32);
}

// Same dtype and shape, every value equal (NaN fails, as max_abs_diff says), read in NCHW order
// whatever the memory order (to_double_vector converts).
inline void check_equal(const Tensor& got, const Tensor& want) {
  INFO("got " << got.describe() << ", want " << want.describe());
  REQUIRE(got.dtype() == want.dtype());
  CHECK(max_abs_diff(got, want) == 0.0);
}

// Runs the gradient checker and fails the test case with its worst element when it fails.
inline void check_gradients(const GradcheckFn& f, const std::vector<Tensor>& inputs, double rtol = 1e-5) {
  GradcheckOptions opt;
  opt.rtol = rtol;
  GradcheckResult r = gradcheck(f, inputs, opt);
  INFO("largest relative error " << r.max_rel_error << " at " << r.worst);
  CHECK(r.checked > 0);
  CHECK(r.ok);
}

// Marks tensors as requiring grad, for gradient checks: leaf(x) returns x.
inline Tensor leaf(Tensor t) {
  t.set_requires_grad(true);
  return t;
}

inline Tensor per_channel_randn(const Shape& s, uint64_t seed, double base) {
  std::vector<double> v = randn_t(s, seed).to_double_vector();
  const int64_t C = s[1], HW = shape_numel(s) / (s[0] * C);
  for (size_t i = 0; i < v.size(); i++) {
    const int64_t c = (int64_t(i) / HW) % C;
    v[i] = base + v[i] * (0.5 + 0.25 * double(c % 5)) + double(c % 7) - 3.0;
  }
  return Tensor::from_vector(v, s, DType::f32);
}

}  // namespace leuko::test
