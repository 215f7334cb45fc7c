// Fused CUDA optimizer updates: every parameter of a model in one launch.
//
// The host splits each parameter into chunks of kChunk elements and lists (parameter, offset)
// per chunk; block b updates chunk b. The parameter table and the chunk list live on the
// device and are uploaded only when they change (the caching allocator hands the same blocks
// out step after step, so the gradient pointers usually repeat and nothing is copied).
// A step being recorded as a CUDA graph (tensor/cuda/graph.h) gets a table of its own, written
// at once and never changed: every replay reads it, whatever eager steps upload later.
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cuda/common.cuh"
#include "kernels/optim.h"
#include "tensor/cuda/graph.h"

namespace leuko::kernels::cuda {
namespace {

constexpr int64_t kChunk = 8192;  // elements per block: 32 per thread

struct Chunk {
  int param;
  int64_t offset;
};

// The device copy of the parameter table and chunk list, and the host copy last uploaded.
struct Table {
  std::vector<unsigned char> host;  // [ParamRef x params][Chunk x chunks], as last uploaded
  void* device = nullptr;
  size_t capacity = 0;
  void* pinned = nullptr;  // staging for the asynchronous upload
  cudaEvent_t uploaded = nullptr;
  int chunks = 0;
};

// Uploads params and their chunk list when they differ from the last upload; returns the
// device pointers.
void upload(Table& t, const std::vector<ParamRef>& params, const ParamRef** d_params, const Chunk** d_chunks) {
  std::vector<Chunk> chunks;
  for (size_t i = 0; i < params.size(); i++) {
    for (int64_t off = 0; off < params[i].n; off += kChunk) chunks.push_back({int(i), off});
  }
  const size_t pbytes = params.size() * sizeof(ParamRef), bytes = pbytes + chunks.size() * sizeof(Chunk);
  std::vector<unsigned char> host(bytes);
  std::memcpy(host.data(), params.data(), pbytes);
  std::memcpy(host.data() + pbytes, chunks.data(), chunks.size() * sizeof(Chunk));
  if (leuko::cuda::capturing()) {
    // Not an upload on the stream (the graph would repeat it from a staging buffer that later
    // uploads overwrite): a synchronous copy, now, into memory that stays as long as the
    // process. A few KiB per captured graph. The copy runs outside the capture: leuko's stream
    // does not synchronise with the default stream that cudaMemcpy uses.
    void* table = nullptr;
    LEUKO_CUDA_CHECK(cudaMalloc(&table, bytes));
    LEUKO_CUDA_CHECK(cudaMemcpy(table, host.data(), bytes, cudaMemcpyHostToDevice));
    t.chunks = int(chunks.size());
    *d_params = static_cast<const ParamRef*>(table);
    *d_chunks = reinterpret_cast<const Chunk*>(static_cast<const unsigned char*>(table) + pbytes);
    return;
  }
  if (host != t.host) {
    if (t.uploaded == nullptr) LEUKO_CUDA_CHECK(cudaEventCreateWithFlags(&t.uploaded, cudaEventDisableTiming));
    // The staging buffer may still be read by the previous upload: wait for it (long done).
    LEUKO_CUDA_CHECK(cudaEventSynchronize(t.uploaded));
    if (bytes > t.capacity) {
      if (t.device) LEUKO_CUDA_CHECK(cudaFree(t.device));
      if (t.pinned) LEUKO_CUDA_CHECK(cudaFreeHost(t.pinned));
      t.capacity = bytes * 2;
      LEUKO_CUDA_CHECK(cudaMalloc(&t.device, t.capacity));
      LEUKO_CUDA_CHECK(cudaMallocHost(&t.pinned, t.capacity));
    }
    std::memcpy(t.pinned, host.data(), bytes);
    LEUKO_CUDA_CHECK(cudaMemcpyAsync(t.device, t.pinned, bytes, cudaMemcpyHostToDevice, stream()));
    LEUKO_CUDA_CHECK(cudaEventRecord(t.uploaded, stream()));
    t.host = std::move(host);
  }
  t.chunks = int(chunks.size());
  *d_params = static_cast<const ParamRef*>(t.device);
  *d_chunks = reinterpret_cast<const Chunk*>(static_cast<const unsigned char*>(t.device) + pbytes);
}

__global__ void sgd_kernel(const ParamRef* params, const Chunk* chunks, const float* scalars, float momentum,
                           float dampening, float weight_decay, bool nesterov) {
  const Chunk c = chunks[blockIdx.x];
  const ParamRef r = params[c.param];
  const float lr = scalars[0];
  const int64_t end = min(r.n, c.offset + kChunk);
  for (int64_t i = c.offset + threadIdx.x; i < end; i += blockDim.x) {
    float d = r.g[i] + weight_decay * r.p[i];
    if (momentum != 0.f) {
      const float buf = r.first ? d : momentum * r.state1[i] + (1.f - dampening) * d;
      r.state1[i] = buf;
      d = nesterov ? d + momentum * buf : buf;
    }
    r.p[i] -= lr * d;
  }
}

__global__ void adam_kernel(const ParamRef* params, const Chunk* chunks, const float* scalars, float beta1,
                            float beta2, float eps, float weight_decay, bool decoupled, bool amsgrad) {
  const Chunk c = chunks[blockIdx.x];
  const ParamRef r = params[c.param];
  const float lr = scalars[0], step_size = scalars[1], sqrt_bc2 = scalars[2];
  const int64_t end = min(r.n, c.offset + kChunk);
  for (int64_t i = c.offset + threadIdx.x; i < end; i += blockDim.x) {
    float p = r.p[i], d = r.g[i];
    if (decoupled) p *= 1.f - lr * weight_decay;
    else d += weight_decay * p;
    const float m = beta1 * r.state1[i] + (1.f - beta1) * d;
    const float v = beta2 * r.state2[i] + (1.f - beta2) * d * d;
    r.state1[i] = m;
    r.state2[i] = v;
    float second = v;
    if (amsgrad) second = r.state3[i] = fmaxf(r.state3[i], v);
    r.p[i] = p - step_size * m / (sqrtf(second) / sqrt_bc2 + eps);
  }
}

__global__ void write_scalars_kernel(float* scalars, float a, float b, float c) {
  scalars[0] = a;
  scalars[1] = b;
  scalars[2] = c;
}

}  // namespace

void write_step_scalars(float* scalars, const SgdHyper& h) {
  write_scalars_kernel<<<1, 1, 0, stream()>>>(scalars, float(h.lr), 0.f, 0.f);
  LEUKO_CUDA_LAUNCH_CHECK();
}

void write_step_scalars(float* scalars, const AdamHyper& h) {
  write_scalars_kernel<<<1, 1, 0, stream()>>>(scalars, float(h.lr), float(h.lr / h.bias_correction1),
                                               float(std::sqrt(h.bias_correction2)));
  LEUKO_CUDA_LAUNCH_CHECK();
}

void sgd_update_multi(const std::vector<ParamRef>& params, const SgdHyper& h, const float* scalars) {
  if (params.empty()) return;
  static Table table;
  const ParamRef* dp;
  const Chunk* dc;
  upload(table, params, &dp, &dc);
  if (table.chunks == 0) return;
  sgd_kernel<<<table.chunks, kThreads, 0, stream()>>>(dp, dc, scalars, float(h.momentum), float(h.dampening),
                                                      float(h.weight_decay), h.nesterov);
  LEUKO_CUDA_LAUNCH_CHECK();
}

void adam_update_multi(const std::vector<ParamRef>& params, const AdamHyper& h, const float* scalars) {
  if (params.empty()) return;
  static Table table;
  const ParamRef* dp;
  const Chunk* dc;
  upload(table, params, &dp, &dc);
  if (table.chunks == 0) return;
  adam_kernel<<<table.chunks, kThreads, 0, stream()>>>(dp, dc, scalars, float(h.beta1), float(h.beta2), float(h.eps),
                                                       float(h.weight_decay), h.decoupled, h.amsgrad);
  LEUKO_CUDA_LAUNCH_CHECK();
}

}  // namespace leuko::kernels::cuda
