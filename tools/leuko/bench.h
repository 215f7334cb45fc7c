// `leuko bench`: training throughput of one network, measured the way tools/bench_torch.py
// measures PyTorch, so the two can be put side by side (tools/bench_compare.py,
// docs/PERFORMANCE.md).
//
// What is timed: full training steps (zero_grad, forward in training mode with the auxiliary
// heads, cross-entropy plus the weighted auxiliary losses, backward, SGD with momentum 0.9) on
// one random batch made once on the device, so no data loading or host-to-device copy is timed.
// `warmup` untimed steps first (cuDNN picks its algorithms, the caching allocator fills), then
// `windows` timed windows of `steps` steps each; a GPU window is timed by CUDA events on
// leuko's stream, a CPU window by the host clock. Reported: the median over windows (and the
// fastest and slowest), peak memory over the timed steps, and the training FLOPs per image.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace leuko::cli {

struct BenchOptions {
  std::string model = "resnet50";
  int64_t batch = 64;
  std::string precision = "fp32";  // fp32, tf32, bf16 (tensor/device.h)
  int64_t steps = 10;              // steps per timed window
  int64_t windows = 5;             // timed windows; the median is reported
  int64_t warmup = 5;              // untimed steps before the first window
  int64_t classes = 4;             // as in TARGETS.md's speed table
  int64_t input = 0;               // image side; 0: the network's own (224, 299)
  std::string device = "auto";     // auto (the GPU when present), cpu, cuda
  double max_seconds = 0;          // > 0: start no new window after this many seconds (one at least)
  uint64_t seed = 0;               // the weights' and the batch's generator
  int64_t profile = 0;             // > 0: after the windows, profile this many steps op by op
  bool graph = false;              // time replays of one step recorded as a CUDA graph (GPU)
};

// Runs the benchmark and returns its result. The JSON keys are shared with
// tools/bench_torch.py:
//   framework ("leuko"), version, model, batch, input, classes, precision, device ("cpu" or
//   "cuda"), card (the GPU, or the CPU and its threads), warmup, steps, windows,
//   images_per_s, images_per_s_min, images_per_s_max   (median, slowest and fastest window)
//   step_ms, step_ms_min, step_ms_max                   (median, fastest, slowest window)
//   window_ms                                           (every window's time, in order)
//   peak_bytes, peak_reserved_bytes  the allocator's peak in live tensors and in memory held
//                                    (live + cached) during the timed steps; with graph, both
//                                    are the memory held (a graph keeps every block its step
//                                    used, for its replays)
//   graph               whether the timed steps were replays of a CUDA graph (tensor/cuda/graph.h)
//   device_used_bytes   CUDA: total - free device memory after the timed steps (cudaMemGetInfo:
//                       everything, context and libraries included); CPU: null
//   train_gflop_per_image  6 x the multiply-adds of the convolutions and linear layers of one
//                          training forward (auxiliary heads included): forward, backward-data
//                          and backward-weights each cost about one forward
//   tflops              train_gflop_per_image x images_per_s / 1000: the achieved rate
//   loss                the last step's loss (finite unless training diverged)
//   profile             only with options.profile > 0 (tensor/profile.h): {steps, step_ms (the
//                       profiled step on the device's clock), host_ms, timed_step_ms (step_ms
//                       above, without the marks), rows: [{name, phase (forward, backward,
//                       other), calls_per_step, device_ms_per_step, host_ms_per_step}], the
//                       costliest first; the rows' device_ms_per_step add up to step_ms}
//   seconds             wall time of the whole run, set-up included
// Throws a one-line Error for bad options (naming the option) or a missing GPU; out of memory
// at the first step, one naming the largest batch that fits (found by trying, as `leuko train`
// does: tools/leuko/trainer.h).
// The precision setting is restored before returning.
nlohmann::json run_bench(const BenchOptions& options);

}  // namespace leuko::cli
