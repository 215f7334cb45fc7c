// `leuko eval --checkpoint FILE --data DIR [--split test|val|train|all] [--split-file FILE]
//  [--batch 64] [--device auto|cpu|cuda] [--workers N] [--json]`: a checkpoint's metrics on one
// part of the split it was trained with (by default the split.json beside the checkpoint, which
// `leuko train` writes into the run folder), or on every image of a folder (--split all).
// Prints accuracy, for the binary task precision / recall / F1 / specificity with malignant
// positive, the loss, the per-class report (sklearn's classification_report, with macro and
// weighted averages) and the confusion matrix; --json prints the same as one JSON object.
#include <cstdio>
#include <filesystem>

#include "data/split.h"
#include "tools/leuko/commands.h"
#include "tools/leuko/evaluate.h"

namespace leuko::cli {

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

}  // namespace

EvalReport run_eval(const EvalOptions& o) {
  namespace fs = std::filesystem;
  LEUKO_CHECK(o.split == "test" || o.split == "val" || o.split == "train" || o.split == "all", "--split: '", o.split,
              "' is not one of test, val, train, all");
  LEUKO_CHECK(o.batch > 0, "--batch: ", o.batch, " is not positive");
  LEUKO_CHECK(fs::is_directory(o.data), "--data ", o.data, ": no such folder");
  EvalReport r;
  r.options = o;
  Checkpoint ck = load_checkpoint(o.checkpoint);
  r.config = ck.config;
  r.state = ck.state;

  // The split: the run folder's by default. Checked before anything is decoded.
  if (o.split != "all") {
    if (o.split_file.empty()) {
      r.split_file = (fs::path(o.checkpoint).parent_path() / "split.json").string();
      LEUKO_CHECK(fs::is_regular_file(r.split_file), "no split file beside the checkpoint (", r.split_file,
                  " does not exist): give one with --split-file FILE (`leuko split --data DIR --out FILE` makes one) "
                  "or evaluate every image with --split all");
    } else {
      r.split_file = o.split_file;
      LEUKO_CHECK(fs::is_regular_file(r.split_file), "--split-file ", r.split_file, ": no such file");
    }
  }
  r.device = parse_device(o.device);

  // The data must have the checkpoint's task and classes; listing the folders tells, cheaply.
  const data::Task task = data::parse_task(ck.config.task);
  const data::FolderListing listing = data::list_image_folder(o.data);
  data::LabelMap labels;
  try {
    labels = data::make_labels(listing.folders, task, ck.config.benign);
  } catch (const Error& e) {
    throw Error(o.checkpoint + " is a " + ck.config.task + " checkpoint, which " + o.data + " does not fit: " +
                e.what());
  }
  const int64_t classes = int64_t(labels.class_names.size());
  const std::string what = o.checkpoint + " was trained on " + std::to_string(ck.config.classes) + " classes (task " +
                           ck.config.task + (ck.config.class_names.empty() ? "" : ": " + join(ck.config.class_names)) +
                           "), but " + o.data + " gives " + std::to_string(classes) + " (" +
                           join(labels.class_names) + ")";
  LEUKO_CHECK(classes == ck.config.classes, what);
  LEUKO_CHECK(ck.config.class_names.empty() || ck.config.class_names == labels.class_names, what);

  data::DatasetOptions dopt;
  dopt.task = task;
  dopt.benign = ck.config.benign;
  const data::Dataset all = data::Dataset::load(o.data, dopt);
  data::Dataset part = all;
  if (o.split != "all") {
    const data::SplitDatasets parts = data::apply_split(all, data::load_split(r.split_file));
    part = o.split == "test" ? parts.test : o.split == "val" ? parts.val : parts.train;
  }
  for (int64_t i = 0; i < part.size(); i++) r.files.push_back(part.file(i));

  ck.net->to(r.device);
  r.result = evaluate(*ck.net, part, ck.config.eval_transform(), o.batch, r.device, o.workers);
  return r;
}

nlohmann::json EvalReport::to_json() const {
  nlohmann::json j = result.confusion.to_json();
  j["checkpoint"] = options.checkpoint;
  j["data"] = options.data;
  j["split"] = options.split;
  j["split_file"] = split_file;
  j["model"] = config.model;
  j["task"] = config.task;
  j["epoch"] = state.epoch;
  j["device"] = device_name(device);
  j["images"] = result.size();
  j["loss"] = result.loss;
  j["seconds"] = result.seconds;
  return j;
}

std::string EvalReport::text() const {
  const data::ConfusionMatrix& m = result.confusion;
  std::string s;
  s += "checkpoint   " + options.checkpoint + " (" + config.model + ", task " + config.task + ", epoch " +
       std::to_string(state.epoch) + ")\n";
  s += "data         " + options.data + ": " +
       (options.split == "all" ? std::string("every image") : options.split + " split of " + split_file) + ", " +
       std::to_string(result.size()) + " images\n";
  s += "device       " + std::string(device_name(device)) + fmt(", %.1f s\n\n", result.seconds);
  s += "accuracy     " + fmt("%.4f\n", m.accuracy());
  if (config.task == "binary" && m.num_classes() == 2) {
    const data::BinaryMetrics b = m.binary(1);
    s += "precision    " + fmt("%.4f", b.precision) + "   (positive class: " + m.class_names()[1] + ")\n";
    s += "recall       " + fmt("%.4f\n", b.recall);
    s += "f1           " + fmt("%.4f\n", b.f1);
    s += "specificity  " + fmt("%.4f\n", b.specificity);
  }
  s += "macro f1     " + fmt("%.4f\n", m.macro_avg().f1);
  s += "weighted f1  " + fmt("%.4f\n", m.weighted_avg().f1);
  s += "loss         " + fmt("%.4f", result.loss) + "   (mean cross-entropy)\n\n";
  return s + m.report();
}

void register_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "Evaluate a checkpoint on the test (val, train, all) part of a data folder");
  static EvalOptions o;
  static bool json = false;
  cmd->add_option("--checkpoint", o.checkpoint, "Checkpoint written by leuko train (best.safetensors)")->required();
  cmd->add_option("--data", o.data, "Image folder: one subfolder of images per class")->required();
  cmd->add_option("--split", o.split, "Part of the split to evaluate, or all images")
      ->check(CLI::IsMember({"test", "val", "train", "all"}))
      ->capture_default_str();
  cmd->add_option("--split-file", o.split_file, "Split file (default: split.json beside the checkpoint)");
  cmd->add_option("--batch", o.batch, "Images per batch")->capture_default_str();
  cmd->add_option("--device", o.device, "auto, cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  cmd->add_option("--workers", o.workers, "Loader threads (0: automatic)");
  cmd->add_flag("--json", json, "Print JSON instead of the report");
  cmd->callback([] {
    const EvalReport r = run_eval(o);
    if (json) std::printf("%s\n", r.to_json().dump(2).c_str());
    else std::fputs(r.text().c_str(), stdout);
  });
}

}  // namespace leuko::cli
