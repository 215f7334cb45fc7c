// The bf16 batch norm check shared by the NCHW and the channels_last GPU tests
// (test_bf16_batchnorm_gpu.cpp, test_channels_last_batchnorm_gpu.cpp): the GPU's bf16 kernels
// against the CPU's reference, the running statistics included.
#pragma once

#include <vector>

#include "gpu/gpu_helpers.h"
#include "layers/batchnorm.h"

namespace leuko::test {

// batch_norm or batch_norm_relu through check_bf16_gpu_matches_cpu with inputs {x (as bf16,
// channels_last when asked), weight, bias, running_mean, running_var} (float32), then the
// running statistics each device was left with.
inline void check_batch_norm_bf16(const Shape& s, bool training, bool relu, uint64_t seed, bool channels_last) {
  const int64_t C = s[1];
  Tensor x = leaf(per_channel_randn(s, seed));
  Tensor w = leaf(uniform_t({C}, 0.5, 2.0, seed + 1, DType::f32));
  Tensor b = leaf(randn_t({C}, seed + 2, DType::f32));
  Tensor rm = randn_t({C}, seed + 3, DType::f32), rv = uniform_t({C}, 0.5, 2.0, seed + 4, DType::f32);
  std::vector<Tensor> stats;  // the running statistics each run moved: CPU, then GPU
  auto f = [&](const std::vector<Tensor>& in) {
    REQUIRE(in[0].is_channels_last() == channels_last);
    // Copies: the CPU run's float32 inputs share the caller's storage, and the GPU run must
    // start from the same running statistics as the CPU run.
    Tensor run_mean = in[3].clone(), run_var = in[4].clone();
    stats.push_back(run_mean);
    stats.push_back(run_var);
    return relu ? batch_norm_relu(in[0], in[1], in[2], run_mean, run_var, training, 0.1, 1e-5)
                : batch_norm(in[0], in[1], in[2], run_mean, run_var, training, 0.1, 1e-5);
  };
  // A reduction in another order (float32 blocks against the CPU's float64 sums, then one
  // rounding): an element near a rounding boundary may land one bf16 step (2^-8) apart.
  check_bf16_gpu_matches_cpu(f, {x, w, b, rm, rv}, {true, false, false, false, false}, 1e-2, seed + 5, channels_last);
  REQUIRE(stats.size() == 4);
  REQUIRE(stats[2].is_cuda());
  CHECK(stats[2].dtype() == DType::f32);
  // The running statistics are float32 on both devices, from the same bf16 values: the float32
  // block sums against the CPU's float64 ones, 1e-5 relative.
  CHECK(rel_error(stats[2].cpu(), stats[0]) < 1e-5);
  CHECK(rel_error(stats[3].cpu(), stats[1]) < 1e-5);
}

}  // namespace leuko::test
