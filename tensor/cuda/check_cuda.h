// Check macros for CUDA runtime, cuBLAS and cuDNN calls (CUDA builds only).
//
// Each wraps one call and, on failure, throws leuko::Error naming the call, the library's own
// error string, the file and the line. A failed device allocation, whichever library reports it
// (cudaMalloc's cudaErrorMemoryAllocation, cuBLAS's ALLOC_FAILED, cuDNN's
// INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED), throws OutOfMemory instead, so the callers that
// recover from running out of memory (a smaller batch, no workspace) see it as such. Kernel launches are followed by LEUKO_CUDA_LAUNCH_CHECK()
// so a bad launch configuration is reported at the launch, not at the next synchronisation.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "tensor/check.h"

namespace leuko::cuda {
[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line);
[[noreturn]] void throw_cudnn_error(cudnnStatus_t status, const char* call, const char* file, int line);
const char* cublas_status_string(cublasStatus_t status);
}  // namespace leuko::cuda

#define LEUKO_CUDA_CHECK(call)                                                         \
  do {                                                                                 \
    cudaError_t leuko_err_ = (call);                                                   \
    if (leuko_err_ != cudaSuccess) {                                                   \
      ::leuko::cuda::throw_cuda_error(leuko_err_, #call, __FILE__, __LINE__);          \
    }                                                                                  \
  } while (0)

#define LEUKO_CUDA_LAUNCH_CHECK() LEUKO_CUDA_CHECK(cudaGetLastError())

#define LEUKO_CUBLAS_CHECK(call)                                                       \
  do {                                                                                 \
    cublasStatus_t leuko_st_ = (call);                                                 \
    if (leuko_st_ != CUBLAS_STATUS_SUCCESS) {                                          \
      ::leuko::cuda::throw_cublas_error(leuko_st_, #call, __FILE__, __LINE__);         \
    }                                                                                  \
  } while (0)

#define LEUKO_CUDNN_CHECK(call)                                                        \
  do {                                                                                 \
    cudnnStatus_t leuko_st_ = (call);                                                  \
    if (leuko_st_ != CUDNN_STATUS_SUCCESS) {                                           \
      ::leuko::cuda::throw_cudnn_error(leuko_st_, #call, __FILE__, __LINE__);          \
    }                                                                                  \
  } while (0)
