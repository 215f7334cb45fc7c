// Optimizers: SGD, Adam and AdamW over a model's named parameters, with PyTorch's update rules
// (kernels/optim.h) and their state saved and loaded with the model, so a run resumes exactly.
//
//   auto opt = optim::make_sgd(model.named_parameters(), {.lr = 0.01, .momentum = 0.9});
//   loss.backward(); opt->step(); opt->zero_grad();
//
// On the GPU all parameters are updated by one fused launch; on the CPU by a loop per tensor.
// A parameter without a gradient (unused in this step) is skipped, as in PyTorch.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/optim.h"
#include "layers/module.h"

namespace leuko::optim {

class Optimizer {
 public:
  explicit Optimizer(NamedTensors params);
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  // Drops every gradient (PyTorch's set_to_none), so the next backward writes them fresh.
  void zero_grad();
  // The learning rate used by the next step; schedules set it each step.
  double lr() const { return lr_; }
  void set_lr(double lr) { lr_ = lr; }
  int64_t steps() const { return steps_; }
  virtual std::string name() const = 0;

  // For a step recorded as a CUDA graph (tensor/cuda/graph.h). While a graph records, step()
  // records the update only: the host's part of a step (counting it, writing its learning rate
  // and bias corrections where the update reads them on the device) is this call's, made
  // before each replay, after set_lr. On the CPU it only counts the step.
  void prepare_replay();

  // State for a checkpoint: "<buffer>.<param name>" tensors (e.g. "exp_avg.fc.weight") and
  // metadata ("optim.name", "optim.steps", "optim.lr"). load_state checks it fits.
  NamedTensors state() const;
  std::map<std::string, std::string> state_metadata() const;
  void load_state(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata);

 protected:
  // The buffer `kind` of parameter i, created as zeros on first use.
  Tensor& buffer(const std::string& kind, size_t i);
  bool has_buffer(const std::string& kind, size_t i) const;
  // GPU: the step scalars (kernels/optim.h kStepScalars floats) the fused update reads, made on
  // first use; write_scalars() writes this step's there.
  float* device_scalars();
  virtual void write_scalars() = 0;
  NamedTensors params_;
  double lr_ = 0;
  int64_t steps_ = 0;
  Tensor scalars_;  // (kStepScalars,) float32 on the GPU

 private:
  std::map<std::string, std::vector<Tensor>> buffers_;  // kind -> one per parameter
};

struct SGDOptions {
  double lr = 0.01, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false;
};

class SGD : public Optimizer {
 public:
  SGD(NamedTensors params, const SGDOptions& options);
  void step() override;
  std::string name() const override { return "sgd"; }
  const SGDOptions& options() const { return options_; }

 private:
  kernels::SgdHyper hyper() const;
  void write_scalars() override;
  SGDOptions options_;
};

struct AdamOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  bool amsgrad = false;
};

// Adam, or AdamW when `decoupled` (weight decay applied to the weights, not the gradient).
class Adam : public Optimizer {
 public:
  Adam(NamedTensors params, const AdamOptions& options, bool decoupled = false);
  void step() override;
  std::string name() const override { return decoupled_ ? "adamw" : "adam"; }
  const AdamOptions& options() const { return options_; }

 private:
  kernels::AdamHyper hyper() const;  // with the bias corrections of step steps_
  void write_scalars() override;
  AdamOptions options_;
  bool decoupled_;
};

}  // namespace leuko::optim
