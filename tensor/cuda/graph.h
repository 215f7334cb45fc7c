// A training step recorded once as a CUDA graph and replayed (CUDA builds only).
//
// An eager step costs the host a few microseconds per op (autograd records, allocations,
// descriptor set-up, the launch itself); where kernels are shorter than that, the GPU waits
// for the host. A graph launches the whole recorded step with one call, so the host's cost
// per op disappears.
//
//   step(0); step(1);                     // warm-up: cuDNN has chosen its algorithms, buffers exist
//   graph.capture([&] { step(2); });      // records one step; nothing runs
//   for (s = 2; ...; s++) {
//     opt.prepare_replay();               // this step's learning rate, on the device
//     graph.replay(s);                    // runs the recorded step as step s
//   }
//
// What a replay does is exactly what the recorded step did, on the same addresses, with the
// same scalars:
//   - Every tensor the step uses from before the capture (the weights, the optimizer's
//     buffers, the batch) must outlive the graph and keep its storage: to feed a new batch,
//     copy it into the recorded one (copy_), never replace it.
//   - What the step allocates comes from the graph's private pool (tensor/cuda/allocator.h),
//     so no other tensor is given those blocks while the graph lives. Tensors the step returns
//     (the loss, the gradients) hold the values of the latest replay.
//   - Host values are frozen at the capture, except those the step reads from the device:
//     the optimizer's learning rate and bias corrections (optim/optimizer.h prepare_replay()
//     writes each step's before its replay), and dropout's seeds: with the step seeded by
//     seed_step(run_seed, step) (tensor/random.h), dropout draws on the device, from the step
//     replay(step) names, the seed the host would have drawn (kernels/activation.h
//     ReplaySeed). So a replay computes what the eager step would, bit for bit.
//   - Host-side state the step's code changes (the generator's draws) changes once, at the
//     capture, not at each replay. The optimizer does not count a recorded step: its
//     prepare_replay() counts each replayed one.
// The step must not wait for the GPU (item(), a copy to the host), need a new cuDNN algorithm
// search (a convolution shape the warm-up did not run), draw dropout seeds without seed_step,
// or make optimizer state (its first step): those throw, naming the cause, and nothing is
// recorded. The caller clears what the step's host code left (gradients, see
// tools/leuko/graph_step.cpp) before going on eagerly. Before recording, the shared cache's idle
// segments are handed back to the driver (while the pool records nothing can go back, so a
// block larger than any free one must find room at the driver); the pool takes its blocks from
// the shared cache's free ones first, then new segments (tensor/block_cache.h).
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
  // Runs the recorded step as step `step` (what replay_step() reads) on leuko's stream, without
  // waiting for it.
  void replay(int64_t step);
  bool captured() const { return exec_ != nullptr; }
  int64_t replays() const { return replays_; }

 private:
  void* graph_ = nullptr;  // cudaGraph_t
  void* exec_ = nullptr;   // cudaGraphExec_t
  int pool_ = 0;           // the private pool of the step's allocations
  int64_t* step_ = nullptr;  // device: the step the replay runs
  int64_t replays_ = 0;
};

// True while a StepGraph records on leuko's stream.
bool capturing();
// How many StepGraphs hold a recorded step (a buffer one of them may replay on must not be
// handed to anything else while this is above 0; the allocator's private pools see to it).
int live_graphs();
// While a StepGraph records: the device word where each replay finds its step (the dropout
// kernels read it); otherwise nullptr.
const int64_t* replay_step();

}  // namespace leuko::cuda
