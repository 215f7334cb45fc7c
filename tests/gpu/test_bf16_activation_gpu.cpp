// bf16 activations on the GPU (tensor/device.h bf16_activations()): the bf16 kernels of ReLU,
// add_relu, dropout and bias_add against the CPU reference (the float32 op on the same values,
// rounded once). These ops compute one float per element and round it once on both devices, so
// they are held to exact equality (tol 0).
#include <doctest/doctest.h>

#include <cstring>
#include <type_traits>
#include <vector>

#include "gpu/gpu_helpers.h"
#include "kernels/elementwise.h"
#include "kernels/memory.h"
#include "layers/activation.h"
#include "layers/elementwise.h"

using namespace leuko;
using test::check_bf16_gpu_matches_cpu;
using V = const std::vector<Tensor>&;

namespace {
Tensor in_n(const Shape& s, uint64_t seed) { return test::randn_t(s, seed, DType::f32).set_requires_grad(); }
Tensor seeded_dropout(const Tensor& x, double p, uint64_t seed) {
  manual_seed(seed);
  return dropout(x, p, true);
}
const std::vector<Shape> kShapes = {{1}, {7}, {3, 5, 7}, {2, 33, 17, 19}, {(1 << 20) + 3}};
}  // namespace

TEST_CASE("bf16 relu and add_relu: the GPU's bf16 kernels equal the CPU exactly") {
  uint64_t seed = 400;
  for (const Shape& s : kShapes) {
    INFO("shape " << shape_str(s));
    check_bf16_gpu_matches_cpu([](V in) { return relu(in[0]); }, {in_n(s, seed++)}, {true}, 0.0, seed++);
    // The sum of two bf16 values in float, rounded once: the same bits on both devices, and
    // positive exactly where the float sum is (so the backward selects the same elements).
    check_bf16_gpu_matches_cpu([](V in) { return add_relu(in[0], in[1]); }, {in_n(s, seed++), in_n(s, seed++)},
                               {true, true}, 0.0, seed++);
  }
}

TEST_CASE("bf16 dropout: the GPU keeps the CPU's elements and values for the same seed") {
  uint64_t seed = 500;
  for (const Shape& s : kShapes) {
    for (double p : {0.1, 0.5, 0.7}) {
      INFO("shape " << shape_str(s) << " p " << p);
      check_bf16_gpu_matches_cpu([p](V in) { return seeded_dropout(in[0], p, 77); }, {in_n(s, seed++)}, {true}, 0.0,
                                 seed++);
    }
  }
  Tensor x = test::randn_t({3, 4}, 9, DType::f32).to(DType::bf16).cuda();
  CHECK(dropout(x, 0.5, false).shares_storage(x));  // eval: the input itself
}

TEST_CASE("bf16 elementwise ops go through float32 on the GPU too") {
  uint64_t seed = 600;
  const Shape s = {4, 6, 5};
  // Single IEEE operations (no fused multiply-add to tell the devices apart): exact.
  check_bf16_gpu_matches_cpu([](V in) { return add(in[0], in[1]); }, {in_n(s, seed++), in_n(s, seed++)}, {true, true},
                             0.0, seed++);
  check_bf16_gpu_matches_cpu([](V in) { return mul(in[0], in[1]); }, {in_n(s, seed++), in_n(s, seed++)}, {true, true},
                             0.0, seed++);
  // bf16 with float32 promotes to float32.
  check_bf16_gpu_matches_cpu([](V in) { return sub(in[0], in[1]); }, {in_n(s, seed++), in_n(s, seed++)}, {true, false},
                             0.0, seed++);
  // bias_add with a float32 bias: bf16 out; the bias's gradient is a sum over 4 x 5 positions,
  // in another order on each device (float32 rounding).
  check_bf16_gpu_matches_cpu([](V in) { return bias_add(in[0], in[1]); }, {in_n(s, seed++), in_n({6}, seed++)},
                             {true, false}, 1e-6, seed++);
}

#if LEUKO_WITH_CUDA
TEST_CASE("bf16 bias_add kernel: float sum and ReLU rounded once, in place too") {
  struct Case {
    int64_t N, C, inner;
  };
  uint64_t seed = 700;
  for (const Case& c : std::vector<Case>{{1, 1, 1}, {2, 3, 5}, {4, 64, 1}, {3, 17, 33 * 31}}) {
    for (bool fuse_relu : {false, true}) {
      for (bool in_place : {false, true}) {
        INFO("N " << c.N << " C " << c.C << " inner " << c.inner << " relu " << fuse_relu << " in place " << in_place);
        const Shape s = {c.N, c.C, c.inner};
        Tensor x = test::randn_t(s, seed++, DType::f32).to(DType::bf16);  // (N, C, inner) bf16
        Tensor bias = test::randn_t({c.C}, seed++, DType::f32);           // (C,) float32
        Tensor xg = x.cuda(), bg = bias.cuda();
        Tensor out = in_place ? xg : Tensor::empty(s, DType::bf16, Device::CUDA);  // poisoned when fresh
        kernels::cuda::bias_add(out.data<bf16>(), xg.data<bf16>(), bg.data<float>(), c.N, c.C, c.inner, fuse_relu);
        Tensor got = out.cpu();
        // The reference: x[n, c, i] + bias[c] in float, the ReLU, one rounding to bf16.
        const bf16* xh = x.data<bf16>();
        const float* bh = bias.data<float>();
        const bf16* gh = got.data<bf16>();
        int64_t wrong = 0;
        for (int64_t i = 0; i < x.numel(); i++) {
          float v = bf16_to_float(xh[i]) + bh[(i / c.inner) % c.C];
          if (fuse_relu && v <= 0.f) v = 0.f;
          wrong += float_to_bf16(v).bits != gh[i].bits;
        }
        CHECK(wrong == 0);
      }
    }
  }
}

TEST_CASE("bias_add kernel on views one element in (element by element), in place too, float32 and bf16") {
  // Fresh tensors are aligned to the kernel's 8-element packs, so the cases above take its
  // packed path; x and out one element into their buffers take the element-by-element one. The
  // reference is the CPU's path: the float32 CPU kernel on the values widened to float, then one
  // rounding to bf16. out's whole buffer is compared: the element before the view and the
  // kGuard after it must keep their bits.
  constexpr int64_t kGuard = 16;
  struct Case {
    int64_t N, C, inner;
  };
  auto run = [&](auto tag) {
    using T = decltype(tag);
    const DType dt = std::is_same_v<T, float> ? DType::f32 : DType::bf16;
    uint64_t seed = 800;
    for (const Case& c : std::vector<Case>{{1, 1, 1}, {2, 3, 5}, {4, 64, 1}, {3, 17, 33 * 31}}) {
      for (bool fuse_relu : {false, true}) {
        for (bool in_place : {false, true}) {
          INFO("N " << c.N << " C " << c.C << " inner " << c.inner << " relu " << fuse_relu << " in place "
                    << in_place);
          const int64_t total = c.N * c.C * c.inner, size = 1 + total + kGuard;
          Tensor x = test::randn_t({size}, seed++, DType::f32).to(dt);  // x: elements [1, 1 + total)
          Tensor out0 = in_place ? x : test::randn_t({size}, seed++, DType::f32).to(dt);  // out's buffer before
          Tensor bias = test::randn_t({c.C}, seed++, DType::f32);
          Tensor xg = x.cuda(), bg = bias.cuda();
          Tensor og = in_place ? xg : out0.cuda();
          kernels::cuda::bias_add(og.data<T>() + 1, xg.data<T>() + 1, bg.data<float>(), c.N, c.C, c.inner, fuse_relu);
          const Tensor got = og.cpu();
          std::vector<float> xf(static_cast<size_t>(total)), yf(static_cast<size_t>(total));
          kernels::cpu::convert(xf.data(), x.data<T>() + 1, total);
          kernels::cpu::bias_add(yf.data(), xf.data(), bias.data<float>(), c.N, c.C, c.inner, fuse_relu);
          Tensor want = out0.clone();
          kernels::cpu::convert(want.data<T>() + 1, yf.data(), total);
          REQUIRE(got.nbytes() == want.nbytes());
          CHECK(std::memcmp(got.data<T>(), want.data<T>(), size_t(want.nbytes())) == 0);
        }
      }
    }
  };
  SUBCASE("float32") { run(float{}); }
  SUBCASE("bf16") { run(bf16{}); }
}
#endif
