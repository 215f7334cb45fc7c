// linear on the GPU (cuBLAS, float32) against the CPU (float64): forward and the gradients of
// input, weight and bias, on odd shapes up to AlexNet's classifier size; strict fp32 and TF32.
#include <doctest/doctest.h>

#include <vector>

#include "gpu/gpu_helpers.h"
#include "layers/linear.h"
#include "tensor/device.h"

using namespace leuko;
using leuko::test::PrecisionScope;
using V = const std::vector<Tensor>&;

namespace {

struct Config {
  int64_t n, in, out;
  bool bias, x_grad;
};

const std::vector<Config> kConfigs = {
    {1, 1, 1, true, true},       {7, 13, 5, true, true},     {33, 257, 129, true, true},
    {3, 11, 17, false, true},    {5, 64, 10, true, false},  // input without grad (a first layer)
    {64, 4096, 1000, true, true},  // AlexNet's last layer
};

void run(const Config& c, double tol, uint64_t seed) {
  INFO("N " << c.n << ", in " << c.in << ", out " << c.out << ", bias " << c.bias << ", x grad " << c.x_grad);
  Tensor x = test::randn_t({c.n, c.in}, seed, DType::f32);
  if (c.x_grad) x.set_requires_grad(true);
  std::vector<Tensor> inputs = {x, test::leaf(test::randn_t({c.out, c.in}, seed + 1, DType::f32))};
  if (c.bias) {
    inputs.push_back(test::leaf(test::randn_t({c.out}, seed + 2, DType::f32)));
    test::check_gpu_matches_cpu([](V in) { return linear(in[0], in[1], in[2]); }, inputs, tol, seed + 3);
  } else {
    test::check_gpu_matches_cpu([](V in) { return linear(in[0], in[1]); }, inputs, tol, seed + 3);
  }
}

}  // namespace

TEST_CASE("linear GPU: strict fp32 matches the CPU") {
  PrecisionScope fp32(Precision::fp32);
  uint64_t seed = 100;
  // Strict float32 cuBLAS against float64: rounding of sums of up to 4096 terms, as the
  // relative norm of the difference: 1e-5.
  for (const Config& c : kConfigs) run(c, 1e-5, seed += 10);
}

TEST_CASE("linear GPU: TF32 is close to the CPU") {
  PrecisionScope tf32(Precision::tf32);
  uint64_t seed = 200;
  // TF32 products (10-bit mantissa, ~5e-4 relative per term): 1e-2 on the relative norm.
  for (const Config& c : kConfigs) run(c, 1e-2, seed += 10);
}

TEST_CASE("linear GPU: Linear module moved to the GPU matches its CPU copy") {
  PrecisionScope fp32(Precision::fp32);
  Generator gen(5);
  Linear m(300, 70, true, gen);
  Tensor x = test::randn_t({9, 300}, 301, DType::f32);
  Tensor y_cpu = m(x);
  m.to(Device::CUDA);
  Tensor y_gpu = m(x.cuda());
  CHECK(y_gpu.is_cuda());
  CHECK(test::rel_error(y_gpu, y_cpu) <= 1e-5);  // float32 both sides, different sum orders: 1e-5
}
