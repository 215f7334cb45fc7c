// Batch normalisation on channels_last inputs on the GPU (the `_nhwc` kernels of
// kernels/batchnorm.h, x read as an (M, C) matrix): bf16 against the CPU (through NCHW, the
// reference), and float32 against the float32 NCHW kernels on the GPU; training and eval, with
// and without the fused ReLU, running statistics included; the same bits on every run.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "gpu/batchnorm_bf16_check.h"
#include "gpu/gpu_helpers.h"
#include "layers/batchnorm.h"

using namespace leuko;

namespace {

struct Config {
  std::string name;
  Shape x;
};

const std::vector<Config> kConfigs = {
    {"odd (2, 3, 5, 7)", {2, 3, 5, 7}},
    {"H*W = 1 (4, 3, 1, 1)", {4, 3, 1, 1}},
    // Vectors (C a multiple of 4 floats, 8 bf16): 10 float groups on a 16-lane tile, 5 bf16
    // groups on 8 lanes, 3 of them spare.
    {"C = 40 (3, 40, 9, 11)", {3, 40, 9, 11}},
    // 65536 rows: many row chunks per channel tile, merged by the finishing kernel.
    {"many chunks (16, 3, 64, 64)", {16, 3, 64, 64}},
    {"ResNet-like (8, 64, 28, 28)", {8, 64, 28, 28}},
    {"ResNet-50 layer 3 (64, 256, 14, 14)", {64, 256, 14, 14}},
    // 540,673 rows, the scalar path's 4 x 64 tile: on a 132-SM card 1,056 chunks of 513 rows,
    // the last two empty.
    {"empty trailing chunks (1, 3, 1, 540673)", {1, 3, 1, 540673}},
    // GoogLeNet's and ResNet-50's small C: one bf16 vector per 2 lanes x 128 row lanes (C = 16);
    // C = 24 vectors in float, the scalar path in bf16; C = 17 scalar in both.
    {"C = 16 (32, 16, 28, 28)", {32, 16, 28, 28}},
    {"C = 24 (4, 24, 13, 13)", {4, 24, 13, 13}},
    {"C = 17 (5, 17, 6, 7)", {5, 17, 6, 7}},
    // Several 32-lane tiles of vectors: 8 float tiles, 4 bf16.
    {"C = 1024 (8, 1024, 7, 7)", {8, 1024, 7, 7}},
    // One group exactly (8 bf16: one vector, or 2 of 4 floats), and ResNet-50's widest C.
    {"C = 8 (2, 8, 7, 7)", {2, 8, 7, 7}},
    {"C = 2048 (2, 2048, 3, 3)", {2, 2048, 3, 3}},
};

// One float32 run on the GPU: the output, the gradients of x (its NCHW leaf), weight and bias,
// and the running statistics.
std::vector<Tensor> run_f32(const Tensor& x0, const Tensor& dy, bool channels_last, bool training, bool relu,
                            uint64_t seed) {
  const int64_t C = x0.size(1);
  Tensor x = test::leaf(x0.cuda());
  Tensor w = test::leaf(test::uniform_t({C}, 0.5, 2.0, seed + 1, DType::f32, Device::CUDA));
  Tensor b = test::leaf(test::randn_t({C}, seed + 2, DType::f32, Device::CUDA));
  Tensor rm = test::randn_t({C}, seed + 3, DType::f32, Device::CUDA);
  Tensor rv = test::uniform_t({C}, 0.5, 2.0, seed + 4, DType::f32, Device::CUDA);
  const Tensor in = channels_last ? x.to(MemoryFormat::channels_last) : x;
  Tensor y =
      relu ? batch_norm_relu(in, w, b, rm, rv, training, 0.1, 1e-5) : batch_norm(in, w, b, rm, rv, training, 0.1, 1e-5);
  CHECK(y.is_channels_last() == channels_last);
  y.backward(dy.cuda().to(y.memory_format()));
  return {y.detach(), x.grad(), w.grad(), b.grad(), rm, rv};
}

}  // namespace

TEST_CASE("batch_norm, bf16 channels_last x: GPU matches CPU, training and eval, running statistics included") {
  uint64_t seed = 11000;
  for (const Config& c : kConfigs) {
    for (bool training : {true, false}) {
      for (bool relu : {false, true}) {
        INFO("config: " << c.name << (training ? ", training" : ", eval") << (relu ? ", fused ReLU" : ""));
        test::check_batch_norm_bf16(c.x, training, relu, seed, true);
        seed += 10;
      }
    }
  }
}

TEST_CASE("batch_norm, float32 channels_last x on the GPU matches the NCHW kernels") {
  uint64_t seed = 12000;
  const char* names[] = {"y", "x's gradient", "weight's gradient", "bias's gradient", "running_mean", "running_var"};
  for (const Config& c : kConfigs) {
    for (bool training : {true, false}) {
      for (bool relu : {false, true}) {
        // Not training with the fused ReLU: the two orders' batch statistics differ in the last
        // bit, so an output within ~1e-7 of 0 may pass the ReLU in one run and not the other,
        // which moves x's and the bias's gradients by ~1e-3 (about one ResNet-50 run in five
        // would). The fused ReLU on channels_last is held bit for bit to relu(batch_norm) in
        // test_batchnorm_gpu.cpp, and to the CPU in bf16 above.
        if (training && relu) continue;
        INFO("config: " << c.name << (training ? ", training" : ", eval") << (relu ? ", fused ReLU" : ""));
        const Tensor x0 = test::per_channel_randn(c.x, seed), dy = test::randn_t(c.x, seed + 9, DType::f32);
        const std::vector<Tensor> cl = run_f32(x0, dy, true, training, relu, seed);
        const std::vector<Tensor> ref = run_f32(x0, dy, false, training, relu, seed);
        seed += 10;
        for (size_t i = 0; i < cl.size(); i++) {
          // Both float32, their sums in different orders (per column against per plane):
          // both are within 1e-5 of float64 (test_batchnorm_gpu.cpp), and of each other.
          const double err = test::rel_error(cl[i], ref[i]);
          INFO(names[i] << ": relative error " << err);
          CHECK(err <= 1e-5);
        }
      }
    }
  }
}

TEST_CASE("batch_norm, channels_last x: the GPU gives the same bits on every run") {
  // C = 40: the vector path (float32 and bf16); C = 17: the scalar path.
  for (const Shape& s : {Shape{16, 40, 32, 32}, Shape{16, 17, 32, 32}}) {
    for (DType dtype : {DType::f32, DType::bf16}) {
      const int64_t C = s[1];
      const Tensor x0 = test::per_channel_randn(s, 13000), g0 = test::randn_t(s, 13001, DType::f32);
      INFO(dtype_name(dtype) << ", C = " << C);
      std::vector<std::vector<float>> runs;
      for (int r = 0; r < 2; r++) {
        // A float32 leaf (bf16 tensors cannot require grad), converted: bf16 keeps channels_last,
        // and the gradient comes back through the conversion as float32 channels_last.
        Tensor x = test::leaf(x0.cuda().to(MemoryFormat::channels_last));
        Tensor in = x.to(dtype);
        Tensor w = test::leaf(Tensor::ones({C}, DType::f32, Device::CUDA));
        Tensor rm = Tensor::zeros({C}, DType::f32, Device::CUDA), rv = Tensor::ones({C}, DType::f32, Device::CUDA);
        REQUIRE(in.is_channels_last());
        Tensor y = batch_norm_relu(in, w, Tensor(), rm, rv, true);
        y.backward(g0.cuda().to(dtype).to(MemoryFormat::channels_last));
        REQUIRE(x.grad().is_channels_last());
        runs.push_back(test::all_values({y, x.grad(), w.grad(), rm, rv}));
      }
      CHECK(runs[0] == runs[1]);  // bitwise: no atomics, fixed reduction order
    }
  }
}

TEST_CASE("BatchNorm2d and bn_relu, bf16 channels_last x on the GPU: channels_last out, the CPU's statistics") {
  BatchNorm2d cpu_bn(40, 1e-5, 0.3), gpu_bn(40, 1e-5, 0.3);
  gpu_bn.to(Device::CUDA);
  for (int step = 0; step < 2; step++) {
    INFO("training step " << step);
    const Tensor x =
        test::per_channel_randn({6, 40, 7, 3}, 14000 + uint64_t(step)).to(DType::bf16).to(MemoryFormat::channels_last);
    Tensor y = step == 0 ? gpu_bn(x.cuda()) : bn_relu(gpu_bn, nullptr, x.cuda());
    Tensor ref = step == 0 ? cpu_bn(x) : bn_relu(cpu_bn, nullptr, x);
    CHECK(y.is_channels_last());
    CHECK(y.dtype() == DType::bf16);
    CHECK(test::rel_error(y.cpu(), ref) < 1e-2);
  }
  CHECK(gpu_bn.num_batches_tracked.item() == 2.0);
  CHECK(test::rel_error(gpu_bn.running_mean.cpu(), cpu_bn.running_mean) < 1e-5);
  CHECK(test::rel_error(gpu_bn.running_var.cpu(), cpu_bn.running_var) < 1e-5);
  gpu_bn.eval();
  cpu_bn.eval();
  const Tensor x = test::per_channel_randn({2, 40, 4, 4}, 14100).to(DType::bf16).to(MemoryFormat::channels_last);
  Tensor y = gpu_bn(x.cuda());
  CHECK(y.is_channels_last());
  CHECK(test::rel_error(y.cpu(), cpu_bn(x)) < 1e-2);
}
