// Determinism on the GPU (issue 7): `leuko train --deterministic` run twice with the same seed
// on the same GPU gives the same losses and the same weights, bit for bit. The two runs are
// separate processes, so each makes its own cuDNN algorithm choices (by heuristics: timing
// could choose differently in each) and its own allocations; resnet18 at 32 pixels, and
// googlenet at 64 for the concatenations and the auxiliary heads. Then the same within one
// process, stopped mid-epoch, where the summed training loss is compared as a double.
// Tolerance everywhere: none (bit-identical).
//
// Also the GPU half of the out-of-memory handling (the CPU half, with the same logic, is in
// tests/tools/test_reliability.cpp): under a limit on the caching allocator that fits batch 4
// and not batch 32, training at 32 stops with the one line naming a batch that fits, which
// then trains.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "helpers.h"
#include "tools/run_helpers.h"
#include "tensor/allocator.h"
#include "tensor/device.h"
#include "tensor/safetensors.h"
#include "tools/leuko/plot.h"
#include "tools/leuko/trainer.h"

namespace leuko::test {

namespace fs = std::filesystem;

namespace {

// 4 classes x 12 synthetic images of 64x64, made once.
const std::string& gpu_data() {
  static const std::string dir = test::synth_dataset("det", 12, 64, 9);
  return dir;
}

std::string fresh_dir(const std::string& name) { return test::scratch_dir("det", name); }

// Two epochs of `model` at `input` pixels on the GPU, deterministic, as its own process.
void train_process(const std::string& model, int input, const std::string& out) {
  const std::string log = out + ".log";
  const std::string cmd = std::string(LEUKO_BINARY) + " train --model " + model + " --data " + gpu_data() +
                          " --input " + std::to_string(input) +
                          " --epochs 2 --batch 8 --device cuda --deterministic --seed 7 --workers 2 --quiet --out " +
                          out + " > " + log + " 2>&1";
  const int status = std::system(cmd.c_str());
  const std::string output = test::read_file(log);
  INFO(cmd);
  INFO(output);
  REQUIRE(status == 0);
}

void check_two_processes(const std::string& model, int input) {
  const std::string a = fresh_dir(model + "-a"), b = fresh_dir(model + "-b");
  train_process(model, input, a);
  train_process(model, input, b);
  CHECK(cli::load_checkpoint(a + "/last.safetensors").config.deterministic);
  check_same_bits(a + "/last.safetensors", b + "/last.safetensors");
  check_same_bits(a + "/best.safetensors", b + "/best.safetensors");
  std::vector<cli::EpochRow> x = cli::read_log_csv(a + "/log.csv"), y = cli::read_log_csv(b + "/log.csv");
  REQUIRE(x.size() == 2);
  REQUIRE(y.size() == 2);
  for (size_t i = 0; i < x.size(); i++) {  // every column but the time, exactly
    CHECK(x[i].train_loss == y[i].train_loss);
    CHECK(x[i].train_acc == y[i].train_acc);
    CHECK(x[i].val_loss == y[i].val_loss);
    CHECK(x[i].val_acc == y[i].val_acc);
    CHECK(x[i].val_f1 == y[i].val_f1);
  }
  // The weights moved: the comparison is of trained networks, not of two initialisations.
  SafetensorsFile first = load_safetensors(a + "/last.safetensors");
  REQUIRE(std::isfinite(x[1].train_loss));
  CHECK(first.find("optim.exp_avg.fc.weight").defined());
}

// Three steps in this process, stopped mid-epoch: the summed loss as a double, and the weights.
void check_in_process(const std::string& model, int input) {
  cli::TrainResult r[2];
  std::string dirs[2];
  for (int k = 0; k < 2; k++) {
    dirs[k] = fresh_dir(model + "-inproc-" + std::to_string(k));
    cli::TrainOptions o;
    cli::RunConfig& c = o.config;
    c.model = model;
    c.data = gpu_data();
    c.input = input;
    c.epochs = 2;
    c.batch = 8;
    c.device = "cuda";
    c.deterministic = true;
    c.seed = 7;
    c.workers = 2;
    o.run_dir = dirs[k];
    o.quiet = true;
    o.stop_after = 3;
    r[k] = cli::train(o);
  }
  REQUIRE(r[0].state.step == 3);
  CHECK(r[0].state.loss_sum == r[1].state.loss_sum);
  CHECK(r[0].state.correct == r[1].state.correct);
  check_same_bits(dirs[0] + "/last.safetensors", dirs[1] + "/last.safetensors");
  CHECK_FALSE(deterministic());  // the run's setting, restored after it
}

// Options of the out-of-memory runs: resnet18 on 64-pixel images at 224, deterministic (heuristic cuDNN
// choices: workspaces that do not depend on timing), one epoch, no final test.
cli::TrainOptions oom_options(const std::string& out, int64_t batch) {
  cli::TrainOptions o;
  cli::RunConfig& c = o.config;
  c.model = "resnet18";
  c.data = gpu_data();
  // 64-pixel images scaled up: activations, not weights, dominate at batch 32, by far enough
  // that batch 32's live bytes pass what batch 4 holds with the allocator's 256 MiB segments
  // (recorded on the CPU and replayed, leuko_alloc_replay: about 280 MiB held at batch 4, 780
  // live at batch 32; at 128 pixels 280 against 330, too close).
  c.input = 224;
  c.epochs = 1;
  c.batch = batch;
  c.device = "cuda";
  c.deterministic = true;
  c.workers = 2;
  o.run_dir = out;
  o.quiet = true;
  o.test_at_end = false;
  return o;
}

// The GPU bytes at the high point of a run's first step: live tensors (`peak`) and reserved
// by the caching allocator, live and cached (`peak_reserved`).
MemoryStats first_step_peak(int64_t batch) {
  cli::TrainOptions o = oom_options(fresh_dir("peak" + std::to_string(batch)), batch);
  o.stop_after = 1;
  empty_cuda_cache();
  reset_peak_memory(Device::CUDA);
  cli::train(o);
  return memory_stats(Device::CUDA);
}

struct GpuMemoryLimit {
  explicit GpuMemoryLimit(size_t bytes) {
    empty_cuda_cache();
    set_memory_limit(Device::CUDA, bytes);
  }
  ~GpuMemoryLimit() { set_memory_limit(Device::CUDA, 0); }
  GpuMemoryLimit(const GpuMemoryLimit&) = delete;
  GpuMemoryLimit& operator=(const GpuMemoryLimit&) = delete;
};

}  // namespace

TEST_CASE("gpu: --deterministic gives bit-identical losses and weights in two processes: resnet18 at 32") {
  check_two_processes("resnet18", 32);
}

TEST_CASE("gpu: --deterministic gives bit-identical losses and weights in two processes: googlenet at 64") {
  check_two_processes("googlenet", 64);
}

TEST_CASE("gpu: deterministic runs in one process give the same summed loss, bit for bit") {
  check_in_process("resnet18", 32);
  check_in_process("googlenet", 64);
}

TEST_CASE("gpu: out of memory at the first step names the batch asked for and a smaller one that fits") {
  // Warm once (cuDNN plans, the shared convolution workspace), then measure. The limit lies
  // half-way between what batch 4 reserves (live and cached: it must fit with the cache as it
  // grows) and what batch 32 needs live (the allocator empties its cache and retries before it
  // gives up, so only live bytes make batch 32 fail). 32 images of the ~38 in the training
  // split: one full batch per epoch.
  first_step_peak(32);
  const size_t p4 = first_step_peak(4).peak_reserved, p32 = first_step_peak(32).peak;
  INFO("peak reserved bytes at batch 4: " << p4 << ", peak live bytes at batch 32: " << p32);
  REQUIRE(p32 > p4 + (size_t(64) << 20));  // 28 more images of 224x224 activations: hundreds of MiB
  const size_t limit = p4 + (p32 - p4) / 2;
  std::string message;
  {
    GpuMemoryLimit scope(limit);
    try {
      cli::train(oom_options(fresh_dir("oom"), 32));
      FAIL("batch 32 trained under a limit it should not fit");
    } catch (const OutOfMemory& e) {
      FAIL("OutOfMemory escaped the trainer: " << e.what());
    } catch (const Error& e) {
      message = e.what();
    }
  }
  INFO(message);
  CHECK(message.rfind("out of GPU memory at --batch 32 (asked for ", 0) == 0);
  CHECK(message.find("fits on this GPU: run again with --batch ") != std::string::npos);
  const size_t at = message.find("; --batch ");
  REQUIRE(at != std::string::npos);
  const int64_t fits = std::stoll(message.substr(at + 10));
  CHECK(fits >= 4);
  CHECK(fits < 32);
  // The batch named trains under the same limit.
  GpuMemoryLimit scope(limit);
  cli::TrainOptions o = oom_options(fresh_dir("oom-fits"), fits);
  cli::TrainResult r;
  CHECK_NOTHROW(r = cli::train(o));
  CHECK(r.state.epoch == 1);
}

}  // namespace leuko::test
