#include "layers/module.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>

#include "tensor/autograd.h"
#include "tensor/safetensors.h"

namespace leuko {

namespace {
thread_local ModuleTrace* t_trace = nullptr;
}

ModuleTrace::ModuleTrace() {
  LEUKO_CHECK(t_trace == nullptr, "ModuleTrace: another trace is already active on this thread");
  t_trace = this;
}
ModuleTrace::~ModuleTrace() { t_trace = nullptr; }

Tensor Module::forward_relu(const Tensor&) {
  LEUKO_FAIL(type_name(), ": no fused ReLU (fuses_relu() is false)");
}

void trace_call(const Module& m, const Shape& input, const Shape& output) {
  if (t_trace != nullptr) t_trace->rows.push_back({&m, input, output});
}

Tensor Module::operator()(const Tensor& x) {
  if (t_trace == nullptr) return forward(x);
  ModuleTrace* trace = t_trace;
  const size_t row = trace->rows.size();
  trace->rows.push_back({this, x.shape(), {}});  // reserve the row: parents come before children
  Tensor y = forward(x);
  trace->rows[row].output = y.shape();
  return y;
}

Tensor& Module::register_parameter(const std::string& name, Tensor t) {
  LEUKO_CHECK(t.defined(), "register_parameter('", name, "'): undefined tensor");
  if (!t.requires_grad()) t.set_requires_grad(true);
  params_.emplace_back(name, t);
  return params_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor t) {
  LEUKO_CHECK(t.defined(), "register_buffer('", name, "'): undefined tensor");
  buffers_.emplace_back(name, t);
  return buffers_.back().second;
}

NamedTensors Module::named_parameters(const std::string& prefix) const {
  NamedTensors out;
  for (const auto& [n, t] : params_) out.emplace_back(prefix + n, t);
  for (const auto& [n, m] : children_) {
    NamedTensors sub = m->named_parameters(prefix + n + ".");
    out.insert(out.end(), sub.begin(), sub.end());
  }
  return out;
}

NamedTensors Module::named_buffers(const std::string& prefix) const {
  NamedTensors out;
  for (const auto& [n, t] : buffers_) out.emplace_back(prefix + n, t);
  for (const auto& [n, m] : children_) {
    NamedTensors sub = m->named_buffers(prefix + n + ".");
    out.insert(out.end(), sub.begin(), sub.end());
  }
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters()) out.push_back(t);
  return out;
}

NamedTensors Module::state_dict(const std::string& prefix) const {
  NamedTensors out;
  for (const auto& [n, t] : params_) out.emplace_back(prefix + n, t);
  for (const auto& [n, t] : buffers_) out.emplace_back(prefix + n, t);
  for (const auto& [n, m] : children_) {
    NamedTensors sub = m->state_dict(prefix + n + ".");
    out.insert(out.end(), sub.begin(), sub.end());
  }
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules(const std::string& prefix) {
  std::vector<std::pair<std::string, Module*>> out{{prefix, this}};
  for (auto& [n, m] : children_) {
    auto sub = m->named_modules(prefix.empty() ? n : prefix + "." + n);
    out.insert(out.end(), sub.begin(), sub.end());
  }
  return out;
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (const Tensor& t : parameters()) n += t.numel();
  return n;
}

std::string Module::repr(int indent) const {
  // As PyTorch's: a one-line extra_repr without children stays on the name's line; otherwise
  // each line of extra_repr, then each child, goes on a line of its own.
  const std::string extra = extra_repr();
  if (children_.empty() && extra.find('\n') == std::string::npos) return type_name() + "(" + extra + ")";
  std::string s = type_name() + "(\n";
  const std::string pad(size_t(indent + 2), ' ');
  for (size_t begin = 0; begin < extra.size();) {
    const size_t end = std::min(extra.find('\n', begin), extra.size());
    s += pad + extra.substr(begin, end - begin) + "\n";
    begin = end + 1;
  }
  for (const auto& [n, m] : children_) s += pad + "(" + n + "): " + m->repr(indent + 2) + "\n";
  return s + std::string(size_t(indent), ' ') + ")";
}

void Module::load_state_dict(const NamedTensors& state, bool strict) {
  NamedTensors mine = state_dict();
  std::map<std::string, Tensor> given(state.begin(), state.end());
  // Check everything first, so a mismatch changes nothing.
  for (const auto& [name, t] : mine) {
    auto it = given.find(name);
    if (it == given.end()) {
      LEUKO_CHECK(!strict, "missing key '", name, "' (", t.describe(), ")");
      continue;
    }
    const Tensor& g = it->second;
    LEUKO_CHECK(g.shape() == t.shape(), "key '", name, "' has shape ", shape_str(g.shape()), " where the model has ",
                shape_str(t.shape()));
    LEUKO_CHECK(g.dtype() == t.dtype() || (g.dtype() != DType::i64 && t.dtype() != DType::i64), "key '", name,
                "' is ", dtype_name(g.dtype()), " where the model has ", dtype_name(t.dtype()));
  }
  if (strict) {
    std::set<std::string> names;
    for (const auto& [name, t] : mine) names.insert(name);
    for (const auto& [name, t] : state) LEUKO_CHECK(names.count(name), "unexpected key '", name, "'");
  }
  autograd::NoGradGuard no_grad;
  for (auto& [name, t] : mine) {
    auto it = given.find(name);
    if (it == given.end()) continue;
    Tensor src = it->second.detach().to(t.dtype()).to(t.device());
    t.copy_(src);
  }
}

void Module::save(const std::string& path, const std::map<std::string, std::string>& metadata) const {
  save_safetensors(path, state_dict(), metadata);
}

void Module::load(const std::string& path, bool strict) {
  SafetensorsFile f = load_safetensors(path);
  try {
    load_state_dict(f.tensors, strict);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, m] : children_) m->train(on);
}

namespace detail {
std::string py_float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  // The fewest significant digits that read back as v (Python's repr rule), found in %e form.
  char buf[64];
  int prec = 0;
  for (; prec < 17; prec++) {
    std::snprintf(buf, sizeof buf, "%.*e", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  const int exp10 = std::atoi(std::strchr(buf, 'e') + 1);
  if (exp10 < -4 || exp10 >= 16) return buf;  // Python switches to "1e-05" outside this range
  std::snprintf(buf, sizeof buf, "%.*f", prec - exp10 > 0 ? prec - exp10 : 0, v);
  std::string s = buf;
  if (s.find('.') == std::string::npos) s += ".0";  // Python prints 1.0, not 1
  return s;
}
}  // namespace detail

void move_tensor_to(Tensor& t, Device device) {
  if (!t.defined() || t.device() == device) return;
  Tensor moved = t.detach().to(device);
  TensorImpl& impl = t.impl();
  impl.storage = moved.impl().storage;
  impl.offset = moved.impl().offset;
  if (impl.grad) {
    Tensor g(impl.grad);
    move_tensor_to(g, device);
  }
}

void Module::to(Device device) {
  for (auto& [n, t] : params_) move_tensor_to(t, device);
  for (auto& [n, t] : buffers_) move_tensor_to(t, device);
  for (auto& [n, m] : children_) m->to(device);
}

namespace {
void convert_in_place(Tensor& t, DType dtype) {
  if (!t.defined() || t.dtype() == dtype || t.dtype() == DType::i64) return;
  Tensor converted = t.detach().to(dtype);
  TensorImpl& impl = t.impl();
  impl.storage = converted.impl().storage;
  impl.offset = 0;
  impl.dtype = dtype;
  impl.grad.reset();
}
}  // namespace

void Module::to(DType dtype) {
  for (auto& [n, t] : params_) convert_in_place(t, dtype);
  for (auto& [n, t] : buffers_) convert_in_place(t, dtype);
  for (auto& [n, m] : children_) m->to(dtype);
}

void Module::zero_grad() {
  for (Tensor& t : parameters()) t.zero_grad();
}

Sequential::Sequential(std::vector<std::shared_ptr<Module>> layers) {
  for (auto& m : layers) push_back(std::move(m));
}

void Sequential::push_back(std::shared_ptr<Module> m) { register_module(std::to_string(size()), std::move(m)); }
void Sequential::add(const std::string& name, std::shared_ptr<Module> m) { register_module(name, std::move(m)); }

Tensor Sequential::forward(const Tensor& x) {
  const auto& kids = children();
  Tensor h = x;
  for (size_t i = 0; i < kids.size(); i++) {
    Module& m = *kids[i].second;
    // A convolution, linear layer or batch norm followed by a ReLU runs as one fused op (the
    // ReLU done in the same pass: layers/conv2d.h conv2d_relu); a trace still sees both modules.
    if (i + 1 < kids.size() && m.fuses_relu() && kids[i + 1].second->type_name() == "ReLU") {
      const Shape in = h.shape();
      h = m.forward_relu(h);
      trace_call(m, in, h.shape());
      trace_call(*kids[i + 1].second, h.shape(), h.shape());
      i++;
      continue;
    }
    h = m(h);
  }
  return h;
}

}  // namespace leuko
