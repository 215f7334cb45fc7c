// Module: a layer or network with named parameters, buffers and child modules.
//
// Names follow PyTorch's state_dict exactly: a module lists its own parameters, then its own
// buffers, then each child's under "<child>.", in registration order, so a torchvision model's
// keys ("features.0.weight", "layer1.0.bn1.running_mean", "bn1.num_batches_tracked") are
// leuko's keys and weights move both ways through safetensors.
//
// Parameters are leaf tensors that require grad; buffers (batch-norm statistics) do not.
// Tensors are held by handle: the handles a layer keeps in its members and the handles in the
// registry are the same tensors, and load_state_dict / to() update them in place so an
// optimizer holding them keeps working.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace leuko {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual Tensor forward(const Tensor& x) = 0;
  // forward(x), seen by an active ModuleTrace (call children this way, not through forward).
  Tensor operator()(const Tensor& x);
  // Modules whose op can absorb a ReLU after it (Conv2d, Linear, batch norm) answer true and
  // give relu(forward(x)) as one op in forward_relu: Sequential runs such a module followed by
  // a ReLU module that way. The default forward_relu throws.
  virtual bool fuses_relu() const { return false; }
  virtual Tensor forward_relu(const Tensor& x);
  // The class name, as PyTorch prints it: "Conv2d", "BatchNorm2d", "Sequential".
  virtual std::string type_name() const = 0;
  // Constructor arguments for printing: "3, 64, kernel_size=(11, 11), stride=(4, 4)".
  virtual std::string extra_repr() const { return ""; }

  // ---- Structure ----------------------------------------------------------------------------
  NamedTensors named_parameters(const std::string& prefix = "") const;
  NamedTensors named_buffers(const std::string& prefix = "") const;
  std::vector<Tensor> parameters() const;
  // Parameters then buffers per module, depth first: PyTorch's state_dict order.
  NamedTensors state_dict(const std::string& prefix = "") const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }
  // Every module below this one with its dotted name ("" for this one), depth first.
  std::vector<std::pair<std::string, Module*>> named_modules(const std::string& prefix = "");
  int64_t parameter_count() const;
  // A PyTorch-style printout of the module tree.
  std::string repr(int indent = 0) const;

  // ---- State --------------------------------------------------------------------------------
  // Copies every tensor of `state` into this module's tensor of the same name. strict: every
  // key must match both ways. Throws a one-line Error naming the first key that is missing,
  // unexpected, or of another shape or dtype, and changes nothing in that case.
  void load_state_dict(const NamedTensors& state, bool strict = true);
  void save(const std::string& path, const std::map<std::string, std::string>& metadata = {}) const;
  void load(const std::string& path, bool strict = true);

  // ---- Mode and placement -------------------------------------------------------------------
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Moves every parameter and buffer to `device` in place (the handles stay valid).
  void to(Device device);
  // Converts every floating parameter and buffer to `dtype` in place (float64 for gradient
  // checks of whole networks; int64 buffers such as num_batches_tracked stay as they are).
  void to(DType dtype);
  void zero_grad();

 protected:
  Tensor& register_parameter(const std::string& name, Tensor t);
  Tensor& register_buffer(const std::string& name, Tensor t);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }

  bool training_ = true;

 private:
  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

// Records every module call made while it is alive (on this thread): the input and output
// shapes of each, in call order. `leuko info` builds its layer table from one traced forward.
struct TraceRow {
  const Module* module;
  Shape input, output;
};
class ModuleTrace {
 public:
  ModuleTrace();
  ~ModuleTrace();
  ModuleTrace(const ModuleTrace&) = delete;
  ModuleTrace& operator=(const ModuleTrace&) = delete;
  std::vector<TraceRow> rows;
};

// For a module whose work another op did (a ReLU fused into the batch norm before it,
// layers/batchnorm.h bn_relu): records its call in this thread's active ModuleTrace, if any,
// as operator() would have.
void trace_call(const Module& m, const Shape& input, const Shape& output);

namespace detail {
// A float as Python's repr prints it ("0.5", "1.0", "0.0001", "1e-05"), so extra_repr() prints
// what PyTorch prints.
std::string py_float(double v);
}  // namespace detail

// Moves a tensor's data to another device in place: every handle to it sees the new storage.
void move_tensor_to(Tensor& t, Device device);

// Runs its children in order; they are named "0", "1", ... as in torch.nn.Sequential. A child
// that fuses_relu() followed by a ReLU child runs the pair as its one fused op.
class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<Module>> layers);
  void push_back(std::shared_ptr<Module> m);
  // Adds a child under a name of its own (torchvision's named Sequentials, e.g. "conv", "bn").
  void add(const std::string& name, std::shared_ptr<Module> m);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Sequential"; }
  size_t size() const { return children().size(); }
  Module& operator[](size_t i) const { return *children()[i].second; }
};

}  // namespace leuko
