#include "layers/pool.h"

#include <numeric>

#include "layers/gradcheck/cases.h"
#include "layers/gradcheck/inputs.h"

namespace leuko {

namespace {
// A random permutation of 0.01 * (0 .. n-1), centred: every value distinct and 0.01 from the
// next, so no window has a near-tie a finite-difference step (1e-6) could flip.
Tensor distinct_values(const Shape& s, uint64_t seed) {
  const int64_t n = shape_numel(s);
  std::vector<double> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0.0);
  Generator g(seed);
  for (int64_t i = n - 1; i > 0; i--) std::swap(v[size_t(i)], v[g.below(uint64_t(i + 1))]);  // Fisher-Yates
  for (double& x : v) x = 0.01 * (x - double(n) / 2);
  return Tensor::from_vector(v, s).set_requires_grad();
}
}  // namespace

std::vector<GradcheckCase> pool_cases() {
  using V = const std::vector<Tensor>&;
  std::vector<GradcheckCase> c;
  struct Cfg {
    const char* name;
    Shape shape;
    int64_t k, s, p;
    bool ceil;
  };
  // The networks' configurations, and the ceil_mode corner where the last window is dropped.
  const std::vector<Cfg> max_cfgs = {
      {"3/2 ceil_mode (GoogLeNet), 8x8", {2, 3, 8, 8}, 3, 2, 0, true},
      {"3/2 padding 1 (ResNet), 6x5", {1, 2, 6, 5}, 3, 2, 1, false},
      {"2/2 (VGG), 6x7", {2, 2, 6, 7}, 2, 2, 0, false},
      {"3/1 padding 1 ceil_mode (GoogLeNet branch), 5x6", {1, 3, 5, 6}, 3, 1, 1, true},
      {"3/2 overlapping (AlexNet), 9x9", {1, 2, 9, 9}, 3, 2, 0, false},
      {"2/2 padding 1 ceil_mode, last window dropped, 5x5", {1, 2, 5, 5}, 2, 2, 1, true},
  };
  uint64_t seed = 301;
  for (const Cfg& m : max_cfgs) {
    const int64_t k = m.k, s = m.s, p = m.p;
    const bool ceil = m.ceil;
    c.push_back({"max_pool2d", m.name, [=](V in) { return max_pool2d(in[0], k, s, p, ceil); },
                 {distinct_values(m.shape, seed++)}});
  }
  const std::vector<Cfg> avg_cfgs = {
      {"5/3 (Inception-v3 aux), 11x11", {1, 2, 11, 11}, 5, 3, 0, false},
      {"3/1 padding 1 (Inception-v3 branch), 5x6", {2, 2, 5, 6}, 3, 1, 1, false},
      {"3/2 padding 1 ceil_mode: divisor clipped at the padded end, 6x6", {1, 2, 6, 6}, 3, 2, 1, true},
      {"3/2 ceil_mode, no padding: last window clipped, 6x7", {1, 2, 6, 7}, 3, 2, 0, true},
  };
  for (const Cfg& a : avg_cfgs) {
    const int64_t k = a.k, s = a.s, p = a.p;
    const bool ceil = a.ceil;
    c.push_back({"avg_pool2d", a.name, [=](V in) { return avg_pool2d(in[0], k, s, p, ceil); },
                 {gc::param(a.shape, seed++)}});
  }
  c.push_back({"avg_pool2d", "3/2 padding 1 ceil_mode, count_include_pad=false, 7x6",
               [](V in) { return avg_pool2d(in[0], 3, 2, 1, true, false); }, {gc::param({1, 2, 7, 6}, seed++)}});
  struct Ada {
    const char* name;
    Shape shape;
    int64_t oh, ow;
  };
  const std::vector<Ada> ada_cfgs = {
      {"13x13 to 6x6 (AlexNet)", {1, 2, 13, 13}, 6, 6},
      {"5x5 to 6x6 (upsampling: windows repeat inputs)", {2, 2, 5, 5}, 6, 6},
      {"7x7 to 1x1 (ResNet, GoogLeNet)", {2, 3, 7, 7}, 1, 1},
      {"5x7 to 3x2", {1, 2, 5, 7}, 3, 2},
  };
  for (const Ada& a : ada_cfgs) {
    const int64_t oh = a.oh, ow = a.ow;
    c.push_back({"adaptive_avg_pool2d", a.name, [=](V in) { return adaptive_avg_pool2d(in[0], oh, ow); },
                 {gc::param(a.shape, seed++)}});
  }
  return c;
}

}  // namespace leuko
