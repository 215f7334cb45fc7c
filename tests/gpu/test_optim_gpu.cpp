// The fused CUDA optimizer updates against torch.optim's trajectories and the CPU updates.
#include "gpu/gpu_helpers.h"
#include "optim/optim_fixture.h"

namespace leuko::test {

TEST_CASE("fused CUDA updates follow torch.optim's trajectories") {
  for (const char* config : {"sgd_plain", "sgd_momentum", "sgd_nesterov", "adam", "adam_wd_amsgrad", "adamw",
                             "adamw_amsgrad"}) {
    CAPTURE(config);
    Fixture fx = load_fixture(std::string("optim_") + config);
    const int steps = int(fx.meta_int("steps")), nparams = int(fx.meta_int("params"));
    NamedTensors gpu_params, cpu_params;
    for (int i = 0; i < nparams; i++) {
      Tensor init = fx.get("init_" + std::to_string(i), DType::f32);
      gpu_params.emplace_back("p" + std::to_string(i), init.cuda().set_requires_grad());
      cpu_params.emplace_back("p" + std::to_string(i), init.clone().set_requires_grad());
    }
    auto gpu_opt = optimizer_of_fixture(config, gpu_params, fx);
    auto cpu_opt = optimizer_of_fixture(config, cpu_params, fx);
    for (int k = 0; k < steps; k++) {
      for (int i = 0; i < nparams; i++) {
        Tensor g = fx.get("grad_" + std::to_string(k) + "_" + std::to_string(i), DType::f32);
        gpu_params[size_t(i)].second.set_grad(g.cuda());
        cpu_params[size_t(i)].second.set_grad(g.clone());
      }
      gpu_opt->step();
      cpu_opt->step();
      for (int i = 0; i < nparams; i++) {
        // float32 on both sides; the GPU may contract to FMAs differently: 1e-6 relative.
        CHECK(rel_error(gpu_params[size_t(i)].second, cpu_params[size_t(i)].second) < 1e-6);
        // And PyTorch's float64 trajectory within float32 rounding.
        CHECK(rel_error(gpu_params[size_t(i)].second,
                        fx.get("param_" + std::to_string(k) + "_" + std::to_string(i))) < 1e-5);
      }
    }
  }
}

TEST_CASE("one fused launch updates many parameters of odd sizes") {
  // 40 parameters, sizes from 1 to beyond one chunk (8192), momentum SGD for 3 steps.
  Generator gen(3);
  NamedTensors gpu_params, cpu_params;
  for (int i = 0; i < 40; i++) {
    const int64_t n = 1 + (int64_t(i) * 7919) % 20000;
    Tensor init = randn({n}, gen);
    gpu_params.emplace_back("p" + std::to_string(i), init.cuda().set_requires_grad());
    cpu_params.emplace_back("p" + std::to_string(i), init.clone().set_requires_grad());
  }
  optim::SGD g_opt(gpu_params, {0.1, 0.9, 0, 1e-4, true}), c_opt(cpu_params, {0.1, 0.9, 0, 1e-4, true});
  for (int step = 0; step < 3; step++) {
    for (size_t i = 0; i < gpu_params.size(); i++) {
      Tensor g = randn(cpu_params[i].second.shape(), gen);
      gpu_params[i].second.set_grad(g.cuda());
      cpu_params[i].second.set_grad(g);
    }
    g_opt.step();
    c_opt.step();
  }
  for (size_t i = 0; i < gpu_params.size(); i++) {
    CAPTURE(i);
    CHECK(rel_error(gpu_params[i].second, cpu_params[i].second) < 1e-6);  // float32 both sides
  }
}

}  // namespace leuko::test
