// `leuko info --model M --classes N [--input S] [--json]`: the page a student reads to see a
// network. One row per layer that runs (in order, from one traced forward pass of a 1-image
// batch in evaluation mode on the CPU): its name (the state_dict prefix), type, output shape,
// parameters and multiply-adds (convolutions and linear layers; other layers count 0), then
// totals. Auxiliary classifiers run only in training: they are listed after the table. The last
// line reads `parameters: <count>`, all parameters included.
#include <cstdio>
#include <map>
#include <set>
#include <nlohmann/json.hpp>

#include "layers/conv2d.h"
#include "layers/linear.h"
#include "nets/net.h"
#include "tensor/autograd.h"
#include "tools/leuko/commands.h"

namespace leuko::cli {

namespace {

int64_t own_params(const Module& m) {
  int64_t n = 0;
  for (const auto& [name, t] : m.named_parameters()) {
    if (name.find('.') == std::string::npos) n += t.numel();
  }
  return n;
}

int64_t macs_of(const Module& m, const Shape& out) {
  const int64_t per_image = shape_numel(out) / std::max<int64_t>(1, out.empty() ? 1 : out[0]);
  if (auto* c = dynamic_cast<const Conv2d*>(&m)) {
    return per_image * (c->in_channels / c->options.groups) * c->kernel_size.h * c->kernel_size.w;
  }
  if (auto* l = dynamic_cast<const Linear*>(&m)) return per_image * l->weight.size(1);
  return 0;
}

std::string group(int64_t n) {  // 57012034 -> "57,012,034"
  std::string s = std::to_string(n), out;
  for (size_t i = 0; i < s.size(); i++) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

void info(const std::string& model, int64_t classes, int64_t input, bool json) {
  NetOptions o;
  o.num_classes = classes;
  std::shared_ptr<Net> net = make_net(model, o);
  if (input <= 0) input = net->default_input_size();
  LEUKO_CHECK(input >= 16, "--input: ", input, " is too small an image side");
  std::map<const Module*, std::string> names;
  for (auto& [n, m] : net->named_modules()) names[m] = n;

  net->eval();
  ModuleTrace trace;
  {
    autograd::NoGradGuard no_grad;
    Tensor x = Tensor::zeros({1, 3, input, input});
    try {
      (*net)(x);
    } catch (const Error& e) {
      throw Error("--input " + std::to_string(input) + " is too small for " + model + ": " + e.what());
    }
  }
  struct Row {
    std::string name, type;
    Shape out;
    int64_t params, macs;
  };
  std::vector<Row> rows;
  std::set<const Module*> counted;
  int64_t table_params = 0, total_macs = 0;
  for (const TraceRow& r : trace.rows) {
    if (!r.module->children().empty() || r.module == net.get()) continue;  // leaves only
    const bool first = counted.insert(r.module).second;
    const int64_t p = first ? own_params(*r.module) : 0;  // a module called twice counts once
    const int64_t m = macs_of(*r.module, r.output);
    rows.push_back({names[r.module], r.module->type_name(), r.output, p, m});
    table_params += p;
    total_macs += m;
  }
  const int64_t total = net->parameter_count();
  // Parameters of modules that did not run in evaluation (the auxiliary classifiers).
  std::vector<std::pair<std::string, int64_t>> idle;
  for (auto& [n, m] : net->named_modules()) {
    if (!m->children().empty() || counted.count(m)) continue;
    if (own_params(*m) > 0) idle.emplace_back(n, own_params(*m));
  }

  if (json) {
    nlohmann::json j;
    j["model"] = model;
    j["classes"] = classes;
    j["input"] = {1, 3, input, input};
    j["layers"] = nlohmann::json::array();
    for (const Row& r : rows) {
      j["layers"].push_back({{"name", r.name}, {"type", r.type}, {"output", r.out}, {"params", r.params},
                             {"macs", r.macs}});
    }
    int64_t idle_total = 0;
    for (auto& [n, p] : idle) idle_total += p;
    j["training_only_params"] = idle_total;
    j["macs"] = total_macs;
    j["parameters"] = total;
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("%s, %lld classes, input 1x3x%lldx%lld\n\n", model.c_str(), static_cast<long long>(classes),
              static_cast<long long>(input), static_cast<long long>(input));
  std::printf("%-34s %-18s %-20s %14s %16s\n", "layer", "type", "output", "parameters", "multiply-adds");
  for (const Row& r : rows) {
    std::printf("%-34s %-18s %-20s %14s %16s\n", r.name.c_str(), r.type.c_str(), shape_str(r.out).c_str(),
                group(r.params).c_str(), group(r.macs).c_str());
  }
  std::printf("\n%-74s %14s %16s\n", "total (inference path)", group(table_params).c_str(), group(total_macs).c_str());
  if (!idle.empty()) {
    int64_t idle_total = 0;
    for (auto& [n, p] : idle) idle_total += p;
    std::printf("training-only layers (auxiliary classifiers): %s parameters\n", group(idle_total).c_str());
  }
  std::printf("multiply-adds per image: %.2f G\n", double(total_macs) / 1e9);
  std::printf("parameters: %lld\n", static_cast<long long>(total));
}

}  // namespace

void register_info(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Print a network's layers, output shapes, parameters and multiply-adds");
  static std::string model;
  static int64_t classes = 2, input = 0;
  static bool json = false;
  cmd->add_option("--model", model, "Network: alexnet, alexnet_lrn, vgg16, vgg16_bn, resnet18, resnet50, googlenet, "
                                    "inception_v3")->required();
  cmd->add_option("--classes", classes, "Number of classes")->capture_default_str();
  cmd->add_option("--input", input, "Image side in pixels (default: the network's own, 224 or 299)");
  cmd->add_flag("--json", json, "Print JSON instead of a table");
  cmd->callback([] { info(model, classes, input, json); });
}

}  // namespace leuko::cli
