// CUDA convolution through cuDNN's graph (backend) API: the other way in, beside the legacy
// cudnnConvolution* calls of kernels/cuda/conv2d.cpp, chosen by LEUKO_CUDNN_API=graph.
//
// Why a second way: the legacy calls pick among eight fixed "algorithms" per direction. cuDNN 9
// keeps them, but its newer kernels (the Hopper tensor-core engines for NHWC bf16 among them) are
// engines of the graph API, reached through its heuristics. On an H200, leuko's bf16
// channels_last convolutions (legacy Find) ran 2.5 to 5.5 times as long as PyTorch's (graph API)
// on the same cuDNN (docs/PERFORMANCE.md, version 11's profile).
//
// One convolution direction is a graph of one operation: forward (x, w -> y), backward data
// (w, dy -> dx) or backward filter (x, dy -> dw). For each geometry, data type and direction,
// once per process:
//   1. the tensors (dimensions always in (N, C, H, W) order, strides saying NCHW or NHWC; the
//      filter (K, Cg, R, S), its strides (K, R, S, Cg) for NHWC), the convolution (padding,
//      stride, dilation, compute type float32: bf16 products summed in float32) and the
//      operation, finalised into an operation graph;
//   2. cuDNN's heuristics (mode A, then the fallback list while fewer than kMaxTimed qualify, as
//      PyTorch gathers both) give engine configurations, best first; we keep those whose plan
//      finalises and whose notes fit the run: no runtime-compiled engines unless
//      LEUKO_CUDNN_RTC=1 (compiling one may take seconds at start-up, for every geometry;
//      PyTorch keeps them: whether they are the fast ones is measured, not assumed), none that
//      down-convert inputs,
//      no sums narrower than float32 for float32 tensors (bf16 ones may, as in PyTorch), no
//      tensor cores for strict fp32 (Precision::fp32: as CUDNN_FMA_MATH in the legacy path),
//      only deterministic ones under set_deterministic(true), workspace under the cap
//      (LEUKO_CUDNN_LOG=1 prints what each search offered and passed over);
//   3. benchmark mode (conv2d.cpp's rule: LEUKO_CUDNN_BENCHMARK, not deterministic): the first
//      kMaxTimed of them are timed on the real buffers (one warm-up run, then kTimedRuns back
//      to back) and the fastest kept; otherwise the heuristics' first. Either way the kept plan
//      has run once before it is cached: one cuDNN refuses to execute is dropped.
// Each call then fills a variant pack (the buffers' addresses and the workspace) and executes
// the kept plan. If no engine qualifies, or a buffer is not 16-byte aligned (the tensors were
// declared so), or the workspace cannot be had outside a CUDA graph capture, the call returns
// false and conv2d.cpp runs its legacy path instead.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kernels/cuda/conv2d_graph.h"
#include "kernels/cuda/search_scratch.h"
#include "tensor/allocator.h"
#include "tensor/cuda/check_cuda.h"
#include "tensor/cuda/context.h"
#include "tensor/cuda/graph.h"
#include "tensor/device.h"

namespace leuko::kernels::cuda::graph_api {
namespace {

constexpr int64_t kAlignment = 16;  // bytes: declared for every tensor, checked on every call
constexpr size_t kMaxTimed = 10;    // engine configurations timed per direction and geometry (PyTorch: 10)
constexpr int kTimedRuns = 3;     // back to back, after one warm-up run
constexpr int64_t kX = 1, kW = 2, kY = 3;  // the tensors' unique ids (dx, dw, dy: the same roles)

// One backend descriptor, destroyed with its owner. cudnnBackendDestroyDescriptor cannot fail on
// a descriptor that was created; its status is ignored in the destructor, which must not throw.
class Desc {
 public:
  explicit Desc(cudnnBackendDescriptorType_t type) {
    LEUKO_CUDNN_CHECK(cudnnBackendCreateDescriptor(type, &desc_));
  }
  ~Desc() {
    if (desc_ != nullptr) (void)cudnnBackendDestroyDescriptor(desc_);
  }
  Desc(const Desc&) = delete;
  Desc& operator=(const Desc&) = delete;
  cudnnBackendDescriptor_t get() const { return desc_; }
  cudnnBackendDescriptor_t* ptr() { return &desc_; }
  template <typename T>
  void set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, const T* values, int64_t count = 1) {
    LEUKO_CUDNN_CHECK(cudnnBackendSetAttribute(desc_, name, type, count, values));
  }
  void set(cudnnBackendAttributeName_t name, const Desc& other) {
    cudnnBackendDescriptor_t d = other.get();
    set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, &d);
  }
  void finalize() { LEUKO_CUDNN_CHECK(cudnnBackendFinalize(desc_)); }
  bool try_finalize() { return cudnnBackendFinalize(desc_) == CUDNN_STATUS_SUCCESS; }

 private:
  cudnnBackendDescriptor_t desc_ = nullptr;
};

// The deprecated handle attributes: cuDNN 9.x still takes them, and they work on every 9.x the
// GPU machines may carry (the device-property descriptors that replace them came later).
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif
constexpr cudnnBackendAttributeName_t kGraphHandle = CUDNN_ATTR_OPERATIONGRAPH_HANDLE;
constexpr cudnnBackendAttributeName_t kPlanHandle = CUDNN_ATTR_EXECUTION_PLAN_HANDLE;
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

// A tensor descriptor: dims in (N, C, H, W) order whatever the memory order, which the strides say.
std::unique_ptr<Desc> tensor(int64_t uid, cudnnDataType_t type, std::array<int64_t, 4> dims, bool nhwc) {
  const int64_t n = dims[0], c = dims[1], h = dims[2], w = dims[3];
  (void)n;
  const std::array<int64_t, 4> strides =
      nhwc ? std::array<int64_t, 4>{h * w * c, 1, w * c, c} : std::array<int64_t, 4>{c * h * w, h * w, w, 1};
  auto d = std::make_unique<Desc>(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  d->set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, &type);
  d->set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, dims.data(), 4);
  d->set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, strides.data(), 4);
  d->set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, &uid);
  d->set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, &kAlignment);
  d->finalize();
  return d;
}

// The operation graph of one direction, and what it is made of (kept alive with it).
struct Graph {
  std::unique_ptr<Desc> x, w, y, conv, op;
  Desc graph{CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR};
};

std::unique_ptr<Graph> build_graph(int dir, const Conv2dShape& s, cudnnDataType_t type, cudnnHandle_t h) {
  auto g = std::make_unique<Graph>();
  const bool nhwc = s.channels_last;
  g->x = tensor(kX, type, {s.N, s.C, s.H, s.W}, nhwc);
  g->w = tensor(kW, type, {s.K, s.channels_per_group(), s.R, s.S}, nhwc);  // groups: C / Cg
  g->y = tensor(kY, type, {s.N, s.K, s.P, s.Q}, nhwc);

  g->conv = std::make_unique<Desc>(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  const int64_t dims = 2;
  const cudnnDataType_t compute = CUDNN_DATA_FLOAT;    // bf16 products summed in float32
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;  // PyTorch's: the kernel not flipped
  const std::array<int64_t, 2> pad{s.pad_h, s.pad_w}, stride{s.stride_h, s.stride_w}, dil{s.dil_h, s.dil_w};
  g->conv->set(CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, &dims);
  g->conv->set(CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, &compute);
  g->conv->set(CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, &mode);
  g->conv->set(CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, pad.data(), 2);
  g->conv->set(CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, pad.data(), 2);
  g->conv->set(CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, stride.data(), 2);
  g->conv->set(CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, dil.data(), 2);
  g->conv->finalize();

  // The operation of each direction, with the attributes that name its three tensors (in the
  // order x, w, y of the graph's descriptors: dx and dw are x's and w's shapes), its
  // convolution, alpha and beta.
  struct OpAttrs {
    cudnnBackendDescriptorType_t type;
    cudnnBackendAttributeName_t x, w, y, conv, alpha, beta;
  };
  static const OpAttrs kOps[3] = {
      {CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
       CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y,
       CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA,
       CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA},
      {CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX,
       CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY,
       CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA,
       CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA},
      {CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X,
       CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY,
       CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA,
       CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA},
  };
  const OpAttrs& a = kOps[dir];
  const float one = 1.f, zero = 0.f;  // beta 0: the output is written, never read
  g->op = std::make_unique<Desc>(a.type);
  g->op->set(a.x, *g->x);
  g->op->set(a.w, *g->w);
  g->op->set(a.y, *g->y);
  g->op->set(a.conv, *g->conv);
  g->op->set(a.alpha, CUDNN_TYPE_FLOAT, &one);
  g->op->set(a.beta, CUDNN_TYPE_FLOAT, &zero);
  g->op->finalize();
  g->graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, *g->op);
  g->graph.set(kGraphHandle, CUDNN_TYPE_HANDLE, &h);
  g->graph.finalize();
  return g;
}

// LEUKO_CUDNN_RTC=1: runtime-compiled engines may be timed and kept (the header comment).
bool allow_runtime_compiled() {
  static const bool on = [] {
    const char* env = std::getenv("LEUKO_CUDNN_RTC");
    return env != nullptr && std::string(env) == "1";
  }();
  return on;
}

// Why an engine configuration's notes do not fit this run (the rules in the header comment), or
// nullptr when they do.
const char* rejection(cudnnBackendDescriptor_t config, cudnnDataType_t type) {
  Desc engine(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  int64_t got = 0;
  if (cudnnBackendGetAttribute(config, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &got,
                               engine.ptr()) != CUDNN_STATUS_SUCCESS) {
    return "no engine";
  }
  std::array<cudnnBackendNumericalNote_t, CUDNN_NUMERICAL_NOTE_TYPE_COUNT> numerical{};
  int64_t n_numerical = 0;
  if (cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                               int64_t(numerical.size()), &n_numerical, numerical.data()) != CUDNN_STATUS_SUCCESS) {
    return "no numerical notes";
  }
  for (int64_t i = 0; i < std::min<int64_t>(n_numerical, int64_t(numerical.size())); i++) {
    const cudnnBackendNumericalNote_t note = numerical[size_t(i)];
    // Inputs rounded to a narrower type: not the float32 (or bf16) products the legacy path
    // computes and the tests hold to.
    if (note == CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS) return "down-converts inputs";
    // Sums in a narrower type than float32: allowed for bf16 tensors, as PyTorch allows them
    // (their outputs are rounded to bf16 anyway), not for float32 ones.
    if (note == CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION && type == CUDNN_DATA_FLOAT) {
      return "reduced-precision sums";
    }
    if (note == CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC && deterministic()) return "nondeterministic";
    if (note == CUDNN_NUMERICAL_NOTE_TENSOR_CORE && type == CUDNN_DATA_FLOAT && precision() == Precision::fp32) {
      return "tensor cores under strict fp32";  // TF32 on float32 tensors: strict fp32 asked for FMA math
    }
  }
  std::array<cudnnBackendBehaviorNote_t, CUDNN_BEHAVIOR_NOTE_TYPE_COUNT> behavior{};
  int64_t n_behavior = 0;
  if (cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE,
                               int64_t(behavior.size()), &n_behavior, behavior.data()) != CUDNN_STATUS_SUCCESS) {
    return "no behaviour notes";
  }
  for (int64_t i = 0; i < std::min<int64_t>(n_behavior, int64_t(behavior.size())); i++) {
    if (behavior[size_t(i)] == CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION && !allow_runtime_compiled()) {
      return "runtime-compiled";
    }
  }
  return nullptr;
}

// The engine a configuration runs, as cuDNN numbers it (CUDNN_ATTR_ENGINE_GLOBAL_INDEX), and
// whether it is compiled at run time; for LEUKO_CUDNN_LOG's line about the kept plan.
std::string engine_name(cudnnBackendDescriptor_t config) {
  Desc engine(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  int64_t got = 0, index = -1;
  if (cudnnBackendGetAttribute(config, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &got,
                               engine.ptr()) != CUDNN_STATUS_SUCCESS ||
      cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &got, &index) !=
          CUDNN_STATUS_SUCCESS) {
    return "?";
  }
  std::array<cudnnBackendBehaviorNote_t, CUDNN_BEHAVIOR_NOTE_TYPE_COUNT> behavior{};
  int64_t n = 0;
  bool rtc = false;
  if (cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE,
                               int64_t(behavior.size()), &n, behavior.data()) == CUDNN_STATUS_SUCCESS) {
    for (int64_t i = 0; i < std::min<int64_t>(n, int64_t(behavior.size())); i++) {
      rtc = rtc || behavior[size_t(i)] == CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION;
    }
  }
  return std::to_string(index) + (rtc ? " (runtime-compiled)" : "");
}

// What one search saw, for LEUKO_CUDNN_LOG: configurations offered per heuristics mode, why each
// was passed over, and the outcome.
struct Tally {
  std::map<std::string, int> counts;
  std::string error;  // an exception's text: always printed
  void add(const std::string& what, int n = 1) { counts[what] += n; }
  std::string str() const {
    std::string out;
    for (const auto& [what, n] : counts) out += (out.empty() ? "" : ", ") + what + " " + std::to_string(n);
    return out;
  }
};

bool log_searches() {
  static const bool on = [] {
    const char* env = std::getenv("LEUKO_CUDNN_LOG");
    return env != nullptr && *env != '\0' && std::string(env) != "0";
  }();
  return on;
}

// An execution plan ready to run, and the workspace it needs (bytes).
struct Plan {
  std::unique_ptr<Desc> config;  // the engine configuration the plan was made from, kept with it
  std::unique_ptr<Desc> plan;
  size_t workspace = 0;
};

// The heuristics' engine configurations for `graph` in `mode`, best first, as plans that
// finalise and qualify, until `out` holds `limit` (finalising a plan costs host time: only as
// many as will be timed).
void candidates(const Graph& g, cudnnBackendHeurMode_t mode, cudnnDataType_t type, cudnnHandle_t h, size_t cap,
                size_t limit, std::vector<Plan>* out, Tally* tally) {
  const std::string m = mode == CUDNN_HEUR_MODE_A ? "mode A" : "fallback";
  Desc heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
  heur.set(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, g.graph);
  heur.set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, &mode);
  if (!heur.try_finalize()) {
    tally->add(m + " refused");
    return;
  }
  int64_t count = 0;
  if (cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
                               nullptr) != CUDNN_STATUS_SUCCESS ||
      count <= 0) {
    return;
  }
  std::vector<std::unique_ptr<Desc>> configs;
  std::vector<cudnnBackendDescriptor_t> raw;
  for (int64_t i = 0; i < count; i++) {
    configs.push_back(std::make_unique<Desc>(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR));
    raw.push_back(configs.back()->get());
  }
  int64_t got = 0;
  if (cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got,
                               raw.data()) != CUDNN_STATUS_SUCCESS) {
    return;
  }
  tally->add(m + " offered", int(std::min(got, count)));
  for (int64_t i = 0; i < std::min(got, count) && out->size() < limit; i++) {
    if (const char* why = rejection(raw[size_t(i)], type)) {
      tally->add(why);
      continue;
    }
    Plan p;
    p.config = std::move(configs[size_t(i)]);
    p.plan = std::make_unique<Desc>(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
    p.plan->set(kPlanHandle, CUDNN_TYPE_HANDLE, &h);
    p.plan->set(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, &raw[size_t(i)]);
    if (!p.plan->try_finalize()) {  // this engine does not take this geometry
      tally->add("plan refused");
      continue;
    }
    int64_t bytes = 0, n_bytes = 0;
    if (cudnnBackendGetAttribute(p.plan->get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &n_bytes,
                                 &bytes) != CUDNN_STATUS_SUCCESS ||
        bytes < 0 || size_t(bytes) > cap) {
      tally->add("workspace over the cap");
      continue;
    }
    p.workspace = size_t(bytes);
    out->push_back(std::move(p));
  }
}

// The variant pack of one call: the buffers by role and the workspace. Forward (x, w -> y),
// backward data (w, dy -> dx), backward filter (x, dy -> dw); conv2d.cpp passes them in that
// order as (a, b, out). The workspace is set even when null, as cuDNN's own front end does.
std::unique_ptr<Desc> variant_pack(const void* a, const void* b, void* out, int dir, void* workspace) {
  std::array<void*, 3> ptrs{};
  if (dir == 0) ptrs = {const_cast<void*>(a), const_cast<void*>(b), out};       // x, w, y
  else if (dir == 1) ptrs = {out, const_cast<void*>(a), const_cast<void*>(b)};  // dx, w, dy
  else ptrs = {const_cast<void*>(a), out, const_cast<void*>(b)};                // x, dw, dy
  const std::array<int64_t, 3> uids{kX, kW, kY};
  auto pack = std::make_unique<Desc>(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  pack->set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, uids.data(), 3);
  pack->set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, ptrs.data(), 3);
  pack->set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, &workspace);
  pack->finalize();
  return pack;
}

// The fastest of the first kMaxTimed plans on the real buffers (the output is written: the call
// that follows writes it again): each run once to warm up, then kTimedRuns runs back to back
// between two events, the variant pack made before them, so the time is the GPU's. A plan that
// fails to run is dropped. Returns the winner's index; 0 (the heuristics' first) when none could
// be timed for want of scratch memory; -1 when every plan timed failed to run.
int fastest(cudnnHandle_t h, const std::vector<Plan>& plans, const void* a, const void* b, void* out, int dir) {
  const size_t n = std::min(plans.size(), kMaxTimed);
  size_t need = 0;
  for (size_t i = 0; i < n; i++) need = std::max(need, plans[i].workspace);
  const SearchScratch scratch(need);  // none when the memory is not there: then only plans needing none
  cudaStream_t stream = leuko::cuda::stream();
  const EventPair events;
  int best = -1;
  bool tried = false;
  float best_ms = 0.f;
  for (size_t i = 0; i < n; i++) {
    if (plans[i].workspace > scratch.bytes) continue;
    tried = true;
    const std::unique_ptr<Desc> pack = variant_pack(a, b, out, dir, scratch.ptr);
    if (cudnnBackendExecute(h, plans[i].plan->get(), pack->get()) != CUDNN_STATUS_SUCCESS) continue;
    LEUKO_CUDA_CHECK(cudaEventRecord(events.start, stream));
    bool ok = true;
    for (int r = 0; r < kTimedRuns && ok; r++) {
      ok = cudnnBackendExecute(h, plans[i].plan->get(), pack->get()) == CUDNN_STATUS_SUCCESS;
    }
    LEUKO_CUDA_CHECK(cudaEventRecord(events.stop, stream));
    LEUKO_CUDA_CHECK(cudaEventSynchronize(events.stop));
    if (!ok) continue;
    float ms = 0.f;
    LEUKO_CUDA_CHECK(cudaEventElapsedTime(&ms, events.start, events.stop));
    if (best < 0 || ms < best_ms) {
      best = int(i);
      best_ms = ms;
    }
  }
  return tried ? best : 0;
}

// What one geometry, data type and direction settled on: the graph and its kept plan, or
// nothing (the legacy path runs it).
struct Entry {
  bool searched = false;
  bool ran = false;  // the kept plan has run once (a plan cuDNN refuses to run is dropped)
  std::unique_ptr<Graph> graph;
  std::optional<Plan> plan;
};

using Key = std::array<int64_t, 19>;
Key key_of(int dir, const Conv2dShape& s, cudnnDataType_t type) {
  return {s.N,        s.C,        s.H,     s.W,     s.K,     s.R,     s.S,
          s.groups,   s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.dil_h, s.dil_w,
          int64_t(s.channels_last), int64_t(type), int64_t(precision()), int64_t(deterministic()), dir};
}

struct Cache {
  std::mutex mutex;
  std::map<Key, Entry> entries;
  int64_t plans = 0;
};
Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: convolutions may run during static destruction
  return *c;
}

bool aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % uintptr_t(kAlignment) == 0; }

}  // namespace

bool convolve(int dir, const Conv2dShape& s, cudnnDataType_t type, const void* a, const void* b, void* out,
              size_t workspace_cap, bool benchmark, Workspace ws) {
  if (!aligned(a) || !aligned(b) || !aligned(out)) return false;
  cudnnHandle_t h = leuko::cuda::cudnn();
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  Entry& e = c.entries[key_of(dir, s, type)];
  if (!e.searched) {
    // As conv2d.cpp: a search runs the plans; a capture cannot record it.
    LEUKO_CHECK(!leuko::cuda::capturing(), "conv2d: a convolution of a new shape while a CUDA graph is ",
                "being captured; run the same step once before capturing it");
    e.searched = true;
    // A graph cuDNN will not finalise (a geometry its graph API does not take) leaves the entry
    // without a plan: the legacy path runs it, every time, as it always could.
    std::vector<Plan> plans;
    Tally tally;
    try {
      e.graph = build_graph(dir, s, type, h);
      const size_t limit = benchmark ? kMaxTimed : 1;  // without timing, the heuristics' first
      candidates(*e.graph, CUDNN_HEUR_MODE_A, type, h, workspace_cap, limit, &plans, &tally);
      if (plans.size() < limit) {
        candidates(*e.graph, CUDNN_HEUR_MODE_FALLBACK, type, h, workspace_cap, limit, &plans, &tally);
      }
    } catch (const std::exception& ex) {
      plans.clear();
      tally.error = ex.what();
    }
    tally.add("plans", int(plans.size()));
    if (!plans.empty()) {
      const int pick = benchmark ? fastest(h, plans, a, b, out, dir) : 0;
      if (pick >= 0) {
        e.plan = std::move(plans[size_t(pick)]);
        tally.add("kept plan's workspace MiB", int(e.plan->workspace >> 20));
        if (log_searches()) tally.add("kept engine " + engine_name(e.plan->config->get()));
      }
    }
    // One line per search (once per key): always when something threw, which is a bug here or
    // a cuDNN this code does not know; the rest with LEUKO_CUDNN_LOG=1.
    if (!tally.error.empty() || log_searches()) {
      static const char* const kDir[3] = {"forward", "backward data", "backward filter"};
      std::fprintf(stderr, "leuko: cuDNN graph API, conv2d %s [%lld, %lld, %lld, %lld] * [%lld, %lld, %lld, %lld]%s %s: %s%s%s\n",
                   kDir[dir], (long long)s.N, (long long)s.C, (long long)s.H, (long long)s.W, (long long)s.K,
                   (long long)s.channels_per_group(), (long long)s.R, (long long)s.S,
                   s.channels_last ? " channels_last" : "", type == CUDNN_DATA_FLOAT ? "float32" : "bf16",
                   tally.str().c_str(), tally.error.empty() ? "" : "; error: ", tally.error.c_str());
    }
  }
  if (!e.plan) return false;
  void* space = nullptr;
  try {
    space = ws(e.plan->workspace);
  } catch (const OutOfMemory&) {
    if (leuko::cuda::capturing()) throw;  // a capture must record the plan it will replay
    return false;                        // this time only: the legacy path's fallback runs
  }
  const std::unique_ptr<Desc> pack = variant_pack(a, b, out, dir, space);
  const cudnnStatus_t st = cudnnBackendExecute(h, e.plan->plan->get(), pack->get());
  if (!e.ran && st != CUDNN_STATUS_SUCCESS) {
    // Its first run (never in a capture: the search before it is not allowed there): a plan
    // cuDNN would not run is dropped, and this convolution goes the legacy way from now on.
    e.plan.reset();
    return false;
  }
  LEUKO_CUDNN_CHECK(st);
  if (!e.ran) {
    e.ran = true;
    c.plans++;
  }
  return true;
}

int64_t plans() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.plans;
}

}  // namespace leuko::kernels::cuda::graph_api
