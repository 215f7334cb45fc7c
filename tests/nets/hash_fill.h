// The counter-based fill shared with tests/fixtures/fx_nets.py: both sides fill the same
// state_dict tensors with the same values without storing them.
#pragma once

#include <cmath>
#include <vector>

#include "layers/module.h"
#include "tensor/autograd.h"

namespace leuko::test {

// n values in [-1, 1): splitmix64 of (seed << 32) + i, top 53 bits.
inline std::vector<double> hash_uniform(uint64_t seed, int64_t n) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) {
    uint64_t z = (seed << 32) + uint64_t(i) + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z = z ^ (z >> 31);
    v[size_t(i)] = 2.0 * (double(z >> 11) * 0x1.0p-53) - 1.0;
  }
  return v;
}

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Fills every floating state_dict tensor k (in order) from seed 1000 + k, scaled as fx_nets.py.
inline void hash_fill(Module& m) {
  autograd::NoGradGuard no_grad;
  uint64_t k = 0;
  for (auto& [name, t] : m.state_dict()) {
    const uint64_t seed = 1000 + k++;
    if (t.dtype() == DType::i64) continue;
    std::vector<double> v = hash_uniform(seed, t.numel());
    for (double& x : v) {
      if (ends_with(name, "running_var")) x = 0.75 + 0.25 * x;
      else if (ends_with(name, "running_mean") || ends_with(name, "bias")) x = 0.1 * x;
      else if (t.dim() == 1) x = 1.0 + 0.1 * x;
      else x = x * std::sqrt(6.0 / double(t.numel() / t.size(0)));
    }
    Tensor src = Tensor::from_vector(v, t.shape(), DType::f64).to(t.dtype()).to(t.device());
    Tensor dst = t;
    dst.copy_(src);
  }
}

inline std::vector<int64_t> sample_positions(int64_t numel, int count = 8) {
  std::vector<int64_t> p;
  for (int j = 0; j < count; j++) p.push_back(int64_t((uint64_t(j) * 2654435761ULL) % uint64_t(numel)));
  return p;
}

}  // namespace leuko::test
