#include "tools/leuko/trainer.h"

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>

#include "data/dataset.h"
#include "data/loader.h"
#include "data/split.h"
#include "data/transforms.h"
#include "layers/elementwise.h"
#include "layers/loss.h"
#include "optim/schedule.h"
#include "tensor/allocator.h"
#include "tensor/autograd.h"
#include "tensor/device.h"
#include "tensor/random.h"
#include "tensor/safetensors.h"
#include "tools/leuko/checkpoint_writer.h"
#include "tools/leuko/evaluate.h"
#include "tools/leuko/graph_step.h"
#include "tools/leuko/plot.h"
#include "tools/leuko/progress.h"
#include "tools/leuko/step_readback.h"

namespace leuko::cli {

namespace fs = std::filesystem;

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int sig) {
  // A second Ctrl-C (or SIGTERM) while the step finishes means "now": restore the default and
  // raise the signal again, so that this one kills (pending until the handler returns; both
  // calls are async-signal-safe). Restoring alone would leave the kill to a third signal.
  if (g_stop.exchange(true)) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
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

void write_text(const std::string& path, const std::string& text) { write_file_atomic(path, text); }

// Removes the temporary files ("<name>.tmp") that a run killed while writing left in `dir`,
// naming each: the file a temporary was about to replace is intact (write_file_atomic renames
// only a complete file), so nothing is lost, and the next write would overwrite it anyway.
void remove_stale_temporaries(const std::string& dir, bool quiet) {
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() != ".tmp" || !e.is_regular_file(ec)) continue;
    if (fs::remove(e.path(), ec) && !quiet) {
      std::fprintf(stderr, "removed %s, left by a run stopped while writing it (the file it was replacing is intact)\n",
                   e.path().string().c_str());
    }
  }
}

// The process-wide determinism setting for the length of a run, restored after.
struct DeterministicScope {
  bool previous;
  explicit DeterministicScope(bool on) : previous(deterministic()) { set_deterministic(on); }
  ~DeterministicScope() { set_deterministic(previous); }
  DeterministicScope(const DeterministicScope&) = delete;
  DeterministicScope& operator=(const DeterministicScope&) = delete;
};


// The weights, buffers and optimizer state copied to the host: what the batch-size search
// restores before and after each try, so that every try is the same first two steps (optimizer
// buffers created from nothing included) and the model ends as it began.
struct Snapshot {
  NamedTensors weights, optimizer;
  std::map<std::string, std::string> optimizer_meta;
};

Snapshot take_snapshot(const Net& net, const optim::Optimizer& opt) {
  autograd::NoGradGuard no_grad;
  // A CPU tensor's to(Device::CPU) would share its storage: clone it.
  auto host_copy = [](const Tensor& t) { return t.is_cuda() ? t.to(Device::CPU) : t.clone(); };
  Snapshot s;
  for (const auto& [name, t] : net.state_dict()) s.weights.emplace_back(name, host_copy(t.detach()));
  for (const auto& [name, t] : opt.state()) s.optimizer.emplace_back(name, host_copy(t.detach()));
  s.optimizer_meta = opt.state_metadata();
  return s;
}

void restore_snapshot(Net& net, optim::Optimizer& opt, const Snapshot& s) {
  net.load_state_dict(s.weights, true);
  opt.load_state(s.optimizer, s.optimizer_meta);
}

// "1.2 GiB" from a GiB up, "37.5 MiB" below.
std::string bytes_str(size_t bytes) {
  char buf[32];
  const double gib = double(bytes) / double(1ull << 30), mib = double(bytes) / double(1ull << 20);
  if (gib >= 1) std::snprintf(buf, sizeof buf, "%.1f GiB", gib);
  else std::snprintf(buf, sizeof buf, "%.1f MiB", mib);
  return buf;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

}  // namespace

void request_stop() { g_stop = true; }

int64_t largest_fitting_batch(int64_t failed, int64_t smallest, const std::function<bool(int64_t)>& fits) {
  // Halving: the first size that fits, and the smallest that failed above it.
  int64_t fit = 0, fail = failed;
  for (int64_t size = failed / 2; fit == 0; size /= 2) {
    size = std::max(size, smallest);
    if (size >= fail) break;  // `smallest` itself failed (or is not below `failed`)
    if (fits(size)) fit = size;
    else fail = size;
  }
  if (fit == 0) return 0;
  // Binary search: `fit` fits, `fail` does not.
  while (fail - fit > 1) {
    const int64_t mid = fit + (fail - fit) / 2;
    if (fits(mid)) fit = mid;
    else fail = mid;
  }
  return fit;
}

std::string out_of_memory_message(Device device, int64_t batch, size_t asked, size_t in_use, int64_t fits,
                                  bool resumed) {
  const std::string where = device == Device::CUDA ? "this GPU" : "the CPU (within its memory limit)";
  std::string m = std::string("out of ") + (device == Device::CUDA ? "GPU" : "CPU") + " memory at --batch " +
                  std::to_string(batch) + " (asked for " + bytes_str(asked) + " with " + bytes_str(in_use) +
                  " in use); ";
  if (fits == 0) return m + "no smaller batch fits on " + where + ": try a smaller --input or another network";
  const std::string b = "--batch " + std::to_string(fits);
  return m + b + " fits on " + where + ": " +
         (resumed ? "a resumed run keeps its batch size, so start a new run with " + b : "run again with " + b);
}

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
    if (!fs::exists(last)) {
      throw Error("--resume " + dir + ": no last.safetensors there to resume from" +
                  (fs::exists(dir + "/split.json") || fs::exists(dir + "/config.json")
                       ? " (the run stopped before its first epoch ended: start it again with the same command)"
                       : ""));
    }
    remove_stale_temporaries(dir, options.quiet);
    resumed = load_checkpoint(last);
    const int64_t epochs = cfg.epochs;
    cfg = resumed.config;
    if (options.extend) cfg.epochs = epochs;
    if (!options.config.data.empty()) cfg.data = options.config.data;  // the images may have moved
    if (options.config.deterministic) cfg.deterministic = true;          // may be asked for on resume
    st = resumed.state;
    net = resumed.net;
    // A run killed after its last checkpoint but before its test (test.json) resumes to the
    // test alone: the epoch loop below has nothing left to do.
    const bool tested = fs::exists(dir + "/test.json") || !options.test_at_end;
    if (st.epoch >= cfg.epochs && st.batch == 0 && tested) {
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
    remove_stale_temporaries(dir, options.quiet);  // a run killed before its first checkpoint
  }
  if (cfg.data.empty()) throw Error("--data: no image folder given");

  const Device device = parse_device(cfg.device);
  // Restored after the run: a bf16 run must not leave the next one in this process (a test's)
  // with bf16 activations.
  PrecisionScope precision_scope(parse_precision(cfg.precision));
  DeterministicScope deterministic_scope(cfg.deterministic);
  LEUKO_CHECK(!options.graph || device == Device::CUDA, "--graph: CUDA graphs need the GPU; this run is on the CPU");
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
                             : data::make_split(data::list_image_folder(cfg.data), task, cfg.seed_of_split(), cfg.benign);
  if (!resume) data::save_split(split_path, split);
  data::SplitDatasets sets = data::apply_split(all, split);
  if (resume) {
    LEUKO_CHECK(all.num_classes() == cfg.classes, "--resume ", dir, ": the run has ", cfg.classes,
                " classes, the images in ", cfg.data, " have ", all.num_classes());
  }
  cfg.class_names = all.class_names();
  cfg.classes = all.num_classes();
  // A class can be left with no training image when --skip-bad skipped all of its files: the
  // network would learn the other classes alone, and say nothing.
  const std::vector<int64_t> train_counts = sets.train.class_counts();
  for (size_t k = 0; k < train_counts.size(); k++) {
    LEUKO_CHECK(train_counts[k] > 0, "--data ", cfg.data, ": the training split holds no image of class '",
                cfg.class_names[k], "'",
                all.skipped().empty() ? "" : " (" + std::to_string(all.skipped().size()) + " unreadable images skipped)",
                ": every class needs training images");
  }
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

  // ---- One step ------------------------------------------------------------------------------
  // The forward and the loss: the main logits first in *outs, then the auxiliary ones.
  auto forward_loss = [&](const Tensor& images, const Tensor& labels, std::vector<Tensor>* outs) {
    *outs = net->forward_train(images);
    Tensor loss = cross_entropy((*outs)[0], labels, ce);
    for (size_t i = 1; i < outs->size(); i++) {
      loss = add(loss, mul(cross_entropy((*outs)[i], labels, ce), aux_w[i - 1]));
    }
    return loss;
  };

  // Forward (with the auxiliary heads), loss, backward, update. With `readback`, nothing waits:
  // the loss and the main logits are copied to the host behind the step (read one step later,
  // tools/leuko/step_readback.h) and 0 is returned. Without, the loss is read before the backward
  // and returned, and with `stop_on_nan` a non-finite one returns there (the update would spread
  // it into every weight), with *logits set to the main logits when asked for.
  auto run_step = [&](const Tensor& images, const Tensor& labels, Tensor* logits, StepReadback* readback,
                      bool stop_on_nan) {
    std::vector<Tensor> outs;
    Tensor loss = forward_loss(images, labels, &outs);
    if (options.nan_at_step == st.step + 1) loss = mul(loss, std::numeric_limits<double>::quiet_NaN());
    const double value = readback != nullptr ? 0.0 : loss.item();
    if (stop_on_nan && !std::isfinite(value)) return value;
    loss.backward();
    opt->step();
    opt->zero_grad();
    if (readback != nullptr) readback->start(loss, outs[0]);
    if (logits != nullptr) *logits = outs[0].detach();
    return value;
  };

  // --graph: the later steps replay the step recorded as a CUDA graph. (Not with the NaN test
  // hook, which changes one step.)
  std::unique_ptr<GraphStep> graph;
  if (options.graph) {
    if (options.nan_at_step == 0) {
      graph = std::make_unique<GraphStep>([&](const Tensor& images, const Tensor& labels, Tensor* loss, Tensor* logits) {
        std::vector<Tensor> outs;
        Tensor l = forward_loss(images, labels, &outs);
        l.backward();
        opt->step();
        opt->zero_grad();
        *loss = l.detach();
        *logits = outs[0].detach();
      });
    }
  }

  // The first two steps of the process find out whether the batch fits: the first makes the
  // optimizer's state (momentum, Adam's moments), which the second holds while its activations
  // are live; the later steps need no more (the allocator's cache makes every step's blocks
  // recur). The state before them is kept on the host; if either runs out of memory, that state
  // is restored, pairs of real steps on random images find the largest batch that fits (each
  // try restores the state again and empties the cache), and the run stops with one line.
  // Nothing is written: the run folder stays as it was.
  constexpr int kCheckedSteps = 2;
  int checked = 0;
  Snapshot before;
  auto checked_step = [&](data::Batch& b, Tensor* logits) {
    if (checked++ == 0) {
      before = take_snapshot(*net, *opt);
      reset_peak_memory(device);
    }
    size_t asked = 0, in_use = 0;
    try {
      return run_step(b.images, b.labels, logits, nullptr, true);
    } catch (const OutOfMemory& e) {
      asked = e.bytes();
      in_use = memory_stats(device).peak;  // the steps' high point: live tensors when it failed
    }
    b = data::Batch();   // the real batch's memory, as the tries use their own
    opt->zero_grad();    // gradients of a backward that ran out part way
    restore_snapshot(*net, *opt, before);
    empty_cuda_cache();
    Generator gen(cfg.seed);
    auto fits = [&](int64_t k) {
      bool ok = true;
      try {
        Tensor x = randn({k, 3, cfg.input, cfg.input}, gen, DType::f32, device);  // (k, 3, S, S)
        std::vector<int64_t> y(static_cast<size_t>(k));
        for (int64_t i = 0; i < k; i++) y[size_t(i)] = i % cfg.classes;
        const Tensor labels = Tensor::from_vector(y, {k}, device);  // (k,) int64
        // On the CPU a run at batch k also holds the loader's batches built ahead of the one in
        // hand, up to `prefetch` of them, in the same memory (on a GPU they wait in pinned host
        // memory): held here too, or the size named could miss by a batch or two.
        std::vector<Tensor> ahead;  // each (k, 3, S, S) float32 and (k,) int64
        if (device == Device::CPU) {
          const int64_t n = sets.train.size();
          const int64_t batches = n > k ? n / k : 1;  // drop_last above one batch, as `lo`
          const int64_t held = std::min<int64_t>(loader.options().prefetch, batches - 1);
          for (int64_t i = 0; i < held; i++) {
            ahead.push_back(Tensor::empty({k, 3, cfg.input, cfg.input}, DType::f32, device));
            ahead.push_back(Tensor::empty({k}, DType::i64, device));
          }
        }
        for (int i = 0; i < kCheckedSteps; i++) run_step(x, labels, nullptr, nullptr, false);
      } catch (const OutOfMemory&) {
        ok = false;
      }
      opt->zero_grad();
      restore_snapshot(*net, *opt, before);
      empty_cuda_cache();
      return ok;
    };
    const int64_t fit = largest_fitting_batch(cfg.batch, 2, fits);  // batch norm needs 2 images
    throw Error(out_of_memory_message(device, cfg.batch, asked, in_use, fit, resume));
  };

  // ---- Epochs --------------------------------------------------------------------------------
  SignalScope signals;
  TrainResult result;
  result.run_dir = dir;
  // Checkpoints are copied to the host here and written by the writer's thread while training
  // goes on (tools/leuko/checkpoint_writer.h), in the order asked for: an epoch's log rows and
  // best.safetensors are on disk before its last.safetensors, so a run killed at any moment
  // resumes from a last.safetensors whose log rows and best are there. The epochs do not wait
  // for the writes: a last.safetensors still queued when the next one is asked for is dropped
  // (the newer one commits more), so a run whose writes are slower than its epochs writes every
  // best but not every last.
  CheckpointWriter writer;
  auto save = [&](const std::string& name, const optim::Optimizer* state) {
    const CheckpointContents c = checkpoint_contents(*net, state, cfg, st);
    writer.save(dir + "/" + name, c.tensors, c.metadata, /*background=*/device != Device::CPU,
                /*latest_only=*/name == "last.safetensors");
  };
  auto save_last = [&] { save("last.safetensors", opt.get()); };
  // The validation loader, kept for every epoch's validation (evaluate.h). Made before the first
  // step, so that the first steps' memory, and the search for a batch that fits when they run out
  // of it, count its buffers.
  std::unique_ptr<data::Loader> val_loader;
  if (sets.val.size() > 0) {
    val_loader = eval_loader(sets.val, cfg.eval_transform(), int(cfg.batch), device, int(cfg.workers));
  }

  // The training loss and accuracy of each step, read one step late (run_step): the step in
  // flight, whose numbers are on their way to the host, and what is needed to count them.
  struct InFlight {
    int64_t step = 0, epoch = 0, batch = 0;  // 1-based, for the messages
    std::vector<int64_t> labels;             // (B,) the batch's labels, from the dataset
    int slot = 0;                            // its readback
  };
  StepReadback readbacks[2] = {StepReadback(device), StepReadback(device)};
  std::optional<InFlight> in_flight;
  auto batch_labels = [&](const data::Batch& b) {
    std::vector<int64_t> y;  // (B,)
    for (int64_t i : b.indices) y.push_back(sets.train.label(i));
    return y;
  };
  auto nan_error = [&](double value, const InFlight& f) {
    // The previous epoch's checkpoint is on disk before it is named. If its write failed, the
    // message says so after the NaN (the reason the run stops), not in its place.
    std::string write_failure;
    try {
      writer.wait();
    } catch (const Error& e) {
      write_failure = std::string("; an earlier checkpoint write had failed: ") + e.what();
    }
    const std::string kept = fs::exists(dir + "/last.safetensors")
                                 ? "the last good checkpoint is " + dir + "/last.safetensors"
                                 : "no checkpoint had been written yet";
    return Error("the training loss became " + std::string(std::isnan(value) ? "NaN" : "infinite") + " at step " +
                 std::to_string(f.step) + " (epoch " + std::to_string(f.epoch) + ", batch " + std::to_string(f.batch) +
                 "): stopped; " + kept + " (a lower --lr or a --warmup may help)" + write_failure);
  };
  auto account = [&](double loss, const std::vector<float>& logits, const std::vector<int64_t>& labels) {
    const int64_t n = int64_t(labels.size());
    st.loss_sum += loss * double(n);
    st.correct += count_correct(logits, cfg.classes, labels);
    st.seen += n;
  };
  // Reads the step in flight. A NaN there stops the run before anything more is saved: the
  // weights in memory took its update (and the next step ran), the checkpoints on disk did not.
  auto settle = [&] {
    if (!in_flight) return;
    const InFlight f = std::move(*in_flight);
    in_flight.reset();
    const StepReadback::Values v = readbacks[f.slot].finish();
    if (!std::isfinite(v.loss)) throw nan_error(v.loss, f);
    account(v.loss, v.logits, f.labels);
  };
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
      seed_step(cfg.seed, st.step);  // the step's dropout: a function of (seed, step) alone
      opt->set_lr(sched.lr_at(cfg.lr, st.step, steps_per_epoch, cfg.epochs));
      InFlight now{st.step + 1, epoch + 1, st.batch + 1, batch_labels(b), int(st.step % 2)};
      if (checked < kCheckedSteps) {  // read at once: these steps also probe the memory
        Tensor logits;  // (B, classes) the main logits, detached
        const double value = checked_step(b, &logits);
        if (!std::isfinite(value)) throw nan_error(value, now);
        account(value, logits.to_vector(), now.labels);
      } else {
        StepReadback& readback = readbacks[now.slot];
        if (graph && graph->run(b.images, b.labels, st.step, *opt)) {
          readback.start(graph->loss(), graph->logits());
        } else {
          if (graph) seed_step(cfg.seed, st.step);  // a capture that failed drew the step's seeds
          run_step(b.images, b.labels, nullptr, &readback, true);
        }
        settle();  // the step before: its numbers are on the host once it has run
        in_flight = std::move(now);
      }
      st.step++;
      st.batch++;
      images_timed += b.size();
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      bar.update(st.batch, "loss " + (st.seen > 0 ? fmt("%.4f", st.loss_sum / double(st.seen)) : std::string("...")) +
                               "  " + fmt("%.0f", double(images_timed) / std::max(secs, 1e-9)) + " img/s");
      if (g_stop || (options.stop_after > 0 && st.step >= options.stop_after)) {
        settle();
        save_last();
        writer.wait();
        bar.finish("stopped");
        if (!options.quiet) {
          std::fprintf(stderr, "stopped after step %lld (epoch %lld, batch %lld); continue with: leuko train --resume %s\n",
                       static_cast<long long>(st.step), static_cast<long long>(epoch + 1),
                       static_cast<long long>(st.batch), dir.c_str());
        }
        result.state = st;
        result.graph_steps = graph ? graph->replays() : 0;
        result.interrupted = true;
        return result;
      }
    }
    settle();
    const double train_seconds = bar.seconds();

    // Validation, log, plot, checkpoints. (An empty validation split has no loader: evaluate's
    // one-line error names it.)
    if (!val_loader) val_loader = eval_loader(sets.val, cfg.eval_transform(), int(cfg.batch), device, int(cfg.workers));
    EvalResult v = evaluate(*net, *val_loader);
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
    const bool improved = improves_best(st, metric, v.loss);
    st.epoch = epoch + 1;
    st.batch = 0;
    st.loss_sum = 0;
    st.correct = st.seen = 0;
    writer.check();  // a failed write of an earlier epoch stops the run here
    if (improved) {
      st.best = metric;
      st.best_epoch = epoch + 1;
      st.best_loss = v.loss;
      save("best.safetensors", nullptr);
    }
    // last.safetensors last: it commits the epoch. Killed before it, a resumed run redoes the
    // epoch from the previous checkpoint and rewrites the same best, log and curves.
    write_log_csv(dir + "/log.csv", rows);
    write_curves_png(dir + "/curves.png", rows, cfg.model + " (" + cfg.task + ")");
    save_last();
    bar.finish("train loss " + fmt("%.4f", row.train_loss) + " acc " + fmt("%.4f", row.train_acc) + " | val loss " +
               fmt("%.4f", row.val_loss) + " acc " + fmt("%.4f", row.val_acc) + " F1 " + fmt("%.4f", row.val_f1) +
               (improved ? "  * best" : "") + "  [train " + fmt("%.1f", train_seconds) + " s]");
    if (g_stop) {  // Ctrl-C during validation: the epoch is complete and saved
      writer.wait();
      result.state = st;
      result.graph_steps = graph ? graph->replays() : 0;
      result.interrupted = true;
      return result;
    }
  }
  writer.wait();
  val_loader.reset();  // its buffers and threads, before the test's loader is made
  result.state = st;
  result.graph_steps = graph ? graph->replays() : 0;

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
