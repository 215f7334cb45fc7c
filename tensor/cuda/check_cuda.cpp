#include "tensor/cuda/check_cuda.h"

namespace leuko::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line) {
  std::string msg = detail::concat(call, " failed: ", cudaGetErrorString(err));
  if (err == cudaErrorMemoryAllocation) {
    // Clear the sticky-free error state so the caller can recover (free cache, smaller batch).
    cudaGetLastError();
    throw OutOfMemory(msg + " (" + detail::where(file, line) + ")", 0);
  }
  detail::throw_error(msg, file, line);
}

[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line) {
  const std::string msg = detail::concat(call, " failed: ", cublas_status_string(status));
  // cuBLAS allocates device memory of its own (its workspace, at the first product of a kind).
  if (status == CUBLAS_STATUS_ALLOC_FAILED) throw OutOfMemory(msg + " (" + detail::where(file, line) + ")", 0);
  detail::throw_error(msg, file, line);
}

[[noreturn]] void throw_cudnn_error(cudnnStatus_t status, const char* call, const char* file, int line) {
  const std::string msg = detail::concat(call, " failed: ", cudnnGetErrorString(status));
  if (status == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED) {
    throw OutOfMemory(msg + " (" + detail::where(file, line) + ")", 0);
  }
  detail::throw_error(msg, file, line);
}

const char* cublas_status_string(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "invalid value";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "architecture mismatch";
    case CUBLAS_STATUS_MAPPING_ERROR: return "mapping error";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "execution failed";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "internal error";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "license error";
  }
  return "unknown cuBLAS status";
}

}  // namespace leuko::cuda
