#include "tensor/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include "kernels/memory.h"
#include "tensor/profile.h"

namespace leuko {

Node::~Node() {
  // Take the edges out, and for each input node about to die with us, take its own edges out
  // too before it dies: the chain is then freed one link at a time.
  std::vector<std::shared_ptr<Node>> stack;
  for (Edge& e : inputs) {
    if (e.fn) stack.push_back(std::move(e.fn));
  }
  inputs.clear();
  while (!stack.empty()) {
    std::shared_ptr<Node> fn = std::move(stack.back());
    stack.pop_back();
    if (fn.use_count() != 1) continue;  // kept alive elsewhere
    for (Edge& e : fn->inputs) {
      if (e.fn) stack.push_back(std::move(e.fn));
    }
    fn->inputs.clear();
  }  // fn, now without edges, is freed here
}

}  // namespace leuko

namespace leuko::autograd {

namespace {
thread_local bool t_grad_enabled = true;

// grad += g, in place, on grad's device. Both have the same shape and dtype.
void accumulate_into(const Tensor& grad, const Tensor& g) {
  const int64_t n = grad.numel();
  if (grad.is_cuda()) {
#if LEUKO_WITH_CUDA
    if (grad.dtype() == DType::bf16) kernels::cuda::accumulate(grad.data<bf16>(), g.data<bf16>(), n);
    else kernels::cuda::accumulate(grad.data<float>(), g.data<float>(), n);
#endif
    return;
  }
  if (grad.dtype() == DType::bf16) kernels::cpu::accumulate(grad.data<bf16>(), g.data<bf16>(), n);
  else if (grad.dtype() == DType::f64) kernels::cpu::accumulate(grad.data<double>(), g.data<double>(), n);
  else kernels::cpu::accumulate(grad.data<float>(), g.data<float>(), n);
}

// Whether no other handle and no other view holds t's data, so that adding into it in place
// changes no other tensor. Handles share the TensorImpl and views share the Storage, so both
// counts must be 1.
bool sole_owner(const Tensor& t) {
  return t.impl_ptr().use_count() == 1 && t.impl().storage.use_count() == 1 && t.impl().offset == 0;
}

// A leaf's gradient, which the user and the optimizer hold and later backwards add into in
// place: `g` itself when it owns its data alone, else a copy (g may be the caller's upstream
// gradient, a view of another node's gradient, or a saved tensor).
Tensor owned(const Tensor& g) { return sole_owner(g) ? g.detach() : g.detach().clone(); }

// slot += g, for the gradient that a node waits for (copy on write). The slot took the first
// gradient that reached it as it came, without a copy, though another slot or a view may share
// its buffer: add and add_relu hand one gradient to both inputs (a ResNet block's body and its
// shortcut), reshape's is a view of its output's. A second gradient is added in place when the
// slot owns its buffer alone, as it usually does by then (the other holders have been consumed),
// and into a copy otherwise, as PyTorch's engine does (its InputBuffer). Copying every shared
// gradient as it arrived cost ResNet-50 two passes over each block's output per step.
void accumulate_slot(Tensor& slot, const Tensor& g) {
  if (!sole_owner(slot)) slot = slot.detach().clone();
  accumulate_into(slot, g);
}

void check_grad(const Node& node, size_t i, const Edge& input, const Tensor& g) {
  LEUKO_CHECK(g.shape() == input.shape && g.dtype() == input.dtype && g.device() == input.device,
              "backward of '", node.name, "' returned a gradient ", g.describe(), " for input ", i, " which is ",
              dtype_name(input.dtype), shape_str(input.shape), " on ", device_name(input.device));
}
}  // namespace

bool grad_enabled() { return t_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = previous_; }

bool needs_record(const std::vector<Tensor>& inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor& t : inputs) {
    if (t.defined() && t.requires_grad()) return true;
  }
  return false;
}
bool needs_record(std::initializer_list<Tensor> inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor& t : inputs) {
    if (t.defined() && t.requires_grad()) return true;
  }
  return false;
}

void record(Tensor& out, const char* name, const std::vector<Tensor>& inputs, BackwardFn fn) {
  auto node = std::make_shared<Node>();
  node->name = name;
  node->inputs.resize(inputs.size());
  node->needs.resize(inputs.size(), false);
  for (size_t i = 0; i < inputs.size(); i++) {
    const Tensor& in = inputs[i];
    if (in.defined() && in.requires_grad()) {
      Edge& e = node->inputs[i];
      if (in.grad_fn()) e.fn = in.grad_fn();
      else e.leaf = in;
      e.shape = in.shape();
      e.dtype = in.dtype();
      e.device = in.device();
      e.format = in.memory_format();
      node->needs[i] = true;
    }
  }
  node->backward = std::move(fn);
  out.impl().requires_grad = true;
  out.impl().grad_fn = std::move(node);
  profile::mark(name, profile::Phase::forward);  // the op has queued its forward (tensor/profile.h)
}

void backward(const Tensor& root, const Tensor& grad_in, bool retain_graph) {
  LEUKO_CHECK(root.requires_grad(), "backward() through a tensor that does not require grad (",
              root.describe(), "): mark the leaves with set_requires_grad() before computing it");
  Tensor grad = grad_in;
  if (!grad.defined()) {
    LEUKO_CHECK(root.numel() == 1, "backward() on a non-scalar tensor ", root.describe(),
                " needs an upstream gradient of the same shape");
    grad = Tensor::ones(root.shape(), root.dtype(), root.device());
  }
  LEUKO_CHECK(grad.shape() == root.shape() && grad.dtype() == root.dtype() && grad.device() == root.device(),
              "backward(): the upstream gradient ", grad.describe(), " does not match the tensor ",
              root.describe());
  if (grad.memory_format() != root.memory_format()) grad = grad.detach().to(root.memory_format());

  NoGradGuard no_grad;  // the backward closures compute with ops that must not record
  if (root.is_leaf()) {
    Tensor leaf = root;
    if (leaf.grad().defined()) accumulate_into(leaf.grad(), grad);
    else leaf.set_grad(owned(grad));
    return;
  }

  // Reverse topological order by an iterative depth-first search (deep nets would overflow a
  // recursive one): a node is emitted after every node that consumes its output.
  // Nodes are held by shared_ptr here: freeing a node's inputs below may drop the last other
  // reference to the nodes it points to.
  std::vector<std::shared_ptr<Node>> order;
  std::unordered_set<Node*> seen;
  std::vector<std::pair<std::shared_ptr<Node>, size_t>> stack{{root.grad_fn(), 0}};
  seen.insert(root.grad_fn().get());
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->inputs.size()) {
      const std::shared_ptr<Node>& fn = node->inputs[next++].fn;
      if (fn && seen.insert(fn.get()).second) stack.emplace_back(fn, 0);
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }
  LEUKO_CHECK(!order.empty() && order.back() == root.grad_fn(), "autograd: graph traversal failed");

  std::unordered_map<Node*, Tensor> grads;  // gradient w.r.t. each node's output
  grads[root.grad_fn().get()] = grad;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* node = it->get();
    auto found = grads.find(node);
    if (found == grads.end()) continue;  // no gradient reached it
    Tensor g = std::move(found->second);
    grads.erase(found);
    LEUKO_CHECK(node->backward != nullptr, "backward through '", node->name,
                "' a second time: its graph was freed by the first backward (pass retain_graph)");
    std::vector<Tensor> gin = node->backward(g, node->needs);
    profile::mark(node->name.c_str(), profile::Phase::backward);
    LEUKO_CHECK(gin.size() == node->inputs.size(), "backward of '", node->name, "' returned ", gin.size(),
                " gradients for ", node->inputs.size(), " inputs");
    bool summed = false;  // a gradient was added to another: the profile charges that to "accumulate"
    for (size_t i = 0; i < gin.size(); i++) {
      const Edge& in = node->inputs[i];
      if ((!in.fn && !in.leaf.defined()) || !gin[i].defined()) continue;
      check_grad(*node, i, in, gin[i]);
      // Every backward receives its output's gradient in its output's memory order (an op
      // may return an NCHW gradient for a channels_last input, or the reverse).
      if (gin[i].memory_format() != in.format) gin[i] = gin[i].to(in.format);
      if (in.fn) {
        Tensor& slot = grads[in.fn.get()];
        if (!slot.defined()) {
          slot = gin[i].detach();  // no copy: accumulate_slot copies on write
        } else {
          accumulate_slot(slot, gin[i]);
          summed = true;
        }
      } else {
        Tensor leaf = in.leaf;
        if (leaf.grad().defined()) {
          accumulate_into(leaf.grad(), gin[i]);
          summed = true;
        } else {
          leaf.set_grad(owned(gin[i]));
        }
      }
    }
    if (summed) profile::mark("accumulate", profile::Phase::backward);
    if (!retain_graph) {
      // Free what this node saved: activations go as soon as their backward has run.
      node->backward = nullptr;
      node->inputs.clear();
      node->needs.clear();
    }
  }
}

}  // namespace leuko::autograd
