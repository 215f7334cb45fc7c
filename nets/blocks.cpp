#include "nets/blocks.h"

#include "tensor/autograd.h"

namespace leuko::nets {

void init_kaiming_fan_out(Module& model, double linear_std) {
  autograd::NoGradGuard no_grad;
  for (auto& [name, m] : model.named_modules()) {
    if (auto* c = dynamic_cast<Conv2d*>(m)) {
      init::kaiming_normal_(c->weight, 0, init::FanMode::fan_out, "relu");
      if (c->bias.defined()) init::zeros_(c->bias);
    } else if (auto* b = dynamic_cast<BatchNormBase*>(m)) {
      if (b->weight.defined()) init::ones_(b->weight);
      if (b->bias.defined()) init::zeros_(b->bias);
    } else if (auto* l = dynamic_cast<Linear*>(m); l && linear_std > 0) {
      init::normal_(l->weight, 0, linear_std);
      if (l->bias.defined()) init::zeros_(l->bias);
    }
  }
}

void init_trunc_normal(Module& model, double std, const std::vector<std::pair<const Module*, double>>& overrides) {
  autograd::NoGradGuard no_grad;
  for (auto& [name, m] : model.named_modules()) {
    double s = std;
    for (const auto& [who, o] : overrides) {
      if (who == m) s = o;
    }
    if (auto* c = dynamic_cast<Conv2d*>(m)) {
      init::trunc_normal_(c->weight, 0, s, -2, 2);
    } else if (auto* l = dynamic_cast<Linear*>(m)) {
      init::trunc_normal_(l->weight, 0, s, -2, 2);
    } else if (auto* b = dynamic_cast<BatchNormBase*>(m)) {
      if (b->weight.defined()) init::ones_(b->weight);
      if (b->bias.defined()) init::zeros_(b->bias);
    }
  }
}

}  // namespace leuko::nets
