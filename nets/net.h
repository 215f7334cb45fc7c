// The networks of the study, built from layers/ modules with torchvision's structure, names
// (state_dict keys) and initialisation, for any number of classes:
//   alexnet, alexnet_lrn (the original with local response norm), vgg16, vgg16_bn,
//   resnet18, resnet50, googlenet (Inception v1), inception_v3.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "layers/module.h"

namespace leuko {

// A network: forward() gives the logits. In training, GoogLeNet and Inception-v3 also have
// auxiliary classifiers; forward_train() returns the main logits first, then the auxiliary ones,
// and aux_weights() the weight of each auxiliary loss (0.3 each for GoogLeNet, 0.4 for v3).
class Net : public Module {
 public:
  virtual std::vector<Tensor> forward_train(const Tensor& x) { return {(*this)(x)}; }
  virtual std::vector<double> aux_weights() const { return {}; }
  // The input side the network was designed for (224, or 299 for Inception-v3).
  virtual int64_t default_input_size() const { return 224; }
  std::string name;  // as on the command line: "resnet50"
};

struct NetOptions {
  int64_t num_classes = 2;
  bool aux_logits = true;  // GoogLeNet / Inception-v3: build the auxiliary classifiers
  double dropout = -1;     // classifier dropout; < 0: the network's default
  double aux_dropout = -1; // GoogLeNet's auxiliary classifiers' dropout; < 0: 0.7
};

// Builds the network `name` (see net_names()), initialised from leuko's default generator.
// Throws a one-line Error listing the known names for an unknown one.
std::shared_ptr<Net> make_net(const std::string& name, const NetOptions& options = {});
std::vector<std::string> net_names();

}  // namespace leuko
