// channels_last on the GPU: the tiled transposes of kernels/cuda/layout.cu against the CPU's, and
// conv2d through cuDNN's NHWC kernels (filter (K, R, S, Cg)) against the NCHW convolution, in
// float32 and in bf16 (against the CPU reference); autocast's channels_last output.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "gpu/gpu_helpers.h"
#include "layers/autocast.h"
#include "layers/conv2d.h"
#include "tensor/device.h"

using namespace leuko;
using leuko::test::PrecisionScope;
using V = const std::vector<Tensor>&;

TEST_CASE("GPU to(channels_last) and back equal the CPU's, bit for bit") {
  const std::vector<Shape> shapes = {{3, 37, 5, 7}, {2, 1, 9, 9}, {4, 64, 1, 1}, {1, 33, 33, 31}, {2, 3, 224, 224}};
  uint64_t seed = 10;
  for (const Shape& s : shapes) {
    INFO("shape " << shape_str(s));
    // int64: a channels_last max pooling's argmax indices, read back in NCHW order.
    for (DType d : {DType::f32, DType::bf16, DType::i64}) {
      Tensor x = test::uniform_t(s, -1e6, 1e6, seed++, DType::f32).to(d);
      Tensor cpu = x.to(MemoryFormat::channels_last), gpu = x.cuda().to(MemoryFormat::channels_last);
      CHECK(gpu.is_channels_last());
      // The stored bytes, compared as they lie (to_double_vector would read both in NCHW order).
      Tensor cb = cpu.detach(), gb = gpu.detach().cpu();
      CHECK(std::memcmp(cb.raw_data(), gb.raw_data(), cb.nbytes()) == 0);
      Tensor back = gpu.to(MemoryFormat::nchw).cpu();
      CHECK(std::memcmp(back.raw_data(), x.raw_data(), x.nbytes()) == 0);
    }
  }
}

TEST_CASE("a convolution's weight to bf16 (K, R, S, Cg) and its gradient back, in one pass each, bit for bit") {
  for (const Shape& s : std::vector<Shape>{{64, 3, 7, 7}, {256, 64, 1, 1}, {37, 5, 3, 2}}) {
    INFO("shape " << shape_str(s));
    Tensor w = test::randn_t(s, 21, DType::f32).cuda();
    Tensor fused = conv_weight(w, DType::bf16, MemoryFormat::channels_last);
    Tensor two = w.to(DType::bf16).to(MemoryFormat::channels_last);
    REQUIRE(fused.is_channels_last());
    Tensor a = fused.cpu(), b = two.cpu();
    CHECK(std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0);
    Tensor g = to_master_grad(fused), g2 = fused.to(DType::f32).to(MemoryFormat::nchw);
    CHECK_FALSE(g.is_channels_last());
    Tensor c = g.cpu(), d = g2.cpu();
    CHECK(std::memcmp(c.raw_data(), d.raw_data(), c.nbytes()) == 0);
  }
}

TEST_CASE("conv2d on channels_last float32 tensors (cuDNN NHWC) matches the NCHW convolution") {
  PrecisionScope fp32(Precision::fp32);
  struct Config {
    Shape x, w;
    Conv2dOptions o;
    bool bias, relu;
  };
  const std::vector<Config> configs = {
      {{2, 3, 9, 9}, {4, 3, 3, 3}, {}, true, false},
      {{3, 8, 17, 15}, {16, 8, 3, 3}, {2, 1}, false, true},
      {{2, 6, 11, 12}, {4, 3, 2, 3}, {{1, 2}, {1, 0}, 1, 2}, true, true},
      {{4, 16, 7, 9}, {8, 16, 1, 1}, {}, false, false},
      {{8, 64, 28, 28}, {128, 64, 3, 3}, {1, 1}, true, false},
      {{2, 4, 15, 13}, {5, 4, 3, 3}, {1, 2, 2}, true, false},    // dilation 2
      {{3, 8, 13, 13}, {8, 1, 3, 3}, {1, 1, 1, 8}, true, true},  // depthwise (groups = C)
  };
  uint64_t seed = 50;
  for (const Config& c : configs) {
    INFO("x " << shape_str(c.x) << " w " << shape_str(c.w));
    Tensor x0 = test::randn_t(c.x, seed, DType::f32).cuda(), w0 = test::randn_t(c.w, seed + 1, DType::f32).cuda();
    Tensor b0 = c.bias ? test::randn_t({c.w[0]}, seed + 2, DType::f32).cuda() : Tensor();
    seed += 10;
    auto run = [&](MemoryFormat f, Tensor& gx, Tensor& gw, Tensor& gb) {
      Tensor x = test::leaf(x0.detach().clone()), w = test::leaf(w0.detach().clone());
      Tensor b = c.bias ? test::leaf(b0.detach().clone()) : Tensor();
      Tensor y = c.relu ? conv2d_relu(x.to(f), w, b, c.o) : conv2d(x.to(f), w, b, c.o);
      CHECK(y.memory_format() == f);
      y.backward(test::randn_t(y.shape(), 99, DType::f32).cuda().to(f));
      gx = x.grad(), gw = w.grad(), gb = c.bias ? b.grad() : Tensor();
      return y.to(MemoryFormat::nchw);
    };
    Tensor gx1, gw1, gb1, gx2, gw2, gb2;
    Tensor y1 = run(MemoryFormat::nchw, gx1, gw1, gb1), y2 = run(MemoryFormat::channels_last, gx2, gw2, gb2);
    // Strict float32, other algorithms (other summation orders): 1e-5 relative, as the NCHW GPU
    // convolution against the CPU's float64.
    CHECK(test::rel_error(y2, y1) <= 1e-5);
    CHECK(test::rel_error(gx2, gx1) <= 1e-5);
    CHECK_FALSE(gw2.is_channels_last());  // the master's gradient is NCHW
    CHECK(test::rel_error(gw2, gw1) <= 1e-5);
    if (c.bias) CHECK(test::rel_error(gb2, gb1) <= 1e-5);
  }
}

TEST_CASE("bf16 channels_last conv2d on the GPU matches the CPU reference") {
  std::vector<Tensor> in = {test::leaf(test::randn_t({4, 16, 14, 14}, 1, DType::f32)),
                            test::leaf(test::randn_t({32, 16, 3, 3}, 2, DType::f32)),
                            test::leaf(test::randn_t({32}, 3, DType::f32))};
  const Conv2dOptions o{{1, 1}, {1, 1}};
  test::check_bf16_gpu_matches_cpu([o](V a) { return conv2d(a[0], a[1], a[2], o); }, in, {true, false, false}, 1e-2, 7,
                                   true);
  test::check_bf16_gpu_matches_cpu([o](V a) { return conv2d_relu(a[0], a[1], a[2], o); }, in, {true, false, false},
                                   1e-2, 8, true);
}

TEST_CASE("under bf16 activations a convolution's output is bf16 channels_last (LEUKO_CHANNELS_LAST unset)") {
  PrecisionScope bf16(Precision::bf16);
  Tensor y = conv2d(test::randn_t({2, 3, 8, 8}, 4, DType::f32).cuda(),
                    test::randn_t({4, 3, 3, 3}, 5, DType::f32).cuda(), Tensor());
  CHECK(y.dtype() == DType::bf16);
  CHECK(y.is_channels_last() == channels_last_activations());
}
