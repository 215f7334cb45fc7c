#include "tools/leuko/graph_step.h"

#include <cstdio>

#include "tensor/allocator.h"
#include "tensor/check.h"
#if LEUKO_WITH_CUDA
#include "tensor/cuda/graph.h"
#endif

namespace leuko::cli {

#if LEUKO_WITH_CUDA
GraphStep::GraphStep(StepFn step) : step_(std::move(step)) {}
// Members go in reverse order: the tensors (into the graph's pool or the shared cache: any later
// use is queued after the last replay), then the graph, which waits for that replay.
GraphStep::~GraphStep() = default;

bool GraphStep::run(const Tensor& images, const Tensor& labels, int64_t step, optim::Optimizer& optimizer) {
  if (failed_) return false;
  if (!graph_) {
    // The graph reads its batch from these: each later batch is copied in, never swapped.
    images_ = Tensor::empty_like(images);
    labels_ = Tensor::empty_like(labels);
    images_.copy_(images);
    labels_.copy_(labels);
    auto graph = std::make_shared<cuda::StepGraph>();
    try {
      graph->capture([&] { step_(images_, labels_, &loss_, &logits_); });
    } catch (const Error& e) {  // out of memory included: the eager step fitted, it goes on
      std::fprintf(stderr, "leuko: --graph: the training step could not be recorded as a CUDA graph (%s); "
                           "training goes on without one\n", e.what());
      // A backward that was recorded, never run, left gradients that hold nothing: the eager
      // step would add to them.
      optimizer.zero_grad();
      failed_ = true;
      images_ = labels_ = loss_ = logits_ = Tensor();
      return false;
    }
    graph_ = std::move(graph);
    // The eager steps' cached blocks go back to the driver: the graph has its own, and what
    // validation needs comes back to the cache once. So the card holds about one step's
    // activations, as it did before the graph.
    empty_cuda_cache();
  } else {
    if (images.shape() != images_.shape() || labels.shape() != labels_.shape()) return false;
    images_.copy_(images);
    labels_.copy_(labels);
  }
  optimizer.prepare_replay();
  graph_->replay(step);
  replays_++;
  return true;
}
#else
GraphStep::GraphStep(StepFn step) : step_(std::move(step)) {}
GraphStep::~GraphStep() = default;

bool GraphStep::run(const Tensor&, const Tensor&, int64_t, optim::Optimizer&) {
  throw Error("--graph: CUDA graphs need a CUDA build and a GPU");
}
#endif

}  // namespace leuko::cli
