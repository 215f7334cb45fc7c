#include "tools/leuko/trainer.h"

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "data/dataset.h"
#include "data/loader.h"
#include "data/split.h"
#include "data/transforms.h"
#include "layers/elementwise.h"
#include "layers/loss.h"
#include "optim/schedule.h"
#include "tensor/autograd.h"
#include "tensor/device.h"
#include "tensor/random.h"
#include "tensor/safetensors.h"
#include "tools/leuko/evaluate.h"
#include "tools/leuko/plot.h"
#include "tools/leuko/progress.h"

namespace leuko::cli {

namespace fs = std::filesystem;

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) {
  // A second Ctrl-C while the step finishes means "now": restore the default and let it kill.
  if (g_stop.exchange(true)) std::signal(SIGINT, SIG_DFL);
}

// Installs the handlers for the duration of a run, restoring the previous ones after.
struct SignalScope {
  void (*old_int)(int), (*old_term)(int);
  SignalScope() {
    g_stop = false;
    old_int = std::signal(SIGINT, on_signal);
    old_term = std::signal(SIGTERM, on_signal);
  }
  ~SignalScope() {
    std::signal(SIGINT, old_int);
    std::signal(SIGTERM, old_term);
  }
};

// The seed of step `step`'s randomness (dropout): a function of the run's seed and the step
// alone, so a resumed run draws exactly what an uninterrupted one would.
uint64_t step_seed(uint64_t seed, int64_t step) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ULL + uint64_t(step) + 0x632BE59BD9B4E019ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::string default_run_dir(const std::string& model) {
  std::time_t t = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", std::localtime(&t));
  return "runs/" + model + "-" + buf;
}

std::unique_ptr<optim::Optimizer> make_optimizer(const RunConfig& c, NamedTensors params) {
  if (c.optimizer == "sgd") {
    optim::SGDOptions o;
    o.lr = c.lr;
    o.momentum = c.momentum;
    o.weight_decay = c.weight_decay;
    return std::make_unique<optim::SGD>(std::move(params), o);
  }
  optim::AdamOptions o;
  o.lr = c.lr;
  o.weight_decay = c.weight_decay;
  if (c.optimizer == "adam") return std::make_unique<optim::Adam>(std::move(params), o, false);
  LEUKO_CHECK(c.optimizer == "adamw", "--optimizer: '", c.optimizer, "' is not one of sgd, adam, adamw");
  return std::make_unique<optim::Adam>(std::move(params), o, true);
}

// The validation metric that picks the best epoch: larger is better (the loss is negated).
double pick_metric(const RunConfig& c, const EvalResult& r) {
  if (c.best_metric == "loss") return -r.loss;
  if (c.best_metric == "accuracy") return r.confusion.accuracy();
  if (c.best_metric == "macro_f1") return r.confusion.macro_f1();
  // f1: the malignant class's F1 in the binary task, the macro average over subtypes.
  return c.classes == 2 ? r.confusion.f1(1) : r.confusion.macro_f1();
}

// Per-class loss weights, inverse to each class's share of the training split (mean 1).
Tensor class_weights(const data::Dataset& train, Device device) {
  std::vector<int64_t> counts = train.class_counts();
  std::vector<float> w(counts.size());
  const double n = double(train.size()), k = double(counts.size());
  for (size_t i = 0; i < counts.size(); i++) w[i] = counts[i] > 0 ? float(n / (k * double(counts[i]))) : 0.f;
  return Tensor::from_vector(w, {int64_t(w.size())}).to(device);
}

// Correctly classified rows of a batch: argmax of the logits against the labels (on the host:
// (B, C) values, read once per step with the loss).
int64_t count_correct(const Tensor& logits, const Tensor& labels) {
  std::vector<float> l = logits.to_vector();
  std::vector<double> y = labels.to_double_vector();
  const int64_t B = logits.size(0), C = logits.size(1);
  int64_t correct = 0;
  for (int64_t b = 0; b < B; b++) {
    int64_t best = 0;
    for (int64_t c = 1; c < C; c++)
      if (l[size_t(b * C + c)] > l[size_t(b * C + best)]) best = c;
    correct += best == int64_t(y[size_t(b)]);
  }
  return correct;
}

void write_text(const std::string& path, const std::string& text) { write_file_atomic(path, text); }

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

}  // namespace

void request_stop() { g_stop = true; }

TrainResult train(const TrainOptions& options) {
  RunConfig cfg = options.config;
  TrainState st;
  std::string dir;
  std::shared_ptr<Net> net;
  Checkpoint resumed;
  const bool resume = !options.resume.empty();

  // ---- The run folder --------------------------------------------------------------------
  if (resume) {
    dir = options.resume;
    const std::string last = dir + "/last.safetensors";
    if (!fs::exists(last)) throw Error("--resume " + dir + ": no last.safetensors there to resume from");
    resumed = load_checkpoint(last);
    const int64_t epochs = cfg.epochs;
    cfg = resumed.config;
    if (options.extend) cfg.epochs = epochs;
    if (!options.config.data.empty()) cfg.data = options.config.data;  // the images may have moved
    st = resumed.state;
    net = resumed.net;
    if (st.epoch >= cfg.epochs && st.batch == 0) {
      throw Error("--resume " + dir + ": the run already completed its " + std::to_string(cfg.epochs) +
                  " epochs (give --epochs N with a larger N to train on)");
    }
  } else {
    dir = options.run_dir.empty() ? default_run_dir(cfg.model) : options.run_dir;
    if (fs::exists(dir + "/last.safetensors") && !options.force) {
      throw Error("--out " + dir + ": holds a run already (resume it with --resume " + dir +
                  ", or pass --force to start over)");
    }
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw Error("--out " + dir + ": cannot create the folder (" + ec.message() + ")");
  }
  if (cfg.data.empty()) throw Error("--data: no image folder given");

  const Device device = parse_device(cfg.device);
  set_precision(parse_precision(cfg.precision));
  LEUKO_CHECK(cfg.epochs >= 1, "--epochs: ", cfg.epochs, " is not a number of epochs");
  LEUKO_CHECK(cfg.batch >= 2, "--batch: ", cfg.batch, " is too small (batch norm needs at least 2 images)");
  LEUKO_CHECK(cfg.input >= 32, "--input: ", cfg.input, " pixels is too small");
  LEUKO_CHECK(cfg.label_smoothing >= 0 && cfg.label_smoothing < 1, "--label-smoothing must lie in [0, 1)");
  LEUKO_CHECK(cfg.best_metric == "f1" || cfg.best_metric == "accuracy" || cfg.best_metric == "loss" ||
                  cfg.best_metric == "macro_f1",
              "--best: '", cfg.best_metric, "' is not one of f1, macro_f1, accuracy, loss");
  LEUKO_CHECK(cfg.augment == "none" || cfg.augment == "flips" || cfg.augment == "crop", "--augment: '",
              cfg.augment, "' is not one of none, flips, crop");

  // ---- Data and split ------------------------------------------------------------------------
  const data::Task task = data::parse_task(cfg.task);
  data::DatasetOptions dopt;
  dopt.task = task;
  dopt.benign = cfg.benign;
  // Decode once at the size the network sees (a little larger when random crops need room).
  dopt.cache_size = int(cfg.augment == "crop" ? cfg.input * 8 / 7 : cfg.input);
  dopt.skip_bad = options.skip_bad;
  dopt.quiet = options.quiet;
  if (!options.quiet) std::fprintf(stderr, "loading %s ...\n", cfg.data.c_str());
  data::Dataset all = data::Dataset::load(cfg.data, dopt);
  const std::string split_path = dir + "/split.json";
  data::Split split = resume ? data::load_split(split_path)
                             : data::make_split(data::list_image_folder(cfg.data), task, cfg.seed, cfg.benign);
  if (!resume) data::save_split(split_path, split);
  data::SplitDatasets sets = data::apply_split(all, split);
  if (resume) {
    LEUKO_CHECK(all.num_classes() == cfg.classes, "--resume ", dir, ": the run has ", cfg.classes,
                " classes, the images in ", cfg.data, " have ", all.num_classes());
  }
  cfg.class_names = all.class_names();
  cfg.classes = all.num_classes();
  if (!resume && cfg.normalize == "data") {
    const data::ChannelStats stats = data::channel_stats(sets.train);
    cfg.mean = stats.mean;
    cfg.std = stats.std;
  }
  LEUKO_CHECK(cfg.normalize == "imagenet" || cfg.normalize == "data", "--normalize: '", cfg.normalize,
              "' is not one of imagenet, data");
  write_text(dir + "/config.json", cfg.to_json().dump(2) + "\n");

  // ---- Model, optimizer, loss ----------------------------------------------------------------
  if (!net) {
    manual_seed(cfg.seed);
    NetOptions no;
    no.num_classes = cfg.classes;
    net = make_net(cfg.model, no);
    if (!options.init.empty()) net->load(options.init);
  }
  net->to(device);
  std::unique_ptr<optim::Optimizer> opt = make_optimizer(cfg, net->named_parameters());
  if (resume) opt->load_state(resumed.optimizer_state, resumed.metadata);
  CrossEntropyOptions ce;
  ce.label_smoothing = cfg.label_smoothing;
  if (cfg.class_weights) ce.weight = class_weights(sets.train, device);
  const std::vector<double> aux_w = net->aux_weights();

  data::LoaderOptions lo;
  lo.batch_size = int(cfg.batch);
  lo.drop_last = sets.train.size() > cfg.batch;  // a last batch of 1 would break batch norm
  lo.seed = cfg.seed;
  lo.workers = int(cfg.workers);
  lo.device = device;
  lo.transform = cfg.train_transform();
  data::Loader loader(sets.train, lo);
  const int64_t steps_per_epoch = loader.batches_per_epoch();
  LEUKO_CHECK(sets.val.size() > 0, "--data ", cfg.data, ": the validation split is empty (", all.size(),
              " images are too few to split 80/10/10)");
  LEUKO_CHECK(steps_per_epoch > 0, "--data ", cfg.data, ": the training split has ", sets.train.size(),
              " images, fewer than one batch of ", cfg.batch);
  optim::Schedule sched = optim::Schedule::parse(cfg.schedule);
  sched.warmup_steps = cfg.warmup_epochs * steps_per_epoch;

  std::vector<EpochRow> rows;
  if (resume && fs::exists(dir + "/log.csv")) {
    for (const EpochRow& r : read_log_csv(dir + "/log.csv")) {
      if (r.epoch <= st.epoch) rows.push_back(r);
    }
  }
  if (!options.quiet) {
    std::fprintf(stderr, "%s %s: %lld train, %lld val, %lld test images (%s), %s on %s, run folder %s\n",
                 resume ? "resuming" : "training", cfg.model.c_str(), static_cast<long long>(sets.train.size()),
                 static_cast<long long>(sets.val.size()), static_cast<long long>(sets.test.size()), cfg.task.c_str(),
                 cfg.precision.c_str(), device == Device::CUDA ? cuda_status().c_str() : "the CPU", dir.c_str());
  }

  // ---- Epochs --------------------------------------------------------------------------------
  SignalScope signals;
  TrainResult result;
  result.run_dir = dir;
  auto save_last = [&] { save_checkpoint(dir + "/last.safetensors", *net, opt.get(), cfg, st); };
  for (int64_t epoch = st.epoch; epoch < cfg.epochs; epoch++) {
    net->train();
    loader.start_epoch(epoch);
    Progress bar(steps_per_epoch, "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(cfg.epochs),
                 options.quiet);
    data::Batch b;
    for (int64_t k = 0; k < st.batch && loader.next(b); k++) {
    }  // batches done before the run was stopped
    auto t0 = std::chrono::steady_clock::now();
    int64_t images_timed = 0;
    while (loader.next(b)) {
      manual_seed(step_seed(cfg.seed, st.step));
      opt->set_lr(sched.lr_at(cfg.lr, st.step, steps_per_epoch, cfg.epochs));
      std::vector<Tensor> outs = net->forward_train(b.images);
      Tensor loss = cross_entropy(outs[0], b.labels, ce);
      for (size_t i = 1; i < outs.size(); i++) loss = add(loss, mul(cross_entropy(outs[i], b.labels, ce), aux_w[i - 1]));
      const double value = loss.item();
      if (!std::isfinite(value)) {
        const std::string kept = fs::exists(dir + "/last.safetensors")
                                     ? "the last good checkpoint is " + dir + "/last.safetensors"
                                     : "no checkpoint had been written yet";
        throw Error("the training loss became " + std::string(std::isnan(value) ? "NaN" : "infinite") +
                    " at step " + std::to_string(st.step + 1) + " (epoch " + std::to_string(epoch + 1) + ", batch " +
                    std::to_string(st.batch + 1) + "): stopped; " + kept + " (a lower --lr or a --warmup may help)");
      }
      loss.backward();
      opt->step();
      opt->zero_grad();
      st.step++;
      st.batch++;
      st.loss_sum += value * double(b.size());
      st.correct += count_correct(outs[0].detach(), b.labels);
      st.seen += b.size();
      images_timed += b.size();
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      bar.update(st.batch, "loss " + fmt("%.4f", st.loss_sum / double(st.seen)) + "  " +
                               fmt("%.0f", double(images_timed) / std::max(secs, 1e-9)) + " img/s");
      if (g_stop || (options.stop_after > 0 && st.step >= options.stop_after)) {
        save_last();
        bar.finish("stopped");
        if (!options.quiet) {
          std::fprintf(stderr, "stopped after step %lld (epoch %lld, batch %lld); continue with: leuko train --resume %s\n",
                       static_cast<long long>(st.step), static_cast<long long>(epoch + 1),
                       static_cast<long long>(st.batch), dir.c_str());
        }
        result.state = st;
        result.interrupted = true;
        return result;
      }
    }
    const double train_seconds = bar.seconds();

    // Validation, log, plot, checkpoints.
    EvalResult v = evaluate(*net, sets.val, cfg.eval_transform(), int(cfg.batch), device, int(cfg.workers));
    EpochRow row;
    row.epoch = epoch + 1;
    row.train_loss = st.loss_sum / double(std::max<int64_t>(1, st.seen));
    row.train_acc = double(st.correct) / double(std::max<int64_t>(1, st.seen));
    row.val_loss = v.loss;
    row.val_acc = v.confusion.accuracy();
    row.val_precision = cfg.classes == 2 ? v.confusion.precision(1) : v.confusion.macro_precision();
    row.val_recall = cfg.classes == 2 ? v.confusion.recall(1) : v.confusion.macro_recall();
    row.val_f1 = cfg.classes == 2 ? v.confusion.f1(1) : v.confusion.macro_f1();
    row.lr = opt->lr();
    row.seconds = bar.seconds();
    rows.push_back(row);
    const double metric = pick_metric(cfg, v);
    const bool improved = st.best_epoch == 0 || metric > st.best;
    st.epoch = epoch + 1;
    st.batch = 0;
    st.loss_sum = 0;
    st.correct = st.seen = 0;
    if (improved) {
      st.best = metric;
      st.best_epoch = epoch + 1;
      save_checkpoint(dir + "/best.safetensors", *net, nullptr, cfg, st);
    }
    save_last();
    write_log_csv(dir + "/log.csv", rows);
    write_curves_png(dir + "/curves.png", rows, cfg.model + " (" + cfg.task + ")");
    bar.finish("train loss " + fmt("%.4f", row.train_loss) + " acc " + fmt("%.4f", row.train_acc) + " | val loss " +
               fmt("%.4f", row.val_loss) + " acc " + fmt("%.4f", row.val_acc) + " F1 " + fmt("%.4f", row.val_f1) +
               (improved ? "  * best" : "") + "  [" + fmt("%.1f", train_seconds) + " s]");
    if (g_stop) {  // Ctrl-C during validation: the epoch is complete and saved
      result.state = st;
      result.interrupted = true;
      return result;
    }
  }
  result.state = st;

  // ---- The test split, with the best checkpoint ------------------------------------------------
  if (options.test_at_end && sets.test.size() > 0 && fs::exists(dir + "/best.safetensors")) {
    Checkpoint best = load_checkpoint(dir + "/best.safetensors");
    best.net->to(device);
    EvalResult t = evaluate(*best.net, sets.test, cfg.eval_transform(), int(cfg.batch), device, int(cfg.workers));
    nlohmann::json j = t.confusion.to_json(cfg.class_names, cfg.classes == 2 ? 1 : -1);
    j["checkpoint"] = dir + "/best.safetensors";
    j["epoch"] = st.best_epoch;
    j["loss"] = t.loss;
    j["split"] = "test";
    write_text(dir + "/test.json", j.dump(2) + "\n");
    result.test_metric = pick_metric(cfg, t);
    result.summary = "test split, best checkpoint (epoch " + std::to_string(st.best_epoch) + " of " +
                     std::to_string(cfg.epochs) + "):\n" + t.confusion.report(cfg.class_names, cfg.classes == 2 ? 1 : -1);
    if (!options.quiet) std::printf("%s", result.summary.c_str());
  }
  if (!options.quiet) {
    std::printf("\nrun folder %s: best.safetensors (epoch %lld), last.safetensors, log.csv, curves.png\n"
                "evaluate: leuko eval --checkpoint %s/best.safetensors --data %s\n",
                dir.c_str(), static_cast<long long>(st.best_epoch), dir.c_str(), cfg.data.c_str());
  }
  return result;
}

}  // namespace leuko::cli
