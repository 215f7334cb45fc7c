// A training run's settings and its checkpoints: what `leuko train` writes and what
// `leuko eval`, `leuko predict` and `--resume` read back.
//
// A run folder holds:
//   config.json       RunConfig (every setting, so a run can be repeated or resumed)
//   split.json        the train/val/test split (data/split.h); evaluation reuses it
//   log.csv           one row per epoch: losses, validation metrics, learning rate, time
//   last.safetensors  the model and the optimizer state after the last completed epoch
//   best.safetensors  the model at its best validation epoch (by config.best_metric)
//   curves.png        loss and validation curves
//   test.json         the best checkpoint's metrics on the test split
// Checkpoints are safetensors files with torchvision's keys for the model; the optimizer's
// tensors are prefixed "optim."; the metadata holds the RunConfig as JSON ("leuko.config") and
// the training state ("leuko.epoch", "leuko.step", "leuko.best", ...). Every file is written
// atomically (a temporary file, then a rename), so a killed run leaves the previous one intact.
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/transforms.h"
#include "nets/net.h"
#include "optim/optimizer.h"

namespace leuko::cli {

struct RunConfig {
  std::string model = "resnet18";
  std::string data;                 // the image folder
  std::string task = "binary";      // binary or subtype
  std::string benign = "Benign";    // the negative class folder of the binary task
  std::vector<std::string> class_names;
  int64_t classes = 2;
  int64_t input = 224;              // image side fed to the network
  int64_t epochs = 30;
  int64_t batch = 32;
  std::string optimizer = "adamw";  // sgd, adam, adamw
  double lr = 1e-3;
  double momentum = 0.9;            // sgd
  double weight_decay = 1e-4;
  std::string schedule = "cosine";  // optim::Schedule::parse
  int64_t warmup_epochs = 0;
  double label_smoothing = 0.0;
  bool class_weights = false;       // weight the loss by inverse class frequency
  std::string augment = "flips";    // none, flips (flips + quarter turns), crop (flips + random resized crop)
  double crop_scale_min = 0.5;      // with augment = crop
  std::string precision = "fp32";
  std::string best_metric = "f1";   // accuracy, f1, loss (lower), macro_f1
  uint64_t seed = 42;
  int64_t split_seed = -1;          // the train/validation/test split's seed; -1: `seed`
  int64_t workers = 0;              // loader threads; 0: automatic
  std::string device = "auto";      // auto, cpu, cuda
  bool deterministic = false;       // GPU: the same bits on every run (tensor/device.h set_deterministic)
  std::string normalize = "imagenet";  // imagenet, or data: mean and std of the training split
  data::Channels mean = data::kImageNetMean, std = data::kImageNetStd;

  // The seed the split is drawn with: split_seed, or seed when it is -1. Holding it (at 42, the
  // study's split) while seed changes varies only the initialisation, shuffles and augmentations.
  uint64_t seed_of_split() const { return split_seed >= 0 ? uint64_t(split_seed) : seed; }

  nlohmann::json to_json() const;
  // Throws a one-line Error naming `source` and the bad field.
  static RunConfig from_json(const nlohmann::json& j, const std::string& source);
  data::TransformSpec train_transform() const;
  data::TransformSpec eval_transform() const;
};

// The device a --device setting names: "cpu", "cuda" (Error with the reason when no GPU can be
// used) or "auto" (the GPU when one is usable, else the CPU). Error naming the text otherwise.
Device parse_device(const std::string& text);

// Where training stands after a completed epoch.
// Where training stands. Between epochs batch == 0; a run stopped mid-epoch (Ctrl-C) records
// how far into the epoch it got and the partial sums of that epoch, so --resume continues it
// exactly: the loader's batches depend only on (seed, epoch) and every step reseeds leuko's
// generator from (seed, step).
struct TrainState {
  int64_t epoch = 0;       // completed epochs
  int64_t step = 0;        // optimizer steps taken
  int64_t batch = 0;       // batches done in the current (incomplete) epoch
  double loss_sum = 0;     // the current epoch's training loss summed over its samples
  int64_t correct = 0;     // its correctly classified training samples
  int64_t seen = 0;        // its training samples
  double best = 0;         // best validation metric so far
  int64_t best_epoch = 0;  // the epoch that reached it (0: none yet)
  double best_loss = 0;    // that epoch's validation loss: breaks ties of the metric
};

// Whether an epoch with validation `metric` and `loss` replaces the best so far: a higher metric,
// or the same metric with a lower loss. On 324 validation images F1 and accuracy move in steps of
// one image and saturate (ResNet-50 reached F1 1.0 in 11 of its 50 epochs), so the first epoch to
// touch the top was kept, often one the schedule had not yet settled; the loss still tells them apart.
bool improves_best(const TrainState& state, double metric, double loss);

// What a checkpoint holds: the model's state_dict, the optimizer's state (when given) under
// "optim.", and config + state in the metadata. The tensors are the live ones (no copies).
struct CheckpointContents {
  NamedTensors tensors;
  std::map<std::string, std::string> metadata;
};
CheckpointContents checkpoint_contents(const Net& net, const optim::Optimizer* opt, const RunConfig& config,
                                       const TrainState& state);

// Writes a checkpoint atomically (the trainer writes its own beside the training instead:
// tools/leuko/checkpoint_writer.h).
void save_checkpoint(const std::string& path, const Net& net, const optim::Optimizer* opt, const RunConfig& config,
                     const TrainState& state);

struct Checkpoint {
  RunConfig config;
  TrainState state;
  std::shared_ptr<Net> net;        // built from config, weights loaded, on the CPU, eval mode
  NamedTensors optimizer_state;    // "optim." prefix removed
  std::map<std::string, std::string> metadata;
};

// Reads a checkpoint written by save_checkpoint. Throws one line naming the file: not found,
// not a safetensors file, not a leuko checkpoint, or weights that do not fit the network.
Checkpoint load_checkpoint(const std::string& path);

}  // namespace leuko::cli
