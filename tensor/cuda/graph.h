// A training step recorded once as a CUDA graph and replayed (CUDA builds only).
//
// An eager step costs the host a few microseconds per op (autograd records, allocations,
// descriptor set-up, the launch itself); where kernels are shorter than that, the GPU waits
// for the host. A graph launches the whole recorded step with one call, so the host's cost
// per op disappears.
//
//   cuda::StepGraph graph;
//   step(); step();            // warm-up: cuDNN has chosen its algorithms, buffers exist
//   graph.capture(step);       // records one step; nothing runs
//   for (...) graph.replay();  // runs it, on the same buffers every time
//
// What a replay does is exactly what the recorded step did, on the same addresses, with the
// same scalars:
//   - Every tensor the step uses from before the capture (the weights, the optimizer's
//     buffers, the batch) must outlive the graph and keep its storage: to feed a new batch,
//     copy it into the recorded one (copy_), never replace it.
//   - What the step allocates comes from the graph's private pool (tensor/cuda/allocator.h),
//     so no other tensor is given those blocks while the graph lives. Tensors the step returns
//     (the loss, the gradients) hold the values of the latest replay.
//   - Host values are frozen at the capture: a learning rate set afterwards, Adam's step
//     count, a seed drawn by the host. Dropout is the exception: its kernels mix
//     replay_counter(), which each replay increments on the device, into the seed, so every
//     replay drops other elements (as an eager step would; not the same elements as eager).
//   - Host-side state the step changes (the optimizer's step count, the generator) changes once,
//     at the capture, not at each replay.
// The step must not wait for the GPU (item(), a copy to the host) and must not need a new cuDNN
// algorithm search or a larger workspace than the warm-up had: those throw, naming the cause.
#pragma once

#include <cstdint>
#include <functional>

namespace leuko::cuda {

class StepGraph {
 public:
  StepGraph() = default;
  ~StepGraph();
  StepGraph(const StepGraph&) = delete;
  StepGraph& operator=(const StepGraph&) = delete;

  // Records `step` (its kernels are recorded, not run). Throws Error, with nothing recorded,
  // if the step does something capture forbids.
  void capture(const std::function<void()>& step);
  // Runs the recorded step on leuko's stream, without waiting for it.
  void replay();
  bool captured() const { return exec_ != nullptr; }
  int64_t replays() const { return replays_; }

 private:
  void* graph_ = nullptr;  // cudaGraph_t
  void* exec_ = nullptr;   // cudaGraphExec_t
  int pool_ = 0;           // the private pool of the step's allocations
  int64_t* counter_ = nullptr;  // device: the number of replays so far, plus one while one runs
  int64_t replays_ = 0;
};

// True while a StepGraph records on leuko's stream.
bool capturing();
// How many StepGraphs hold a recorded step: a buffer one of them may replay on must not be freed
// while this is above 0 (layers/conv2d.cpp keeps its outgrown cuDNN workspaces).
int live_graphs();
// While a StepGraph records: the device counter its replays increment (the dropout kernels read
// it); otherwise nullptr.
const int64_t* replay_counter();

}  // namespace leuko::cuda
