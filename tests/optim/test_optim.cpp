// Optimizers against torch.optim trajectories (tests/fixtures/fx_optim.py), schedules against
// torch.optim.lr_scheduler, and the state round trip that --resume relies on.
#include "helpers.h"
#include "optim/optim_fixture.h"
#include "optim/schedule.h"

namespace leuko::test {
namespace {

// Replays the fixture's gradients through leuko's optimizer on `device` and returns the largest
// relative error of the parameters after each step against PyTorch's.
double replay(const std::string& config, DType dtype, Device device) {
  Fixture fx = load_fixture("optim_" + config);
  const int steps = int(fx.meta_int("steps")), nparams = int(fx.meta_int("params"));
  NamedTensors params;
  for (int i = 0; i < nparams; i++) {
    Tensor p = fx.get("init_" + std::to_string(i)).to(dtype).to(device);
    p.set_requires_grad(true);
    params.emplace_back("p" + std::to_string(i), p);
  }
  auto opt = optimizer_of_fixture(config, params, fx);
  double worst = 0;
  for (int k = 0; k < steps; k++) {
    for (int i = 0; i < nparams; i++) {
      params[size_t(i)].second.set_grad(fx.get("grad_" + std::to_string(k) + "_" + std::to_string(i)).to(dtype).to(device));
    }
    opt->step();
    opt->zero_grad();
    for (int i = 0; i < nparams; i++) {
      worst = std::max(worst, rel_error(params[size_t(i)].second,
                                        fx.get("param_" + std::to_string(k) + "_" + std::to_string(i))));
    }
  }
  return worst;
}

const char* kConfigs[] = {"sgd_plain", "sgd_momentum", "sgd_nesterov", "adam", "adam_wd_amsgrad", "adamw",
                          "adamw_amsgrad"};

}  // namespace

TEST_CASE("optimizer trajectories equal torch.optim's (float64, CPU)") {
  for (const char* config : kConfigs) {
    CAPTURE(config);
    // float64 against float64: only rounding differs.
    CHECK(replay(config, DType::f64, Device::CPU) < 1e-12);
  }
}

TEST_CASE("optimizer trajectories in float32 stay within float32 rounding of PyTorch's") {
  for (const char* config : kConfigs) {
    CAPTURE(config);
    CHECK(replay(config, DType::f32, Device::CPU) < 1e-5);  // float32 rounding over 5 steps
  }
}

TEST_CASE("schedules equal torch.optim.lr_scheduler's") {
  Fixture fx = load_fixture("optim_schedules");
  const double base = fx.meta_double("base_lr");
  const int64_t epochs = fx.meta_int("epochs");
  for (const char* spec : {"step_4_0.5", "multistep_3_7_0.1", "cosine_12_0.001"}) {
    CAPTURE(spec);
    std::string s = spec;
    optim::Schedule sched = s.rfind("step_", 0) == 0        ? optim::Schedule::parse("step:4:0.5")
                            : s.rfind("multistep", 0) == 0 ? optim::Schedule::parse("multistep:3,7:0.1")
                                                           : optim::Schedule::parse("cosine:0.001");
    std::vector<double> want = fx.get(spec).to_double_vector();
    const int64_t steps_per_epoch = 3;  // the lr is constant within an epoch
    for (int64_t e = 0; e < epochs; e++) {
      for (int64_t i = 0; i < steps_per_epoch; i++) {
        CHECK(sched.lr_at(base, e * steps_per_epoch + i, steps_per_epoch, epochs) ==
              doctest::Approx(want[size_t(e)]).epsilon(1e-12));
      }
    }
  }
}

TEST_CASE("warm-up rises linearly to the scheduled rate") {
  optim::Schedule s = optim::Schedule::parse("constant");
  s.warmup_steps = 10;
  s.warmup_start = 0.1;
  CHECK(s.lr_at(1.0, 0, 5, 4) == doctest::Approx(0.1));
  CHECK(s.lr_at(1.0, 5, 5, 4) == doctest::Approx(0.55));
  CHECK(s.lr_at(1.0, 10, 5, 4) == doctest::Approx(1.0));
}

TEST_CASE("bad schedules are named in one line") {
  CHECK_THROWS_WITH_AS(optim::Schedule::parse("linear"), doctest::Contains("--schedule: 'linear'"), Error);
  CHECK_THROWS_WITH_AS(optim::Schedule::parse("step:x"), doctest::Contains("'x' in 'step:x' is not a number"), Error);
  CHECK_THROWS_WITH_AS(optim::Schedule::parse("step:0"), doctest::Contains("at least 1"), Error);
  CHECK(optim::Schedule::parse("multistep:10,20:0.5").str() == "multistep:10,20:0.5");
}

TEST_CASE("optimizer state round-trips: a resumed run continues exactly") {
  // Two runs of 6 Adam steps with the same gradients; the second stops after 3, saves the state,
  // restores it into a fresh optimizer and fresh parameters, and finishes. Both must agree bit
  // for bit.
  Generator gen(5);
  std::vector<Tensor> grads;
  for (int k = 0; k < 6; k++) grads.push_back(randn({4, 3}, gen, DType::f32));
  Tensor init = randn({4, 3}, gen, DType::f32);
  for (bool sgd : {false, true}) {
    CAPTURE(sgd);
    auto make = [&](Tensor p) -> std::unique_ptr<optim::Optimizer> {
      if (sgd) return std::make_unique<optim::SGD>(NamedTensors{{"w", p}}, optim::SGDOptions{0.1, 0.9, 0, 0.01, true});
      return std::make_unique<optim::Adam>(NamedTensors{{"w", p}}, optim::AdamOptions{1e-2, 0.9, 0.999, 1e-8, 0.0, true});
    };
    Tensor a = init.clone().set_requires_grad();
    auto opt_a = make(a);
    for (int k = 0; k < 6; k++) {
      a.set_grad(grads[size_t(k)].clone());
      opt_a->step();
    }
    Tensor b = init.clone().set_requires_grad();
    auto opt_b = make(b);
    for (int k = 0; k < 3; k++) {
      b.set_grad(grads[size_t(k)].clone());
      opt_b->step();
    }
    NamedTensors state = opt_b->state();
    auto meta = opt_b->state_metadata();
    CHECK(!state.empty());
    Tensor c = b.clone().detach().set_requires_grad();
    auto opt_c = make(c);
    opt_c->load_state(state, meta);
    CHECK(opt_c->steps() == 3);
    for (int k = 3; k < 6; k++) {
      c.set_grad(grads[size_t(k)].clone());
      opt_c->step();
    }
    CHECK(max_abs_diff(c, a) == 0.0);
  }
}

TEST_CASE("optimizer state of another optimizer or model is refused, naming the key") {
  Tensor w = Tensor::zeros({2, 2}).set_requires_grad();
  optim::Adam adam({{"w", w}}, {});
  w.set_grad(Tensor::ones({2, 2}));
  adam.step();
  optim::SGD sgd({{"w", w}}, {0.1, 0.9});
  CHECK_THROWS_WITH_AS(sgd.load_state(adam.state(), adam.state_metadata()),
                       doctest::Contains("optimizer state is for 'adam', this run uses 'sgd'"), Error);
  Tensor other = Tensor::zeros({3}).set_requires_grad();
  optim::Adam adam2({{"v", other}}, {});
  CHECK_THROWS_WITH_AS(adam2.load_state(adam.state(), adam.state_metadata()),
                       doctest::Contains("names no parameter"), Error);
}

TEST_CASE("parameters without a gradient are left alone") {
  Tensor a = Tensor::ones({3}).set_requires_grad(), b = Tensor::ones({3}).set_requires_grad();
  optim::SGD sgd({{"a", a}, {"b", b}}, {0.5});
  a.set_grad(Tensor::ones({3}));
  sgd.step();
  CHECK(a.to_vector()[0] == doctest::Approx(0.5));
  CHECK(b.to_vector()[0] == 1.0f);
}

TEST_CASE("prepare_replay is the host's part of a step: it counts the step (and changes no weight)") {
  // For a CUDA graph's replay (tensor/cuda/graph.h); the device part is held by tests/gpu/test_graph_gpu.cpp.
  Tensor a = Tensor::ones({3}).set_requires_grad();
  optim::Adam adam({{"a", a}}, {});
  a.set_grad(Tensor::ones({3}));
  adam.step();
  adam.prepare_replay();
  CHECK(adam.steps() == 2);
  CHECK(adam.state_metadata().at("optim.steps") == "2");
  CHECK(a.to_vector()[0] == doctest::Approx(1.0 - 1e-3));  // one update only
}

TEST_CASE("bad optimizer settings are refused") {
  Tensor w = Tensor::zeros({2}).set_requires_grad();
  CHECK_THROWS_WITH_AS(optim::SGD({{"w", w}}, {-1.0}), doctest::Contains("negative"), Error);
  optim::SGDOptions nest;
  nest.nesterov = true;
  CHECK_THROWS_WITH_AS(optim::SGD({{"w", w}}, nest), doctest::Contains("Nesterov"), Error);
  optim::AdamOptions bad;
  bad.beta1 = 1.0;
  CHECK_THROWS_WITH_AS(optim::Adam({{"w", w}}, bad), doctest::Contains("betas"), Error);
}

}  // namespace leuko::test
