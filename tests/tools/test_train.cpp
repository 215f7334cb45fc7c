// The trainer end to end on a tiny synthetic dataset (CPU): it learns, it writes every file of
// the run folder, a stopped run resumes to exactly the weights of an uninterrupted one, and a
// NaN loss or a bad folder stops it with one line.
#include <unistd.h>

#include <filesystem>
#include <limits>

#include "helpers.h"
#include "tools/run_helpers.h"
#include "tensor/device.h"
#include "tensor/safetensors.h"
#include "tools/leuko/plot.h"
#include "tools/leuko/trainer.h"

namespace leuko::test {

namespace fs = std::filesystem;

namespace {

// A synthetic dataset (4 classes x 10 images of 40x40), made once for the whole file.
const std::string& tiny_data() {
  static const std::string dir = test::synth_dataset("train", 10, 40, 3);
  return dir;
}

cli::TrainOptions tiny_options(const std::string& out) { return tiny_train_options(tiny_data(), out); }

std::string fresh_dir(const std::string& name) { return test::scratch_dir("train", name); }

}  // namespace

TEST_CASE("a run writes its folder: config, split, log, curves, checkpoints, test metrics") {
  const std::string out = fresh_dir("files");
  cli::TrainResult r = cli::train(tiny_options(out));
  CHECK_FALSE(r.interrupted);
  CHECK(r.state.epoch == 2);
  for (const char* f : {"config.json", "split.json", "log.csv", "curves.png", "last.safetensors", "best.safetensors",
                        "test.json"})
    CHECK_MESSAGE(fs::exists(out + "/" + f), f);
  std::vector<cli::EpochRow> rows = cli::read_log_csv(out + "/log.csv");
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].epoch == 1);
  CHECK(std::isfinite(rows[1].train_loss));
  CHECK(r.summary.find("confusion matrix") != std::string::npos);
  // No temporary files are left behind.
  for (auto& e : fs::directory_iterator(out)) CHECK(e.path().extension() != ".tmp");
  // The checkpoint carries its configuration.
  cli::Checkpoint c = cli::load_checkpoint(out + "/last.safetensors");
  CHECK(c.config.model == "resnet18");
  CHECK(c.config.class_names == std::vector<std::string>{"benign", "malignant"});
  CHECK(c.state.epoch == 2);
  CHECK(!c.optimizer_state.empty());
}

TEST_CASE("--precision bf16 on the CPU: bf16 activations train, evaluate and save float32 weights") {
  const std::string out = fresh_dir("bf16");
  cli::TrainOptions o = tiny_options(out);
  o.config.precision = "bf16";
  o.config.epochs = 1;
  cli::TrainResult r = cli::train(o);
  CHECK(precision() == Precision::fp32);  // restored after the run
  std::vector<cli::EpochRow> rows = cli::read_log_csv(out + "/log.csv");
  REQUIRE(rows.size() == 1);
  CHECK(std::isfinite(rows[0].train_loss));
  CHECK(std::isfinite(rows[0].val_loss));
  CHECK(r.summary.find("confusion matrix") != std::string::npos);
  // Parameters, batch norm's statistics and the optimizer's state stay float32 (or int64 counters).
  SafetensorsFile f = load_safetensors(out + "/last.safetensors");
  for (const auto& [name, t] : f.tensors) {
    CAPTURE(name);
    CHECK(t.dtype() != DType::bf16);
  }
}

TEST_CASE("the best epoch: a higher validation metric, or the same with a lower validation loss") {
  cli::TrainState s;
  CHECK(cli::improves_best(s, 0.0, 9.0));  // the first epoch always is
  s.best_epoch = 3;
  s.best = 0.9;
  s.best_loss = 0.25;
  CHECK(cli::improves_best(s, 0.91, 0.40));  // the metric decides first
  CHECK_FALSE(cli::improves_best(s, 0.89, 0.10));
  CHECK(cli::improves_best(s, 0.9, 0.24));  // a tie: the lower loss
  CHECK_FALSE(cli::improves_best(s, 0.9, 0.25));
  CHECK_FALSE(cli::improves_best(s, 0.9, 0.26));
  // A checkpoint written before the tie-break reads best_loss as infinite: a tie then replaces it.
  s.best_loss = std::numeric_limits<double>::infinity();
  CHECK(cli::improves_best(s, 0.9, 5.0));

  // In a whole run: best.safetensors is the epoch the rule picks from log.csv, and it keeps that
  // epoch's validation loss for a resumed run to compare against.
  const std::string out = fresh_dir("best");
  cli::TrainOptions o = tiny_options(out);
  o.config.epochs = 4;
  cli::train(o);
  std::vector<cli::EpochRow> rows = cli::read_log_csv(out + "/log.csv");
  REQUIRE(rows.size() == 4);
  size_t pick = 0;
  for (size_t i = 1; i < rows.size(); i++) {
    const bool tie = rows[i].val_f1 == rows[pick].val_f1;
    if (rows[i].val_f1 > rows[pick].val_f1 || (tie && rows[i].val_loss < rows[pick].val_loss)) pick = i;
  }
  cli::Checkpoint best = cli::load_checkpoint(out + "/best.safetensors");
  CHECK(best.state.best_epoch == rows[pick].epoch);
  CHECK(best.state.best_loss == doctest::Approx(rows[pick].val_loss).epsilon(1e-7));  // log.csv keeps 8 digits
  CHECK(cli::load_checkpoint(out + "/last.safetensors").state.best_epoch == rows[pick].epoch);
  // An infinite best_loss (a resumed checkpoint from before the tie-break) is written and read
  // back as infinite, not as JSON's null.
  cli::TrainState st = best.state;
  st.best_loss = std::numeric_limits<double>::infinity();
  cli::save_checkpoint(out + "/again.safetensors", *best.net, nullptr, best.config, st);
  CHECK(std::isinf(cli::load_checkpoint(out + "/again.safetensors").state.best_loss));
}

TEST_CASE("--split-seed holds the split while --seed draws new weights") {
  // Three runs stopped after one step: seed 7 alone; seed 7 with split seed 9; seed 8 with split
  // seed 9. The split follows the split seed, the weights follow the seed.
  auto run = [&](const std::string& name, uint64_t seed, int64_t split_seed) {
    const std::string out = fresh_dir(name);
    cli::TrainOptions o = tiny_options(out);
    o.config.seed = seed;
    o.config.split_seed = split_seed;
    o.stop_after = 1;
    o.quiet = true;
    cli::train(o);
    return out;
  };
  const std::string a = run("seed7", 7, -1), b = run("seed7-split9", 7, 9), c = run("seed8-split9", 8, 9);
  CHECK(test::read_file(b + "/split.json") == test::read_file(c + "/split.json"));
  CHECK(test::read_file(a + "/split.json") != test::read_file(b + "/split.json"));
  cli::Checkpoint cb = cli::load_checkpoint(b + "/last.safetensors"), cc = cli::load_checkpoint(c + "/last.safetensors");
  CHECK(cb.config.split_seed == 9);
  CHECK(cli::load_checkpoint(a + "/last.safetensors").config.seed_of_split() == 7);
  const Tensor wb = cb.net->named_parameters().front().second, wc = cc.net->named_parameters().front().second;
  CHECK(wb.to_vector() != wc.to_vector());
}

TEST_CASE("a stopped run resumes to exactly the weights of an uninterrupted one") {
  const std::string straight = fresh_dir("straight"), stopped = fresh_dir("stopped");
  cli::train(tiny_options(straight));
  // 3 training images per class -> 32 train images, 4 steps per epoch: stop in the middle of
  // the first epoch, then at the end of... resume, and again mid-second-epoch.
  cli::TrainOptions o = tiny_options(stopped);
  o.stop_after = 2;
  cli::TrainResult r = cli::train(o);
  CHECK(r.interrupted);
  CHECK(r.state.step == 2);
  CHECK(r.state.batch == 2);
  cli::TrainOptions again = tiny_options("");
  again.resume = stopped;
  again.config.data.clear();
  again.stop_after = 6;
  r = cli::train(again);
  CHECK(r.interrupted);
  CHECK(r.state.step == 6);
  again.stop_after = 0;
  r = cli::train(again);
  CHECK_FALSE(r.interrupted);
  CHECK(r.state.epoch == 2);
  check_same_bits(straight + "/last.safetensors", stopped + "/last.safetensors");
  check_same_bits(straight + "/best.safetensors", stopped + "/best.safetensors");
  std::vector<cli::EpochRow> a = cli::read_log_csv(straight + "/log.csv"), b = cli::read_log_csv(stopped + "/log.csv");
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); i++) {
    CHECK(a[i].train_loss == doctest::Approx(b[i].train_loss).epsilon(1e-7));  // log.csv keeps 8 digits
    CHECK(a[i].val_acc == b[i].val_acc);
  }
  // A finished run refuses to resume unless given more epochs.
  CHECK_THROWS_WITH_AS(cli::train(again), doctest::Contains("already completed its 2 epochs"), Error);
}

TEST_CASE("a NaN loss stops the run, naming the step, and keeps the last good checkpoint") {
  const std::string out = fresh_dir("nan");
  cli::TrainOptions o = tiny_options(out);
  o.config.epochs = 1;
  cli::train(o);  // one good epoch: last.safetensors exists
  const std::string before = out + "/last.safetensors";
  cli::TrainOptions bad = tiny_options("");
  bad.resume = out;
  bad.config.data.clear();
  bad.config.epochs = 3;
  bad.extend = true;
  // Resume with a learning rate that makes the weights explode: the resumed run keeps its own
  // settings, so instead break the checkpoint's weights with a huge value.
  {
    cli::Checkpoint c = cli::load_checkpoint(before);
    for (auto& [name, t] : c.net->named_parameters()) {
      if (name == "fc.weight") {
        Tensor w = t;
        w.fill_(std::numeric_limits<double>::infinity());
      }
    }
    cli::TrainState st = c.state;
    auto opt = std::make_unique<optim::Adam>(c.net->named_parameters(), optim::AdamOptions{}, true);
    opt->load_state(c.optimizer_state, c.metadata);
    cli::save_checkpoint(before, *c.net, opt.get(), c.config, st);
  }
  CHECK_THROWS_WITH_AS(cli::train(bad), doctest::Contains("the training loss became NaN at step"), Error);
  // The checkpoint the run started from is still there and readable.
  CHECK_NOTHROW(cli::load_checkpoint(before));
}

TEST_CASE("a NaN loss after the first steps, read one step late, names its step and saves nothing more") {
  // Steps after the first two are read back one step late (tools/leuko/step_readback.h): the
  // NaN of step 6 (epoch 2, batch 2: 4 steps per epoch) is seen after step 7 was launched.
  const std::string out = fresh_dir("nan-late");
  cli::TrainOptions o = tiny_options(out);
  o.nan_at_step = 6;
  CHECK_THROWS_WITH_AS(cli::train(o), doctest::Contains("the training loss became NaN at step 6 (epoch 2, batch 2)"),
                       Error);
  // Epoch 1's checkpoint is the last one, whole, with its log row; nothing of epoch 2 was saved.
  cli::Checkpoint c = cli::load_checkpoint(out + "/last.safetensors");
  CHECK(c.state.epoch == 1);
  CHECK(c.state.step == 4);
  CHECK(cli::read_log_csv(out + "/log.csv").size() == 1);
  for (auto& [name, t] : c.net->named_parameters()) {
    int64_t bad = 0;
    for (float x : t.to_vector()) bad += !std::isfinite(x);
    CHECK_MESSAGE(bad == 0, name);
  }
  // The same hook on one of the first two steps (read at once, before their update).
  const std::string early = fresh_dir("nan-early");
  cli::TrainOptions e = tiny_options(early);
  e.nan_at_step = 2;
  CHECK_THROWS_WITH_AS(cli::train(e), doctest::Contains("the training loss became NaN at step 2 (epoch 1, batch 2)"),
                       Error);
}

TEST_CASE("bad runs are refused in one line, losing nothing") {
  const std::string out = fresh_dir("refuse");
  cli::TrainOptions o = tiny_options(out);
  o.config.epochs = 1;
  cli::train(o);
  const auto written = fs::last_write_time(out + "/last.safetensors");
  CHECK_THROWS_WITH_AS(cli::train(o), doctest::Contains("holds a run already"), Error);
  CHECK(fs::last_write_time(out + "/last.safetensors") == written);
  cli::TrainOptions missing = tiny_options(fresh_dir("missing"));
  missing.config.data = "/nonexistent/leukemia";
  CHECK_THROWS_WITH_AS(cli::train(missing), doctest::Contains("/nonexistent/leukemia"), Error);
  cli::TrainOptions resume_none = tiny_options("");
  resume_none.resume = fresh_dir("nothing");
  CHECK_THROWS_WITH_AS(cli::train(resume_none), doctest::Contains("no last.safetensors there to resume from"), Error);
  cli::TrainOptions bad_model = tiny_options(fresh_dir("badmodel"));
  bad_model.config.model = "lenet";
  CHECK_THROWS_WITH_AS(cli::train(bad_model), doctest::Contains("unknown network 'lenet'"), Error);
  cli::TrainOptions graph_on_cpu = tiny_options(fresh_dir("graphcpu"));  // tiny_options: the CPU
  graph_on_cpu.graph = true;
  CHECK_THROWS_WITH_AS(cli::train(graph_on_cpu), doctest::Contains("--graph: CUDA graphs need the GPU"), Error);
  CHECK_FALSE(fs::exists(graph_on_cpu.run_dir + "/config.json"));
}

}  // namespace leuko::test
