// Losses on the GPU (float32) against the CPU (float64): log_softmax, cross_entropy with every
// option (weights, label smoothing, ignore_index, reduction) and bce_with_logits (pos_weight,
// gradients for logits, targets and pos_weight), on odd sizes (N = 1, C = 2 or 3, C not a
// multiple of 32, C = 1000, N spread over many blocks) and large logits; out-of-range targets
// give NaN without a host synchronisation; bitwise-reproducible results.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "gpu/gpu_helpers.h"
#include "layers/loss.h"

using namespace leuko;
using V = const std::vector<Tensor>&;

namespace {

// N targets in [0, C), every `ignore_every`-th row set to -100 (0: none).
Tensor random_targets(int64_t N, int64_t C, uint64_t seed, int64_t ignore_every = 0) {
  Generator g(seed);
  std::vector<int64_t> t(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; i++) {
    t[size_t(i)] = ignore_every > 0 && i % ignore_every == 1 ? -100 : int64_t(g.below(uint64_t(C)));
  }
  return Tensor::from_vector(t, {N});
}

const char* reduction_name(LossReduction r) {
  return r == LossReduction::mean ? "mean" : r == LossReduction::sum ? "sum" : "none";
}

}  // namespace

TEST_CASE("log_softmax: GPU matches CPU") {
  uint64_t seed = 100;
  for (const Shape& s : std::vector<Shape>{{1, 3}, {5, 33}, {257, 10}, {3, 1000}, {2, 3, 7}, {64, 32}}) {
    INFO("shape " << shape_str(s));
    Tensor x = test::leaf(test::randn_t(s, seed++, DType::f32) * 3.0);
    // Values O(1..10) in float32: 1e-5 relative for the output and the gradient.
    test::check_gpu_matches_cpu([](V in) { return log_softmax(in[0]); }, {x}, 1e-5, seed++);
  }
  // A row with logits 1e4 apart: finite, exact to float32 rounding (1e-6 relative).
  Tensor big = Tensor::from_vector(std::vector<float>{1e4f, -1e4f, 0.f, 1e4f - 1.f, 5.f, -3.f, 1.f, 2.f}, {2, 4});
  test::check_gpu_matches_cpu([](V in) { return log_softmax(in[0]); }, {test::leaf(big)}, 1e-6, seed);
}

TEST_CASE("cross_entropy: GPU matches CPU with every option") {
  const int64_t N = 300, C = 37;  // 300 rows: 38 blocks of 8 warps; C not a multiple of 32
  Tensor x = test::leaf(test::randn_t({N, C}, 200, DType::f32) * 2.0);
  Tensor targets = random_targets(N, C, 201, 7);
  Tensor weight = test::uniform_t({C}, 0.3, 2.0, 202, DType::f32);
  for (bool weighted : {false, true}) {
    for (double smoothing : {0.0, 0.15}) {
      for (LossReduction r : {LossReduction::mean, LossReduction::sum, LossReduction::none}) {
        INFO((weighted ? "weighted" : "unweighted") << ", smoothing " << smoothing << ", " << reduction_name(r));
        // The class weights are an input (index 2) so that each device gets its own copy.
        auto f = [=](V in) {
          CrossEntropyOptions o;
          if (weighted) o.weight = in[2];
          o.label_smoothing = smoothing;
          o.reduction = r;
          return cross_entropy(in[0], in[1], o);
        };
        // Per-row losses O(1) summed over 300 rows in float32 (fixed tree): 1e-5 relative.
        test::check_gpu_matches_cpu(f, {x, targets, weight}, 1e-5, 203);
      }
    }
  }
}

TEST_CASE("cross_entropy: GPU matches CPU on other sizes") {
  struct Case {
    int64_t N, C;
  };
  uint64_t seed = 300;
  for (const Case& c : {Case{1, 3}, Case{64, 1000}, Case{3, 2}, Case{1000, 10}}) {
    INFO("N " << c.N << ", C " << c.C);
    Tensor x = test::leaf(test::randn_t({c.N, c.C}, seed++, DType::f32));
    Tensor t = random_targets(c.N, c.C, seed++);
    auto f = [](V in) { return cross_entropy(in[0], in[1], {Tensor(), 0.1, LossReduction::mean, -100}); };
    test::check_gpu_matches_cpu(f, {x, t}, 1e-5, seed++);  // float32 sums over C and N: 1e-5
  }
  // Logits of size 1e4: the same float32 values on both devices; the loss (~1e4) to 1e-6.
  Tensor big = test::leaf(test::randn_t({5, 4}, seed++, DType::f32) * 1e4);
  test::check_gpu_matches_cpu(
      [](V in) {
        return cross_entropy(in[0], in[1], {Tensor(), 0.1});
      },
      {big, random_targets(5, 4, seed++)}, 1e-6, seed++);
}

TEST_CASE("cross_entropy: a target out of range on the GPU gives NaN, without a synchronisation") {
  Tensor x = test::randn_t({4, 5}, 400, DType::f32).cuda();
  Tensor t = Tensor::from_vector(std::vector<int64_t>{0, 5, 2, -100}, {4}, Device::CUDA);
  CHECK(std::isnan(cross_entropy(x, t).item()));  // mean: the bad row poisons it
  CHECK(std::isnan(cross_entropy(x, t, {Tensor(), 0.0, LossReduction::sum, -100}).item()));
  std::vector<double> rows = cross_entropy(x, t, {Tensor(), 0.0, LossReduction::none, -100}).to_double_vector();
  CHECK(std::isfinite(rows[0]));
  CHECK(std::isnan(rows[1]));
  CHECK(std::isfinite(rows[2]));
  CHECK(rows[3] == 0.0);  // ignored
}

TEST_CASE("bce_with_logits: GPU matches CPU") {
  uint64_t seed = 500;
  for (const Shape& s : std::vector<Shape>{{300, 7}, {1}, {4, 33}, {2, 3, 5}}) {
    const int64_t C = s.back();
    // Logits spread to +-30 (saturated sigmoid), targets in [0, 1]; all three get gradients.
    Tensor x = test::leaf(test::uniform_t(s, -30.0, 30.0, seed++, DType::f32));
    Tensor t = test::leaf(test::uniform_t(s, 0.0, 1.0, seed++, DType::f32));
    Tensor pw = test::leaf(test::uniform_t({C}, 0.5, 3.0, seed++, DType::f32));
    for (LossReduction r : {LossReduction::mean, LossReduction::sum, LossReduction::none}) {
      INFO("shape " << shape_str(s) << ", " << reduction_name(r));
      // Elementwise in float32, then a float32 sum (mean, sum): 1e-5 relative.
      test::check_gpu_matches_cpu([r](V in) { return bce_with_logits(in[0], in[1], Tensor(), r); }, {x, t}, 1e-5, seed);
      test::check_gpu_matches_cpu([r](V in) { return bce_with_logits(in[0], in[1], in[2], r); }, {x, t, pw}, 1e-5,
                                  seed + 1);
    }
    seed += 2;
  }
}

TEST_CASE("losses: the GPU gives the same bits on every run") {
  Tensor x0 = test::randn_t({1000, 37}, 600, DType::f32);
  Tensor t = random_targets(1000, 37, 601, 9).cuda();
  Tensor w = test::uniform_t({37}, 0.3, 2.0, 602, DType::f32).cuda();
  std::vector<std::vector<float>> runs;
  for (int r = 0; r < 2; r++) {
    Tensor x = x0.cuda().set_requires_grad(true);
    Tensor loss = cross_entropy(x, t, {w, 0.1, LossReduction::mean, -100});
    loss.backward();
    runs.push_back(test::all_values({loss, x.grad()}));
  }
  CHECK(runs[0] == runs[1]);  // bitwise: warp shuffles and block sums in a fixed order
}
