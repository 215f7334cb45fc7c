// The CUDA context leuko runs in: one device, one stream, one cuBLAS and one cuDNN handle.
//
// Every kernel, copy, cuBLAS and cuDNN call goes onto stream(), so work is ordered without
// host synchronisation, and a whole training step can be captured as a CUDA graph.
// Handles are created on first use; the cuBLAS handle gets a 32 MiB workspace of its own then
// (the same for eager calls and CUDA graphs' replays of them).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <string>

namespace leuko::cuda {

// Throws Error saying why when no GPU can be used.
void ensure_available();
cudaStream_t stream();
cublasHandle_t cublas();
cudnnHandle_t cudnn();
int sm_count();

// Launch geometry for a grid-stride loop over n elements.
inline int blocks_for(long long n, int threads = 256) {
  long long b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  // Enough blocks to fill every SM several times; the loop covers the rest.
  long long cap = 65535LL * 16;
  return int(b < cap ? b : cap);
}

}  // namespace leuko::cuda
