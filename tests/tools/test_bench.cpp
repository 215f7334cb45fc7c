// `leuko bench` (tools/leuko/bench.h) on the CPU, on tiny configurations: every reported field
// is present and consistent with the others, the FLOP count matches a hand count, the memory
// peak holds at least what a momentum-SGD step must hold, and bad options are one-line errors.
// (The GPU path, CUDA-event timing and cudaMemGetInfo, runs in tools/gpu_check.sh's bench.)
#include <doctest/doctest.h>

#include <cmath>
#include <map>

#include "nets/net.h"
#include "tensor/device.h"
#include "tools/leuko/bench.h"

using namespace leuko;
using leuko::cli::BenchOptions;
using leuko::cli::run_bench;

namespace {

BenchOptions tiny(const std::string& model, int64_t input, int64_t batch) {
  BenchOptions o;
  o.model = model;
  o.input = input;
  o.batch = batch;
  o.windows = 1;
  o.steps = 1;
  o.warmup = 1;
  o.device = "cpu";
  return o;
}

double num(const nlohmann::json& r, const char* key) {
  INFO("bench result field '" << key << "' in " << r.dump());
  REQUIRE(r.contains(key));
  REQUIRE(r[key].is_number());
  return r[key].get<double>();
}

// Multiply-adds of torchvision's AlexNet for one image of side s, counted by hand from its
// layer list (conv: out_channels x out_h x out_w x in_channels x k x k; linear: in x out).
int64_t alexnet_macs(int64_t s, int64_t classes) {
  auto conv = [](int64_t in, int64_t k, int64_t stride, int64_t pad) { return (in + 2 * pad - k) / stride + 1; };
  const int64_t c1 = conv(s, 11, 4, 2), p1 = conv(c1, 3, 2, 0);
  const int64_t c2 = conv(p1, 5, 1, 2), p2 = conv(c2, 3, 2, 0);
  const int64_t c3 = conv(p2, 3, 1, 1);  // conv3, conv4 and conv5 keep the side
  const int64_t convs =
      64 * c1 * c1 * 3 * 11 * 11 + 192 * c2 * c2 * 64 * 5 * 5 + c3 * c3 * 9 * (384 * 192 + 256 * 384 + 256 * 256);
  const int64_t linears = 256 * 6 * 6 * 4096 + 4096 * 4096 + 4096 * classes;  // after the 6x6 average pool
  return convs + linears;
}

}  // namespace

TEST_CASE("bench: resnet18, one window of one step on the CPU: every field present and consistent") {
  BenchOptions o = tiny("resnet18", 32, 2);
  const nlohmann::json r = run_bench(o);
  INFO(r.dump());
  CHECK(r["framework"] == "leuko");
  CHECK(r["model"] == "resnet18");
  CHECK(r["precision"] == "fp32");
  CHECK(r["device"] == "cpu");
  CHECK(!r["card"].get<std::string>().empty());
  CHECK(num(r, "batch") == 2);
  CHECK(num(r, "input") == 32);
  CHECK(num(r, "classes") == 4);
  CHECK(num(r, "warmup") == 1);
  CHECK(num(r, "steps") == 1);
  CHECK(num(r, "windows") == 1);
  for (const char* k : {"images_per_s", "images_per_s_min", "images_per_s_max", "step_ms", "step_ms_min", "step_ms_max",
                        "peak_bytes", "peak_reserved_bytes", "train_gflop_per_image", "tflops", "loss", "seconds"}) {
    CAPTURE(k);
    CHECK(num(r, k) > 0);
    CHECK(std::isfinite(num(r, k)));
  }
  REQUIRE(r["window_ms"].is_array());
  REQUIRE(r["window_ms"].size() == 1);
  // One window of one step: images/s is the batch over the step time, and min = median = max.
  const double ms = r["window_ms"][0].get<double>();
  CHECK(num(r, "step_ms") == doctest::Approx(ms).epsilon(1e-12));
  CHECK(num(r, "images_per_s") == doctest::Approx(2 * 1e3 / ms).epsilon(1e-12));
  CHECK(num(r, "images_per_s_min") == num(r, "images_per_s"));
  CHECK(num(r, "images_per_s_max") == num(r, "images_per_s"));
  CHECK(num(r, "tflops") == doctest::Approx(num(r, "train_gflop_per_image") * num(r, "images_per_s") / 1e3));
  CHECK(num(r, "seconds") * 1e3 >= ms);
  // On the CPU there is no device-wide figure.
  CHECK(r["device_used_bytes"].is_null());
  // During a step the weights, their gradients and the momentum buffers are all alive: the peak
  // holds at least three float32 copies of the parameters.
  NetOptions no;
  no.num_classes = 4;
  const double param_bytes = 4.0 * double(make_net("resnet18", no)->parameter_count());
  CHECK(num(r, "peak_bytes") >= 3 * param_bytes);
  CHECK(num(r, "peak_reserved_bytes") >= num(r, "peak_bytes"));
}

TEST_CASE("bench: the FLOPs per training image are 6 x AlexNet's multiply-adds counted by hand") {
  for (int64_t side : {64, 96}) {
    CAPTURE(side);
    const nlohmann::json r = run_bench(tiny("alexnet", side, 1));
    // 6 = 2 FLOPs per multiply-add x (forward + backward-data + backward-weights).
    CHECK(num(r, "train_gflop_per_image") == doctest::Approx(6.0 * double(alexnet_macs(side, 4)) / 1e9).epsilon(1e-12));
  }
}

TEST_CASE("bench: GoogLeNet trains with its auxiliary heads") {
  const nlohmann::json r = run_bench(tiny("googlenet", 96, 2));
  CHECK(std::isfinite(num(r, "loss")));
  // The auxiliary losses (weight 0.3 each) are added to the main cross-entropy: with 4 classes
  // and fresh weights each is near log(4), so the sum is clearly above one loss alone.
  CHECK(num(r, "loss") > 1.2 * std::log(4.0));
  CHECK(num(r, "train_gflop_per_image") > 0);
}

TEST_CASE("bench: max_seconds stops adding windows but keeps the first") {
  BenchOptions o = tiny("resnet18", 32, 2);  // batch 2: the last batch norm sees 1x1 maps
  o.windows = 3;
  o.max_seconds = 1e-9;
  const nlohmann::json r = run_bench(o);
  CHECK(num(r, "windows") == 1);
  CHECK(r["window_ms"].size() == 1);
}

TEST_CASE("bench --profile: the step op by op, each of resnet18's layers counted, adding up to the profiled step") {
  BenchOptions o = tiny("resnet18", 32, 2);
  o.profile = 2;
  const nlohmann::json r = run_bench(o);
  REQUIRE(r.contains("profile"));
  const nlohmann::json& p = r["profile"];
  INFO(p.dump());
  CHECK(p["steps"] == 2);
  CHECK(p["timed_step_ms"].get<double>() == num(r, "step_ms"));
  std::map<std::string, nlohmann::json> rows;  // "conv2d forward" -> row
  double sum_ms = 0;
  for (const auto& row : p["rows"]) {
    const std::string key = row["name"].get<std::string>() + " " + row["phase"].get<std::string>();
    CHECK_MESSAGE(rows.count(key) == 0, "two rows for " << key);
    rows[key] = row;
    CHECK(row["device_ms_per_step"].get<double>() >= 0);
    sum_ms += row["device_ms_per_step"].get<double>();
  }
  CHECK(sum_ms == doctest::Approx(p["step_ms"].get<double>()).epsilon(1e-9));
  CHECK(p["step_ms"].get<double>() > 0);
  // torchvision's resnet18: 20 convolutions (17 in the blocks, 3 downsampling) and 20 batch
  // norms, of which 9 run fused with their ReLU (the stem's and each block's first); the 8
  // residual sums with their ReLU; one linear layer. Each forward op has its backward.
  const std::map<std::string, double> calls = {{"conv2d", 20}, {"batch_norm", 11}, {"batch_norm_relu", 9},
                                               {"add_relu", 8}, {"linear", 1},     {"max_pool2d", 1}};
  for (const auto& [op, n] : calls) {
    for (const char* phase : {"forward", "backward"}) {
      const std::string key = op + " " + phase;
      CAPTURE(key);
      REQUIRE(rows.count(key) == 1);
      CHECK(rows[key]["calls_per_step"].get<double>() == n);
    }
  }
  CHECK(rows["optimizer other"]["calls_per_step"].get<double>() == 1);
  CHECK(rows["zero_grad other"]["calls_per_step"].get<double>() == 1);
  // On the CPU the convolutions are most of a step.
  CHECK(p["rows"][0]["name"] == "conv2d");
  // Without the option there is no profile.
  CHECK_FALSE(run_bench(tiny("resnet18", 32, 2)).contains("profile"));
}

TEST_CASE("bench: the precision setting is restored afterwards") {
  set_precision(Precision::fp32);
  BenchOptions o = tiny("resnet18", 32, 2);
  o.precision = "bf16";
  const nlohmann::json r = run_bench(o);
  CHECK(r["precision"] == "bf16");
  CHECK(r["bf16_activations"] == true);  // emulated on the CPU, every op of resnet18 in bf16
  CHECK(r["images_per_s"].get<double>() > 0);
  CHECK(precision() == Precision::fp32);
}

TEST_CASE("bench: bad options are one-line errors naming the option") {
  auto fails = [](BenchOptions o, const char* what) {
    CAPTURE(what);
    CHECK_THROWS_WITH_AS(run_bench(o), doctest::Contains(what), Error);
  };
  BenchOptions o = tiny("resnet18", 32, 1);
  BenchOptions b = o;
  b.batch = 0;
  fails(b, "--batch 0");
  b = o;
  b.steps = 0;
  fails(b, "--steps 0");
  b = o;
  b.windows = 0;
  fails(b, "--windows 0");
  b = o;
  b.warmup = 0;
  fails(b, "--warmup 0");
  b = o;
  b.input = 8;
  fails(b, "--input 8");
  b = o;
  b.device = "tpu";
  fails(b, "--device 'tpu'");
  b = o;
  b.precision = "fp16";
  fails(b, "'fp16'");
  b = o;
  b.profile = -1;
  fails(b, "--profile -1");
  b = o;
  b.model = "lenet";
  fails(b, "lenet");
  b = o;
  b.graph = true;
  b.profile = 1;
  fails(b, "--graph");  // a graph is one launch: nothing to profile op by op
  b = o;
  b.graph = true;  // on the CPU (tiny's device), or with no GPU at all
  fails(b, "--graph");
  b = o;
  b.input = 16;  // AlexNet's pooling shrinks 16 pixels to nothing
  b.model = "alexnet";
  fails(b, "--input 16");
  if (!cuda_available()) {
    b = o;
    b.device = "cuda";
    fails(b, "needs a CUDA GPU");
  }
}
