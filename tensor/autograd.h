// The autograd engine: a graph recorded as ops run, and backward() over it.
//
// Every differentiable op (layers/) computes its output, then, if grad mode is on and an input
// requires grad, calls record(): the output gets a Node with an edge to each input (the node
// that made it, or the leaf) and a closure that maps the output's gradient to the inputs'
// gradients. backward() visits the nodes in reverse
// topological order, so a tensor used twice has both contributions summed before its own node
// runs; gradients of leaves accumulate (+=) into their .grad, as PyTorch's do.
//
// Closures save what the backward needs as detached tensors (no history), never the output
// tensor itself with its grad_fn: that would be a reference cycle out -> node -> out.
// After a node's backward has run, the engine drops its closure and edges, so the
// activations it saved are freed as soon as they are no longer needed; a node never holds an
// activation it did not save.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace leuko {

// grads_in[i] is the gradient of input i (undefined where needs[i] is false, or where the
// input has no gradient, as for integer-like inputs).
using BackwardFn =
    std::function<std::vector<Tensor>(const Tensor& grad_out, const std::vector<bool>& needs)>;

// Where the gradient of one input of a node goes, without holding the input's data: PyTorch's
// "edge". Holding the input tensor itself would keep every activation alive until its
// consumer's backward ran, even those no backward needs (a ReLU needs its output, not the batch
// norm output it read): up to twice the memory of a training step.
struct Edge {
  std::shared_ptr<Node> fn;  // the node that computed the input; null for a leaf
  Tensor leaf;               // the input itself when it is a leaf (a parameter): its .grad accumulates
  Shape shape;               // what the gradient must be: the input's shape, dtype and device
  DType dtype = DType::f32;
  Device device = Device::CPU;
  MemoryFormat format = MemoryFormat::nchw;  // the engine hands the gradient over in this order
};

struct Node {
  std::string name;          // the op, for error messages and graph dumps: "conv2d"
  std::vector<Edge> inputs;  // one per input; fn and leaf both null where it needs no gradient
  std::vector<bool> needs;   // needs[i]: input i requires grad
  BackwardFn backward;

  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  // Frees the chain of nodes below this one iteratively: a graph of 10^5 ops freed by nested
  // destructors (node -> its input's node -> ...) would overflow the stack.
  ~Node();
};

namespace autograd {

// Grad mode: on by default, per thread. NoGradGuard turns it off for a scope (evaluation,
// optimizer updates, the engine's own backward closures).
bool grad_enabled();
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when grad mode is on and any of the inputs requires grad: the op must record.
bool needs_record(std::initializer_list<Tensor> inputs);
bool needs_record(const std::vector<Tensor>& inputs);

// Attaches a Node to `out` (which then requires grad). Call only when needs_record().
void record(Tensor& out, const char* name, const std::vector<Tensor>& inputs, BackwardFn fn);

// The engine. `grad` has root's shape (or is undefined for a one-element root).
void backward(const Tensor& root, const Tensor& grad, bool retain_graph);

}  // namespace autograd
}  // namespace leuko
