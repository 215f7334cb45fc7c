// GPU tests: run an op (or any composition) on the GPU in float32 and on the CPU in float64,
// forward and backward, and hold the GPU to the CPU reference.
#pragma once

#include <functional>
#include <vector>

#include "helpers.h"

namespace leuko::test {

// `inputs` are CPU tensors: float32 ones are copied to float64 for the CPU run and to the GPU
// for the GPU run, keeping requires_grad; int64 ones (labels) are copied as they are.
// Checks ||gpu - cpu|| / ||cpu|| <= tol for the output and for every input's gradient, with
// a random upstream gradient. Allocations are poisoned (tests/main.cpp), so an element the GPU
// never writes is NaN and fails the check.
inline void check_gpu_matches_cpu(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                  const std::vector<Tensor>& inputs, double tol = 1e-5, uint64_t seed = 7) {
  std::vector<Tensor> cpu, gpu;
  for (const Tensor& x : inputs) {
    const bool grad = x.requires_grad();
    if (x.dtype() == DType::i64) {
      cpu.push_back(x.detach());
      gpu.push_back(x.detach().cuda());
      continue;
    }
    Tensor c = x.detach().to(DType::f64), g = x.detach().to(DType::f32).cuda();
    if (grad) {
      c.set_requires_grad(true);
      g.set_requires_grad(true);
    }
    cpu.push_back(c);
    gpu.push_back(g);
  }
  Tensor out_cpu = f(cpu), out_gpu = f(gpu);
  REQUIRE(out_gpu.is_cuda());
  const double out_err = rel_error(out_gpu, out_cpu);
  INFO("output " << out_gpu.describe() << ": relative error " << out_err);
  CHECK(out_err <= tol);
  if (!out_cpu.requires_grad()) return;
  Generator gen(seed);
  Tensor up = randn(out_cpu.shape(), gen, DType::f64);
  out_cpu.backward(up);
  out_gpu.backward(up.to(DType::f32).cuda());
  for (size_t i = 0; i < inputs.size(); i++) {
    if (!cpu[i].requires_grad()) continue;
    REQUIRE(gpu[i].grad().defined());
    const double err = rel_error(gpu[i].grad(), cpu[i].grad());
    INFO("gradient of input " << i << " " << gpu[i].describe() << ": relative error " << err);
    CHECK(err <= tol);
  }
}

}  // namespace leuko::test
