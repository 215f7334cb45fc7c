#include <functional>
#include <map>

#include "nets/nets.h"

namespace leuko {

namespace {
using Builder = std::function<std::shared_ptr<Net>(const NetOptions&)>;
const std::vector<std::pair<std::string, Builder>>& builders() {
  static const std::vector<std::pair<std::string, Builder>> b = {
      {"alexnet", [](const NetOptions& o) { return nets::make_alexnet(o, false); }},
      {"alexnet_lrn", [](const NetOptions& o) { return nets::make_alexnet(o, true); }},
      {"vgg16", [](const NetOptions& o) { return nets::make_vgg16(o, false); }},
      {"vgg16_bn", [](const NetOptions& o) { return nets::make_vgg16(o, true); }},
      {"resnet18", nets::make_resnet18},
      {"resnet50", nets::make_resnet50},
      {"googlenet", nets::make_googlenet},
      {"inception_v3", nets::make_inception_v3},
  };
  return b;
}
}  // namespace

std::vector<std::string> net_names() {
  std::vector<std::string> names;
  for (const auto& [n, b] : builders()) names.push_back(n);
  return names;
}

std::shared_ptr<Net> make_net(const std::string& name, const NetOptions& options) {
  LEUKO_CHECK(options.num_classes >= 1, "--classes: ", options.num_classes, " is not a number of classes");
  for (const auto& [n, b] : builders()) {
    if (n == name) {
      std::shared_ptr<Net> net = b(options);
      net->name = name;
      return net;
    }
  }
  std::string list;
  for (const auto& n : net_names()) list += (list.empty() ? "" : ", ") + n;
  throw Error("--model: unknown network '" + name + "' (known: " + list + ")");
}

}  // namespace leuko
