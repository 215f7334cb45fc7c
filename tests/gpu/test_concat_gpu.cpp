// Concatenation on the GPU against the CPU: Inception's channel concatenations, other dims,
// odd sizes, inputs without gradients.
#include <doctest/doctest.h>

#include <vector>

#include "gpu/gpu_helpers.h"
#include "layers/concat.h"

using namespace leuko;
using V = const std::vector<Tensor>&;

TEST_CASE("cat: GPU matches CPU") {
  struct Cfg {
    std::vector<Shape> shapes;
    int64_t dim;
  };
  const std::vector<Cfg> cfgs = {
      {{{2, 64, 28, 28}, {2, 128, 28, 28}, {2, 32, 28, 28}, {2, 32, 28, 28}}, 1},  // GoogLeNet inception3a
      {{{3, 5, 7, 9}, {3, 1, 7, 9}, {3, 11, 7, 9}}, 1},
      {{{2, 3, 5}, {7, 3, 5}}, 0},
      {{{3, 4, 5}, {3, 4, 1}, {3, 4, 13}}, -1},
      {{{5, 2, 3, 3}, {5, 2, 6, 3}}, 2},
      {{{1, 1}, {1, 1}, {1, 1}}, 0},
  };
  uint64_t seed = 500;
  for (const Cfg& c : cfgs) {
    INFO("dim " << c.dim << ", first input " << shape_str(c.shapes[0]));
    std::vector<Tensor> xs;
    for (size_t i = 0; i < c.shapes.size(); i++) {
      Tensor x = test::randn_t(c.shapes[i], seed++, DType::f32);
      if (i != 1) x.set_requires_grad(true);  // input 1 needs no gradient
      xs.push_back(x);
    }
    const int64_t dim = c.dim;
    // The forward copies float32 values (exact); gradients are copies of the float32-rounded
    // upstream gradient: 1e-6 relative.
    test::check_gpu_matches_cpu([dim](V in) { return cat(in, dim); }, xs, 1e-6, seed++);
  }
}
