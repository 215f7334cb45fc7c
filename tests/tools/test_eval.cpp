// Evaluation (tools/leuko/evaluate.h): evaluate(), the core of `leuko eval` and of
// `leuko predict`, on a tiny synthetic dataset (4 folders x 6 images of 32x32) and an untrained
// resnet18 saved as a checkpoint with a split.json beside it, as `leuko train` leaves them.
// Nothing is trained: the checks are consistency (totals equal the split's sizes, every
// prediction is the argmax of its probabilities, the loss is their mean cross-entropy, eval and
// predict agree image by image, the result does not depend on the batch size) and the errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "data/data_helpers.h"
#include "data/split.h"
#include "data/synth.h"
#include "tensor/autograd.h"
#include "tensor/random.h"
#include "tools/leuko/commands.h"
#include "tools/leuko/evaluate.h"

using namespace leuko;
using cli::EvalOptions;
using cli::EvalReport;
using cli::EvalResult;

namespace {

namespace fs = std::filesystem;

// Built once for the file: the data folder, the split, the run folder with its checkpoint.
struct World {
  test::TempDir dir;
  std::string data = dir / "data", run = dir / "run", checkpoint = dir / "run/best.safetensors";
  data::Split split;
  cli::RunConfig config;

  World() {
    data::SynthOptions so;
    so.per_class = 6;
    so.size = 32;
    so.seed = 3;
    so.format = "png";
    so.threads = 2;
    REQUIRE(data::write_synth_dataset(data, so) == 24);
    split = data::make_split(data::list_image_folder(data), data::Task::binary, 42);
    fs::create_directories(run);
    data::save_split(run + "/split.json", split);
    config.model = "resnet18";
    config.data = data;
    config.task = "binary";
    config.classes = 2;
    config.class_names = {"benign", "malignant"};
    config.input = 32;
    save(checkpoint, config);
  }

  // A checkpoint of an untrained network for `c` (seeded: the same weights every run).
  static void save(const std::string& path, const cli::RunConfig& c) {
    manual_seed(7);
    NetOptions o;
    o.num_classes = c.classes;
    std::shared_ptr<Net> net = make_net(c.model, o);
    cli::TrainState st;
    st.epoch = 3;
    cli::save_checkpoint(path, *net, nullptr, c, st);
  }

  data::Dataset dataset(data::Task task = data::Task::binary) const {
    data::DatasetOptions o;
    o.task = task;
    o.threads = 2;
    return data::Dataset::load(data, o);
  }
};

World& world() {
  static World w;
  return w;
}

EvalOptions options(const std::string& split) {
  EvalOptions o;
  o.checkpoint = world().checkpoint;
  o.data = world().data;
  o.split = split;
  o.device = "cpu";
  o.workers = 2;
  return o;
}

// Index of the largest probability of sample i and its lead over the runner-up.
std::pair<int64_t, double> argmax(const EvalResult& r, int64_t i) {
  int64_t best = 0;
  for (int64_t c = 1; c < r.num_classes; c++) {
    if (r.probability(i, c) > r.probability(i, best)) best = c;
  }
  double second = -1;
  for (int64_t c = 0; c < r.num_classes; c++) {
    if (c != best) second = std::max(second, r.probability(i, c));
  }
  return {best, r.probability(i, best) - second};
}

}  // namespace

TEST_CASE("evaluate: every sample once, in dataset order, predictions = argmax, loss = mean cross-entropy") {
  const World& w = world();
  const data::Dataset ds = w.dataset();
  cli::Checkpoint ck = cli::load_checkpoint(w.checkpoint);
  ck.net->train();  // evaluate switches to eval mode and back
  const EvalResult r = cli::evaluate(*ck.net, ds, w.config.eval_transform(), 5, Device::CPU, 2);
  CHECK(ck.net->is_training());
  REQUIRE(r.size() == 24);
  CHECK(r.num_classes == 2);
  CHECK(r.confusion.total() == 24);
  CHECK(r.confusion.class_names() == std::vector<std::string>{"benign", "malignant"});
  CHECK(r.confusion.support(0) == 6);  // one Benign folder of 6
  CHECK(r.confusion.support(1) == 18);
  CHECK(r.seconds > 0);

  data::ConfusionMatrix recount(2);
  double loss = 0;
  for (int64_t i = 0; i < r.size(); i++) {
    CAPTURE(i);
    CHECK(r.labels[size_t(i)] == ds.label(i));
    const double sum = r.probability(i, 0) + r.probability(i, 1);
    CHECK(sum == doctest::Approx(1.0).epsilon(1e-12));  // float64 softmax
    CHECK(r.predictions[size_t(i)] == argmax(r, i).first);
    recount.add(r.predictions[size_t(i)], r.labels[size_t(i)]);
    loss -= std::log(r.probability(i, r.labels[size_t(i)]));
  }
  CHECK(recount.counts() == r.confusion.counts());
  // The loss from the float64 probabilities: equal to rounding (relative 1e-9).
  CHECK(r.loss == doctest::Approx(loss / 24).epsilon(1e-9));

  // Independently: every image through the eval transform and the network in one batch, softmax
  // in float64 here. Float32 logits from batches of 5 against one of 24: within 1e-5 absolute.
  const int64_t S = 32;
  std::vector<float> host(size_t(24 * 3 * S * S));  // (24, 3, S, S)
  for (int64_t i = 0; i < 24; i++) {
    Generator g(0);
    data::apply_transform(w.config.eval_transform(), ds.image(i), g, host.data() + i * 3 * S * S);
  }
  ck.net->eval();
  Tensor logits;
  {
    autograd::NoGradGuard no_grad;
    logits = (*ck.net)(Tensor::from_vector(host, {24, 3, S, S}));  // (24, 2)
  }
  const std::vector<float> z = logits.to_vector();
  for (int64_t i = 0; i < 24; i++) {
    const double z0 = z[size_t(2 * i)], z1 = z[size_t(2 * i + 1)];
    const double p1 = 1 / (1 + std::exp(z0 - z1));  // softmax of two logits
    CHECK(std::fabs(r.probability(i, 1) - p1) < 1e-5);
  }

  // The batch size changes nothing but rounding (1e-5 absolute; predictions equal unless the
  // two classes are within that of each other).
  const EvalResult one = cli::evaluate(*ck.net, ds, w.config.eval_transform(), 24, Device::CPU, 1);
  for (int64_t i = 0; i < 24; i++) {
    CHECK(std::fabs(one.probability(i, 0) - r.probability(i, 0)) < 1e-5);
    if (argmax(r, i).second > 1e-4) CHECK(one.predictions[size_t(i)] == r.predictions[size_t(i)]);
  }
  CHECK_FALSE(ck.net->is_training());  // put back in eval mode, as it was
}

TEST_CASE("evaluate: errors") {
  const World& w = world();
  const data::Dataset ds = w.dataset();
  cli::Checkpoint ck = cli::load_checkpoint(w.checkpoint);
  test::check_error([&] { cli::evaluate(*ck.net, ds.subset({}), w.config.eval_transform(), 4, Device::CPU); },
                    {"evaluate", "no images"});
  test::check_error([&] { cli::evaluate(*ck.net, ds, w.config.eval_transform(), 0, Device::CPU); },
                    {"evaluate", "batch size 0"});
  // A 2-class network on the 4-class subtype dataset.
  test::check_error([&] {
    cli::evaluate(*ck.net, w.dataset(data::Task::subtype), w.config.eval_transform(), 8, Device::CPU);
  }, {"evaluate", "logits [8, 2]", "4 classes"});
  // The network on the CPU, the evaluation asked on the GPU.
  test::check_error([&] { cli::evaluate(*ck.net, ds, w.config.eval_transform(), 8, Device::CUDA); },
                    {"evaluate", "network is on cpu", "cuda"});
}

TEST_CASE("leuko eval: each part of the split.json beside the checkpoint") {
  const World& w = world();
  const EvalReport all = cli::run_eval(options("all"));
  CHECK(all.result.confusion.total() == 24);
  CHECK(all.split_file.empty());
  CHECK(all.device == Device::CPU);
  for (const std::string part : {"test", "val", "train"}) {
    CAPTURE(part);
    const EvalReport r = cli::run_eval(options(part));
    const std::vector<std::string>& files = part == "test" ? w.split.test : part == "val" ? w.split.val : w.split.train;
    CHECK(r.split_file == w.run + "/split.json");
    CHECK(r.files == files);  // the split's files, in its order
    CHECK(r.result.confusion.total() == int64_t(files.size()));
    CHECK(r.result.size() == int64_t(files.size()));
    CHECK(r.state.epoch == 3);
    CHECK(r.config.model == "resnet18");
    // The same images in the whole-folder evaluation: the same probabilities (1e-5: other batches).
    for (size_t k = 0; k < r.files.size(); k++) {
      const auto at = std::find(all.files.begin(), all.files.end(), r.files[k]);
      REQUIRE(at != all.files.end());
      const int64_t j = int64_t(at - all.files.begin());
      CHECK(std::fabs(r.result.probability(int64_t(k), 1) - all.result.probability(j, 1)) < 1e-5);
    }
  }
  CHECK(w.split.test.size() == 4);  // {4, 1, 1} of each folder of 6: 4 test, 4 val, 16 train

  const EvalReport r = cli::run_eval(options("test"));
  const nlohmann::json j = r.to_json();
  CHECK(j["total"] == 4);
  CHECK(j["images"] == 4);
  CHECK(j["split"] == "test");
  CHECK(j["task"] == "binary");
  CHECK(j["epoch"] == 3);
  CHECK(j["device"] == "cpu");
  CHECK(j["binary"]["positive"] == "malignant");
  CHECK(j["accuracy"].get<double>() == r.result.confusion.accuracy());
  CHECK(j["loss"].get<double>() == r.result.loss);
  const std::string text = r.text();
  for (const char* part : {"accuracy", "precision", "recall", "f1", "specificity", "positive class: malignant",
                           "macro avg", "weighted avg", "confusion matrix", "benign", "4 images", "loss"}) {
    CAPTURE(part);
    CHECK(text.find(part) != std::string::npos);
  }
}

TEST_CASE("leuko predict: each image's class is the argmax eval saw") {
  const World& w = world();
  const EvalReport r = cli::run_eval(options("all"));
  cli::Checkpoint ck = cli::load_checkpoint(w.checkpoint);
  std::vector<std::string> paths;
  for (const std::string& f : r.files) paths.push_back(w.data + "/" + f);
  const std::vector<cli::Prediction> preds = cli::predict_images(*ck.net, ck.config, paths, Device::CPU, false, 7);
  REQUIRE(preds.size() == paths.size());
  for (size_t i = 0; i < preds.size(); i++) {
    CAPTURE(paths[i]);
    const cli::Prediction& p = preds[i];
    CHECK(p.path == paths[i]);
    CHECK(p.error.empty());
    REQUIRE(p.probabilities.size() == 2);
    // Batches of 7 against 64: float32 rounding only (1e-5 absolute).
    CHECK(std::fabs(p.probabilities[1] - r.result.probability(int64_t(i), 1)) < 1e-5);
    if (argmax(r.result, int64_t(i)).second > 1e-4) CHECK(p.label == r.result.predictions[i]);
    CHECK(p.probability == p.probabilities[size_t(p.label)]);
    CHECK(p.probability >= 0.5);
    CHECK(p.class_name == ck.config.class_names[size_t(p.label)]);
  }
}

TEST_CASE("leuko predict: a bad image stops with its name, or is reported with skip_bad") {
  const World& w = world();
  test::TempDir tmp;
  const std::string bad = tmp / "bad.jpg", missing = tmp / "missing.png";
  test::write_bytes(bad, {0xFF, 0xD8, 0xFF, 0x00, 0x01, 0x02});  // a JPEG that stops at once
  const std::string good = w.data + "/" + w.split.test[0];
  cli::Checkpoint ck = cli::load_checkpoint(w.checkpoint);
  test::check_error([&] { cli::predict_images(*ck.net, ck.config, {good, bad}, Device::CPU); }, {bad, "--skip-bad"});
  test::check_error([&] { cli::predict_images(*ck.net, ck.config, {missing}, Device::CPU); }, {missing});
  const std::vector<cli::Prediction> preds =
      cli::predict_images(*ck.net, ck.config, {bad, good, missing, good}, Device::CPU, true, 2);
  REQUIRE(preds.size() == 4);
  CHECK(preds[0].error.find(bad) != std::string::npos);
  CHECK(preds[0].label == -1);
  CHECK(preds[2].error.find(missing) != std::string::npos);
  CHECK(preds[1].error.empty());
  CHECK(preds[1].label >= 0);
  // The same image in two batches (one with a bad image beside it): the same answer.
  CHECK(preds[3].label == preds[1].label);
  CHECK(std::fabs(preds[3].probability - preds[1].probability) < 1e-5);  // float32 rounding
}

TEST_CASE("leuko eval: one-line errors") {
  const World& w = world();
  test::TempDir tmp;
  // No split.json beside the checkpoint, none given.
  fs::create_directories(tmp / "lonely");
  fs::copy_file(w.checkpoint, tmp / "lonely/best.safetensors");
  EvalOptions o = options("test");
  o.checkpoint = tmp / "lonely/best.safetensors";
  test::check_error([&] { cli::run_eval(o); }, {"no split file beside the checkpoint", tmp / "lonely/split.json",
                                                "--split-file", "--split all"});
  // Given: fine. Given but missing: named.
  o.split_file = w.run + "/split.json";
  CHECK(cli::run_eval(o).result.size() == 4);
  o.split_file = tmp / "nope.json";
  test::check_error([&] { cli::run_eval(o); }, {"--split-file", "nope.json", "no such file"});
  // --split all needs no split file.
  o.split_file.clear();
  o.split = "all";
  CHECK(cli::run_eval(o).result.size() == 24);

  // A missing data folder.
  o = options("test");
  o.data = tmp / "no-data";
  test::check_error([&] { cli::run_eval(o); }, {"--data", "no-data", "no such folder"});
  // A missing checkpoint.
  o = options("test");
  o.checkpoint = tmp / "none.safetensors";
  test::check_error([&] { cli::run_eval(o); }, {"none.safetensors"});
  // Bad option values.
  o = options("holdout");
  test::check_error([&] { cli::run_eval(o); }, {"--split", "holdout"});
  o = options("test");
  o.device = "tpu";
  test::check_error([&] { cli::run_eval(o); }, {"--device", "tpu"});

  // A checkpoint of another class count: a subtype network of 3 classes on 4 folders.
  cli::RunConfig c3 = w.config;
  c3.task = "subtype";
  c3.classes = 3;
  c3.class_names = {"Benign", "Early", "Pre"};
  World::save(w.run + "/three.safetensors", c3);
  o = options("test");
  o.checkpoint = w.run + "/three.safetensors";
  test::check_error([&] { cli::run_eval(o); }, {"three.safetensors", "3 classes", "subtype", "gives 4",
                                                "Benign, Early, Pre, Pro"});
  // The same count under other names.
  cli::RunConfig c4 = c3;
  c4.classes = 4;
  c4.class_names = {"a", "b", "c", "d"};
  World::save(w.run + "/renamed.safetensors", c4);
  o.checkpoint = w.run + "/renamed.safetensors";
  test::check_error([&] { cli::run_eval(o); }, {"renamed.safetensors", "a, b, c, d", "Benign, Early, Pre, Pro"});
  // A binary checkpoint on a folder without the benign class.
  fs::create_directories(tmp / "no-benign");
  fs::copy(w.data + "/Early", tmp / "no-benign/Early");
  fs::copy(w.data + "/Pro", tmp / "no-benign/Pro");
  o = options("all");
  o.data = tmp / "no-benign";
  test::check_error([&] { cli::run_eval(o); }, {"binary checkpoint", "no-benign", "Benign"});
}

TEST_CASE("leuko eval and leuko predict: the command line") {
  const World& w = world();
  CLI::App app{"leuko"};
  cli::register_eval(app);
  cli::register_predict(app);
  // CLI11 takes the arguments of parse(vector) last first.
  auto run = [&](std::vector<std::string> args) {
    std::reverse(args.begin(), args.end());
    app.parse(args);
  };
  // Output goes to stdout; what is checked here is that the options parse and the commands run.
  CHECK_NOTHROW(run({"eval", "--checkpoint", w.checkpoint, "--data", w.data, "--split", "val", "--device", "cpu",
                     "--json"}));
  CHECK_NOTHROW(run({"predict", "--checkpoint", w.checkpoint, w.data + "/" + w.split.test[0], "--device", "cpu"}));
  const std::string missing = w.dir / "no-such-image.png";
  test::check_error([&] { run({"predict", "--checkpoint", w.checkpoint, missing}); }, {"no-such-image.png"});
}
