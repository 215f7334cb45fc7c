// CUDA graphs of a training step (tensor/cuda/graph.h, `leuko bench --graph`): replaying a
// recorded step trains exactly as running it eagerly does, bit for bit, in float32 and in bf16
// channels_last; dropout draws a new mask at every replay, the same one in its forward and
// backward; the graph's blocks are never handed to another tensor while it lives; and a step
// that capture cannot record fails with an error, leaving the GPU usable.
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
#include "tensor/cuda/graph.h"
#include "tensor/device.h"
#include "tools/leuko/bench.h"

#if LEUKO_WITH_CUDA
namespace leuko::test {
namespace {

// A network on the GPU with SGD (momentum 0.9) and one fixed batch: what `leuko bench` steps.
struct Stepper {
  std::shared_ptr<Net> net;
  std::unique_ptr<optim::SGD> opt;
  Tensor x, y;  // (N, 3, S, S) float32, (N,) int64
  Tensor loss;  // () the latest step's loss

  Stepper(const std::string& model, int64_t batch, int64_t side) {
    manual_seed(11);  // the same weights for every Stepper
    NetOptions options;
    options.num_classes = 4;
    net = make_net(model, options);
    net->to(Device::CUDA);
    net->train();
    optim::SGDOptions sgd;
    sgd.lr = 0.05;
    sgd.momentum = 0.9;
    opt = std::make_unique<optim::SGD>(net->named_parameters(), sgd);
    x = randn_t({batch, 3, side, side}, 5, DType::f32, Device::CUDA);
    std::vector<int64_t> labels;
    for (int64_t i = 0; i < batch; i++) labels.push_back(i % 4);
    y = Tensor::from_vector(labels, {batch}, Device::CUDA);
  }

  void step() {
    opt->zero_grad();
    Tensor l = cross_entropy(net->forward_train(x)[0], y);
    l.backward();
    opt->step();
    loss = l.detach();
  }
};

// Every parameter and buffer (running statistics, num_batches_tracked) the same, bit for bit.
void check_same_state(Stepper& a, Stepper& b) {
  const NamedTensors sa = a.net->state_dict(), sb = b.net->state_dict();
  REQUIRE(sa.size() == sb.size());
  for (size_t i = 0; i < sa.size(); i++) {
    CAPTURE(sa[i].first);
    check_equal(sa[i].second.cpu(), sb[i].second.cpu());
  }
}

struct DeterministicScope {  // heuristic cuDNN choices without atomics: the same bits every call
  DeterministicScope() { set_deterministic(true); }
  ~DeterministicScope() { set_deterministic(false); }
};

void check_replays_match_eager(Precision precision) {
  DeterministicScope deterministic;
  PrecisionScope scope(precision);
  Stepper eager("resnet18", 8, 32), replayed("resnet18", 8, 32);
  for (int i = 0; i < 2; i++) {
    eager.step();
    replayed.step();
  }
  const double loss2 = eager.loss.item();
  cuda::StepGraph graph;
  graph.capture([&] { replayed.step(); });
  REQUIRE(graph.captured());
  // Capture runs nothing: the weights are still those of step 2.
  check_same_state(eager, replayed);
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < 3; i++) {
      eager.step();
      graph.replay();
    }
    check_equal(replayed.loss.cpu(), eager.loss.cpu());
    check_same_state(eager, replayed);
  }
  CHECK(graph.replays() == 6);
  // It trained: the loss moved, and stays finite.
  const double loss8 = eager.loss.item();
  CHECK(std::isfinite(loss8));
  CHECK(loss8 != loss2);
}

}  // namespace

TEST_CASE("a replayed training step is the eager step, bit for bit (float32)") {
  check_replays_match_eager(Precision::fp32);
}

TEST_CASE("a replayed training step is the eager step, bit for bit (bf16, channels_last)") {
  check_replays_match_eager(Precision::bf16);
}

TEST_CASE("bench --graph: resnet18 and GoogLeNet (dropout, concatenations, auxiliary heads) train by replays") {
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
      CHECK(r["peak_bytes"].get<size_t>() == r["peak_reserved_bytes"].get<size_t>());
    }
  }
}

TEST_CASE("dropout in a graph draws a new mask at every replay, the same in forward and backward") {
  Tensor x = Tensor::ones({4096}, DType::f32, Device::CUDA).set_requires_grad();  // (4096,)
  Tensor out;  // (4096,) the latest replay's dropout(x)
  cuda::StepGraph graph;
  graph.capture([&] {
    x.zero_grad();
    out = dropout(x, 0.5);
    out.backward(Tensor::ones({4096}, DType::f32, Device::CUDA));
  });
  std::vector<double> first;
  for (int r = 0; r < 3; r++) {
    graph.replay();
    const std::vector<double> o = out.to_double_vector(), g = x.grad().to_double_vector();
    CHECK(o == g);  // x is ones and the upstream gradient ones: both are mask x 2
    int64_t kept = 0;
    for (double v : o) {
      CHECK((v == 0.0 || v == 2.0));
      kept += v == 2.0;
    }
    CHECK(kept > 4096 * 4 / 10);
    CHECK(kept < 4096 * 6 / 10);
    if (r == 0) first = o;
    else CHECK(o != first);
  }
}

TEST_CASE("a graph's blocks are not handed out while it lives") {
  Tensor a = Tensor::ones({1 << 16}, DType::f32, Device::CUDA);  // (65536,)
  Tensor out;
  cuda::StepGraph graph;
  graph.capture([&] { out = add(a, a); });
  graph.replay();
  check_equal(out.cpu(), Tensor::full({1 << 16}, 2.0));
  void* block = out.raw_data();
  out = Tensor();  // back to the graph's pool, which the next replay still writes
  std::vector<Tensor> others;
  for (int i = 0; i < 8; i++) {
    others.push_back(Tensor::empty({1 << 16}, DType::f32, Device::CUDA));
    CHECK(others.back().raw_data() != block);
  }
  graph.replay();
  cuda_synchronize();
}

TEST_CASE("a step capture cannot record fails with an error, and the GPU goes on") {
  Tensor a = Tensor::ones({256}, DType::f32, Device::CUDA);  // (256,)
  SUBCASE("a read to the host") {
    cuda::StepGraph graph;
    CHECK_THROWS_AS(graph.capture([&] { (void)sum(a).item(); }), Error);
    CHECK_FALSE(graph.captured());
  }
  SUBCASE("a convolution of a shape never run before (cuDNN would search)") {
    Tensor x = randn_t({1, 3, 7, 9}, 1, DType::f32, Device::CUDA), w = randn_t({5, 3, 3, 3}, 2, DType::f32, Device::CUDA);
    cuda::StepGraph graph;
    try {
      graph.capture([&] { (void)conv2d(x, w); });
      FAIL("the capture did not throw");
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find("new shape") != std::string::npos);
    }
    CHECK(conv2d(x, w).shape() == Shape{1, 5, 5, 7});  // eagerly, it runs
  }
  CHECK_FALSE(cuda::capturing());
  CHECK(sum(add(a, a)).item() == 512.0);
}

}  // namespace leuko::test
#endif  // LEUKO_WITH_CUDA
