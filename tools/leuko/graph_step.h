// `leuko train --graph`: the training step recorded once as a CUDA graph, then replayed for every
// batch of the same shape (tensor/cuda/graph.h).
//
// A replay computes what the eager step computes, bit for bit: the batch is copied into the
// tensors the graph recorded, the optimizer writes the step's learning rate and bias corrections
// to the device before it (optim::Optimizer::prepare_replay), and dropout draws the step's seeds
// on the device from replay(step) (the step must be seeded with seed_step). What it saves is the
// host's work per op: autograd records, allocations, descriptors and one launch per kernel.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "optim/optimizer.h"
#include "tensor/tensor.h"

namespace leuko::cuda {
class StepGraph;
}

namespace leuko::cli {

class GraphStep {
 public:
  // `step(images, labels, loss, logits)`: one whole training step (forward, loss, backward,
  // optimizer step, zero_grad) on its arguments, setting *loss (the loss, detached) and *logits
  // (the main logits, detached). It is run once, to be recorded.
  using StepFn = std::function<void(const Tensor& images, const Tensor& labels, Tensor* loss, Tensor* logits)>;
  explicit GraphStep(StepFn step);
  ~GraphStep();
  GraphStep(const GraphStep&) = delete;
  GraphStep& operator=(const GraphStep&) = delete;

  // Runs the step on (images, labels) as step `step` of the run: recorded at the first call (after
  // at least one eager step: the optimizer's buffers must exist), replayed at the later ones.
  // Returns false without running it when it cannot: a batch of another shape than the recorded
  // one, or a step that capture could not record (then said once on stderr, and every later
  // call returns false). The caller then runs the step eagerly, seeded again.
  bool run(const Tensor& images, const Tensor& labels, int64_t step, optim::Optimizer& optimizer);

  // The latest replay's loss () and main logits (B, classes), on the GPU.
  const Tensor& loss() const { return loss_; }
  const Tensor& logits() const { return logits_; }
  bool failed() const { return failed_; }
  int64_t replays() const { return replays_; }

 private:
  StepFn step_;
  std::shared_ptr<cuda::StepGraph> graph_;  // shared_ptr: a CPU-only build never defines the class
  Tensor images_, labels_;  // the recorded batch: (B, 3, S, S) float32 and (B,) int64, on the GPU
  Tensor loss_, logits_;
  bool failed_ = false;
  int64_t replays_ = 0;
};

}  // namespace leuko::cli
