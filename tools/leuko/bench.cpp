// `leuko bench --model M [--batch 64] [--precision fp32|tf32|bf16] [--steps 10] [--windows 5]
//              [--warmup 5] [--classes 4] [--input S] [--device auto|cpu|cuda] [--json]`:
// training throughput, timed as tools/bench_torch.py times PyTorch (see bench.h for what is
// timed and every reported number; docs/PERFORMANCE.md for how the numbers are used).
#include "tools/leuko/bench.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <vector>

#include "layers/conv2d.h"
#include "layers/elementwise.h"
#include "layers/linear.h"
#include "layers/loss.h"
#include "nets/net.h"
#include "optim/optimizer.h"
#include "tensor/allocator.h"
#include "tensor/device.h"
#include "tensor/profile.h"
#include "tensor/random.h"
#include "tools/leuko/commands.h"
#include "tools/leuko/trainer.h"

#if LEUKO_WITH_CUDA
#include "tensor/cuda/check_cuda.h"
#include "tensor/cuda/context.h"
#include "tensor/cuda/graph.h"
#endif

namespace leuko::cli {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Times one window of steps. On the GPU the host only queues work, so the host clock would
// measure how fast kernels are launched, not run: two CUDA events on leuko's stream bracket
// the window instead. The GPU is idle when the window starts (the previous one was waited
// for), so the events measure from the first step's start to the last step's end, including
// any time the GPU waits for the host to launch. On the CPU every op has finished when it
// returns, so the host clock is exact.
class WindowTimer {
 public:
  explicit WindowTimer(Device device) : cuda_(device == Device::CUDA) {
#if LEUKO_WITH_CUDA
    if (cuda_) {
      LEUKO_CUDA_CHECK(cudaEventCreate(&start_));
      LEUKO_CUDA_CHECK(cudaEventCreate(&stop_));
    }
#endif
  }
  ~WindowTimer() {
#if LEUKO_WITH_CUDA
    // A destructor must not throw: a failure to destroy an event is ignored, as for the cuDNN
    // descriptors.
    if (start_ != nullptr) (void)cudaEventDestroy(start_);
    if (stop_ != nullptr) (void)cudaEventDestroy(stop_);
#endif
  }
  WindowTimer(const WindowTimer&) = delete;
  WindowTimer& operator=(const WindowTimer&) = delete;

  void start() {
#if LEUKO_WITH_CUDA
    if (cuda_) {
      LEUKO_CUDA_CHECK(cudaEventRecord(start_, cuda::stream()));
      return;
    }
#endif
    t0_ = Clock::now();
  }
  // Waits for the window's work and returns its duration in milliseconds.
  double stop_ms() {
#if LEUKO_WITH_CUDA
    if (cuda_) {
      LEUKO_CUDA_CHECK(cudaEventRecord(stop_, cuda::stream()));
      LEUKO_CUDA_CHECK(cudaEventSynchronize(stop_));
      float ms = 0;
      LEUKO_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
      return ms;
    }
#endif
    return 1e3 * seconds_since(t0_);
  }

 private:
  bool cuda_;
  Clock::time_point t0_;
#if LEUKO_WITH_CUDA
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
#endif
};

// Multiply-adds per image of the convolutions and linear layers in a traced forward pass (as
// `leuko info` counts them; the other layers are a few percent of the arithmetic at most).
int64_t macs_per_image(const ModuleTrace& trace) {
  int64_t macs = 0;
  for (const TraceRow& r : trace.rows) {
    if (r.output.empty() || r.output[0] == 0) continue;
    const int64_t per_image = shape_numel(r.output) / r.output[0];  // output elements of one image
    if (auto* c = dynamic_cast<const Conv2d*>(r.module)) {
      macs += per_image * (c->in_channels / c->options.groups) * c->kernel_size.h * c->kernel_size.w;
    } else if (auto* l = dynamic_cast<const Linear*>(r.module)) {
      macs += per_image * l->in_features;
    }
  }
  return macs;
}

// "Intel(R) Xeon(R) ... (16 threads)": the CPU a CPU run measured.
std::string cpu_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line, name = "CPU";
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
      name = line.substr(line.find(':') + 2);
      break;
    }
  }
  return name + " (" + std::to_string(omp_get_max_threads()) + " threads)";
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// `steps` steps under a profile::Profiler (as many first, unprofiled by the result, so that
// all the profile's CUDA events exist before it measures: each mark takes one, and creating
// one would charge its host time to an op): the time of one step, op by op.
nlohmann::json profile_steps(Device device, int64_t steps, const std::function<void()>& step, double timed_step_ms) {
  {
    profile::Profiler warm(device);
    for (int64_t s = 0; s < steps; s++) step();
    warm.finish();
  }
  profile::Profiler profiler(device);
  for (int64_t s = 0; s < steps; s++) step();
  const std::vector<profile::Row> rows = profiler.finish();
  const double n = double(steps);
  double device_ms = 0, host_ms = 0;
  nlohmann::json out_rows = nlohmann::json::array();
  for (const profile::Row& r : rows) {
    device_ms += r.device_ms;
    host_ms += r.host_ms;
    out_rows.push_back({{"name", r.name},
                        {"phase", profile::phase_name(r.phase)},
                        {"calls_per_step", double(r.calls) / n},
                        {"device_ms_per_step", r.device_ms / n},
                        {"host_ms_per_step", r.host_ms / n}});
  }
  return {{"steps", steps},
          {"step_ms", device_ms / n},       // the profiled step, marks included
          {"host_ms", host_ms / n},         // the host's time for it
          {"timed_step_ms", timed_step_ms}, // the same step unmarked, from the timed windows
          {"rows", out_rows}};
}

}  // namespace

nlohmann::json run_bench(const BenchOptions& o) {
  const Clock::time_point began = Clock::now();
  LEUKO_CHECK(o.batch >= 1, "bench: --batch ", o.batch, " must be at least 1");
  LEUKO_CHECK(o.steps >= 1, "bench: --steps ", o.steps, " must be at least 1");
  LEUKO_CHECK(o.windows >= 1, "bench: --windows ", o.windows, " must be at least 1");
  // The first step is never timed: it counts the FLOPs, lets cuDNN choose its algorithms and
  // fills the allocator's cache.
  LEUKO_CHECK(o.profile >= 0, "bench: --profile ", o.profile, " must be 0 (no profile) or a number of steps");
  LEUKO_CHECK(o.warmup >= 1, "bench: --warmup ", o.warmup, " must be at least 1 (the first step is never timed)");
  LEUKO_CHECK(o.input == 0 || o.input >= 16, "bench: --input ", o.input, " is too small an image side");
  LEUKO_CHECK(o.device == "auto" || o.device == "cpu" || o.device == "cuda", "bench: --device '", o.device,
              "' is not one of auto, cpu, cuda");
  LEUKO_CHECK(!o.graph || o.profile == 0, "bench: --profile times the ops one by one, which a CUDA graph (--graph) ",
              "runs as one launch; use one or the other");
  PrecisionScope precision_scope(parse_precision(o.precision));
  if (o.device == "cuda") require_cuda("bench --device cuda");
  if (o.graph) require_cuda("bench --graph");
  const Device device = o.device == "cpu" || !cuda_available() ? Device::CPU : Device::CUDA;
  LEUKO_CHECK(!o.graph || device == Device::CUDA, "bench: --graph records CUDA graphs; --device cpu has none");

  // The same seed gives the same weights and batch (the networks draw from the default generator).
  manual_seed(o.seed);
  NetOptions net_options;
  net_options.num_classes = o.classes;
  std::shared_ptr<Net> net = make_net(o.model, net_options);
  const int64_t side = o.input > 0 ? o.input : net->default_input_size();
  net->to(device);
  net->train();  // batch statistics, dropout, auxiliary heads: as a training step
  const std::vector<double> aux_weights = net->aux_weights();

  // One batch, made once and left on the device: only the training step is timed.
  Generator gen(o.seed + 1);
  Tensor x = randn({o.batch, 3, side, side}, gen).to(device);  // (N, 3, S, S)
  std::vector<int64_t> labels(static_cast<size_t>(o.batch));
  for (auto& l : labels) l = int64_t(gen.below(uint64_t(o.classes)));
  Tensor y = Tensor::from_vector(labels, {o.batch}, device);  // (N,) int64

  optim::SGDOptions sgd;
  sgd.lr = 0.01;
  sgd.momentum = 0.9;
  // Owned by a pointer so that out of memory can drop it with its momentum buffers.
  auto opt = std::make_unique<optim::SGD>(net->named_parameters(), sgd);

  // One training step on (xb, yb) with the optimizer `o`; returns the loss, detached.
  auto train_step = [&](const Tensor& xb, const Tensor& yb, optim::Optimizer& optimizer) {
    optimizer.zero_grad();
    profile::mark("zero_grad", profile::Phase::other);  // the marks do nothing unless --profile
    std::vector<Tensor> outs = net->forward_train(xb);  // main logits, then auxiliary ones
    Tensor l = cross_entropy(outs[0], yb);
    for (size_t i = 1; i < outs.size(); i++) l = add(l, mul(cross_entropy(outs[i], yb), aux_weights[i - 1]));
    l.backward();
    optimizer.step();
    profile::mark("optimizer", profile::Phase::other);
    return l.detach();
  };
  Tensor loss;  // () the last step's loss, detached
  // Each step seeds its dropout from (seed, step number), as `leuko train` does: so a CUDA
  // graph's replay of step k drops what the eager step k would (tensor/cuda/graph.h).
  int64_t step_index = 0;
  auto step = [&] {
    seed_step(o.seed, step_index++);
    loss = train_step(x, y, *opt);
  };

  // Out of memory at the first step: the largest batch that fits, found by trying pairs of real
  // steps (each with a fresh optimizer, whose buffers are part of what must fit), then one line as
  // `leuko train` gives (tools/leuko/trainer.h). The weights the tries changed are not timed.
  auto out_of_memory = [&](const OutOfMemory& e) {
    const size_t asked = e.bytes(), in_use = memory_stats(device).peak;
    x = y = Tensor();
    opt->zero_grad();
    opt.reset();  // its momentum buffers: each try makes its own, as a fresh run would
    loss = Tensor();
    empty_cuda_cache();
    auto fits = [&](int64_t k) {
      bool ok = true;
      try {
        optim::SGD fresh(net->named_parameters(), sgd);
        Tensor xk = randn({k, 3, side, side}, gen, DType::f32, device);  // (k, 3, S, S)
        std::vector<int64_t> yk(static_cast<size_t>(k));
        for (int64_t i = 0; i < k; i++) yk[size_t(i)] = i % o.classes;
        const Tensor yt = Tensor::from_vector(yk, {k}, device);  // (k,) int64 labels
        // Two steps: the second holds the momentum the first created while its activations live.
        for (int i = 0; i < 2; i++) train_step(xk, yt, fresh);
        fresh.zero_grad();
      } catch (const OutOfMemory&) {
        ok = false;
      }
      for (auto& named : net->named_parameters()) named.second.set_grad(Tensor());  // a try that ran out
      empty_cuda_cache();
      return ok;
    };
    const int64_t fit = largest_fitting_batch(o.batch, 2, fits);
    return Error("bench: " + out_of_memory_message(device, o.batch, asked, in_use, fit));
  };

  // Warm-up. The first step is traced to count the multiply-adds of one training forward.
  int64_t macs = 0;
  {
    ModuleTrace trace;
    reset_peak_memory(device);  // the peak of a step that runs out is the memory it had in use
    try {
      step();
    } catch (const OutOfMemory& e) {
      throw out_of_memory(e);
    } catch (const Error& e) {
      throw Error("bench: " + o.model + " at --input " + std::to_string(side) + " failed: " + e.what());
    }
    macs = macs_per_image(trace);
  }
  for (int64_t i = 1; i < o.warmup; i++) {
    try {
      step();  // the second step is the first with momentum buffers: it can still run out
    } catch (const OutOfMemory& e) {
      throw out_of_memory(e);
    }
  }
  // --graph: one more step, recorded as a CUDA graph; the timed steps replay it. The eager
  // steps' cached blocks go back to the driver (the graph has a pool of its own), so the memory
  // held afterwards is the graph's step and the model's state.
#if LEUKO_WITH_CUDA
  cuda::StepGraph graph;
  if (o.graph) {
    const int64_t recorded = step_index;
    try {
      graph.capture(step);
    } catch (const Error& e) {
      throw Error("bench: --graph: " + std::string(e.what()));
    }
    step_index = recorded;  // the capture ran nothing: step `recorded` is still the next
    empty_cuda_cache();
  }
  auto timed_step = [&] {
    if (!o.graph) return step();
    opt->prepare_replay();  // the update's learning rate on the device, as the eager step writes it
    graph.replay(step_index++);
  };
#else
  auto timed_step = step;
#endif
  cuda_synchronize();
  reset_peak_memory(device);  // the peak of the steady state, not of set-up and algorithm search

  WindowTimer timer(device);
  std::vector<double> window_ms, images_per_s, step_ms;
  for (int64_t w = 0; w < o.windows; w++) {
    if (w > 0 && o.max_seconds > 0 && seconds_since(began) > o.max_seconds) break;
    timer.start();
    try {
      for (int64_t s = 0; s < o.steps; s++) timed_step();
    } catch (const OutOfMemory& e) {  // with --warmup 1 the first step with momentum is timed
      throw out_of_memory(e);
    }
    const double ms = timer.stop_ms();
    window_ms.push_back(ms);
    images_per_s.push_back(double(o.batch * o.steps) * 1e3 / ms);
    step_ms.push_back(ms / double(o.steps));
  }
  const MemoryStats mem = memory_stats(device);
  // The profile runs after the timed windows, in steps of its own: its marks cost host time.
  nlohmann::json profile_json = nullptr;
  if (o.profile > 0) profile_json = profile_steps(device, o.profile, step, median(step_ms));
  nlohmann::json device_used = nullptr;
#if LEUKO_WITH_CUDA
  if (device == Device::CUDA) {
    size_t free_bytes = 0, total_bytes = 0;
    LEUKO_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    device_used = total_bytes - free_bytes;
  }
#endif

  nlohmann::json j;
  j["framework"] = "leuko";
  j["model"] = o.model;
  j["batch"] = o.batch;
  j["input"] = side;
  j["classes"] = o.classes;
  j["precision"] = o.precision;
  j["bf16_activations"] = bf16_activations();  // false under bf16 only with LEUKO_BF16_ACTIVATIONS=0
  j["channels_last"] = channels_last_activations();  // ... or LEUKO_CHANNELS_LAST=0
  j["device"] = device == Device::CUDA ? "cuda" : "cpu";
  j["card"] = device == Device::CUDA ? cuda_status() : cpu_name();
  j["warmup"] = o.warmup;
  j["steps"] = o.steps;
  j["windows"] = int64_t(window_ms.size());
  j["images_per_s"] = median(images_per_s);
  j["images_per_s_min"] = *std::min_element(images_per_s.begin(), images_per_s.end());
  j["images_per_s_max"] = *std::max_element(images_per_s.begin(), images_per_s.end());
  j["step_ms"] = median(step_ms);
  j["step_ms_min"] = *std::min_element(step_ms.begin(), step_ms.end());
  j["step_ms_max"] = *std::max_element(step_ms.begin(), step_ms.end());
  j["window_ms"] = window_ms;
  // A graph keeps every block its step used, live or not, for its replays: what it holds is
  // what the card must have.
  j["peak_bytes"] = o.graph ? mem.peak_reserved : mem.peak;
  j["peak_reserved_bytes"] = mem.peak_reserved;
  j["graph"] = o.graph;
  j["device_used_bytes"] = device_used;
  j["train_gflop_per_image"] = 6.0 * double(macs) / 1e9;  // 2 FLOPs per multiply-add, x3 for backward
  j["tflops"] = j["train_gflop_per_image"].get<double>() * j["images_per_s"].get<double>() / 1e3;
  j["loss"] = loss.item();
  if (!profile_json.is_null()) j["profile"] = profile_json;
  j["seconds"] = seconds_since(began);
  return j;
}

namespace {

// The profile as a table, the costliest first: each op's share of the profiled step.
void print_profile(const nlohmann::json& p, bool gpu) {
  const double step = p["step_ms"].get<double>();
  std::printf("\nprofile: %lld steps, %.2f ms per step on the %s (%.2f ms unprofiled), host %.2f ms\n",
              p["steps"].get<long long>(), step, gpu ? "GPU" : "CPU", p["timed_step_ms"].get<double>(),
              p["host_ms"].get<double>());
  std::printf("  %-22s %-8s %8s %10s %6s %10s\n", "op", "phase", "calls", "ms/step", "share", "host ms");
  for (const auto& row : p["rows"]) {
    const double ms = row["device_ms_per_step"].get<double>();
    std::printf("  %-22s %-8s %8.1f %10.3f %5.1f%% %10.3f\n", row["name"].get<std::string>().c_str(),
                row["phase"].get<std::string>().c_str(), row["calls_per_step"].get<double>(), ms,
                step > 0 ? 100.0 * ms / step : 0.0, row["host_ms_per_step"].get<double>());
  }
}

void print_bench(const nlohmann::json& r) {
  auto num = [&](const char* k) { return r[k].get<double>(); };
  constexpr double GiB = 1024.0 * 1024.0 * 1024.0;
  std::printf("leuko bench: %s training steps, batch %lld at %lldx%lld, %lld classes, %s, on %s: %s\n",
              r["model"].get<std::string>().c_str(), r["batch"].get<long long>(), r["input"].get<long long>(),
              r["input"].get<long long>(), r["classes"].get<long long>(), r["precision"].get<std::string>().c_str(),
              r["device"].get<std::string>().c_str(), r["card"].get<std::string>().c_str());
  const bool bf16_acts = r.value("bf16_activations", false);
  if (r["precision"] == "bf16") {
    const bool nhwc = r.value("channels_last", false);
    std::printf(bf16_acts ? "  bf16 activations, %s (float32 master weights)%s\n"
                          : "  float32 activations with bf16 products (LEUKO_BF16_ACTIVATIONS=0)%s%s\n",
                bf16_acts ? (nhwc ? "channels_last" : "NCHW (LEUKO_CHANNELS_LAST=0)") : "",
                r["device"] == "cpu" && bf16_acts ? "; the CPU emulates them through float32 NCHW, for checking"
                                                  : "");
  } else if (r["device"] == "cpu" && r["precision"] == "tf32") {
    std::printf("  (tf32 applies to the GPU: the CPU computes in fp32)\n");
  }
  std::printf("  %lld warm-up steps, %lld timed windows of %lld steps%s\n", r["warmup"].get<long long>(),
              r["windows"].get<long long>(), r["steps"].get<long long>(),
              r.value("graph", false) ? ", each step a replay of one CUDA graph" : "");
  std::printf("  images/s   %.1f median (slowest window %.1f, fastest %.1f)\n", num("images_per_s"),
              num("images_per_s_min"), num("images_per_s_max"));
  std::printf("  step       %.2f ms median (fastest %.2f, slowest %.2f)\n", num("step_ms"), num("step_ms_min"),
              num("step_ms_max"));
  std::printf("  memory     peak %.2f GiB in tensors, %.2f GiB held by the allocator", num("peak_bytes") / GiB,
              num("peak_reserved_bytes") / GiB);
  if (!r["device_used_bytes"].is_null()) std::printf("; %.2f GiB used on the device", num("device_used_bytes") / GiB);
  std::printf("\n  compute    %.2f GFLOP per training image -> %.2f TFLOP/s\n", num("train_gflop_per_image"),
              num("tflops"));
  std::printf("  last loss  %.4f\n", num("loss"));
  if (r.contains("profile")) print_profile(r["profile"], r["device"] == "cuda");
}

}  // namespace

void register_bench(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench",
                                 "Training throughput (images/s), step time and peak memory of a network "
                                 "on random data");
  static BenchOptions o;
  static bool json = false;
  cmd->add_option("--model", o.model,
                  "Network: alexnet, alexnet_lrn, vgg16, vgg16_bn, resnet18, resnet50, "
                  "googlenet, inception_v3")
      ->required();
  cmd->add_option("--batch", o.batch, "Images per step")->capture_default_str();
  cmd->add_option("--precision", o.precision, "fp32, tf32 or bf16")->capture_default_str();
  cmd->add_option("--steps", o.steps, "Steps per timed window")->capture_default_str();
  cmd->add_option("--windows", o.windows, "Timed windows (the median is reported)")->capture_default_str();
  cmd->add_option("--warmup", o.warmup, "Untimed steps first (at least 1)")->capture_default_str();
  cmd->add_option("--classes", o.classes, "Number of classes")->capture_default_str();
  cmd->add_option("--input", o.input, "Image side in pixels (default: the network's own, 224 or 299)");
  cmd->add_option("--device", o.device, "auto (the GPU when present), cpu or cuda")->capture_default_str();
  cmd->add_option("--max-seconds", o.max_seconds, "Start no new window after this many seconds (0: no limit)");
  cmd->add_option("--seed", o.seed, "Seed of the weights and the batch")->capture_default_str();
  cmd->add_flag("--graph", o.graph,
                "Time replays of the step recorded once as a CUDA graph (GPU only; dropout masks still "
                "change every step, the learning rate is fixed)");
  cmd->add_option("--profile", o.profile,
                  "After the timed windows, profile this many steps op by op (0: no profile)")
      ->capture_default_str();
  cmd->add_flag("--json", json, "Print the result as one JSON object");
  cmd->callback([] {
    const nlohmann::json r = run_bench(o);
    if (json) {
      std::printf("%s\n", r.dump().c_str());
    } else {
      print_bench(r);
    }
  });
}

}  // namespace leuko::cli
