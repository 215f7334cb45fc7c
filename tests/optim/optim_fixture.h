// The optimizer a torch.optim fixture (tests/fixtures/fx_optim.py) was made with, rebuilt from
// its metadata, for the CPU and the GPU trajectory tests.
#pragma once

#include <memory>
#include <string>

#include "fixture.h"
#include "optim/optimizer.h"

namespace leuko::test {

inline std::unique_ptr<optim::Optimizer> optimizer_of_fixture(const std::string& config, NamedTensors params,
                                                              const Fixture& fx) {
  auto num = [&](const char* k, double dflt) { return fx.file.metadata.count(k) ? fx.meta_double(k) : dflt; };
  auto flag = [&](const char* k) { return fx.file.metadata.count(k) && fx.meta(k) == "True"; };
  if (config.rfind("sgd", 0) == 0) {
    optim::SGDOptions o;
    o.lr = num("lr", 0.01);
    o.momentum = num("momentum", 0);
    o.dampening = num("dampening", 0);
    o.weight_decay = num("weight_decay", 0);
    o.nesterov = flag("nesterov");
    return std::make_unique<optim::SGD>(std::move(params), o);
  }
  const bool adamw = config.rfind("adamw", 0) == 0;
  optim::AdamOptions o;
  o.lr = num("lr", 1e-3);
  if (fx.file.metadata.count("betas")) {
    const std::string b = fx.meta("betas");
    o.beta1 = std::stod(b.substr(0, b.find(',')));
    o.beta2 = std::stod(b.substr(b.find(',') + 1));
  }
  o.eps = num("eps", 1e-8);
  o.weight_decay = num("weight_decay", adamw ? 1e-2 : 0.0);  // torch's defaults
  o.amsgrad = flag("amsgrad");
  return std::make_unique<optim::Adam>(std::move(params), o, adamw);
}

}  // namespace leuko::test
