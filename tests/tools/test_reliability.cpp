// Reliability of `leuko train` on the CPU (issue 7): determinism, running out of memory, and
// being killed at any moment.
//   - Two runs with the same seed give the same losses and weights, bit for bit, whatever the
//     number of loader and OpenMP threads (the GPU half: tests/gpu/test_determinism_gpu.cpp).
//   - A memory limit (set_memory_limit) makes the CPU run out of memory like a small GPU: the
//     first step fails, the trainer finds the largest batch that fits by trying and stops with
//     one line naming both sizes; the batch it names then trains; nothing in the folder is lost.
//     `leuko bench` (run_bench) is held to the same.
//   - The `leuko` binary, run as a child process, is killed with SIGKILL before its first
//     checkpoint, mid-epoch, and inside the write of a checkpoint and of log.csv (held open by
//     the LEUKO_TEST_WRITE_DELAY_MS hook of write_file_atomic); every time the last checkpoint
//     reads back, no half-written file replaced it, and --resume (or, with no checkpoint yet,
//     the same command again) finishes the run with exactly the weights of an uninterrupted one.
//   - Ctrl-C (SIGINT) and SIGTERM mid-epoch stop the child after its step, with the position
//     saved; a second Ctrl-C, sent while the stopped run saves, kills it at once.
#include <fcntl.h>
#include <omp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include "helpers.h"
#include "tools/run_helpers.h"
#include "tensor/allocator.h"
#include "tensor/device.h"
#include "tensor/safetensors.h"
#include "tools/leuko/bench.h"
#include "tools/leuko/plot.h"
#include "tools/leuko/trainer.h"

extern char** environ;

namespace leuko::test {

namespace fs = std::filesystem;

namespace {

// A synthetic dataset (4 classes x 10 images of 40x40), made once for the whole file.
const std::string& tiny_data() {
  static const std::string dir = test::synth_dataset("rel", 10, 40, 3);
  return dir;
}

cli::TrainOptions tiny_options(const std::string& out) { return tiny_train_options(tiny_data(), out); }

std::string fresh_dir(const std::string& name) { return test::scratch_dir("rel", name); }

// log.csv rows, compared exactly in every column but the time.
void check_same_log(const std::string& a, const std::string& b) {
  std::vector<cli::EpochRow> x = cli::read_log_csv(a), y = cli::read_log_csv(b);
  REQUIRE(x.size() == y.size());
  for (size_t i = 0; i < x.size(); i++) {
    CAPTURE(i);
    CHECK(x[i].epoch == y[i].epoch);
    CHECK(x[i].train_loss == y[i].train_loss);
    CHECK(x[i].train_acc == y[i].train_acc);
    CHECK(x[i].val_loss == y[i].val_loss);
    CHECK(x[i].val_acc == y[i].val_acc);
    CHECK(x[i].val_f1 == y[i].val_f1);
    CHECK(x[i].lr == y[i].lr);
  }
}

// The CPU memory limit for the length of a scope, lifted again however the scope ends.
struct MemoryLimit {
  explicit MemoryLimit(size_t bytes) { set_memory_limit(Device::CPU, bytes); }
  ~MemoryLimit() { set_memory_limit(Device::CPU, 0); }
  MemoryLimit(const MemoryLimit&) = delete;
  MemoryLimit& operator=(const MemoryLimit&) = delete;
};

// The out-of-memory runs: plain SGD (no optimizer state), so a fresh run and a resumed one
// hold the same memory and one limit serves both; no final test, whose second copy of the
// network (the best checkpoint, loaded beside the trained one) is not what is measured here.
cli::TrainOptions oom_options(const std::string& out, int64_t batch) {
  cli::TrainOptions o = tiny_options(out);
  o.config.optimizer = "sgd";
  o.config.momentum = 0;
  o.config.batch = batch;
  o.config.epochs = 1;
  o.test_at_end = false;
  return o;
}

// The CPU bytes in use at the high point of a run's first step at `batch` (a run stopped
// after that step, with no limit).
size_t first_step_peak(int64_t batch) {
  cli::TrainOptions o = oom_options(fresh_dir("peak" + std::to_string(batch)), batch);
  o.stop_after = 1;
  reset_peak_memory(Device::CPU);
  cli::train(o);
  return memory_stats(Device::CPU).peak;
}

// A limit half-way between what batch 4 and batch 16 need: 4 fits, 16 does not. Measured, not
// guessed, so it holds whatever the network's and the allocator's sizes.
size_t limit_between_4_and_16() {
  static const size_t limit = [] {
    const size_t p4 = first_step_peak(4), p16 = first_step_peak(16);
    INFO("peak bytes at batch 4: " << p4 << ", at batch 16: " << p16);
    REQUIRE(p16 > p4 + (size_t(1) << 20));  // the activations of 12 more images: megabytes
    return p4 + (p16 - p4) / 2;
  }();
  return limit;
}

// "--batch K fits": K, or 0 when the message names none.
int64_t batch_that_fits(const std::string& message) {
  const std::string key = "; --batch ";
  const size_t at = message.find(key);
  if (at == std::string::npos) return 0;
  return std::stoll(message.substr(at + key.size()));
}

// ---- Child processes ---------------------------------------------------------------------------

struct Child {
  pid_t pid = -1;
  std::string log;  // stdout and stderr
};

// Starts the leuko binary with `args`, and `env` ("NAME=value") added to this process's
// environment; its output goes to `log`.
Child spawn_leuko(const std::vector<std::string>& args, const std::string& log, const std::vector<std::string>& env = {}) {
  std::vector<std::string> argv_s{LEUKO_BINARY};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s = env;
  for (char** e = environ; *e != nullptr; e++) env_s.emplace_back(*e);
  std::vector<char*> envp;
  for (std::string& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  Child c;
  c.log = log;
  const int err = posix_spawn(&c.pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE_MESSAGE(err == 0, "posix_spawn " << LEUKO_BINARY << ": " << std::strerror(err));
  return c;
}

// Waits for the child to end (killing it after `seconds`); returns its wait status.
int wait_child(Child& c, double seconds = 600) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  int status = 0;
  while (waitpid(c.pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(c.pid, SIGKILL);
      waitpid(c.pid, &status, 0);
      FAIL("leuko did not finish within " << seconds << " s; its output:\n" << test::read_file(c.log));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  c.pid = -1;
  return status;
}

// Runs leuko to its end and returns its exit code (-1 if a signal ended it).
int run_leuko(const std::vector<std::string>& args, const std::string& log) {
  Child c = spawn_leuko(args, log);
  const int status = wait_child(c);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Polls every 2 ms until `ready` holds, the child still running. Fails the test if the child
// ended first (the moment was missed) or nothing happened within `seconds` (killing it).
void wait_for(Child& c, const std::function<bool()>& ready, double seconds = 300) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  int status = 0;
  while (!ready()) {
    if (waitpid(c.pid, &status, WNOHANG) != 0) {
      c.pid = -1;
      FAIL("leuko ended before the moment to signal it; its output:\n" << test::read_file(c.log));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      kill(c.pid, SIGKILL);
      waitpid(c.pid, &status, 0);
      c.pid = -1;
      FAIL("the moment to signal leuko did not come within " << seconds << " s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// Waits for `ready` (wait_for), then kills the child with SIGKILL.
void kill_when(Child& c, const std::function<bool()>& ready, double seconds = 300) {
  wait_for(c, ready, seconds);
  REQUIRE(kill(c.pid, SIGKILL) == 0);
  const int status = wait_child(c);
  // Killed, not finished: the kill came while the run was going on.
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
}

// The flags of the child runs: 2 epochs of resnet18 on the tiny data set, on the CPU.
std::vector<std::string> train_args(const std::string& out) {
  return {"train", "--model",  "resnet18", "--data",    tiny_data(), "--input", "32", "--epochs", "2",
          "--batch", "8",      "--device", "cpu",       "--workers", "2",       "--seed", "5", "--out", out};
}

bool exists(const std::string& path) { return fs::exists(path); }

// For wait_for: a moment inside epoch 2's steps, 50 ms after epoch 1's checkpoint appeared.
std::function<bool()> inside_epoch_2(const std::string& dir) {
  auto committed = std::make_shared<std::optional<std::chrono::steady_clock::time_point>>();
  return [dir, committed] {
    const auto now = std::chrono::steady_clock::now();
    if (!*committed && exists(dir + "/last.safetensors")) *committed = now;
    return committed->has_value() && now > **committed + std::chrono::milliseconds(50);
  };
}

// The uninterrupted run the killed ones are compared with, run once.
const std::string& reference_run() {
  static const std::string dir = [] {
    const std::string d = fresh_dir("kill-reference");
    const int code = run_leuko(train_args(d), d + ".log");
    const std::string log = test::read_file(d + ".log");
    INFO(log);
    REQUIRE(code == 0);
    return d;
  }();
  return dir;
}

// After a kill and whatever restarted the run: it finished, with the reference's bits, and no
// temporary file is left.
void check_finished_like_reference(const std::string& dir) {
  const std::string& ref = reference_run();
  cli::Checkpoint c = cli::load_checkpoint(dir + "/last.safetensors");
  CHECK(c.state.epoch == 2);
  check_same_bits(ref + "/last.safetensors", dir + "/last.safetensors");
  check_same_bits(ref + "/best.safetensors", dir + "/best.safetensors");
  check_same_log(ref + "/log.csv", dir + "/log.csv");
  CHECK(exists(dir + "/test.json"));
  for (auto& e : fs::directory_iterator(dir)) CHECK_MESSAGE(e.path().extension() != ".tmp", e.path());
}

// Sends `sig` inside epoch 2 and checks what Ctrl-C promises: the step finishes, last.safetensors
// is saved with the position inside the epoch, exit status 130, and --resume ends with the bits
// of an uninterrupted run.
void check_stopped_by(int sig, const std::string& name) {
  const std::string dir = fresh_dir(name);
  Child c = spawn_leuko(train_args(dir), dir + ".log");
  wait_for(c, inside_epoch_2(dir));
  REQUIRE(kill(c.pid, sig) == 0);
  const int status = wait_child(c);
  const std::string log = test::read_file(dir + ".log");
  INFO(log);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 130);  // the shell's code for "stopped by Ctrl-C"
  CHECK(log.find("continue with: leuko train --resume " + dir) != std::string::npos);
  const cli::Checkpoint stopped = cli::load_checkpoint(dir + "/last.safetensors");
  CHECK(stopped.state.epoch == 1);
  CHECK(stopped.state.batch > 0);  // inside epoch 2: the position was saved
  // The line names the step the checkpoint holds: the one under way when the signal came.
  CHECK(log.find("stopped after step " + std::to_string(stopped.state.step) + " (epoch 2, batch " +
                 std::to_string(stopped.state.batch) + ")") != std::string::npos);
  const int code = run_leuko({"train", "--resume", dir, "--quiet"}, dir + ".resume.log");
  const std::string resume_log = test::read_file(dir + ".resume.log");
  INFO(resume_log);
  REQUIRE(code == 0);
  check_finished_like_reference(dir);
}

// `leuko bench` at `batch` on the CPU, as small as it goes: resnet18 at 32 pixels, two warm-up
// steps (the second is the first to hold SGD's momentum, as every later step does) and one timed.
cli::BenchOptions bench_options(int64_t batch) {
  cli::BenchOptions o;
  o.model = "resnet18";
  o.input = 32;
  o.batch = batch;
  o.device = "cpu";
  o.warmup = 2;
  o.steps = 1;
  o.windows = 1;
  return o;
}

// The "(asked for A MiB with B MiB in use)" of an out-of-memory line, in bytes, and how far
// each may lie from the bytes it rounds (0.05 of its unit).
struct AskedInUse {
  double asked = -1, in_use = -1, tolerance = 0;
};
AskedInUse asked_and_in_use(const std::string& message) {
  AskedInUse r;
  const size_t at = message.find("(asked for ");
  if (at == std::string::npos) return r;
  char unit_a[4] = {}, unit_b[4] = {};
  if (std::sscanf(message.c_str() + at, "(asked for %lf %3s with %lf %3s in use)", &r.asked, unit_a, &r.in_use,
                  unit_b) != 4) {
    return AskedInUse{};
  }
  auto bytes = [](const char* unit) { return std::string(unit) == "GiB" ? double(1ull << 30) : double(1ull << 20); };
  r.tolerance = 0.05 * (bytes(unit_a) + bytes(unit_b));
  r.asked *= bytes(unit_a);
  r.in_use *= bytes(unit_b);
  return r;
}

// A finished one-epoch run (the tiny options), made once; tests copy it before breaking it.
const std::string& finished_run() {
  static const std::string dir = [] {
    const std::string d = fresh_dir("finished");
    cli::TrainOptions o = tiny_options(d);
    o.config.epochs = 1;
    cli::train(o);
    return d;
  }();
  return dir;
}

std::string copy_of_finished_run(const std::string& name) {
  const std::string d = fresh_dir(name);
  fs::copy(finished_run(), d, fs::copy_options::recursive);
  return d;
}

// Resuming `dir` for one more epoch.
cli::TrainOptions resume_options(const std::string& dir) {
  cli::TrainOptions o = tiny_options("");
  o.resume = dir;
  o.config.data.clear();
  o.config.epochs = 2;
  o.extend = true;
  return o;
}

void write_text_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// Rewrites a checkpoint's run configuration (its metadata) with `edit`, keeping the tensors.
void edit_checkpoint_config(const std::string& path, const std::function<void(nlohmann::json&)>& edit) {
  SafetensorsFile f = load_safetensors(path);
  nlohmann::json j = nlohmann::json::parse(f.metadata.at("leuko.config"));
  edit(j);
  f.metadata["leuko.config"] = j.dump();
  save_safetensors(path, f.tensors, f.metadata);
}

}  // namespace

// ---- Determinism -------------------------------------------------------------------------------

TEST_CASE("CPU runs with the same seed give the same losses and weights, bit for bit, whatever the threads") {
  const std::string a = fresh_dir("det-a"), b = fresh_dir("det-b");
  cli::TrainResult ra = cli::train(tiny_options(a));
  // The second run: one loader thread and one OpenMP thread instead of two each, and the
  // deterministic flag (which changes nothing on the CPU: it always is).
  cli::TrainOptions ob = tiny_options(b);
  ob.config.workers = 1;
  ob.config.deterministic = true;
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  cli::TrainResult rb;
  try {
    rb = cli::train(ob);
  } catch (...) {
    omp_set_num_threads(threads);
    throw;
  }
  omp_set_num_threads(threads);
  CHECK(ra.state.best == rb.state.best);
  CHECK(ra.test_metric == rb.test_metric);
  check_same_bits(a + "/last.safetensors", b + "/last.safetensors");
  check_same_bits(a + "/best.safetensors", b + "/best.safetensors");
  check_same_log(a + "/log.csv", b + "/log.csv");
  // The setting is stored with the run and is the run's alone: it is off again after it.
  CHECK(cli::load_checkpoint(b + "/last.safetensors").config.deterministic);
  CHECK_FALSE(cli::load_checkpoint(a + "/last.safetensors").config.deterministic);
  CHECK_FALSE(deterministic());

  // The losses themselves, as doubles, mid-epoch: log.csv rounds them to 8 digits.
  cli::TrainOptions oc = tiny_options(fresh_dir("det-c")), od = tiny_options(fresh_dir("det-d"));
  oc.stop_after = od.stop_after = 3;
  cli::TrainResult rc = cli::train(oc), rd = cli::train(od);
  REQUIRE(rc.state.step == 3);
  CHECK(rc.state.loss_sum == rd.state.loss_sum);
  CHECK(rc.state.correct == rd.state.correct);
}

TEST_CASE("the deterministic setting round-trips through config.json") {
  cli::RunConfig c;
  CHECK_FALSE(c.deterministic);
  c.deterministic = true;
  CHECK(cli::RunConfig::from_json(c.to_json(), "test").deterministic);
  nlohmann::json j = c.to_json();
  j.erase("deterministic");  // a config.json written before the setting existed
  CHECK_FALSE(cli::RunConfig::from_json(j, "test").deterministic);
  j["deterministic"] = "yes";
  CHECK_THROWS_WITH_AS(cli::RunConfig::from_json(j, "config.json"),
                       doctest::Contains("config.json: field 'deterministic' has the wrong type"), Error);
}

// ---- Out of memory -------------------------------------------------------------------------------

TEST_CASE("a memory limit makes CPU allocation throw OutOfMemory, changing nothing") {
  const MemoryStats before = memory_stats(Device::CPU);
  {
    MemoryLimit limit(before.current + (size_t(1) << 20));
    CHECK(memory_limit(Device::CPU) == before.current + (size_t(1) << 20));
    CHECK_NOTHROW(Tensor::empty({64 * 1024}, DType::f32));  // 256 KiB: under the limit
    try {
      Tensor::empty({512 * 1024}, DType::f32);  // 2 MiB: over it
      FAIL("no OutOfMemory");
    } catch (const OutOfMemory& e) {
      CHECK(e.bytes() == size_t(2) << 20);
      CHECK(std::string(e.what()).find("out of CPU memory: asked for 2.0 MiB") != std::string::npos);
      CHECK(std::string(e.what()).find("over the memory limit") != std::string::npos);
    }
    CHECK(memory_stats(Device::CPU).current == before.current);  // the failed allocation left no trace
  }
  CHECK(memory_limit(Device::CPU) == 0);
  CHECK_NOTHROW(Tensor::empty({512 * 1024}, DType::f32));
}

TEST_CASE("largest_fitting_batch halves, then searches, and answers only sizes it saw fit") {
  for (int64_t failed : {2, 3, 5, 16, 17, 256}) {
    for (int64_t threshold = 0; threshold < failed; threshold++) {  // sizes <= threshold fit
      CAPTURE(failed);
      CAPTURE(threshold);
      std::vector<int64_t> tried;
      auto fits = [&](int64_t k) {
        tried.push_back(k);
        return k <= threshold;
      };
      const int64_t got = cli::largest_fitting_batch(failed, 2, fits);
      CHECK(got == (threshold >= 2 ? threshold : 0));
      for (int64_t k : tried) {
        CHECK(k >= 2);
        CHECK(k < failed);
      }
      if (got > 0) CHECK(std::find(tried.begin(), tried.end(), got) != tried.end());
      CHECK(tried.size() <= 2 * 9);  // logarithmic: 256 takes at most 8 halvings and 8 bisections
    }
  }
}

TEST_CASE("the out-of-memory line names the batch asked for and one that fits") {
  const size_t gib = size_t(1) << 30;
  CHECK(cli::out_of_memory_message(Device::CUDA, 256, size_t(1.2 * double(gib)), size_t(75.3 * double(gib)), 96) ==
        "out of GPU memory at --batch 256 (asked for 1.2 GiB with 75.3 GiB in use); --batch 96 fits on this GPU: "
        "run again with --batch 96");
  CHECK(cli::out_of_memory_message(Device::CUDA, 64, 3 << 20, 5 * gib, 40, true) ==
        "out of GPU memory at --batch 64 (asked for 3.0 MiB with 5.0 GiB in use); --batch 40 fits on this GPU: a "
        "resumed run keeps its batch size, so start a new run with --batch 40");
  CHECK(cli::out_of_memory_message(Device::CUDA, 8, gib, 70 * gib, 0) ==
        "out of GPU memory at --batch 8 (asked for 1.0 GiB with 70.0 GiB in use); no smaller batch fits on this GPU: "
        "try a smaller --input or another network");
}

TEST_CASE("out of memory at the first step: one line with the batch asked for and a smaller one that fits") {
  const size_t limit = limit_between_4_and_16();
  const std::string out = fresh_dir("oom");
  std::string message;
  {
    MemoryLimit scope(limit);
    try {
      cli::train(oom_options(out, 16));
      FAIL("batch 16 trained under a limit it should not fit");
    } catch (const OutOfMemory& e) {
      FAIL("OutOfMemory escaped the trainer: " << e.what());
    } catch (const Error& e) {
      message = e.what();
    }
  }
  INFO(message);
  CHECK(message.rfind("out of CPU memory at --batch 16 (asked for ", 0) == 0);
  CHECK(message.find(" in use); --batch ") != std::string::npos);
  CHECK(message.find("run again with --batch") != std::string::npos);
  CHECK(message.find('\n') == std::string::npos);
  const int64_t fits = batch_that_fits(message);
  CHECK(fits >= 4);  // batch 4 fits under the limit, and the search is exact
  CHECK(fits < 16);
  // Nothing written before the failure is lost, and nothing half-written is left.
  CHECK_NOTHROW(cli::RunConfig::from_json(nlohmann::json::parse(test::read_file(out + "/config.json")), "config.json"));
  CHECK(exists(out + "/split.json"));
  CHECK_FALSE(exists(out + "/last.safetensors"));
  for (auto& e : fs::directory_iterator(out)) CHECK(e.path().extension() != ".tmp");
  // The size it names trains under the same limit: a whole epoch, validation included.
  {
    MemoryLimit scope(limit);
    cli::TrainOptions o = oom_options(fresh_dir("oom-fits"), fits);
    cli::TrainResult r;
    CHECK_NOTHROW(r = cli::train(o));
    CHECK(r.state.epoch == 1);
  }
}

TEST_CASE("out of memory in leuko bench: one line with the batch asked for and a smaller one that fits") {
  // A limit half-way between bench's peaks at batch 4 and at 16 (over its timed step, which
  // holds the momentum: the most any step holds), measured as for the trainer. Batch 16's first
  // step fits under it; its second, the first with momentum, runs out.
  const size_t p4 = cli::run_bench(bench_options(4))["peak_bytes"].get<size_t>();
  const size_t p16 = cli::run_bench(bench_options(16))["peak_bytes"].get<size_t>();
  INFO("bench's peak bytes at batch 4: " << p4 << ", at batch 16: " << p16);
  REQUIRE(p16 > p4 + (size_t(1) << 20));
  const size_t limit = p4 + (p16 - p4) / 2;
  INFO("limit: " << limit << " bytes");
  std::string message;
  {
    MemoryLimit scope(limit);
    try {
      cli::run_bench(bench_options(16));
      FAIL("batch 16 ran under a limit it should not fit");
    } catch (const OutOfMemory& e) {
      FAIL("OutOfMemory escaped run_bench: " << e.what());
    } catch (const Error& e) {
      message = e.what();
    }
  }
  INFO(message);
  CHECK(message.rfind("bench: out of CPU memory at --batch 16 (asked for ", 0) == 0);
  CHECK(message.find("run again with --batch") != std::string::npos);
  CHECK(message.find('\n') == std::string::npos);
  // The allocation named is the one that crossed the limit: what was in use lies under it.
  const AskedInUse m = asked_and_in_use(message);
  REQUIRE(m.asked > 0);
  CHECK(m.in_use <= double(limit) + m.tolerance);
  CHECK(m.asked + m.in_use >= double(limit) - m.tolerance);
  const int64_t fits = batch_that_fits(message);
  CHECK(fits >= 4);  // batch 4 fits under the limit, and the search is exact
  CHECK(fits < 16);
  // The size it names runs under the same limit, every step within it.
  if (fits >= 2) {
    MemoryLimit scope(limit);
    nlohmann::json r;
    CHECK_NOTHROW(r = cli::run_bench(bench_options(fits)));
    CHECK(r.value("batch", int64_t(0)) == fits);
    CHECK(r.value("peak_bytes", ~size_t(0)) <= limit);
  }
}

TEST_CASE("out of memory when resuming leaves the run folder as it was, and the run resumes later") {
  const size_t limit = limit_between_4_and_16();
  const std::string out = fresh_dir("oom-resume");
  cli::train(oom_options(out, 16));  // one epoch at batch 16, with no limit
  std::map<std::string, std::string> before;
  for (auto& e : fs::directory_iterator(out)) before[e.path().filename().string()] = test::read_file(e.path().string());
  REQUIRE(before.count("last.safetensors"));
  cli::TrainOptions more = oom_options("", 16);
  more.resume = out;
  more.config.data.clear();
  more.config.epochs = 2;
  more.extend = true;
  std::string message;
  {
    MemoryLimit scope(limit);
    try {
      cli::train(more);
      FAIL("batch 16 resumed under a limit it should not fit");
    } catch (const Error& e) {
      message = e.what();
    }
  }
  INFO(message);
  CHECK(message.rfind("out of CPU memory at --batch 16", 0) == 0);
  CHECK(message.find("a resumed run keeps its batch size, so start a new run with --batch") != std::string::npos);
  // Every file is still there, byte for byte; config.json alone is rewritten (with the new
  // epoch total) and still reads.
  for (const auto& [name, bytes] : before) {
    CAPTURE(name);
    REQUIRE(exists(out + "/" + name));
    if (name != "config.json") CHECK(test::read_file(out + "/" + name) == bytes);
  }
  CHECK_NOTHROW(cli::RunConfig::from_json(nlohmann::json::parse(test::read_file(out + "/config.json")), "config.json"));
  for (auto& e : fs::directory_iterator(out)) CHECK(e.path().extension() != ".tmp");
  // With the memory back, the same resume trains on.
  cli::TrainResult r = cli::train(more);
  CHECK(r.state.epoch == 2);
}

// ---- Kill-safety -----------------------------------------------------------------------------------

TEST_CASE("SIGKILL inside the write of a checkpoint: the previous one stays, and --resume finishes the run") {
  const std::string dir = fresh_dir("kill-write");
  const std::string last = dir + "/last.safetensors", tmp = last + ".tmp";
  // Every atomic write pauses 400 ms between its complete temporary file and the rename.
  Child c = spawn_leuko(train_args(dir), dir + ".log", {"LEUKO_TEST_WRITE_DELAY_MS=400"});
  // Epoch 1's checkpoint is there, epoch 2's is being written: kill.
  std::string epoch1;
  kill_when(c, [&] {
    if (!exists(last)) return false;
    if (epoch1.empty()) epoch1 = test::read_file(last);
    return exists(tmp);
  });
  const std::string log = test::read_file(dir + ".log");
  INFO(log);
  CHECK(exists(tmp));                  // the kill came inside the write ...
  CHECK(test::read_file(last) == epoch1);   // ... and the checkpoint it was replacing is untouched
  cli::Checkpoint before = cli::load_checkpoint(last);
  CHECK(before.state.epoch == 1);
  CHECK(cli::read_log_csv(dir + "/log.csv").size() == 2);  // written before the checkpoint; redone
  // Resume: the stale temporary file is removed and named, and the run ends as an
  // uninterrupted one does, bit for bit.
  const int code = run_leuko({"train", "--resume", dir}, dir + ".resume.log");
  const std::string resume_log = test::read_file(dir + ".resume.log");
  INFO(resume_log);
  REQUIRE(code == 0);
  CHECK(resume_log.find("removed " + tmp + ", left by a run stopped while writing it") != std::string::npos);
  check_finished_like_reference(dir);
}

TEST_CASE("SIGKILL inside the write of log.csv: the checkpoint and the log still agree after --resume") {
  const std::string dir = fresh_dir("kill-log");
  Child c = spawn_leuko(train_args(dir), dir + ".log", {"LEUKO_TEST_WRITE_DELAY_MS=400"});
  // log.csv is written once per epoch: kill inside epoch 2's write (epoch 1's checkpoint exists).
  kill_when(c, [&] { return exists(dir + "/last.safetensors") && exists(dir + "/log.csv.tmp"); });
  const std::string log = test::read_file(dir + ".log");
  INFO(log);
  CHECK(cli::load_checkpoint(dir + "/last.safetensors").state.epoch == 1);
  CHECK(cli::read_log_csv(dir + "/log.csv").size() == 1);
  const int code = run_leuko({"train", "--resume", dir, "--quiet"}, dir + ".resume.log");
  const std::string resume_log = test::read_file(dir + ".resume.log");
  INFO(resume_log);
  REQUIRE(code == 0);
  check_finished_like_reference(dir);
}

TEST_CASE("SIGKILL mid-epoch: --resume continues from the last checkpoint to the same weights") {
  const std::string dir = fresh_dir("kill-epoch");
  Child c = spawn_leuko(train_args(dir), dir + ".log");
  // In epoch 2: epoch 1's checkpoint is there; 50 ms into the next epoch's steps.
  bool seen = false;
  std::chrono::steady_clock::time_point committed;
  kill_when(c, [&] {
    if (!seen && exists(dir + "/last.safetensors")) {
      seen = true;
      committed = std::chrono::steady_clock::now();
    }
    return seen && std::chrono::steady_clock::now() > committed + std::chrono::milliseconds(50);
  });
  CHECK(cli::load_checkpoint(dir + "/last.safetensors").state.epoch == 1);
  const std::string log = test::read_file(dir + ".log");
  INFO(log);
  const int code = run_leuko({"train", "--resume", dir, "--quiet"}, dir + ".resume.log");
  const std::string resume_log = test::read_file(dir + ".resume.log");
  INFO(resume_log);
  REQUIRE(code == 0);
  check_finished_like_reference(dir);
}

TEST_CASE("SIGKILL before the first checkpoint: --resume says so, and the same command starts again") {
  const std::string dir = fresh_dir("kill-early");
  Child c = spawn_leuko(train_args(dir), dir + ".log", {"LEUKO_TEST_WRITE_DELAY_MS=400"});
  // Inside the write of config.json, the run's second file (split.json is the first).
  kill_when(c, [&] { return exists(dir + "/config.json.tmp"); });
  CHECK(exists(dir + "/split.json"));
  CHECK_FALSE(exists(dir + "/last.safetensors"));
  int code = run_leuko({"train", "--resume", dir}, dir + ".resume.log");
  const std::string resume_log = test::read_file(dir + ".resume.log");
  INFO(resume_log);
  CHECK(code == 1);
  CHECK(resume_log.find("no last.safetensors there to resume from (the run stopped before its first epoch "
                        "ended: start it again with the same command)") != std::string::npos);
  code = run_leuko(train_args(dir), dir + ".again.log");
  const std::string again_log = test::read_file(dir + ".again.log");
  INFO(again_log);
  REQUIRE(code == 0);
  check_finished_like_reference(dir);
}


TEST_CASE("Ctrl-C (SIGINT) mid-epoch: the step finishes, the position is saved, --resume continues exactly") {
  check_stopped_by(SIGINT, "sigint");
}

TEST_CASE("SIGTERM mid-epoch: as Ctrl-C, the step finishes, the position is saved, --resume continues exactly") {
  check_stopped_by(SIGTERM, "sigterm");
}

TEST_CASE("a second Ctrl-C while the stopped run saves ends it at once; the last checkpoint stays and resumes") {
  const std::string dir = fresh_dir("sigint-twice");
  const std::string last = dir + "/last.safetensors", tmp = last + ".tmp";
  // Every atomic write pauses 400 ms between its complete temporary file and the rename: the
  // stop's save of last.safetensors is held open for the second Ctrl-C.
  Child c = spawn_leuko(train_args(dir), dir + ".log", {"LEUKO_TEST_WRITE_DELAY_MS=400"});
  wait_for(c, inside_epoch_2(dir));
  const std::string epoch1 = test::read_file(last);
  REQUIRE(kill(c.pid, SIGINT) == 0);
  // The first was handled: the step finished and the save began.
  wait_for(c, [&] { return exists(tmp); }, 60);
  REQUIRE(kill(c.pid, SIGINT) == 0);
  const int status = wait_child(c, 60);
  const std::string log = test::read_file(dir + ".log");
  INFO(log);
  // Ended by the signal itself, not by the exit status 130 of a stop that completed its save.
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGINT);
  CHECK(log.find("stopped after step") == std::string::npos);
  CHECK(exists(tmp));                      // the kill came inside the save ...
  CHECK(test::read_file(last) == epoch1);  // ... and the checkpoint it was replacing is untouched
  CHECK(cli::load_checkpoint(last).state.epoch == 1);
  CHECK(cli::read_log_csv(dir + "/log.csv").size() == 1);  // the stop came inside epoch 2
  const int code = run_leuko({"train", "--resume", dir}, dir + ".resume.log");
  const std::string resume_log = test::read_file(dir + ".resume.log");
  INFO(resume_log);
  REQUIRE(code == 0);
  CHECK(resume_log.find("removed " + tmp + ", left by a run stopped while writing it") != std::string::npos);
  check_finished_like_reference(dir);
}

// ---- Bad input ---------------------------------------------------------------------------------------

TEST_CASE("bad settings are refused in one line naming the flag") {
  const std::vector<std::pair<std::function<void(cli::RunConfig&)>, std::string>> bad = {
      {[](cli::RunConfig& c) { c.batch = 1; }, "--batch: 1 is too small (batch norm needs at least 2 images)"},
      {[](cli::RunConfig& c) { c.epochs = 0; }, "--epochs: 0 is not a number of epochs"},
      {[](cli::RunConfig& c) { c.input = 16; }, "--input: 16 pixels is too small"},
      {[](cli::RunConfig& c) { c.label_smoothing = 1; }, "--label-smoothing must lie in [0, 1)"},
      {[](cli::RunConfig& c) { c.best_metric = "auc"; }, "--best: 'auc' is not one of f1, macro_f1, accuracy, loss"},
      {[](cli::RunConfig& c) { c.augment = "warp"; }, "--augment: 'warp' is not one of none, flips, crop"},
      {[](cli::RunConfig& c) { c.optimizer = "rmsprop"; }, "--optimizer: 'rmsprop' is not one of sgd, adam, adamw"},
      {[](cli::RunConfig& c) { c.device = "tpu"; }, "--device: 'tpu' is not one of auto, cpu, cuda"},
      {[](cli::RunConfig& c) { c.precision = "fp8"; }, "--precision: 'fp8' is not one of fp32, tf32, bf16"},
      {[](cli::RunConfig& c) { c.normalize = "zscore"; }, "--normalize: 'zscore' is not one of imagenet, data"},
      {[](cli::RunConfig& c) { c.task = "ternary"; }, "task 'ternary' is not one of binary, subtype"},
      {[](cli::RunConfig& c) { c.schedule = "sometimes"; }, "--schedule: 'sometimes' is not one of"},
      {[](cli::RunConfig& c) { c.model = "lenet"; }, "unknown network 'lenet'"},
  };
  for (const auto& [edit, message] : bad) {
    CAPTURE(message);
    cli::TrainOptions o = tiny_options(fresh_dir("badflag"));
    edit(o.config);
    try {
      cli::train(o);
      FAIL("accepted");
    } catch (const Error& e) {
      const std::string what = e.what();
      CHECK(what.find(message) != std::string::npos);
      CHECK(what.find('\n') == std::string::npos);
    }
  }
  if (!cuda_available()) {
    cli::TrainOptions o = tiny_options(fresh_dir("badflag"));
    o.config.device = "cuda";
    CHECK_THROWS_WITH_AS(cli::train(o), doctest::Contains("--device cuda needs a CUDA GPU"), Error);
  }
  // What the command line's own parser refuses (CLI11: a line and a pointer to --help), and
  // the combinations train.cpp checks.
  const std::string log = fresh_dir("badflag-cli") + ".log";
  CHECK(run_leuko({"train", "--model", "resnet18", "--data", tiny_data(), "--batch", "two"}, log) != 0);
  CHECK(test::read_file(log).find("Could not convert: --batch = two") != std::string::npos);
  CHECK(run_leuko({"train", "--model", "resnet18", "--data", tiny_data(), "--optimizer", "rmsprop"}, log) != 0);
  CHECK(test::read_file(log).find("--optimizer: rmsprop not in {sgd,adam,adamw}") != std::string::npos);
  CHECK(run_leuko({"train", "--data", tiny_data()}, log) == 1);
  CHECK(test::read_file(log) == "leuko: --model: which network to train? (e.g. --model resnet50)\n");
  CHECK(run_leuko({"train", "--resume", finished_run(), "--model", "resnet18"}, log) == 1);
  CHECK(test::read_file(log) == "leuko: --resume: the run's own --model is used; leave --model out\n");
}

TEST_CASE("checkpoints that are broken or do not fit are refused in one line naming the file") {
  const std::string good = finished_run() + "/last.safetensors";
  const std::string dir = fresh_dir("badckpt");
  fs::create_directories(dir);
  // Not a leuko checkpoint: weights without a run configuration (as tools/torch_export.py writes).
  const std::string plain = dir + "/plain.safetensors";
  save_safetensors(plain, {{"fc.weight", Tensor::zeros({2, 512})}});
  CHECK_THROWS_WITH_AS(cli::load_checkpoint(plain),
                       doctest::Contains((plain + ": not a leuko checkpoint (no run configuration in its metadata); "
                                                  "weights exported from PyTorch are loaded with `leuko train --init FILE`")
                                             .c_str()),
                       Error);
  // Truncated: half the file.
  const std::string bytes = test::read_file(good);
  const std::string cut = dir + "/cut.safetensors";
  write_text_file(cut, bytes.substr(0, bytes.size() / 2));
  CHECK_THROWS_WITH_AS(cli::load_checkpoint(cut), doctest::Contains((cut + ": not a valid safetensors file").c_str()),
                       Error);
  CHECK_THROWS_WITH_AS(cli::load_checkpoint(cut), doctest::Contains("truncated?"), Error);
  // Another network's weights (the configuration names alexnet), another class count.
  const std::string other = dir + "/other.safetensors";
  fs::copy_file(good, other);
  edit_checkpoint_config(other, [](nlohmann::json& j) { j["model"] = "alexnet"; });
  CHECK_THROWS_WITH_AS(cli::load_checkpoint(other),
                       doctest::Contains((other + ": does not fit alexnet with 2 classes").c_str()), Error);
  const std::string classes = dir + "/classes.safetensors";
  fs::copy_file(good, classes);
  edit_checkpoint_config(classes, [](nlohmann::json& j) { j["classes"] = 4; });
  CHECK_THROWS_WITH_AS(cli::load_checkpoint(classes),
                       doctest::Contains((classes + ": does not fit resnet18 with 4 classes").c_str()), Error);
  // A run configuration of the wrong type, or not JSON.
  const std::string typed = dir + "/typed.safetensors";
  fs::copy_file(good, typed);
  edit_checkpoint_config(typed, [](nlohmann::json& j) { j["epochs"] = "many"; });
  CHECK_THROWS_WITH_AS(cli::load_checkpoint(typed),
                       doctest::Contains((typed + ": field 'epochs' must be a whole number").c_str()), Error);
  edit_checkpoint_config(typed, [](nlohmann::json& j) {
    j["epochs"] = 1e300;  // a float: never cast to an integer (undefined behaviour out of range)
  });
  CHECK_THROWS_WITH_AS(cli::load_checkpoint(typed),
                       doctest::Contains((typed + ": field 'epochs' must be a whole number").c_str()), Error);
  edit_checkpoint_config(typed, [](nlohmann::json& j) {
    j["epochs"] = 1;
    j["model"] = 5;
  });
  CHECK_THROWS_WITH_AS(cli::load_checkpoint(typed), doctest::Contains((typed + ": field 'model' has the wrong type").c_str()),
                       Error);
  {
    SafetensorsFile f = load_safetensors(good);
    f.metadata["leuko.config"] = "{not json";
    save_safetensors(dir + "/json.safetensors", f.tensors, f.metadata);
    CHECK_THROWS_WITH_AS(cli::load_checkpoint(dir + "/json.safetensors"),
                         doctest::Contains("json.safetensors: its run configuration is not valid JSON"), Error);
  }
  // The same refusals through --resume (a broken last.safetensors) and --init.
  const std::string run = copy_of_finished_run("badckpt-resume");
  fs::copy_file(cut, run + "/last.safetensors", fs::copy_options::overwrite_existing);
  CHECK_THROWS_WITH_AS(cli::train(resume_options(run)),
                       doctest::Contains((run + "/last.safetensors: not a valid safetensors file").c_str()), Error);
  cli::TrainOptions init = tiny_options(fresh_dir("badckpt-init"));
  init.init = plain;  // fc.weight alone: every other key is missing
  CHECK_THROWS_WITH_AS(cli::train(init), doctest::Contains((plain + ": ").c_str()), Error);
}

TEST_CASE("resuming a run folder with a broken file, or on other images, is refused in one line naming it") {
  {  // split.json that is not JSON
    const std::string run = copy_of_finished_run("badsplit");
    write_text_file(run + "/split.json", "{\"seed\": 1,");
    CHECK_THROWS_WITH_AS(cli::train(resume_options(run)), doctest::Contains((run + "/split.json").c_str()), Error);
    CHECK_THROWS_WITH_AS(cli::train(resume_options(run)), doctest::Contains("not a valid JSON"), Error);
  }
  {  // log.csv with a bad line
    const std::string run = copy_of_finished_run("badlog");
    write_text_file(run + "/log.csv", std::string(cli::kLogCsvHeader) + "\n1,0.5,abc,0.5,0.5,0.5,0.5,0.5,0.001,3\n");
    CHECK_THROWS_WITH_AS(cli::train(resume_options(run)),
                         doctest::Contains((run + "/log.csv:2: field 3 ('abc') is not a number").c_str()), Error);
  }
  {  // config.json is written for people and never read: a broken one changes nothing
    const std::string run = copy_of_finished_run("badconfig");
    write_text_file(run + "/config.json", "garbage");
    cli::TrainResult r = cli::train(resume_options(run));
    CHECK(r.state.epoch == 2);
    CHECK_NOTHROW(nlohmann::json::parse(test::read_file(run + "/config.json")));  // rewritten
  }
  {  // the images of another task: the run's 2 classes against 4 folders as subtypes
    const std::string run = copy_of_finished_run("badclasses");
    edit_checkpoint_config(run + "/last.safetensors", [](nlohmann::json& j) { j["task"] = "subtype"; });
    CHECK_THROWS_WITH_AS(cli::train(resume_options(run)),
                         doctest::Contains(("--resume " + run + ": the run has 2 classes, the images in " + tiny_data() +
                                            " have 4")
                                               .c_str()),
                         Error);
  }
}

TEST_CASE("a class left without training images by --skip-bad is refused in one line") {
  const std::string data = fresh_dir("emptied");
  fs::create_directories(data + "/Pro");
  fs::copy(tiny_data() + "/Benign", data + "/Benign");
  write_text_file(data + "/Pro/a.png", "not an image");  // the only malignant image
  cli::TrainOptions o = tiny_options(fresh_dir("emptied-run"));
  o.config.data = data;
  CHECK_THROWS_WITH_AS(cli::train(o), doctest::Contains((data + "/Pro/a.png: not a JPEG, PNG or BMP image").c_str()),
                       Error);
  o.skip_bad = true;
  CHECK_THROWS_WITH_AS(cli::train(o),
                       doctest::Contains(("--data " + data +
                                          ": the training split holds no image of class 'malignant' (1 unreadable "
                                          "images skipped): every class needs training images")
                                             .c_str()),
                       Error);
}

TEST_CASE("too few images to split 80/10/10 are refused in one line") {
  const std::string data = fresh_dir("few");
  for (const char* cls : {"Benign", "Pro"}) {
    fs::create_directories(data + "/" + cls);
    int n = 0;
    for (auto& e : fs::directory_iterator(tiny_data() + "/" + cls)) {
      if (n++ < 4) fs::copy_file(e.path(), data + "/" + cls + "/" + e.path().filename().string());
    }
  }
  cli::TrainOptions o = tiny_options(fresh_dir("few-run"));
  o.config.data = data;
  CHECK_THROWS_WITH_AS(cli::train(o),
                       doctest::Contains(("--data " + data +
                                          ": the validation split is empty (8 images are too few to split 80/10/10)")
                                             .c_str()),
                       Error);
}

TEST_CASE("a run killed after its last epoch but before its test resumes to the test alone") {
  const std::string run = copy_of_finished_run("untested");
  fs::remove(run + "/test.json");
  const std::string last = test::read_file(run + "/last.safetensors");
  cli::TrainOptions o = tiny_options("");
  o.resume = run;
  o.config.data.clear();
  cli::TrainResult r = cli::train(o);
  CHECK(r.state.epoch == 1);
  CHECK(exists(run + "/test.json"));
  CHECK(test::read_file(run + "/last.safetensors") == last);  // no training happened
  // Now complete: resuming again is refused, as for any finished run.
  CHECK_THROWS_WITH_AS(cli::train(o), doctest::Contains("already completed its 1 epochs"), Error);
}

}  // namespace leuko::test
