// `leuko demo`: a tensor expression, its backward, values and gradients, on the GPU when one
// is present (else the CPU), checked against the CPU and by finite differences.
//
// The expression is a one-layer logistic model on a tiny batch:
//   z = x @ w + b          x: (4, 3), w: (3, 2), b: (2,)
//   p = 1 / (1 + exp(-z))
//   loss = mean(-(t * log(p) + (1 - t) * log(1 - p)))
#include <cstdio>

#include "layers/ops.h"
#include "tensor/allocator.h"
#include "tensor/device.h"
#include "tensor/gradcheck.h"
#include "tools/leuko/commands.h"

namespace leuko::cli {

namespace {

struct Result {
  Tensor loss, gw, gb;
};

// The expression and its gradient on `device` in dtype `dt`.
Result run(Device device, DType dt, bool print) {
  Generator gen(42);
  Tensor x = randn({4, 3}, gen, dt, device);
  Tensor w = randn({3, 2}, gen, dt, device).set_requires_grad();
  Tensor b = Tensor::zeros({2}, dt, device).set_requires_grad();
  Tensor t = Tensor::from_vector(std::vector<float>{1, 0, 0, 1, 1, 1, 0, 0}, {4, 2}, dt, device);

  Tensor z = add(matmul(x, w), b);
  Tensor p = 1.0 / (1.0 + exp(-z));
  Tensor loss = mean(-(t * log(p) + (1.0 - t) * log(1.0 - p)));
  loss.backward();
  if (print) {
    std::printf("x    = %s\n", to_string(x).c_str());
    std::printf("w    = %s\n", to_string(w).c_str());
    std::printf("p    = %s\n", to_string(p).c_str());
    std::printf("loss = %s\n", to_string(loss).c_str());
    std::printf("dloss/dw = %s\n", to_string(w.grad()).c_str());
    std::printf("dloss/db = %s\n", to_string(b.grad()).c_str());
  }
  return {loss, w.grad(), b.grad()};
}

int demo(bool force_cpu) {
  const bool gpu = !force_cpu && cuda_available();
  std::printf("leuko demo on %s\n", gpu ? ("the GPU: " + cuda_status()).c_str() : "the CPU");
  if (!gpu && !force_cpu) std::printf("(%s)\n", cuda_status().c_str());
  const Device device = gpu ? Device::CUDA : Device::CPU;
  std::printf("\nz = x @ w + b;  p = sigmoid(z);  loss = binary cross-entropy(p, t)\n\n");
  Result r = run(device, DType::f32, true);

  // The same expression in float64 on the CPU: the reference.
  Result ref = run(Device::CPU, DType::f64, false);
  double worst = 0;
  for (auto [a, b] : {std::pair{r.gw, ref.gw}, std::pair{r.gb, ref.gb}}) {
    std::vector<double> va = a.to_double_vector(), vb = b.to_double_vector();
    for (size_t i = 0; i < va.size(); i++) worst = std::max(worst, std::fabs(va[i] - vb[i]));
  }
  std::printf("\nlargest difference from the float64 CPU gradients: %.3g\n", worst);

  // And the analytic gradient against finite differences.
  Generator gen(42);
  Tensor x = randn({4, 3}, gen, DType::f64);
  Tensor w = randn({3, 2}, gen, DType::f64).set_requires_grad();
  GradcheckResult gc = gradcheck(
      [&](const std::vector<Tensor>& in) {
        Tensor p = 1.0 / (1.0 + exp(-matmul(x, in[0])));
        return mean(log(p));
      },
      {w});
  std::printf("gradient check (float64 finite differences): largest relative error %.3g: %s\n",
              gc.max_rel_error, gc.ok ? "pass" : "FAIL");
  const MemoryStats m = memory_stats(device);
  std::printf("peak %s memory: %zu bytes\n", device_name(device), m.peak);
  return gc.ok && worst < 1e-4 ? 0 : 1;
}

}  // namespace

void register_demo(CLI::App& app) {
  auto* cmd = app.add_subcommand("demo", "Build a tensor expression, run backward, print values and gradients");
  static bool cpu = false;
  cmd->add_flag("--cpu", cpu, "Run on the CPU even when a GPU is present");
  cmd->callback([] {
    const int rc = demo(cpu);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace leuko::cli
