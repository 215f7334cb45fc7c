// CUDA convolution through cuDNN (the legacy cudnnConvolution* API, still in cuDNN 9).
//
// A geometry (all of Conv2dShape) and a precision make one Plan: the tensor, filter and
// convolution descriptors, built once, and per direction (forward, backward data, backward
// filter) the algorithm chosen the first time that direction runs. The choice is kept for the
// life of the process, so the search costs once per layer shape, not once per step.
//
// Choosing an algorithm:
//   - LEUKO_CUDNN_BENCHMARK unset or 1: cudnnFind*AlgorithmEx times every algorithm on the real
//     buffers, then its three fastest that qualify run again, warm, three times each, and the
//     fastest of those is kept (Find times once, cold: near-ties went either way between runs);
//     LEUKO_CUDNN_BENCHMARK=0, or set_deterministic(true) (`leuko train --deterministic`,
//     tensor/device.h): cudnnGet*Algorithm_v7, cuDNN's heuristics (the same choice on every
//     run with the same GPU, cuDNN and geometry, so the same bits).
//   - Any algorithm whose workspace fits under the cap, LEUKO_CUDNN_WORKSPACE_MIB (default
//     1024 MiB), as PyTorch's benchmark mode; with set_deterministic(true) only those cuDNN
//     reports as deterministic (its backward algorithms 0 and 3 add with atomics: their sums
//     change from run to run).
//   - If none qualifies, or the workspace cannot be allocated, a fallback that needs no (or
//     almost no) workspace: implicit GEMM forward, algorithm 1 for both backward passes.
// Math type: Precision::fp32 runs CUDNN_FMA_MATH (strict float32, no TF32, so the GPU compares
// with the CPU like with like); tf32 allows tensor cores (CUDNN_TENSOR_OP_MATH). bf16 tensors
// (tensor/device.h bf16_activations(): x, w and y in bf16, products summed in float32, cuDNN's
// "BFLOAT16" configuration) always run on the tensor cores. The data type is part of the plan's
// key: a float32 and a bf16 convolution of the same geometry are two plans.
// With LEUKO_BF16_ACTIVATIONS=0, Precision::bf16 convolves float32 tensors as tf32 does.
//
// Memory order: NCHW, or NHWC for channels_last tensors (Conv2dShape::channels_last), with the
// filter then in (K, R, S, Cg) order too; also part of the key.
//
// The workspace is the caller's (kernels/conv2d.h, Workspace): layers/conv2d.cpp allocates it
// for each call from the caching allocator and frees it once the call is queued. The search
// times the algorithms in a scratch of its own, freed after it.
#include <algorithm>
#include <array>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/cuda/conv2d_graph.h"
#include "kernels/cuda/search_scratch.h"
#include "tensor/allocator.h"
#include "tensor/cuda/check_cuda.h"
#include "tensor/cuda/context.h"
#include "tensor/cuda/graph.h"
#include "tensor/device.h"

namespace leuko::kernels::cuda {
namespace {

// ---- Settings, read once ----------------------------------------------------------------------
size_t workspace_cap() {
  static const size_t cap = [] {
    const char* env = std::getenv("LEUKO_CUDNN_WORKSPACE_MIB");
    if (env == nullptr || *env == '\0') return size_t(1024) << 20;
    char* end = nullptr;
    const unsigned long long mib = std::strtoull(env, &end, 10);
    LEUKO_CHECK(end != env && *end == '\0', "LEUKO_CUDNN_WORKSPACE_MIB: '", env, "' is not a number of MiB");
    return size_t(mib) << 20;
  }();
  return cap;
}

// Timing the algorithms (cudnnFind) rather than asking cuDNN's heuristics; never in
// deterministic mode, where a choice made by timing could differ from run to run.
bool benchmark() {
  static const bool on = [] {
    const char* env = std::getenv("LEUKO_CUDNN_BENCHMARK");
    return env == nullptr || std::string(env) != "0";
  }();
  return on && !deterministic();
}

// LEUKO_CUDNN_API, read once (kernels/conv2d.h); set_conv_api writes over it.
std::atomic<int>& api_setting() {
  static std::atomic<int> api{[] {
    const char* env = std::getenv("LEUKO_CUDNN_API");
    if (env == nullptr || *env == '\0' || std::string(env) == "legacy") return int(ConvApi::legacy);
    LEUKO_CHECK(std::string(env) == "graph", "LEUKO_CUDNN_API: '", env, "' is not graph or legacy");
    return int(ConvApi::graph);
  }()};
  return api;
}

cudnnMathType_t math_type(cudnnDataType_t type) {
  return precision() == Precision::fp32 && type == CUDNN_DATA_FLOAT ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH;
}

// ---- Descriptors (RAII) -----------------------------------------------------------------------
// Destructors ignore the status: they cannot throw, and destroying a valid descriptor does not fail.
int as_int(int64_t v) {
  LEUKO_CHECK(v >= 0 && v <= INT_MAX, "conv2d on the GPU: size ", v, " does not fit cuDNN's int");
  return int(v);
}

class TensorDesc {
 public:
  TensorDesc(int64_t n, int64_t c, int64_t h, int64_t w, cudnnDataType_t type, cudnnTensorFormat_t format) {
    LEUKO_CHECK(n * c * h * w <= INT_MAX, "conv2d on the GPU: a tensor of ", n * c * h * w,
                " elements is beyond cuDNN's 2^31 limit");
    LEUKO_CUDNN_CHECK(cudnnCreateTensorDescriptor(&desc_));
    LEUKO_CUDNN_CHECK(cudnnSetTensor4dDescriptor(desc_, format, type, as_int(n), as_int(c),
                                                 as_int(h), as_int(w)));
  }
  ~TensorDesc() { (void)cudnnDestroyTensorDescriptor(desc_); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
  operator cudnnTensorDescriptor_t() const { return desc_; }

 private:
  cudnnTensorDescriptor_t desc_ = nullptr;
};

class FilterDesc {
 public:
  // c: input channels per group; format NHWC: stored (k, r, s, c)
  FilterDesc(int64_t k, int64_t c, int64_t r, int64_t s, cudnnDataType_t type, cudnnTensorFormat_t format) {
    LEUKO_CUDNN_CHECK(cudnnCreateFilterDescriptor(&desc_));
    LEUKO_CUDNN_CHECK(cudnnSetFilter4dDescriptor(desc_, type, format, as_int(k), as_int(c),
                                                 as_int(r), as_int(s)));
  }
  ~FilterDesc() { (void)cudnnDestroyFilterDescriptor(desc_); }
  FilterDesc(const FilterDesc&) = delete;
  FilterDesc& operator=(const FilterDesc&) = delete;
  operator cudnnFilterDescriptor_t() const { return desc_; }

 private:
  cudnnFilterDescriptor_t desc_ = nullptr;
};

class ConvDesc {
 public:
  explicit ConvDesc(const Conv2dShape& s) {
    LEUKO_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&desc_));
    // CROSS_CORRELATION: PyTorch's "convolution" does not flip the kernel. The compute type is
    // float32 for bf16 tensors too: products and sums in float, rounded to bf16 once.
    LEUKO_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(desc_, as_int(s.pad_h), as_int(s.pad_w), as_int(s.stride_h),
                                                      as_int(s.stride_w), as_int(s.dil_h), as_int(s.dil_w),
                                                      CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    LEUKO_CUDNN_CHECK(cudnnSetConvolutionGroupCount(desc_, as_int(s.groups)));
  }
  ~ConvDesc() { (void)cudnnDestroyConvolutionDescriptor(desc_); }
  ConvDesc(const ConvDesc&) = delete;
  ConvDesc& operator=(const ConvDesc&) = delete;
  operator cudnnConvolutionDescriptor_t() const { return desc_; }

 private:
  cudnnConvolutionDescriptor_t desc_ = nullptr;
};

// x, y and w all NCHW, or all NHWC (the filter then (K, R, S, Cg)): cuDNN's NHWC kernels want
// the filter in the activations' order.
cudnnTensorFormat_t format(const Conv2dShape& s) { return s.channels_last ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW; }

struct Descriptors {
  cudnnDataType_t type;  // of x, w and y alike: CUDNN_DATA_FLOAT or CUDNN_DATA_BFLOAT16
  TensorDesc x, y;       // also dx, dy
  FilterDesc w;          // also dw
  ConvDesc conv;
  Descriptors(const Conv2dShape& s, cudnnDataType_t t)
      : type(t),
        x(s.N, s.C, s.H, s.W, t, format(s)),
        y(s.N, s.K, s.P, s.Q, t, format(s)),
        w(s.K, s.channels_per_group(), s.R, s.S, t, format(s)),
        conv(s) {
    int n = 0, k = 0, p = 0, q = 0;  // cuDNN's own output size must be ours
    LEUKO_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(conv, x, w, &n, &k, &p, &q));
    LEUKO_CHECK(n == s.N && k == s.K && p == s.P && q == s.Q, "conv2d: cuDNN computes an output of [", n, ", ", k,
                ", ", p, ", ", q, "] where leuko expects [", s.N, ", ", s.K, ", ", s.P, ", ", s.Q, "]");
  }
};

// ---- The three directions, as traits over one generic search-and-run --------------------------
// The buffers of one call: forward (x, w -> y), backward data (w, dy -> dx), backward filter
// (x, dy -> dw).
struct Buffers {
  const void* a;
  const void* b;
  void* out;
};

const float kOne = 1.f, kZero = 0.f;  // beta 0: the output is written, never read (it may hold NaN)

struct Forward {
  using Perf = cudnnConvolutionFwdAlgoPerf_t;
  using Algo = cudnnConvolutionFwdAlgo_t;
  static constexpr int kIndex = 0, kAlgos = CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
  static constexpr Algo kFallback = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;  // no workspace
  static cudnnStatus_t max_count(cudnnHandle_t h, int* n) { return cudnnGetConvolutionForwardAlgorithmMaxCount(h, n); }
  static cudnnStatus_t workspace(cudnnHandle_t h, const Descriptors& d, Algo a, size_t* bytes) {
    return cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y, a, bytes);
  }
  static cudnnStatus_t heuristic(cudnnHandle_t h, const Descriptors& d, int want, int* got, Perf* perf) {
    return cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.conv, d.y, want, got, perf);
  }
  static cudnnStatus_t find(cudnnHandle_t h, const Descriptors& d, const Buffers& b, int want, int* got, Perf* perf,
                            void* ws, size_t bytes) {
    return cudnnFindConvolutionForwardAlgorithmEx(h, d.x, b.a, d.w, b.b, d.conv, d.y, b.out, want, got, perf, ws,
                                                  bytes);
  }
  static cudnnStatus_t run(cudnnHandle_t h, const Descriptors& d, const Buffers& b, Algo a, void* ws, size_t bytes) {
    return cudnnConvolutionForward(h, &kOne, d.x, b.a, d.w, b.b, d.conv, a, ws, bytes, &kZero, d.y, b.out);
  }
};

struct BackwardData {
  using Perf = cudnnConvolutionBwdDataAlgoPerf_t;
  using Algo = cudnnConvolutionBwdDataAlgo_t;
  static constexpr int kIndex = 1, kAlgos = CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
  static constexpr Algo kFallback = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;  // deterministic, little or no workspace
  static cudnnStatus_t max_count(cudnnHandle_t h, int* n) {
    return cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, n);
  }
  static cudnnStatus_t workspace(cudnnHandle_t h, const Descriptors& d, Algo a, size_t* bytes) {
    return cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.w, d.y, d.conv, d.x, a, bytes);
  }
  static cudnnStatus_t heuristic(cudnnHandle_t h, const Descriptors& d, int want, int* got, Perf* perf) {
    return cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w, d.y, d.conv, d.x, want, got, perf);
  }
  static cudnnStatus_t find(cudnnHandle_t h, const Descriptors& d, const Buffers& b, int want, int* got, Perf* perf,
                            void* ws, size_t bytes) {
    return cudnnFindConvolutionBackwardDataAlgorithmEx(h, d.w, b.a, d.y, b.b, d.conv, d.x, b.out, want, got, perf,
                                                       ws, bytes);
  }
  static cudnnStatus_t run(cudnnHandle_t h, const Descriptors& d, const Buffers& b, Algo a, void* ws, size_t bytes) {
    return cudnnConvolutionBackwardData(h, &kOne, d.w, b.a, d.y, b.b, d.conv, a, ws, bytes, &kZero, d.x, b.out);
  }
};

struct BackwardFilter {
  using Perf = cudnnConvolutionBwdFilterAlgoPerf_t;
  using Algo = cudnnConvolutionBwdFilterAlgo_t;
  static constexpr int kIndex = 2, kAlgos = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
  static constexpr Algo kFallback = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;  // deterministic, little or no workspace
  static cudnnStatus_t max_count(cudnnHandle_t h, int* n) {
    return cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, n);
  }
  static cudnnStatus_t workspace(cudnnHandle_t h, const Descriptors& d, Algo a, size_t* bytes) {
    return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, d.x, d.y, d.conv, d.w, a, bytes);
  }
  static cudnnStatus_t heuristic(cudnnHandle_t h, const Descriptors& d, int want, int* got, Perf* perf) {
    return cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x, d.y, d.conv, d.w, want, got, perf);
  }
  static cudnnStatus_t find(cudnnHandle_t h, const Descriptors& d, const Buffers& b, int want, int* got, Perf* perf,
                            void* ws, size_t bytes) {
    return cudnnFindConvolutionBackwardFilterAlgorithmEx(h, d.x, b.a, d.y, b.b, d.conv, d.w, b.out, want, got, perf,
                                                         ws, bytes);
  }
  static cudnnStatus_t run(cudnnHandle_t h, const Descriptors& d, const Buffers& b, Algo a, void* ws, size_t bytes) {
    return cudnnConvolutionBackwardFilter(h, &kOne, d.x, b.a, d.y, b.b, d.conv, a, ws, bytes, &kZero, d.w, b.out);
  }
};

// ---- The plan cache -------------------------------------------------------------------------
struct Choice {
  int algo = 0;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  size_t workspace = 0;  // bytes
};

struct Plan {
  Descriptors desc;
  std::optional<Choice> choice[3];  // by direction: Forward, BackwardData, BackwardFilter
  Plan(const Conv2dShape& s, cudnnDataType_t type) : desc(s, type) {}
};

// Every field of the geometry (memory order included), the data type, the precision (it changes
// the math type and so the choice) and the determinism setting (a choice timed before
// set_deterministic(true) must not be reused).
using Key = std::array<int64_t, 18>;
Key key_of(const Conv2dShape& s, cudnnDataType_t type) {
  return {s.N,        s.C,        s.H,     s.W,     s.K,     s.R,     s.S,
          s.groups,   s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.dil_h, s.dil_w,
          int64_t(s.channels_last), int64_t(type), int64_t(precision()), int64_t(deterministic())};
}

struct Cache {
  std::mutex mutex;  // held for a whole convolution call: descriptors' math type is set per call
  std::map<Key, std::unique_ptr<Plan>> plans;
  int64_t searches = 0;
};
Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: convolutions may run during static destruction
  return *c;
}

// The algorithm search times in a SearchScratch (kernels/cuda/search_scratch.h), not in the
// caller's workspace. (Version 0 searched in it: the largest workspace any algorithm asked for,
// up to the 1 GiB cap, stayed live for the whole run. AlexNet's peak was 1.6 GiB on the GPU
// against 0.9 GiB of tensors on the CPU.) PyTorch's benchmark mode, too, frees its search
// workspace.

// The workspace `algo` needs with math type `math` (set on the descriptor), as a Choice in
// `out`; the status of cuDNN's answer. settle: the same, where a failure is an error.
template <class Dir>
cudnnStatus_t size_choice(cudnnHandle_t h, const Descriptors& d, typename Dir::Algo algo, cudnnMathType_t math,
                          size_t at_least, Choice* out) {
  cudnnStatus_t st = cudnnSetConvolutionMathType(d.conv, math);
  size_t bytes = 0;
  if (st == CUDNN_STATUS_SUCCESS) st = Dir::workspace(h, d, algo, &bytes);
  if (st == CUDNN_STATUS_SUCCESS) *out = Choice{int(algo), math, std::max(bytes, at_least)};
  return st;
}

template <class Dir>
Choice settle(cudnnHandle_t h, const Descriptors& d, typename Dir::Algo algo, cudnnMathType_t math, size_t at_least) {
  Choice c;
  LEUKO_CUDNN_CHECK(size_choice<Dir>(h, d, algo, math, at_least, &c));
  return c;
}

// Whether a search result may be chosen: it ran, its workspace fits, and it is deterministic
// when that is asked for.
template <class Perf>
bool qualifies(const Perf& p, size_t cap) {
  return p.status == CUDNN_STATUS_SUCCESS && p.memory <= cap && (!deterministic() || p.determinism == CUDNN_DETERMINISTIC);
}

// Find's fastest candidates timed again, and the fastest kept. Find times each algorithm once,
// as the search begins, so near-ties go either way, and a process keeps what it chose: eager
// ResNet-50 bf16 ran at 2,876 and 2,283 images/s in two processes on one card (docs/
// PERFORMANCE.md, "Versions 1 to 11 measured"). Here each candidate runs once to warm up, then
// kRetimeRuns times back to back between two events, on the real buffers, as the graph API's
// search does (kernels/cuda/conv2d_graph.cpp). A candidate whose run fails is passed over.
constexpr int kRetimed = 3;     // of Find's results
constexpr int kRetimeRuns = 3;  // timed, after one warm-up run

template <class Dir>
Choice fastest_of(cudnnHandle_t h, const Descriptors& d, const Buffers& b, const std::vector<Choice>& candidates,
                  const SearchScratch& scratch) {
  cudaStream_t stream = leuko::cuda::stream();
  const EventPair events;
  std::optional<Choice> best;
  float best_ms = 0.f;
  bool tried = false;
  for (const Choice& c : candidates) {
    if (c.workspace > scratch.bytes) continue;
    tried = true;
    LEUKO_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv, c.math));
    const auto run = [&] {
      return Dir::run(h, d, b, typename Dir::Algo(c.algo), scratch.ptr, scratch.bytes) == CUDNN_STATUS_SUCCESS;
    };
    if (!run()) continue;
    LEUKO_CUDA_CHECK(cudaEventRecord(events.start, stream));
    bool ok = true;
    for (int r = 0; r < kRetimeRuns && ok; r++) ok = run();
    LEUKO_CUDA_CHECK(cudaEventRecord(events.stop, stream));
    LEUKO_CUDA_CHECK(cudaEventSynchronize(events.stop));
    if (!ok) continue;
    float ms = 0.f;
    LEUKO_CUDA_CHECK(cudaEventElapsedTime(&ms, events.start, events.stop));
    if (!best || ms < best_ms) {
      best = c;
      best_ms = ms;
    }
  }
  if (best) return *best;
  // None fitted the scratch: Find's own first. Every one that ran failed: none of them is kept.
  return tried ? settle<Dir>(h, d, Dir::kFallback, math_type(d.type), 0) : candidates.front();
}

template <class Dir>
Choice choose(cudnnHandle_t h, const Descriptors& d, const Buffers& b) {
  const cudnnMathType_t math = math_type(d.type);
  LEUKO_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv, math));
  int want = 0, got = 0;
  LEUKO_CUDNN_CHECK(Dir::max_count(h, &want));
  std::vector<typename Dir::Perf> perf(size_t(std::max(want, 1)));
  // Strict fp32 keeps FMA math whatever cuDNN reports; TF32 runs as found.
  const auto math_of = [&](const typename Dir::Perf& p) { return math == CUDNN_FMA_MATH ? math : p.mathType; };
  const auto as_choice = [&](const typename Dir::Perf& p) { return settle<Dir>(h, d, p.algo, math_of(p), p.memory); };
  if (!benchmark()) {
    // The heuristics' results come best first: the first that qualifies.
    LEUKO_CUDNN_CHECK(Dir::heuristic(h, d, want, &got, perf.data()));
    for (int i = 0; i < got; i++) {
      if (qualifies(perf[size_t(i)], workspace_cap())) return as_choice(perf[size_t(i)]);
    }
    return settle<Dir>(h, d, Dir::kFallback, math, 0);
  }
  // Find needs a workspace for the algorithms it times: the largest any of them asks for, up to
  // the cap (it skips those needing more). A failing size query is not an error: that algorithm
  // does not apply to this geometry.
  size_t bytes = 0;
  for (int a = 0; a < Dir::kAlgos; a++) {
    size_t need = 0;
    if (Dir::workspace(h, d, typename Dir::Algo(a), &need) == CUDNN_STATUS_SUCCESS && need <= workspace_cap()) {
      bytes = std::max(bytes, need);
    }
  }
  const SearchScratch scratch(bytes);
  LEUKO_CUDNN_CHECK(Dir::find(h, d, b, want, &got, perf.data(), scratch.ptr, scratch.bytes));
  // Results come fastest first: the first kRetimed that qualify, timed again. A result whose
  // workspace cuDNN will not size with its math type is passed over (the first always counted:
  // its failure is an error, as before the re-timing).
  std::vector<Choice> candidates;
  for (int i = 0; i < got && int(candidates.size()) < kRetimed; i++) {
    const typename Dir::Perf& p = perf[size_t(i)];
    if (!qualifies(p, scratch.bytes)) continue;
    Choice c;
    if (candidates.empty()) {
      candidates.push_back(as_choice(p));
    } else if (size_choice<Dir>(h, d, p.algo, math_of(p), p.memory, &c) == CUDNN_STATUS_SUCCESS) {
      candidates.push_back(c);
    }
  }
  if (candidates.empty()) return settle<Dir>(h, d, Dir::kFallback, math, 0);
  return candidates.size() == 1 ? candidates.front() : fastest_of<Dir>(h, d, b, candidates, scratch);
}

template <class Dir>
void convolve(const Conv2dShape& s, cudnnDataType_t type, const Buffers& b, Workspace ws) {
  if (s.N == 0) return;  // an empty batch: nothing to compute (cuDNN rejects empty tensors)
  if (conv_api() == ConvApi::graph &&
      graph_api::convolve(Dir::kIndex, s, type, b.a, b.b, b.out, workspace_cap(), benchmark(), ws)) {
    return;
  }
  cudnnHandle_t h = leuko::cuda::cudnn();
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  std::unique_ptr<Plan>& plan = c.plans[key_of(s, type)];
  if (!plan) plan = std::make_unique<Plan>(s, type);
  std::optional<Choice>& slot = plan->choice[Dir::kIndex];
  if (!slot) {
    // cuDNN's search times algorithms by running them: a CUDA graph cannot record that. The step
    // has run eagerly before its capture, so its shapes are known and their algorithms chosen;
    // a new shape here means the captured step differs.
    LEUKO_CHECK(!leuko::cuda::capturing(), "conv2d: a convolution of a new shape while a CUDA graph is ",
                "being captured; run the same step once before capturing it");
    slot = choose<Dir>(h, plan->desc, b);
    c.searches++;
  }
  Choice choice = *slot;
  LEUKO_CUDNN_CHECK(cudnnSetConvolutionMathType(plan->desc.conv, choice.math));
  void* space = nullptr;
  try {
    space = ws(choice.workspace);
  } catch (const OutOfMemory&) {  // this time only: the cached choice stays for later calls
    // A graph would record the fallback for every replay, and compute other bits than the eager
    // step: let the capture fail instead (the trainer then goes on eagerly).
    if (leuko::cuda::capturing()) throw;
    choice = settle<Dir>(h, plan->desc, Dir::kFallback, math_type(type), 0);
    space = ws(choice.workspace);
  }
  LEUKO_CUDNN_CHECK(Dir::run(h, plan->desc, b, typename Dir::Algo(choice.algo), space, choice.workspace));
}

// An empty batch's weight gradient: 0, and still written.
void zero_filter_gradient(void* dw, const Conv2dShape& s, size_t element) {
  LEUKO_CUDA_CHECK(cudaMemsetAsync(dw, 0, size_t(s.K * s.col_rows()) * element, leuko::cuda::stream()));
}

}  // namespace

void conv2d_forward(float* y, const float* x, const float* w, const Conv2dShape& s, Workspace ws) {
  convolve<Forward>(s, CUDNN_DATA_FLOAT, Buffers{x, w, y}, ws);
}

void conv2d_backward_data(float* dx, const float* dy, const float* w, const Conv2dShape& s, Workspace ws) {
  convolve<BackwardData>(s, CUDNN_DATA_FLOAT, Buffers{w, dy, dx}, ws);
}

void conv2d_backward_filter(float* dw, const float* x, const float* dy, const Conv2dShape& s, Workspace ws) {
  if (s.N == 0) return zero_filter_gradient(dw, s, sizeof(float));
  convolve<BackwardFilter>(s, CUDNN_DATA_FLOAT, Buffers{x, dy, dw}, ws);
}

void conv2d_forward(bf16* y, const bf16* x, const bf16* w, const Conv2dShape& s, Workspace ws) {
  convolve<Forward>(s, CUDNN_DATA_BFLOAT16, Buffers{x, w, y}, ws);
}

void conv2d_backward_data(bf16* dx, const bf16* dy, const bf16* w, const Conv2dShape& s, Workspace ws) {
  convolve<BackwardData>(s, CUDNN_DATA_BFLOAT16, Buffers{w, dy, dx}, ws);
}

void conv2d_backward_filter(bf16* dw, const bf16* x, const bf16* dy, const Conv2dShape& s, Workspace ws) {
  if (s.N == 0) return zero_filter_gradient(dw, s, sizeof(bf16));
  convolve<BackwardFilter>(s, CUDNN_DATA_BFLOAT16, Buffers{x, dy, dw}, ws);
}

int64_t conv2d_algorithm_searches() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.searches + graph_api::plans();  // a direction either path planned counts once
}

ConvApi conv_api() { return ConvApi(api_setting().load()); }
void set_conv_api(ConvApi api) { api_setting().store(int(api)); }
int64_t conv2d_graph_plans() { return graph_api::plans(); }

}  // namespace leuko::kernels::cuda
