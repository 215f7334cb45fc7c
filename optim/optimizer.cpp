#include "optim/optimizer.h"

#include <cmath>

#include "tensor/autograd.h"
#if LEUKO_WITH_CUDA
#include "tensor/cuda/graph.h"
#endif

namespace leuko::optim {

Optimizer::Optimizer(NamedTensors params) : params_(std::move(params)) {
  for (const auto& [name, p] : params_) {
    LEUKO_CHECK(p.defined() && p.requires_grad(), "optimizer: parameter '", name, "' does not require grad");
    LEUKO_CHECK(p.dtype() == DType::f32 || (p.dtype() == DType::f64 && !p.is_cuda()), "optimizer: parameter '", name,
                "' is ", p.describe(), "; optimizers update float32 (or float64 on the CPU)");
  }
}

void Optimizer::zero_grad() {
  for (auto& [name, p] : params_) p.zero_grad();
}

namespace {
// True while a CUDA graph records the step (tensor/cuda/graph.h): step() then records the
// update and leaves the host's part to prepare_replay().
bool recording() {
#if LEUKO_WITH_CUDA
  return cuda::capturing();
#else
  return false;
#endif
}

// A step that makes the optimizer's state (momentum, Adam's moments, the device step scalars)
// as zeros: a graph would zero it again at every replay.
void check_recordable(bool makes_state) {
  LEUKO_CHECK(!makes_state || !recording(), "optimizer: a CUDA graph must record a step after the first (the ",
              "first makes the optimizer's buffers)");
}
}  // namespace

void Optimizer::prepare_replay() {
  steps_++;
  bool gpu = false;
  for (const auto& [name, p] : params_) gpu = gpu || p.is_cuda();
  if (gpu) write_scalars();
}

float* Optimizer::device_scalars() {
  if (!scalars_.defined()) scalars_ = Tensor::zeros({kernels::kStepScalars}, DType::f32, Device::CUDA);
  return scalars_.data<float>();
}

Tensor& Optimizer::buffer(const std::string& kind, size_t i) {
  auto& list = buffers_[kind];
  if (list.size() != params_.size()) list.resize(params_.size());
  if (!list[i].defined()) list[i] = Tensor::zeros_like(params_[i].second);
  return list[i];
}

bool Optimizer::has_buffer(const std::string& kind, size_t i) const {
  auto it = buffers_.find(kind);
  return it != buffers_.end() && i < it->second.size() && it->second[i].defined();
}

NamedTensors Optimizer::state() const {
  NamedTensors out;
  for (const auto& [kind, list] : buffers_) {
    for (size_t i = 0; i < list.size(); i++) {
      if (list[i].defined()) out.emplace_back(kind + "." + params_[i].first, list[i]);
    }
  }
  return out;
}

std::map<std::string, std::string> Optimizer::state_metadata() const {
  char lr[32];
  std::snprintf(lr, sizeof lr, "%.17g", lr_);
  return {{"optim.name", name()}, {"optim.steps", std::to_string(steps_)}, {"optim.lr", lr}};
}

void Optimizer::load_state(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata) {
  auto it = metadata.find("optim.name");
  LEUKO_CHECK(it != metadata.end(), "optimizer state: no 'optim.name' in the checkpoint's metadata");
  LEUKO_CHECK(it->second == name(), "optimizer state is for '", it->second, "', this run uses '", name(), "'");
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < params_.size(); i++) index[params_[i].first] = i;
  // Validate everything before changing anything.
  std::vector<std::tuple<std::string, size_t, Tensor>> loads;
  for (const auto& [key, t] : tensors) {
    const size_t dot = key.find('.');
    LEUKO_CHECK(dot != std::string::npos, "optimizer state: bad key '", key, "'");
    const std::string kind = key.substr(0, dot), pname = key.substr(dot + 1);
    auto p = index.find(pname);
    LEUKO_CHECK(p != index.end(), "optimizer state: key '", key, "' names no parameter of this model");
    LEUKO_CHECK(t.shape() == params_[p->second].second.shape(), "optimizer state: key '", key, "' has shape ",
                shape_str(t.shape()), " where the parameter has ", shape_str(params_[p->second].second.shape()));
    loads.emplace_back(kind, p->second, t);
  }
  buffers_.clear();
  autograd::NoGradGuard no_grad;
  for (auto& [kind, i, t] : loads) {
    Tensor& b = buffer(kind, i);
    b.copy_(t.detach().to(b.dtype()).to(b.device()));
  }
  steps_ = std::stoll(metadata.at("optim.steps"));
  if (metadata.count("optim.lr")) lr_ = std::stod(metadata.at("optim.lr"));
}

// ---- SGD ------------------------------------------------------------------------------------

SGD::SGD(NamedTensors params, const SGDOptions& options) : Optimizer(std::move(params)), options_(options) {
  LEUKO_CHECK(options.lr >= 0, "sgd: learning rate ", options.lr, " is negative");
  LEUKO_CHECK(options.momentum >= 0, "sgd: momentum ", options.momentum, " is negative");
  LEUKO_CHECK(!options.nesterov || (options.momentum > 0 && options.dampening == 0),
              "sgd: Nesterov momentum needs a momentum and zero dampening");
  lr_ = options.lr;
}

kernels::SgdHyper SGD::hyper() const {
  return {lr_, options_.momentum, options_.dampening, options_.weight_decay, options_.nesterov};
}

void SGD::write_scalars() {
#if LEUKO_WITH_CUDA
  kernels::cuda::write_step_scalars(device_scalars(), hyper());
#endif
}

void SGD::step() {
  autograd::NoGradGuard no_grad;
  const kernels::SgdHyper h = hyper();
  const bool momentum = options_.momentum != 0;
  std::vector<kernels::ParamRef> gpu;
  for (size_t i = 0; i < params_.size(); i++) {
    Tensor& p = params_[i].second;
    Tensor g = p.grad();
    if (!g.defined()) continue;
    const bool first = momentum && !has_buffer("momentum_buffer", i);
    if (p.is_cuda()) check_recordable(first || !scalars_.defined());  // before anything is made
    Tensor buf = momentum ? buffer("momentum_buffer", i) : Tensor();
    if (p.is_cuda()) {
      gpu.push_back({p.data<float>(), g.data<float>(), momentum ? buf.data<float>() : nullptr, nullptr, nullptr,
                     p.numel(), first ? 1 : 0});
    } else if (p.dtype() == DType::f64) {
      kernels::cpu::sgd_update(p.data<double>(), g.data<double>(), momentum ? buf.data<double>() : nullptr, p.numel(),
                               h, first);
    } else {
      kernels::cpu::sgd_update(p.data<float>(), g.data<float>(), momentum ? buf.data<float>() : nullptr, p.numel(), h,
                               first);
    }
  }
  if (!gpu.empty()) {
#if LEUKO_WITH_CUDA
    if (!recording()) write_scalars();
    kernels::cuda::sgd_update_multi(gpu, h, device_scalars());
#endif
  }
  if (!recording()) steps_++;
}

// ---- Adam and AdamW ---------------------------------------------------------------------------

Adam::Adam(NamedTensors params, const AdamOptions& options, bool decoupled)
    : Optimizer(std::move(params)), options_(options), decoupled_(decoupled) {
  const char* n = decoupled ? "adamw" : "adam";
  LEUKO_CHECK(options.lr >= 0, n, ": learning rate ", options.lr, " is negative");
  LEUKO_CHECK(options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 && options.beta2 < 1, n,
              ": betas must lie in [0, 1)");
  LEUKO_CHECK(options.eps >= 0, n, ": eps ", options.eps, " is negative");
  lr_ = options.lr;
}

kernels::AdamHyper Adam::hyper() const {
  return {lr_,
          options_.beta1,
          options_.beta2,
          options_.eps,
          options_.weight_decay,
          decoupled_,
          options_.amsgrad,
          1 - std::pow(options_.beta1, double(steps_)),
          1 - std::pow(options_.beta2, double(steps_))};
}

void Adam::write_scalars() {
#if LEUKO_WITH_CUDA
  kernels::cuda::write_step_scalars(device_scalars(), hyper());
#endif
}

void Adam::step() {
  autograd::NoGradGuard no_grad;
  if (!recording()) steps_++;  // PyTorch counts the step before using it in the bias correction
  const kernels::AdamHyper h = hyper();
  std::vector<kernels::ParamRef> gpu;
  for (size_t i = 0; i < params_.size(); i++) {
    Tensor& p = params_[i].second;
    Tensor g = p.grad();
    if (!g.defined()) continue;
    if (p.is_cuda()) check_recordable(!has_buffer("exp_avg", i) || !scalars_.defined());  // before anything is made
    Tensor m = buffer("exp_avg", i), v = buffer("exp_avg_sq", i);
    Tensor vmax = options_.amsgrad ? buffer("max_exp_avg_sq", i) : Tensor();
    if (p.is_cuda()) {
      gpu.push_back({p.data<float>(), g.data<float>(), m.data<float>(), v.data<float>(),
                     options_.amsgrad ? vmax.data<float>() : nullptr, p.numel(), 0});
    } else if (p.dtype() == DType::f64) {
      kernels::cpu::adam_update(p.data<double>(), g.data<double>(), m.data<double>(), v.data<double>(),
                                options_.amsgrad ? vmax.data<double>() : nullptr, p.numel(), h);
    } else {
      kernels::cpu::adam_update(p.data<float>(), g.data<float>(), m.data<float>(), v.data<float>(),
                                options_.amsgrad ? vmax.data<float>() : nullptr, p.numel(), h);
    }
  }
  if (!gpu.empty()) {
#if LEUKO_WITH_CUDA
    if (!recording()) write_scalars();
    kernels::cuda::adam_update_multi(gpu, h, device_scalars());
#endif
  }
}

}  // namespace leuko::optim
