// `leuko predict --checkpoint FILE IMAGE... [--json] [--device auto|cpu|cuda] [--skip-bad]`:
// the class of each image by a checkpoint's network, one line per image:
//   path  class  probability
// Images go through the checkpoint's evaluation transform (resize to its input size, center
// crop, its normalisation), in batches. An image that cannot be read stops the command with one
// line naming it; with --skip-bad it is reported in place of its prediction and the rest go on.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "data/image.h"
#include "tensor/autograd.h"
#include "tools/leuko/commands.h"
#include "tools/leuko/evaluate.h"

namespace leuko::cli {

std::vector<Prediction> predict_images(Net& net, const RunConfig& config, const std::vector<std::string>& paths,
                                       Device device, bool skip_bad, int batch) {
  LEUKO_CHECK(batch > 0, "predict: batch size ", batch, " is not positive");
  std::vector<std::string> names = config.class_names;
  if (names.empty()) {  // a checkpoint without names: the class indices
    for (int64_t c = 0; c < config.classes; c++) names.push_back(std::to_string(c));
  }
  const data::TransformSpec spec = config.eval_transform();
  const int64_t S = spec.size, sample = 3 * S * S;
  std::vector<Prediction> out(paths.size());
  EvalModeGuard mode(net);
  autograd::NoGradGuard no_grad;
  for (size_t start = 0; start < paths.size(); start += size_t(batch)) {
    const size_t end = std::min(paths.size(), start + size_t(batch));
    std::vector<size_t> decoded;  // (B,): which paths are in the batch
    std::vector<float> host;      // (B, 3, S, S)
    for (size_t i = start; i < end; i++) {
      out[i].path = paths[i];
      data::Image img;
      try {
        img = data::decode_image(paths[i]);
      } catch (const Error& e) {
        if (!skip_bad) throw Error(std::string(e.what()) + " (--skip-bad reports it and goes on)");
        out[i].error = e.what();
        continue;
      }
      host.resize(host.size() + size_t(sample));
      Generator gen(0);  // the evaluation transform draws nothing; apply_transform wants one
      data::apply_transform(spec, img, gen, host.data() + host.size() - size_t(sample));
      decoded.push_back(i);
    }
    if (decoded.empty()) continue;
    const int64_t B = int64_t(decoded.size());
    const Tensor x = Tensor::from_vector(host, {B, 3, S, S}, DType::f32, device);  // (B, 3, S, S)
    const Tensor logits = net(x);                                                   // (B, C)
    LEUKO_CHECK(logits.dim() == 2 && logits.size(1) == int64_t(names.size()), "predict: the network gives logits ",
                shape_str(logits.shape()), " for ", names.size(), " classes");
    const std::vector<double> logp = host_log_softmax(logits);  // (B, C)
    const int64_t C = logits.size(1);
    for (int64_t k = 0; k < B; k++) {
      Prediction& p = out[decoded[size_t(k)]];
      const double* lp = &logp[size_t(k * C)];  // (C,)
      p.label = 0;
      for (int64_t c = 1; c < C; c++) {
        if (lp[c] > lp[p.label]) p.label = c;  // strict: the first maximum wins a tie, as in evaluate()
      }
      for (int64_t c = 0; c < C; c++) p.probabilities.push_back(std::exp(lp[c]));
      p.probability = p.probabilities[size_t(p.label)];
      p.class_name = names[size_t(p.label)];
    }
  }
  return out;
}

namespace {

void run_predict(const std::string& checkpoint, const std::vector<std::string>& images, const std::string& device_text,
                 bool json, bool skip_bad, int batch) {
  Checkpoint ck = load_checkpoint(checkpoint);
  const Device device = parse_device(device_text);
  ck.net->to(device);
  const std::vector<Prediction> preds = predict_images(*ck.net, ck.config, images, device, skip_bad, batch);
  int64_t bad = 0;
  nlohmann::json j = nlohmann::json::array();
  for (const Prediction& p : preds) {
    if (!p.error.empty()) {
      bad++;
      if (json) j.push_back({{"path", p.path}, {"error", p.error}});
      else std::printf("%s  error: %s\n", p.path.c_str(), p.error.c_str());
      continue;
    }
    if (json) {
      nlohmann::json probs = nlohmann::json::object();
      for (size_t c = 0; c < p.probabilities.size(); c++) {
        probs[c < ck.config.class_names.size() ? ck.config.class_names[c] : std::to_string(c)] = p.probabilities[c];
      }
      j.push_back({{"path", p.path}, {"class", p.class_name}, {"label", p.label}, {"probability", p.probability},
                   {"probabilities", probs}});
    } else {
      std::printf("%s  %s  %.4f\n", p.path.c_str(), p.class_name.c_str(), p.probability);
    }
  }
  if (json) std::printf("%s\n", j.dump(2).c_str());
  if (bad > 0) {
    std::fprintf(stderr, "leuko predict: %lld of %zu images could not be read\n", static_cast<long long>(bad),
                 preds.size());
  }
}

}  // namespace

void register_predict(CLI::App& app) {
  auto* cmd = app.add_subcommand("predict", "Classify image files with a checkpoint: path, class, probability");
  static std::string checkpoint, device = "auto";
  static std::vector<std::string> images;
  static bool json = false, skip_bad = false;
  static int batch = 32;
  cmd->add_option("--checkpoint", checkpoint, "Checkpoint written by leuko train (best.safetensors)")->required();
  cmd->add_option("images", images, "Image files (JPEG, PNG, BMP)")->required();
  cmd->add_option("--device", device, "auto, cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  cmd->add_option("--batch", batch, "Images per batch")->capture_default_str();
  cmd->add_flag("--json", json, "Print JSON instead of one line per image");
  cmd->add_flag("--skip-bad", skip_bad, "Report images that cannot be read and go on with the others");
  cmd->callback([] { run_predict(checkpoint, images, device, json, skip_bad, batch); });
}

}  // namespace leuko::cli
