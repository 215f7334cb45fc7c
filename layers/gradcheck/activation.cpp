#include "layers/activation.h"

#include <cmath>

#include "layers/elementwise.h"
#include "layers/gradcheck/cases.h"
#include "layers/gradcheck/inputs.h"

namespace leuko {

namespace {
// Normal values pushed 0.01 away from 0 (the ReLU kink): a 1e-6 finite-difference step then
// never crosses it.
Tensor away_from_zero(const Shape& s, uint64_t seed) {
  Tensor t = gc::constant(s, seed);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); i++) p[i] += std::copysign(0.01, p[i]);
  return t.set_requires_grad();
}

// dropout with a fixed seed: the checker evaluates f many times and each evaluation must drop
// the same elements. The default generator is saved and restored around the call, so running
// the case leaves the process's random stream where it was.
Tensor seeded_dropout(const Tensor& x, double p) {
  Generator& gen = default_generator();
  const Generator saved = gen;
  gen.manual_seed(2024);
  Tensor out = dropout(x, p, true);
  gen = saved;
  return out;
}
}  // namespace

std::vector<GradcheckCase> activation_cases() {
  using V = const std::vector<Tensor>&;
  std::vector<GradcheckCase> c;
  c.push_back({"relu", "(3, 4)", [](V in) { return relu(in[0]); }, {away_from_zero({3, 4}, 401)}});
  c.push_back({"relu", "(2, 3, 4, 5)", [](V in) { return relu(in[0]); }, {away_from_zero({2, 3, 4, 5}, 402)}});
  c.push_back({"relu", "used twice: relu(x) * x", [](V in) { return relu(in[0]) * in[0]; },
               {away_from_zero({4, 5}, 403)}});
  c.push_back({"dropout", "p=0.5, (4, 6), fixed seed", [](V in) { return seeded_dropout(in[0], 0.5); },
               {gc::param({4, 6}, 404)}});
  c.push_back({"dropout", "p=0.2, (2, 3, 4, 4), fixed seed", [](V in) { return seeded_dropout(in[0], 0.2); },
               {gc::param({2, 3, 4, 4}, 405)}});
  // b scaled by 1e-3 (|b| < 5 here): a + b stays 0.005 away from the kink.
  c.push_back({"add_relu", "(2, 3, 4, 5), a + 0.001 b", [](V in) { return add_relu(in[0], in[1] * 1e-3); },
               {away_from_zero({2, 3, 4, 5}, 408), gc::param({2, 3, 4, 5}, 409)}});
  c.push_back({"add_relu", "both inputs the same tensor: relu(2x)", [](V in) { return add_relu(in[0], in[0]); },
               {away_from_zero({3, 4}, 410)}});
  c.push_back({"flatten", "(2, 3, 4, 5) from dim 1", [](V in) { return in[0].flatten(1) * 2.0; },
               {gc::param({2, 3, 4, 5}, 406)}});
  c.push_back({"flatten", "(3, 2, 2) from dim 0, through relu", [](V in) { return relu(in[0].flatten(0)); },
               {away_from_zero({3, 2, 2}, 407)}});
  return c;
}

}  // namespace leuko
