// Local response normalisation on the GPU (float32) against the CPU (float64), forward and the
// hand-derived backward, on AlexNet's and GoogLeNet's shapes and odd ones.
#include <doctest/doctest.h>

#include <vector>

#include "gpu/gpu_helpers.h"
#include "layers/lrn.h"

using namespace leuko;
using V = const std::vector<Tensor>&;

TEST_CASE("local_response_norm: GPU matches CPU") {
  struct Cfg {
    Shape x;
    int64_t size;
    double alpha, beta, k, scale;
  };
  const std::vector<Cfg> cfgs = {
      {{2, 96, 27, 27}, 5, 1e-4, 0.75, 2.0, 10.0},  // AlexNet paper's LRN after conv1
      {{2, 64, 28, 28}, 5, 1e-4, 0.75, 1.0, 10.0},  // GoogLeNet's LRN (size 5, k 1)
      {{3, 7, 5, 9}, 3, 0.5, 0.75, 2.0, 1.0},       // strong cross-channel term
      {{2, 5, 11, 3}, 4, 1.0, 0.5, 1.0, 1.0},       // even size
      {{1, 3, 13, 13}, 9, 0.3, 1.2, 1.5, 1.0},      // size > C
      {{4, 6, 17}, 2, 0.8, 0.75, 1.0, 1.0},         // 3-D input
  };
  uint64_t seed = 400;
  for (const Cfg& c : cfgs) {
    INFO("input " << shape_str(c.x) << " size " << c.size << " alpha " << c.alpha);
    Tensor x = test::leaf(test::randn_t(c.x, seed, DType::f32) * c.scale);
    const Cfg cc = c;
    // float32 window sums, powf and a few products against float64: 1e-5 relative.
    test::check_gpu_matches_cpu([cc](V in) { return local_response_norm(in[0], cc.size, cc.alpha, cc.beta, cc.k); },
                                {x}, 1e-5, seed + 1);
    seed += 10;
  }
}
