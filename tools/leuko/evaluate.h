// Evaluation: a network over a dataset (the trainer's validation each epoch and its final test,
// `leuko eval`), and single images through a checkpoint (`leuko predict`).
//
// evaluate() is the one loop all of them share: evaluation mode, no gradient, the dataset in its
// own order through data::Loader (no shuffle, no dropped batch), the eval transform, and per
// sample the softmax probabilities, the predicted class (the argmax, the first on a tie, as
// torch.argmax) and the cross-entropy -log p[label]. The probabilities and the loss are computed
// on the host in float64 from the network's float32 logits, so they do not depend on the device
// beyond the logits themselves.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/loader.h"
#include "data/metrics.h"
#include "data/transforms.h"
#include "nets/net.h"
#include "tools/leuko/run_config.h"

namespace leuko::cli {

struct EvalResult {
  data::ConfusionMatrix confusion;    // rows: true class, columns: predicted
  double loss = 0;                    // mean cross-entropy (natural log) over the samples
  std::vector<int64_t> labels;        // (N,) the dataset's labels, in dataset order
  std::vector<int64_t> predictions;   // (N,) argmax of each sample's logits
  std::vector<double> probabilities;  // (N, C) row-major: softmax of each sample's logits
  int64_t num_classes = 0;            // C
  double seconds = 0;                 // wall time of the whole evaluation

  int64_t size() const { return int64_t(labels.size()); }
  double probability(int64_t i, int64_t c) const { return probabilities[size_t(i * num_classes + c)]; }
};

// Puts a module in evaluation mode for a scope, and back in the mode it was in when the scope
// ends (also through an exception).
class EvalModeGuard {
 public:
  explicit EvalModeGuard(Module& m) : m_(m), was_training_(m.is_training()) { m_.eval(); }
  ~EvalModeGuard() { m_.train(was_training_); }
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;

 private:
  Module& m_;
  bool was_training_;
};

// Evaluates `net` (its parameters must already be on `device`) on every sample of `dataset` in
// batches of `batch`, with `workers` loader threads (0: automatic). The network runs in
// evaluation mode and is put back in the mode it was in afterwards (the trainer's net goes on
// training). Throws a one-line Error for an empty dataset or logits whose class count is not the
// dataset's.
EvalResult evaluate(Net& net, const data::Dataset& dataset, const data::TransformSpec& transform, int batch,
                    Device device, int workers = 0);

// The same through a loader the caller keeps across calls (the trainer's validation, every
// epoch), made by eval_loader: the dataset in its order, every sample, the eval transform. A
// loader for the GPU allocates page-locked host buffers and starts its threads when made, and
// its end waits for the GPU and frees them: made once, not once an epoch. eval_loader throws the
// same one-line errors as evaluate for an empty dataset or a batch size below 1.
std::unique_ptr<data::Loader> eval_loader(const data::Dataset& dataset, const data::TransformSpec& transform,
                                          int batch, Device device, int workers = 0);
EvalResult evaluate(Net& net, data::Loader& loader);

// log(softmax) of each row of float32 or float64 logits (N, C) on any device, on the host in
// float64 (row max subtracted first): (N, C) row-major. exp() of it gives the probabilities.
std::vector<double> host_log_softmax(const Tensor& logits);

// ---- `leuko eval` ---------------------------------------------------------------------------

struct EvalOptions {
  std::string checkpoint;  // a leuko checkpoint (best.safetensors, last.safetensors)
  std::string data;        // the image folder
  std::string split = "test";  // test, val, train or all (every image; no split file needed)
  std::string split_file;  // empty: split.json beside the checkpoint
  int batch = 64;
  std::string device = "auto";  // auto, cpu, cuda (parse_device)
  int workers = 0;
};

struct EvalReport {
  EvalOptions options;
  std::string split_file;  // the split file used (empty for --split all)
  RunConfig config;        // the checkpoint's
  TrainState state;        // the checkpoint's
  Device device = Device::CPU;
  std::vector<std::string> files;  // (N,) the evaluated files, relative to the data folder
  EvalResult result;

  // Everything in result.confusion.to_json(), plus the checkpoint, data, split, model, task,
  // epoch, device and loss.
  nlohmann::json to_json() const;
  // What `leuko eval` prints: a header, the headline metrics (for the binary task: precision,
  // recall and F1 with malignant positive), and the per-class report with the confusion matrix.
  std::string text() const;
};

// The whole of `leuko eval` but the printing. Throws a one-line Error for: a missing data folder,
// no split file beside the checkpoint and none given (saying how to give one), a checkpoint of
// another task or class count than the data, and everything load_checkpoint and the split check.
EvalReport run_eval(const EvalOptions& options);

// ---- `leuko predict` ------------------------------------------------------------------------

struct Prediction {
  std::string path;
  std::string error;                  // not empty: the image could not be read (and why)
  int64_t label = -1;                 // the predicted class
  std::string class_name;
  double probability = 0;             // of the predicted class
  std::vector<double> probabilities;  // (C,) every class's
};

// Classifies image files with a checkpoint's network (on `device` already) and its evaluation
// transform, `batch` images at a time, in the order given. A file that cannot be decoded throws
// a one-line Error naming it, or with skip_bad gives a Prediction holding the error.
std::vector<Prediction> predict_images(Net& net, const RunConfig& config, const std::vector<std::string>& paths,
                                       Device device, bool skip_bad = false, int batch = 32);

}  // namespace leuko::cli
