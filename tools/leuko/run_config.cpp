#include "tools/leuko/run_config.h"

#include <cmath>
#include <limits>
#include <type_traits>

#include "tensor/device.h"
#include "tensor/safetensors.h"

namespace leuko::cli {

nlohmann::json RunConfig::to_json() const {
  nlohmann::json j;
  j["model"] = model;
  j["data"] = data;
  j["task"] = task;
  j["benign"] = benign;
  j["class_names"] = class_names;
  j["classes"] = classes;
  j["input"] = input;
  j["epochs"] = epochs;
  j["batch"] = batch;
  j["optimizer"] = optimizer;
  j["lr"] = lr;
  j["momentum"] = momentum;
  j["weight_decay"] = weight_decay;
  j["schedule"] = schedule;
  j["warmup_epochs"] = warmup_epochs;
  j["label_smoothing"] = label_smoothing;
  j["class_weights"] = class_weights;
  j["augment"] = augment;
  j["crop_scale_min"] = crop_scale_min;
  j["precision"] = precision;
  j["best_metric"] = best_metric;
  j["seed"] = seed;
  j["split_seed"] = split_seed;
  j["workers"] = workers;
  j["device"] = device;
  j["deterministic"] = deterministic;
  j["normalize"] = normalize;
  j["mean"] = {mean[0], mean[1], mean[2]};
  j["std"] = {std[0], std[1], std[2]};
  return j;
}

RunConfig RunConfig::from_json(const nlohmann::json& j, const std::string& source) {
  RunConfig c;
  if (!j.is_object()) throw Error(source + ": the run configuration is not a JSON object");
  auto get = [&](const char* key, auto& field) {
    if (!j.contains(key)) return;
    // An integer field takes a JSON integer only: nlohmann converts a float such as 1e300 with a
    // plain cast, undefined behaviour outside the integer's range.
    using T = std::decay_t<decltype(field)>;
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      if (!j.at(key).is_number_integer()) throw Error(source + ": field '" + key + "' must be a whole number");
    }
    try {
      j.at(key).get_to(field);
    } catch (const std::exception&) {
      throw Error(source + ": field '" + key + "' has the wrong type");
    }
  };
  get("model", c.model);
  get("data", c.data);
  get("task", c.task);
  get("benign", c.benign);
  get("class_names", c.class_names);
  get("classes", c.classes);
  get("input", c.input);
  get("epochs", c.epochs);
  get("batch", c.batch);
  get("optimizer", c.optimizer);
  get("lr", c.lr);
  get("momentum", c.momentum);
  get("weight_decay", c.weight_decay);
  get("schedule", c.schedule);
  get("warmup_epochs", c.warmup_epochs);
  get("label_smoothing", c.label_smoothing);
  get("class_weights", c.class_weights);
  get("augment", c.augment);
  get("crop_scale_min", c.crop_scale_min);
  get("precision", c.precision);
  get("best_metric", c.best_metric);
  get("seed", c.seed);
  get("split_seed", c.split_seed);
  get("workers", c.workers);
  get("device", c.device);
  get("deterministic", c.deterministic);
  get("normalize", c.normalize);
  std::vector<float> m, s;
  get("mean", m);
  get("std", s);
  if (m.size() == 3) c.mean = {m[0], m[1], m[2]};
  if (s.size() == 3) c.std = {s[0], s[1], s[2]};
  if (c.classes < 1) throw Error(source + ": field 'classes' must be at least 1");
  if (c.split_seed < -1) throw Error(source + ": field 'split_seed' must be a seed (0 or more), or -1 for 'seed'");
  return c;
}

data::TransformSpec RunConfig::train_transform() const {
  data::TransformSpec t = data::TransformSpec::eval(int(input));
  if (augment == "flips" || augment == "crop") t.hflip = t.vflip = t.rotate90 = true;
  if (augment == "crop") {
    t.random_resized_crop = true;
    t.scale_min = crop_scale_min;
  }
  t.mean = mean;
  t.std = std;
  return t;
}

data::TransformSpec RunConfig::eval_transform() const {
  data::TransformSpec t = data::TransformSpec::eval(int(input));
  t.mean = mean;
  t.std = std;
  return t;
}

Device parse_device(const std::string& text) {
  if (text == "cpu") return Device::CPU;
  if (text == "auto") return cuda_available() ? Device::CUDA : Device::CPU;
  LEUKO_CHECK(text == "cuda", "--device: '", text, "' is not one of auto, cpu, cuda");
  require_cuda("--device cuda");
  return Device::CUDA;
}

namespace {

// A double as checkpoint metadata, read back by std::stod: JSON's shortest exact form when
// finite, and "inf", "-inf" or "nan" otherwise (JSON has none: nlohmann writes null, which stod
// refuses). best_loss is infinite after resuming a checkpoint older than the tie-break.
std::string number_text(double x) {
  if (std::isfinite(x)) return nlohmann::json(x).dump();
  return std::isnan(x) ? "nan" : (x > 0 ? "inf" : "-inf");
}

}  // namespace

CheckpointContents checkpoint_contents(const Net& net, const optim::Optimizer* opt, const RunConfig& config,
                                      const TrainState& state) {
  NamedTensors tensors = net.state_dict();
  std::map<std::string, std::string> meta{{"format", "pt"},
                                          {"leuko.config", config.to_json().dump()},
                                          {"leuko.epoch", std::to_string(state.epoch)},
                                          {"leuko.step", std::to_string(state.step)},
                                          {"leuko.batch", std::to_string(state.batch)},
                                          {"leuko.loss_sum", number_text(state.loss_sum)},
                                          {"leuko.correct", std::to_string(state.correct)},
                                          {"leuko.seen", std::to_string(state.seen)},
                                          {"leuko.best", number_text(state.best)},
                                          {"leuko.best_epoch", std::to_string(state.best_epoch)},
                                          {"leuko.best_loss", number_text(state.best_loss)}};
  if (opt != nullptr) {
    for (auto& [name, t] : opt->state()) tensors.emplace_back("optim." + name, t);
    for (auto& [k, v] : opt->state_metadata()) meta[k] = v;
  }
  return {std::move(tensors), std::move(meta)};
}

void save_checkpoint(const std::string& path, const Net& net, const optim::Optimizer* opt, const RunConfig& config,
                     const TrainState& state) {
  const CheckpointContents c = checkpoint_contents(net, opt, config, state);
  save_safetensors(path, c.tensors, c.metadata);
}

bool improves_best(const TrainState& state, double metric, double loss) {
  return state.best_epoch == 0 || metric > state.best || (metric == state.best && loss < state.best_loss);
}

Checkpoint load_checkpoint(const std::string& path) {
  SafetensorsFile f = load_safetensors(path);
  auto it = f.metadata.find("leuko.config");
  if (it == f.metadata.end()) {
    throw Error(path + ": not a leuko checkpoint (no run configuration in its metadata); weights exported "
                       "from PyTorch are loaded with `leuko train --init FILE`");
  }
  Checkpoint c;
  c.metadata = f.metadata;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(it->second);
  } catch (const std::exception&) {
    throw Error(path + ": its run configuration is not valid JSON");
  }
  c.config = RunConfig::from_json(j, path);
  auto num = [&](const char* key) -> std::string {
    auto m = f.metadata.find(key);
    return m == f.metadata.end() ? "0" : m->second;
  };
  try {
    c.state.epoch = std::stoll(num("leuko.epoch"));
    c.state.step = std::stoll(num("leuko.step"));
    c.state.batch = std::stoll(num("leuko.batch"));
    c.state.loss_sum = std::stod(num("leuko.loss_sum"));
    c.state.correct = std::stoll(num("leuko.correct"));
    c.state.seen = std::stoll(num("leuko.seen"));
    c.state.best = std::stod(num("leuko.best"));
    c.state.best_epoch = std::stoll(num("leuko.best_epoch"));
    // Checkpoints from before the tie-break have no best_loss: any tie then counts as better.
    c.state.best_loss = f.metadata.count("leuko.best_loss") ? std::stod(f.metadata.at("leuko.best_loss"))
                                                            : std::numeric_limits<double>::infinity();
  } catch (const std::exception&) {
    throw Error(path + ": its training state is not readable");
  }
  NetOptions o;
  o.num_classes = c.config.classes;
  c.net = make_net(c.config.model, o);
  NamedTensors weights;
  for (auto& [name, t] : f.tensors) {
    if (name.rfind("optim.", 0) == 0) c.optimizer_state.emplace_back(name.substr(6), t);
    else weights.emplace_back(name, t);
  }
  try {
    c.net->load_state_dict(weights, true);
  } catch (const Error& e) {
    throw Error(path + ": does not fit " + c.config.model + " with " + std::to_string(c.config.classes) +
                " classes: " + e.what());
  }
  c.net->eval();
  return c;
}

}  // namespace leuko::cli
