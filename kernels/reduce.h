// Sum reductions and their adjoint, broadcasting.
//
// sum_to reduces a tensor to a shape of the same rank whose dimensions are either kept (equal)
// or reduced (1): the gradient of a broadcast, the bias gradient (N,C,H,W) -> (1,C,1,1), and
// sum/mean over any set of dimensions. expand is its adjoint: it copies a tensor with size-1
// dimensions out to a larger shape.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/elementwise.h"

namespace leuko::kernels {

// The index map of one reduction, split into kept and reduced dimensions (row-major each):
// input offset = sum(kept coordinate * kept_stride) + sum(reduced coordinate * red_stride).
struct Reduction {
  int kept_rank = 0, red_rank = 0;
  int64_t kept_shape[kMaxDims] = {}, kept_stride[kMaxDims] = {};
  int64_t red_shape[kMaxDims] = {}, red_stride[kMaxDims] = {};
  int64_t outputs = 1;     // number of output elements
  int64_t per_output = 1;  // number of input elements summed into each
};

// in_shape, out_shape: rank dims each; out_shape[d] is in_shape[d] or 1.
inline Reduction make_reduction(const int64_t* in_shape, const int64_t* out_shape, int rank) {
  Reduction r;
  int64_t stride = 1;
  int64_t strides[kMaxDims];
  for (int d = rank - 1; d >= 0; d--) {
    strides[d] = stride;
    stride *= in_shape[d];
  }
  for (int d = 0; d < rank; d++) {
    if (out_shape[d] == in_shape[d]) {
      r.kept_shape[r.kept_rank] = in_shape[d];
      r.kept_stride[r.kept_rank++] = strides[d];
      r.outputs *= in_shape[d];
    } else {
      r.red_shape[r.red_rank] = in_shape[d];
      r.red_stride[r.red_rank++] = strides[d];
      r.per_output *= in_shape[d];
    }
  }
  return r;
}

namespace cpu {
// out[o] = scale * sum of the inputs of output o, summed in float64.   out: (r.outputs,)
template <typename T> void sum_to(T* out, const T* in, const Reduction& r, double scale);
// out[i] = in[broadcast index of i]   (bc.stride_b is unused)
template <typename T> void expand(T* out, const T* in, int64_t n, const Broadcast& bc, double scale);
}  // namespace cpu

namespace cuda {
// Floats of scratch space sum_to needs for this reduction (0: none).
int64_t sum_to_scratch(const Reduction& r);
void sum_to(float* out, const float* in, const Reduction& r, double scale, float* scratch);
// A bf16 input summed in float32 into a float32 output: the bias gradient of a layer with bf16
// activations and a float32 bias, never rounded to bf16. Same scratch as the float32 version.
void sum_to(float* out, const bf16* in, const Reduction& r, double scale, float* scratch);
void expand(float* out, const float* in, int64_t n, const Broadcast& bc, double scale);
}  // namespace cuda

}  // namespace leuko::kernels
