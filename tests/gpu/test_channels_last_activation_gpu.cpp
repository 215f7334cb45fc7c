// channels_last activations on the GPU (tensor/device.h channels_last_activations()): ReLU,
// add_relu, dropout and the elementwise ops given channels_last bf16 inputs, against the CPU
// reference (through_float: the float32 NCHW op on the same values). The elementwise kernels walk
// the NHWC buffers as they are and compute one float per element, rounded once, as the CPU
// does, so they are held to exact equality (tol 0), and the output's memory order must be the
// CPU's.
#include <doctest/doctest.h>

#include <vector>

#include "gpu/gpu_helpers.h"
#include "layers/activation.h"
#include "layers/elementwise.h"

using namespace leuko;
using test::check_bf16_gpu_matches_cpu;
using V = const std::vector<Tensor>&;

namespace {
constexpr MemoryFormat kNCHW = MemoryFormat::nchw;
constexpr MemoryFormat kCL = MemoryFormat::channels_last;
Tensor in_n(const Shape& s, uint64_t seed) { return test::randn_t(s, seed, DType::f32).set_requires_grad(); }
// Positive values away from 0: divisors.
Tensor in_pos(const Shape& s, uint64_t seed) {
  return affine(test::randn_t(s, seed, DType::f32), 0.25, 2.0).detach().set_requires_grad();
}
Tensor seeded_dropout(const Tensor& x, double p, uint64_t seed) {
  manual_seed(seed);
  return dropout(x, p, true);
}
// 4-D shapes (N, C, H, W), channels_last in these tests: C = 1, C not a multiple of 32, a plane
// of one pixel (both orders agree), and one large enough for many blocks.
const std::vector<Shape> kShapes = {{1, 1, 1, 1}, {2, 3, 5, 7}, {4, 64, 1, 1}, {2, 33, 17, 19}, {8, 64, 28, 28}};
constexpr bool kCLInputs = true;  // check_bf16_gpu_matches_cpu's channels_last argument
}  // namespace

TEST_CASE("channels_last relu and add_relu: the GPU's bf16 kernels equal the CPU exactly") {
  uint64_t seed = 800;
  for (const Shape& s : kShapes) {
    INFO("shape " << shape_str(s));
    check_bf16_gpu_matches_cpu([](V in) { return relu(in[0]); }, {in_n(s, seed++)}, {true}, 0.0, seed++, kCLInputs);
    check_bf16_gpu_matches_cpu([](V in) { return add_relu(in[0], in[1]); }, {in_n(s, seed++), in_n(s, seed++)},
                               {true, true}, 0.0, seed++, kCLInputs);
    // One operand NCHW (a residual block's shortcut): the output in the first's order.
    check_bf16_gpu_matches_cpu([](V in) { return add_relu(in[0], in[1].to(kNCHW)); },
                               {in_n(s, seed++), in_n(s, seed++)}, {true, true}, 0.0, seed++, kCLInputs);
    check_bf16_gpu_matches_cpu([](V in) { return add_relu(in[0].to(kNCHW), in[1]); },
                               {in_n(s, seed++), in_n(s, seed++)}, {true, true}, 0.0, seed++, kCLInputs);
  }
}

TEST_CASE("channels_last float32 relu and add_relu: the float kernels on NHWC buffers") {
  uint64_t seed = 900;
  for (const Shape& s : kShapes) {
    INFO("shape " << shape_str(s));
    // float32 inputs (as_bf16 false), made channels_last inside f.
    check_bf16_gpu_matches_cpu([](V in) { return relu(in[0].to(kCL)); }, {in_n(s, seed++)}, {false}, 0.0, seed++);
    check_bf16_gpu_matches_cpu([](V in) { return add_relu(in[0].to(kCL), in[1].to(kCL)); },
                               {in_n(s, seed++), in_n(s, seed++)}, {false, false}, 0.0, seed++);
    check_bf16_gpu_matches_cpu([](V in) { return add_relu(in[0].to(kCL), in[1]); }, {in_n(s, seed++), in_n(s, seed++)},
                               {false, false}, 0.0, seed++);
  }
}

TEST_CASE("channels_last dropout: the GPU keeps the CPU's elements (NCHW indices) for the same seed") {
  uint64_t seed = 1000;
  for (const Shape& s : kShapes) {
    for (double p : {0.1, 0.5}) {
      INFO("shape " << shape_str(s) << " p " << p);
      check_bf16_gpu_matches_cpu([p](V in) { return seeded_dropout(in[0], p, 77); }, {in_n(s, seed++)}, {true}, 0.0,
                                 seed++, kCLInputs);
      check_bf16_gpu_matches_cpu([p](V in) { return seeded_dropout(in[0].to(kCL), p, 77); }, {in_n(s, seed++)},
                                 {false}, 0.0, seed++);
    }
  }
}

TEST_CASE("channels_last binary ops on the GPU: one order, mixed orders and broadcasting") {
  uint64_t seed = 1100;
  const Shape s = {2, 6, 5, 3};
  // Single IEEE operations on both devices (no fused multiply-add to tell them apart): exact.
  check_bf16_gpu_matches_cpu([](V in) { return add(in[0], in[1]); }, {in_n(s, seed++), in_n(s, seed++)}, {true, true},
                             0.0, seed++, kCLInputs);
  check_bf16_gpu_matches_cpu([](V in) { return sub(in[0], in[1]); }, {in_n(s, seed++), in_n(s, seed++)}, {true, true},
                             0.0, seed++, kCLInputs);
  check_bf16_gpu_matches_cpu([](V in) { return mul(in[0], in[1]); }, {in_n(s, seed++), in_n(s, seed++)}, {true, true},
                             0.0, seed++, kCLInputs);
  check_bf16_gpu_matches_cpu([](V in) { return div(in[0], in[1]); }, {in_n(s, seed++), in_pos(s, seed++)},
                             {true, true}, 0.0, seed++, kCLInputs);
  // Mixed orders, and broadcasting (a per-channel operand, 3-D so it stays NCHW; a 4-D one made
  // channels_last too). The gradient of the broadcast operand is a sum: float32 sums in another
  // order on each device.
  check_bf16_gpu_matches_cpu([](V in) { return mul(in[0], in[1].to(kNCHW)); }, {in_n(s, seed++), in_n(s, seed++)},
                             {true, true}, 0.0, seed++, kCLInputs);
  check_bf16_gpu_matches_cpu([](V in) { return add(in[0], in[1]); }, {in_n(s, seed++), in_n({6, 1, 1}, seed++)},
                             {true, true}, 1e-6, seed++, kCLInputs);
  check_bf16_gpu_matches_cpu([](V in) { return mul(in[0], in[1]); }, {in_n(s, seed++), in_n({1, 6, 1, 1}, seed++)},
                             {true, true}, 1e-6, seed++, kCLInputs);
  // bf16 with float32 promotes to float32; the float32 operand stays NCHW: through NCHW.
  check_bf16_gpu_matches_cpu([](V in) { return sub(in[0], in[1]); }, {in_n(s, seed++), in_n(s, seed++)}, {true, false},
                             0.0, seed++, kCLInputs);
  // float32 channels_last, one order: the flat float kernel on NHWC buffers.
  check_bf16_gpu_matches_cpu([](V in) { return mul(in[0].to(kCL), in[1].to(kCL)); },
                             {in_n(s, seed++), in_n(s, seed++)}, {false, false}, 0.0, seed++);
  check_bf16_gpu_matches_cpu([](V in) { return -in[0].to(kCL); }, {in_n(s, seed++)}, {false}, 0.0, seed++);
  // bias_add along C with a float32 bias: bf16 out, channels_last; the bias's gradient a sum.
  check_bf16_gpu_matches_cpu([](V in) { return bias_add(in[0], in[1]); }, {in_n(s, seed++), in_n({6}, seed++)},
                             {true, false}, 1e-6, seed++, kCLInputs);
}
