// CUDA graphs of a training step (tensor/cuda/graph.h).
//
// The capture runs the step's host code once with leuko's stream in capture mode: each launch,
// cuBLAS and cuDNN call is recorded into a graph instead of run. Relaxed mode, because the
// caching allocator may call cudaMalloc for the graph's pool while recording (which the strict
// modes reject; it is not a stream operation, so it is safe here: the block exists before any
// replay).
#include <exception>
#include <string>

#include "tensor/cuda/allocator.h"
#include "tensor/cuda/check_cuda.h"
#include "tensor/cuda/context.h"
#include "tensor/cuda/graph.h"

namespace leuko::cuda {
namespace {

bool g_capturing = false;
int g_live = 0;                      // StepGraphs holding a recorded step
const int64_t* g_step = nullptr;     // the recording graph's step word

// Before each replay: the step it runs (a kernel, so the value travels with the launch).
__global__ void set_step_kernel(int64_t* word, int64_t step) { *word = step; }

}  // namespace

bool capturing() { return g_capturing; }
int live_graphs() { return g_live; }
const int64_t* replay_step() { return g_step; }

void StepGraph::capture(const std::function<void()>& step) {
  LEUKO_CHECK(exec_ == nullptr, "CUDA graph: a step is already captured in this graph");
  LEUKO_CHECK(!g_capturing, "CUDA graph: another graph is being captured");
  ensure_available();
  if (step_ == nullptr) LEUKO_CUDA_CHECK(cudaMalloc(&step_, sizeof(int64_t)));
  // An error of the work queued before belongs to it, not to the capture: surface it here.
  LEUKO_CUDA_CHECK(cudaStreamSynchronize(stream()));
  // The graph's pool adopts the shared cache's free blocks and asks the driver for the rest;
  // while it records, the shared cache cannot be emptied (that synchronises), so its idle
  // segments go back now, and the driver has the room for what the pool must ask for.
  caching_empty();

  pool_ = caching_new_pool();
  caching_use_pool(pool_);
  g_capturing = true;
  g_step = step_;
  std::exception_ptr failure;
  cudaError_t err = cudaStreamBeginCapture(stream(), cudaStreamCaptureModeRelaxed);
  if (err == cudaSuccess) {
    try {
      step();
    } catch (...) {
      failure = std::current_exception();
    }
    cudaGraph_t graph = nullptr;
    err = cudaStreamEndCapture(stream(), &graph);  // ends it even after a failure
    graph_ = graph;
  }
  caching_use_pool(0);
  g_capturing = false;
  g_step = nullptr;
  if (failure == nullptr && err == cudaSuccess) {
    cudaGraphExec_t exec = nullptr;
    err = cudaGraphInstantiate(&exec, static_cast<cudaGraph_t>(graph_), 0);
    exec_ = exec;
    // The graph's first launch uploads it to the device: do that now, not in the first replay.
    if (err == cudaSuccess) err = cudaGraphUpload(exec, stream());
    // Copies made outside the stream while it recorded (the optimizer's table: kernels/cuda/optim.cu)
    // may still be in flight on the default stream, which leuko's stream does not wait for.
    if (err == cudaSuccess) err = cudaDeviceSynchronize();
    if (err == cudaSuccess) g_live++;
  }
  if (failure != nullptr || err != cudaSuccess) {
    cudaGetLastError();  // a capture error is sticky only until read
    if (exec_ != nullptr) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec_));
    if (graph_ != nullptr) cudaGraphDestroy(static_cast<cudaGraph_t>(graph_));
    exec_ = graph_ = nullptr;
    caching_release_pool(pool_);
    pool_ = 0;
    if (failure != nullptr) std::rethrow_exception(failure);  // the step's own error (out of memory stays so)
    throw Error(std::string("CUDA graph: capturing the training step failed: ") + cudaGetErrorString(err) +
                " (the step must not wait for the GPU or copy to the host)");
  }
}

void StepGraph::replay(int64_t step) {
  LEUKO_CHECK(exec_ != nullptr, "CUDA graph: replay before capture");
  set_step_kernel<<<1, 1, 0, stream()>>>(step_, step);
  LEUKO_CUDA_LAUNCH_CHECK();
  LEUKO_CUDA_CHECK(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec_), stream()));
  replays_++;
}

StepGraph::~StepGraph() {
  // A replay may still run: let it finish before its graph and pool go. Errors are ignored, as
  // in every destructor here (a fault has been or will be reported by the call that saw it).
  if (exec_ != nullptr || step_ != nullptr) cudaStreamSynchronize(stream());
  if (exec_ != nullptr) {
    cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec_));
    g_live--;
  }
  if (graph_ != nullptr) cudaGraphDestroy(static_cast<cudaGraph_t>(graph_));
  if (pool_ != 0) caching_release_pool(pool_);
  if (step_ != nullptr) cudaFree(step_);
  cudaGetLastError();
}

}  // namespace leuko::cuda
