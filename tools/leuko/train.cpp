// `leuko train`: trains a network on an image folder (see tools/leuko/trainer.h). Every setting
// not given comes from the network's default recipe (tools/leuko/recipes.cpp).
#include <cstdio>

#include "optim/schedule.h"
#include "tools/leuko/commands.h"
#include "tools/leuko/recipes.h"
#include "tools/leuko/trainer.h"

namespace leuko::cli {

namespace {
struct Flags {
  std::string model, data, task, optimizer, schedule, augment, precision, best, device, normalize, benign;
  std::string out, resume, init;
  int64_t epochs = 0, batch = 0, input = 0, warmup = 0, workers = 0;
  uint64_t seed = 0;
  int64_t split_seed = 0;
  double lr = 0, momentum = 0, weight_decay = 0, label_smoothing = 0, crop_scale = 0;
  bool class_weights = false, no_class_weights = false, force = false, skip_bad = false, quiet = false;
  bool deterministic = false, graph = false;
};
}  // namespace

void register_train(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a network on an image folder (one subfolder per class)");
  static Flags f;
  cmd->add_option("--model", f.model, "alexnet, alexnet_lrn, vgg16, vgg16_bn, resnet18, resnet50, googlenet, "
                                      "inception_v3");
  cmd->add_option("--data", f.data, "Image folder: one subfolder per class (Benign, Early, Pre, Pro)");
  cmd->add_option("--task", f.task, "binary (Benign against the rest) or subtype (one class per folder)")
      ->check(CLI::IsMember({"binary", "subtype"}));
  cmd->add_option("--benign", f.benign, "The binary task's negative folder (default Benign)");
  cmd->add_option("--epochs", f.epochs, "Epochs (on --resume: a new total, to train longer)");
  cmd->add_option("--batch", f.batch, "Images per step");
  cmd->add_option("--optimizer", f.optimizer, "sgd, adam or adamw")->check(CLI::IsMember({"sgd", "adam", "adamw"}));
  cmd->add_option("--lr", f.lr, "Peak learning rate");
  cmd->add_option("--momentum", f.momentum, "SGD momentum");
  cmd->add_option("--weight-decay", f.weight_decay, "Weight decay (decoupled for adamw)");
  cmd->add_option("--schedule", f.schedule, "constant, step:SIZE[:GAMMA], multistep:M1,M2[:GAMMA], cosine[:MIN]");
  cmd->add_option("--warmup", f.warmup, "Epochs of linear learning-rate warm-up");
  cmd->add_option("--label-smoothing", f.label_smoothing, "Label smoothing in [0, 1)");
  cmd->add_flag("--class-weights", f.class_weights, "Weight the loss by inverse class frequency");
  cmd->add_flag("--no-class-weights", f.no_class_weights, "Do not weight the loss by class");
  cmd->add_option("--augment", f.augment, "none, flips (flips and quarter turns) or crop (and random resized crops)")
      ->check(CLI::IsMember({"none", "flips", "crop"}));
  cmd->add_option("--crop-scale", f.crop_scale, "Smallest area fraction of a random resized crop (augment crop)");
  cmd->add_option("--input", f.input, "Image side fed to the network (224; 299 for inception_v3)");
  cmd->add_option("--normalize", f.normalize, "imagenet (default) or data (the training split's mean and std)")
      ->check(CLI::IsMember({"imagenet", "data"}));
  cmd->add_option("--precision", f.precision, "fp32, tf32 or bf16")->check(CLI::IsMember({"fp32", "tf32", "bf16"}));
  cmd->add_option("--best", f.best, "Validation metric that picks best.safetensors: f1, macro_f1, accuracy, loss (ties: the lower validation loss)")
      ->check(CLI::IsMember({"f1", "macro_f1", "accuracy", "loss"}));
  cmd->add_option("--seed", f.seed,
                  "Seed of the initialisation, the shuffles and the augmentations, and of the split unless --split-seed");
  cmd->add_option("--split-seed", f.split_seed,
                  "Seed of the train/validation/test split (default: --seed); e.g. --split-seed 42 --seed 1 keeps the "
                  "study's split and draws new weights");
  cmd->add_option("--device", f.device, "auto, cpu or cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  cmd->add_option("--workers", f.workers, "Data loader threads (0: automatic)");
  cmd->add_flag("--deterministic", f.deterministic,
                "GPU: the same losses and weights, bit for bit, on every run with the same seed (cuDNN's "
                "algorithms chosen by heuristics instead of timing; the CPU always is)");
  cmd->add_flag("--graph", f.graph,
                "GPU: record the training step once as a CUDA graph and replay it (the same numbers, "
                "less host work per step)");
  cmd->add_option("--out", f.out, "Run folder (default runs/<model>-<date>-<time>)");
  cmd->add_option("--resume", f.resume, "Continue the run in this folder where it stopped");
  cmd->add_option("--init", f.init, "Start from these weights (e.g. from tools/torch_export.py)");
  cmd->add_flag("--force", f.force, "Start over in a run folder that already holds a run");
  cmd->add_flag("--skip-bad", f.skip_bad, "Skip images that cannot be decoded (they are counted and named)");
  cmd->add_flag("--quiet", f.quiet, "No progress output");
  cmd->callback([cmd] {
    auto given = [&](const char* name) { return cmd->get_option(name)->count() > 0; };
    if (f.resume.empty()) {
      if (f.model.empty()) throw Error("--model: which network to train? (e.g. --model resnet50)");
      if (f.data.empty()) throw Error("--data: which image folder? (e.g. --data ../shared/data/leukemia)");
    } else if (given("--model")) {
      throw Error("--resume: the run's own --model is used; leave --model out");
    }
    TrainOptions o;
    RunConfig& c = o.config;
    c = default_recipe(f.model.empty() ? "resnet18" : f.model);
    if (given("--data")) c.data = f.data;
    if (given("--task")) c.task = f.task;
    if (given("--benign")) c.benign = f.benign;
    if (given("--epochs")) c.epochs = f.epochs;
    if (given("--batch")) c.batch = f.batch;
    if (given("--optimizer")) c.optimizer = f.optimizer;
    if (given("--lr")) c.lr = f.lr;
    if (given("--momentum")) c.momentum = f.momentum;
    if (given("--weight-decay")) c.weight_decay = f.weight_decay;
    if (given("--schedule")) c.schedule = f.schedule;
    if (given("--warmup")) c.warmup_epochs = f.warmup;
    if (given("--label-smoothing")) c.label_smoothing = f.label_smoothing;
    if (f.class_weights) c.class_weights = true;
    if (f.no_class_weights) c.class_weights = false;
    if (given("--augment")) c.augment = f.augment;
    if (given("--crop-scale")) c.crop_scale_min = f.crop_scale;
    if (given("--input")) c.input = f.input;
    if (given("--normalize")) c.normalize = f.normalize;
    if (given("--precision")) c.precision = f.precision;
    if (given("--best")) c.best_metric = f.best;
    if (given("--seed")) c.seed = f.seed;
    if (given("--split-seed")) {
      if (f.split_seed < 0) throw Error("--split-seed: " + std::to_string(f.split_seed) + " is not a seed (0 or more)");
      c.split_seed = f.split_seed;
    }
    if (given("--device")) c.device = f.device;
    if (given("--workers")) c.workers = f.workers;
    if (f.deterministic) c.deterministic = true;  // on --resume too: a run can be made deterministic, never undone
    optim::Schedule::parse(c.schedule);  // a bad --schedule fails now, not after loading the data
    o.run_dir = f.out;
    o.resume = f.resume;
    o.init = f.init;
    o.force = f.force;
    o.skip_bad = f.skip_bad;
    o.quiet = f.quiet;
    o.graph = f.graph;
    o.extend = given("--epochs");
    if (!f.resume.empty() && !given("--data")) o.config.data.clear();  // keep the run's own folder
    TrainResult r = train(o);
    if (r.interrupted) throw CLI::RuntimeError(130);
  });
}

}  // namespace leuko::cli
