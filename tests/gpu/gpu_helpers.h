// GPU tests: run an op (or any composition) on the GPU in float32 and on the CPU in float64,
// forward and backward, and hold the GPU to the CPU reference.
#pragma once

#include <functional>
#include <initializer_list>
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

// bf16 activations (tensor/device.h bf16_activations()): runs f on the GPU (its bf16 kernels)
// and on the CPU (through_float: the float32 op on converted copies, the reference) with the
// same bf16 values. `inputs` are CPU float32 tensors; where as_bf16[i], the input is passed to f
// as input.to(bf16) (rounded; its float32 leaf receives the gradient through the conversion),
// otherwise as float32 (a parameter). Checks that the GPU's output has the CPU's dtype and
// ||gpu - cpu|| / ||cpu|| <= tol for the output and every gradient, with the same random bf16
// upstream gradient on both. An elementwise op computes the same float and rounds it once on
// both devices, so it can be held to tol = 0; a reduction (batch norm, a convolution) sums in
// another order, and an output near a rounding boundary may land one bf16 step (2^-8) apart.
// channels_last: the bf16 inputs that are 4-D are also converted to channels_last (the layout
// of channels_last_activations(), tensor/device.h), and the output's memory order must be the
// CPU's (the CPU computes through NCHW).
inline void check_bf16_gpu_matches_cpu(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                       const std::vector<Tensor>& inputs, const std::vector<bool>& as_bf16,
                                       double tol, uint64_t seed = 7, bool channels_last = false) {
  REQUIRE(as_bf16.size() == inputs.size());
  auto run = [&](Device dev, std::vector<Tensor>& leaves) {
    std::vector<Tensor> args;
    for (size_t i = 0; i < inputs.size(); i++) {
      Tensor l = inputs[i].detach().clone();  // its own storage: an op may update an input (running stats)
      if (l.dtype() != DType::i64) l = l.to(DType::f32);
      if (dev == Device::CUDA) l = l.cuda();
      if (inputs[i].requires_grad()) l.set_requires_grad(true);
      leaves.push_back(l);
      Tensor arg = as_bf16[i] ? l.to(DType::bf16) : l;
      if (as_bf16[i] && channels_last && arg.dim() == 4) arg = arg.to(MemoryFormat::channels_last);
      args.push_back(arg);
    }
    return f(args);
  };
  std::vector<Tensor> cpu, gpu;
  Tensor out_cpu = run(Device::CPU, cpu), out_gpu = run(Device::CUDA, gpu);
  REQUIRE(out_gpu.is_cuda());
  CHECK(out_gpu.dtype() == out_cpu.dtype());
  CHECK(out_gpu.memory_format() == out_cpu.memory_format());
  const double out_err = rel_error(out_gpu.cpu(), out_cpu);
  INFO("output " << out_gpu.describe() << ": relative error " << out_err);
  CHECK(out_err <= tol);
  if (!out_cpu.requires_grad()) return;
  Generator gen(seed);
  Tensor up = randn(out_cpu.shape(), gen, DType::f32).to(out_cpu.dtype()).to(out_cpu.memory_format());
  out_cpu.backward(up);
  out_gpu.backward(up.cuda());
  for (size_t i = 0; i < inputs.size(); i++) {
    if (!cpu[i].requires_grad()) continue;
    REQUIRE(gpu[i].grad().defined());
    const double err = rel_error(gpu[i].grad().cpu(), cpu[i].grad());
    INFO("gradient of input " << i << " " << gpu[i].describe() << ": relative error " << err);
    CHECK(err <= tol);
  }
}

// set_deterministic(true) for a scope (cuDNN's choices by heuristics, without atomics: the same
// bits on every call), then the setting before.
struct DeterministicScope {
  bool was = deterministic();
  DeterministicScope() { set_deterministic(true); }
  ~DeterministicScope() { set_deterministic(was); }
};

// The values of `tensors`, one after the other, as floats: two runs that must give the same
// bits compare these (the determinism tests).
inline std::vector<float> all_values(std::initializer_list<Tensor> tensors) {
  std::vector<float> all;
  for (const Tensor& t : tensors) {
    const std::vector<float> v = t.to_vector();
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}

}  // namespace leuko::test
