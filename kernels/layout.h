// Memory order of images: NCHW <-> NHWC (channels_last, tensor/tensor.h MemoryFormat).
//
// Each image is a (C, HW) matrix in NCHW order and its transpose (HW, C) in NHWC order, so both
// directions are a batch of N matrix transposes:
//   to_nhwc:  out[n, p, c] = in[n, c, p]      out (N, HW, C), in (N, C, HW)
//   to_nchw:  out[n, c, p] = in[n, p, c]      out (N, C, HW), in (N, HW, C)
// A convolution's filter (K, Cg, R, S) -> (K, R, S, Cg) is the same with N = K, C = Cg, HW = R*S.
// The CUDA versions move 32 x 32 tiles through shared memory, so that both the reads and the
// writes of a warp touch consecutive addresses.
#pragma once

#include <cstdint>

#include "tensor/dtype.h"

namespace leuko::kernels {
namespace cpu {
template <typename T> void to_nhwc(T* out, const T* in, int64_t N, int64_t C, int64_t HW);
template <typename T> void to_nchw(T* out, const T* in, int64_t N, int64_t C, int64_t HW);
}  // namespace cpu

namespace cuda {
void to_nhwc(float* out, const float* in, int64_t N, int64_t C, int64_t HW);
void to_nhwc(bf16* out, const bf16* in, int64_t N, int64_t C, int64_t HW);
void to_nchw(float* out, const float* in, int64_t N, int64_t C, int64_t HW);
void to_nchw(bf16* out, const bf16* in, int64_t N, int64_t C, int64_t HW);
// int64: a channels_last max pooling's argmax indices (layers/pool.cpp), read back in NCHW order.
void to_nhwc(int64_t* out, const int64_t* in, int64_t N, int64_t C, int64_t HW);
void to_nchw(int64_t* out, const int64_t* in, int64_t N, int64_t C, int64_t HW);
// The transposes of a convolution's weight with the dtype change in the same pass (one launch
// instead of two, for each convolution of each step): the float32 master (K, Cg, R, S) to the
// bf16 (K, R, S, Cg) that cuDNN's NHWC kernels read, and the bf16 (K, R, S, Cg) weight gradient
// they write back to float32 (K, Cg, R, S). Rounding as Tensor::to(DType) (nearest even).
void to_nhwc(bf16* out, const float* in, int64_t N, int64_t C, int64_t HW);
void to_nchw(float* out, const bf16* in, int64_t N, int64_t C, int64_t HW);
}  // namespace cuda
}  // namespace leuko::kernels
