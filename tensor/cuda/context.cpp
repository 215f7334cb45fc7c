#include "tensor/cuda/context.h"

#include <mutex>

#include "tensor/cuda/check_cuda.h"

namespace leuko::cuda {
namespace {

struct Probe {
  bool ok = false;
  std::string status;
};

const Probe& probe_once() {
  static Probe p = [] {
    Probe r;
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
      cudaGetLastError();
      r.status = std::string("no usable CUDA GPU: ") + cudaGetErrorString(err);
      return r;
    }
    if (count == 0) {
      r.status = "no usable CUDA GPU: no device found";
      return r;
    }
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
      cudaGetLastError();
      r.status = "no usable CUDA GPU: cudaGetDeviceProperties failed";
      return r;
    }
    char buf[400];
    snprintf(buf, sizeof buf, "%s (compute %d.%d, %.1f GiB, %d SMs)", prop.name, prop.major, prop.minor,
             double(prop.totalGlobalMem) / (1 << 30), prop.multiProcessorCount);
    r.ok = true;
    r.status = buf;
    return r;
  }();
  return p;
}

struct Context {
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  cudnnHandle_t cudnn = nullptr;
  int sms = 0;
};

Context& context() {
  static Context* c = [] {
    ensure_available();
    auto* ctx = new Context();  // never destroyed: handles must outlive static tensors
    LEUKO_CUDA_CHECK(cudaSetDevice(0));
    LEUKO_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking));
    LEUKO_CUDA_CHECK(cudaDeviceGetAttribute(&ctx->sms, cudaDevAttrMultiProcessorCount, 0));
    return ctx;
  }();
  return *c;
}

}  // namespace

bool probe(std::string* status) {
  const Probe& p = probe_once();
  if (status) *status = p.status;
  return p.ok;
}

void ensure_available() {
  const Probe& p = probe_once();
  if (!p.ok) throw Error(p.status);
}

void synchronize() { LEUKO_CUDA_CHECK(cudaStreamSynchronize(stream())); }

cudaStream_t stream() { return context().stream; }
int sm_count() { return context().sms; }

cublasHandle_t cublas() {
  static std::once_flag once;
  std::call_once(once, [] {
    LEUKO_CUBLAS_CHECK(cublasCreate(&context().cublas));
    LEUKO_CUBLAS_CHECK(cublasSetStream(context().cublas, stream()));  // (resets the workspace: first)
    // A workspace of its own for the process, cuBLAS's advice for Hopper (32 MiB), set once: so
    // an eager step and a CUDA graph's replay of it (tensor/cuda/graph.h) use the same one, and
    // a recorded cuBLAS call allocates nothing (without it cuBLAS may allocate inside a capture).
    constexpr size_t kWorkspace = size_t(32) << 20;
    void* workspace = nullptr;
    LEUKO_CUDA_CHECK(cudaMalloc(&workspace, kWorkspace));  // never freed: the handle lives as long
    LEUKO_CUBLAS_CHECK(cublasSetWorkspace(context().cublas, workspace, kWorkspace));
  });
  return context().cublas;
}

cudnnHandle_t cudnn() {
  static std::once_flag once;
  std::call_once(once, [] {
    LEUKO_CUDNN_CHECK(cudnnCreate(&context().cudnn));
    LEUKO_CUDNN_CHECK(cudnnSetStream(context().cudnn, stream()));
  });
  return context().cudnn;
}

}  // namespace leuko::cuda
