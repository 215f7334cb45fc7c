// CUDA graphs of a training step (tensor/cuda/graph.h; `leuko bench --graph`, `leuko train
// --graph`): replaying a recorded step computes what the eager step computes, bit for bit, with
// dropout, auxiliary heads, a learning rate that changes every step and Adam's bias correction,
// in float32 and in bf16 channels_last; whole `leuko train --graph` runs give the eager run's
// checkpoints, resumed or not; the graph's blocks are never handed to another tensor while it
// lives; and a step that capture cannot record fails with an error, leaving the GPU usable and
// no gradient behind.
// CUDA builds only (a CPU-only build has no graphs; `bench --graph` there is an error, held by
// tests/tools/test_bench.cpp).
#include <cmath>
#include <memory>
#include <string>

#include "gpu/gpu_helpers.h"
#include "layers/activation.h"
#include "layers/conv2d.h"
#include "layers/elementwise.h"
#include "layers/loss.h"
#include "layers/reduce.h"
#include "nets/net.h"
#include "optim/optimizer.h"
#include "tensor/allocator.h"
#include "tensor/device.h"
#include "tensor/random.h"
#include "tools/leuko/bench.h"
#include "tools/leuko/graph_step.h"
#include "tools/run_helpers.h"
#if LEUKO_WITH_CUDA
#include "tensor/cuda/graph.h"
#endif

#if LEUKO_WITH_CUDA
namespace leuko::test {
namespace {

constexpr uint64_t kRunSeed = 21;

// A network on the GPU with an optimizer and one fixed batch. Step k is seeded with
// seed_step(kRunSeed, k) and has its own learning rate, as in `leuko train`.
struct Stepper {
  std::shared_ptr<Net> net;
  std::unique_ptr<optim::Optimizer> opt;
  Tensor x, y;  // (N, 3, S, S) float32, (N,) int64
  Tensor loss;  // () the latest step's loss
  std::vector<double> aux;

  Stepper(const std::string& model, int64_t batch, int64_t side, bool adam) {
    manual_seed(11);  // the same weights for every Stepper
    NetOptions options;
    options.num_classes = 4;
    net = make_net(model, options);
    net->to(Device::CUDA);
    net->train();
    aux = net->aux_weights();
    if (adam) {
      optim::AdamOptions a;
      a.weight_decay = 0.01;
      opt = std::make_unique<optim::Adam>(net->named_parameters(), a, /*decoupled=*/true);
    } else {
      optim::SGDOptions sgd;
      sgd.momentum = 0.9;
      sgd.weight_decay = 1e-4;
      opt = std::make_unique<optim::SGD>(net->named_parameters(), sgd);
    }
    x = randn_t({batch, 3, side, side}, 5, DType::f32, Device::CUDA);
    std::vector<int64_t> labels;
    for (int64_t i = 0; i < batch; i++) labels.push_back(i % 4);
    y = Tensor::from_vector(labels, {batch}, Device::CUDA);
  }

  static double lr_at(int64_t k) { return 1e-3 * double(k + 1); }  // a new learning rate every step

  void begin(int64_t k) {  // the host's part of step k before the step itself
    seed_step(kRunSeed, k);
    opt->set_lr(lr_at(k));
  }
  void body() {  // forward, loss, backward, update: what a graph records
    opt->zero_grad();
    std::vector<Tensor> outs = net->forward_train(x);
    Tensor l = cross_entropy(outs[0], y);
    for (size_t i = 1; i < outs.size(); i++) l = add(l, mul(cross_entropy(outs[i], y), aux[i - 1]));
    l.backward();
    opt->step();
    loss = l.detach();
  }
  void step(int64_t k) {
    begin(k);
    body();
  }
};

// Every parameter and buffer (running statistics, num_batches_tracked) and the optimizer's
// state the same, bit for bit.
void check_same_state(Stepper& a, Stepper& b) {
  const NamedTensors sa = a.net->state_dict(), sb = b.net->state_dict();
  REQUIRE(sa.size() == sb.size());
  for (size_t i = 0; i < sa.size(); i++) {
    CAPTURE(sa[i].first);
    check_equal(sa[i].second.cpu(), sb[i].second.cpu());
  }
  const NamedTensors oa = a.opt->state(), ob = b.opt->state();
  REQUIRE(oa.size() == ob.size());
  for (size_t i = 0; i < oa.size(); i++) {
    CAPTURE(oa[i].first);
    check_equal(oa[i].second.cpu(), ob[i].second.cpu());
  }
  CHECK(a.opt->steps() == b.opt->steps());
}

// Steps 0 and 1 eager on both; then the eager one goes on eagerly and the other records step 2
// and replays steps 2 to 7; compared after steps 4 and 7.
void check_replays_match_eager(const std::string& model, int64_t side, Precision precision, bool adam) {
  CAPTURE(model);
  CAPTURE(adam);
  DeterministicScope deterministic;
  PrecisionScope scope(precision);
  Stepper eager(model, 4, side, adam), replayed(model, 4, side, adam);
  for (int64_t k = 0; k < 2; k++) {
    eager.step(k);
    replayed.step(k);
  }
  const double loss1 = eager.loss.item();
  cuda::StepGraph graph;
  replayed.begin(2);
  graph.capture([&] { replayed.body(); });
  REQUIRE(graph.captured());
  check_same_state(eager, replayed);  // capture runs nothing: both are still after step 1
  int64_t k = 2;
  for (int64_t until : {5, 8}) {
    for (; k < until; k++) {
      eager.step(k);
      replayed.opt->set_lr(Stepper::lr_at(k));
      replayed.opt->prepare_replay();
      graph.replay(k);
    }
    check_equal(replayed.loss.cpu(), eager.loss.cpu());
    check_same_state(eager, replayed);
  }
  CHECK(graph.replays() == 6);
  const double loss7 = eager.loss.item();  // it trained: the loss moved and stays finite
  CHECK(std::isfinite(loss7));
  CHECK(loss7 != loss1);
}

}  // namespace

TEST_CASE("a replayed step is the eager step, bit for bit: resnet18, float32, SGD") {
  check_replays_match_eager("resnet18", 32, Precision::fp32, false);
}

TEST_CASE("a replayed step is the eager step, bit for bit: GoogLeNet (dropout, aux heads), bf16, AdamW") {
  check_replays_match_eager("googlenet", 64, Precision::bf16, true);
}

TEST_CASE("a replayed step is the eager step, bit for bit: AlexNet (dropout), tf32, SGD") {
  check_replays_match_eager("alexnet", 64, Precision::tf32, false);
}

TEST_CASE("dropout in a graph draws, at each replay, the eager step's mask for that step") {
  Tensor x = Tensor::ones({4096}, DType::f32, Device::CUDA).set_requires_grad();  // (4096,)
  Tensor up = Tensor::ones({4096}, DType::f32, Device::CUDA);                     // (4096,)
  Tensor out;  // (4096,) the latest replay's dropout(x)
  cuda::StepGraph graph;
  seed_step(kRunSeed, 0);
  graph.capture([&] {
    x.zero_grad();
    out = dropout(x, 0.5);
    out.backward(up);
  });
  std::vector<double> previous;
  for (int64_t k : {3, 4, 9}) {
    CAPTURE(k);
    graph.replay(k);
    const std::vector<double> o = out.to_double_vector(), g = x.grad().to_double_vector();
    CHECK(o == g);  // x and the upstream gradient are ones: both are mask x 2
    seed_step(kRunSeed, k);
    CHECK(dropout(x.detach(), 0.5).to_double_vector() == o);  // the eager step k's mask
    int64_t kept = 0;
    for (double v : o) kept += v == 2.0;
    CHECK(kept > 4096 * 4 / 10);
    CHECK(kept < 4096 * 6 / 10);
    CHECK(o != previous);
    previous = o;
  }
}

TEST_CASE("bench --graph: resnet18 and GoogLeNet train by replays") {
  for (const char* model : {"resnet18", "googlenet"}) {
    CAPTURE(model);
    for (const char* precision : {"fp32", "bf16"}) {
      CAPTURE(precision);
      cli::BenchOptions o;
      o.model = model;
      o.batch = 4;
      o.input = 64;
      o.precision = precision;
      o.device = "cuda";
      o.warmup = 2;
      o.steps = 3;
      o.windows = 2;
      o.graph = true;
      const nlohmann::json r = cli::run_bench(o);
      CHECK(r["graph"] == true);
      CHECK(std::isfinite(r["loss"].get<double>()));
      CHECK(r["images_per_s"].get<double>() > 0);
      CHECK(r["peak_bytes"].get<size_t>() > 0);  // (with --graph, the memory held: live and the graph's pool)
      // The same steps eagerly end with the same loss: step k is step k either way.
      DeterministicScope deterministic;  // cuDNN's choices by heuristics, the same in both runs
      const double graph_loss = cli::run_bench(o)["loss"].get<double>();
      o.graph = false;
      CHECK(cli::run_bench(o)["loss"].get<double>() == graph_loss);
    }
  }
}

TEST_CASE("leuko train --graph gives the eager run's checkpoints, bit for bit, resumed or not") {
  static const std::string data = test::synth_dataset("graph", 12, 64, 3);
  for (const char* model : {"resnet18", "googlenet"}) {
    CAPTURE(model);
    auto options = [&](const std::string& name, bool graph) {
      cli::TrainOptions o = test::tiny_train_options(data, test::scratch_dir("graph", std::string(model) + name));
      o.config.model = model;
      o.config.input = 64;
      o.config.device = "cuda";
      o.config.deterministic = true;
      o.graph = graph;
      return o;
    };
    const cli::TrainOptions eager = options("-eager", false), graph = options("-graph", true);
    const cli::TrainResult re = cli::train(eager), rg = cli::train(graph);
    CHECK(re.graph_steps == 0);
    CHECK(rg.graph_steps == rg.state.step - 2);  // every step after the two checked ones
    CHECK(rg.graph_steps > 0);
    check_same_bits(eager.run_dir + "/last.safetensors", graph.run_dir + "/last.safetensors");
    check_same_bits(eager.run_dir + "/best.safetensors", graph.run_dir + "/best.safetensors");
    CHECK(test::read_file(eager.run_dir + "/log.csv").size() > 0);
    // Stopped after step 5, resumed with --graph: the same again.
    cli::TrainOptions stopped = options("-stopped", true);
    stopped.stop_after = 5;
    REQUIRE(cli::train(stopped).interrupted);
    cli::TrainOptions resumed = stopped;
    resumed.stop_after = 0;
    resumed.resume = stopped.run_dir;
    cli::train(resumed);
    check_same_bits(eager.run_dir + "/last.safetensors", stopped.run_dir + "/last.safetensors");
  }
}

TEST_CASE("a training step whose capture fails leaves no gradient behind, and runs eagerly after") {
  Stepper s("resnet18", 4, 32, false);
  s.step(0);  // the optimizer's state exists: the capture fails on the read below, not on that
  s.opt->zero_grad();
  int calls = 0;
  cli::GraphStep graph([&](const Tensor& images, const Tensor& labels, Tensor* loss, Tensor* logits) {
    calls++;
    std::vector<Tensor> outs = s.net->forward_train(images);
    Tensor l = cross_entropy(outs[0], labels);
    l.backward();  // recorded, never run: gradients that hold nothing
    (void)l.item();  // a read to the host: the capture fails here
    *loss = l.detach();
    *logits = outs[0].detach();
  });
  s.begin(1);
  CHECK_FALSE(graph.run(s.x, s.y, 1, *s.opt));
  CHECK(graph.failed());
  CHECK(calls == 1);
  for (auto& [name, p] : s.net->named_parameters()) {
    CAPTURE(name);
    CHECK_FALSE(p.grad().defined());
  }
  CHECK_FALSE(graph.run(s.x, s.y, 1, *s.opt));  // failed once: never again, the caller steps eagerly
  CHECK(calls == 1);
  s.step(1);
  CHECK(std::isfinite(s.loss.item()));
}

TEST_CASE("a graph's blocks are not handed out while it lives") {
  Tensor a = Tensor::ones({1 << 16}, DType::f32, Device::CUDA);  // (65536,)
  Tensor out;
  cuda::StepGraph graph;
  graph.capture([&] { out = add(a, a); });
  graph.replay(0);
  check_equal(out.cpu(), Tensor::full({1 << 16}, 2.0));
  void* block = out.raw_data();
  out = Tensor();  // back to the graph's pool, which the next replay still writes
  std::vector<Tensor> others;
  for (int i = 0; i < 8; i++) {
    others.push_back(Tensor::empty({1 << 16}, DType::f32, Device::CUDA));
    CHECK(others.back().raw_data() != block);
  }
  graph.replay(1);
  cuda_synchronize();
}

TEST_CASE("a step capture cannot record fails with an error naming why, and the GPU goes on") {
  Tensor a = Tensor::ones({256}, DType::f32, Device::CUDA);  // (256,)
  auto fails = [](const std::function<void()>& step, const char* why) {
    CAPTURE(why);
    cuda::StepGraph graph;
    CHECK_THROWS_WITH_AS(graph.capture(step), doctest::Contains(why), Error);
    CHECK_FALSE(graph.captured());
    CHECK_FALSE(cuda::capturing());
  };
  SUBCASE("a read to the host") {
    cuda::StepGraph graph;
    CHECK_THROWS_AS(graph.capture([&] { (void)sum(a).item(); }), Error);
    CHECK_FALSE(graph.captured());
  }
  SUBCASE("a convolution of a shape never run before (cuDNN would search)") {
    Tensor x = randn_t({1, 3, 7, 9}, 1, DType::f32, Device::CUDA), w = randn_t({5, 3, 3, 3}, 2, DType::f32, Device::CUDA);
    fails([&] { (void)conv2d(x, w); }, "new shape");
    CHECK(conv2d(x, w).shape() == Shape{1, 5, 5, 7});  // eagerly, it runs
  }
  SUBCASE("dropout in a step not seeded by seed_step") {
    manual_seed(3);
    fails([&] { (void)dropout(a, 0.5); }, "seed_step");
  }
  SUBCASE("the optimizer's first step (it makes the buffers), with momentum or without") {
    for (double momentum : {0.9, 0.0}) {
      CAPTURE(momentum);
      Tensor p = Tensor::ones({16}, DType::f32, Device::CUDA).set_requires_grad();
      optim::SGDOptions sgd;
      sgd.momentum = momentum;
      optim::SGD opt({{"p", p}}, sgd);
      p.set_grad(Tensor::ones({16}, DType::f32, Device::CUDA));
      fails([&] { opt.step(); }, "after the first");
    }
  }
  CHECK(sum(add(a, a)).item() == 512.0);
}

}  // namespace leuko::test
#endif  // LEUKO_WITH_CUDA
