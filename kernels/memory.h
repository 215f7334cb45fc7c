// Fill, dtype conversion and in-place accumulation: the kernels tensor/ itself needs.
//
// CPU versions are templated on the element type; CUDA versions work on float32 and bf16, and
// fill on int64 too (labels) (float64 is CPU-only). All lengths are element counts.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/dtype.h"

namespace leuko::kernels {
namespace cpu {
template <typename T> void fill(T* out, int64_t n, double value);  // out: (n,)
// out[i] = in[i] converted; Dst, Src in {float, double, bf16}, or int64 to and from float/double.
template <typename Dst, typename Src> void convert(Dst* out, const Src* in, int64_t n);
template <typename T> void accumulate(T* acc, const T* x, int64_t n);  // acc += x, (n,); bf16: in float, rounded once
}  // namespace cpu

namespace cuda {
void fill(float* out, int64_t n, float value);
void fill(bf16* out, int64_t n, float value);
void fill(int64_t* out, int64_t n, int64_t value);
void convert(bf16* out, const float* in, int64_t n);
void convert(float* out, const bf16* in, int64_t n);
void accumulate(float* acc, const float* x, int64_t n);
void accumulate(bf16* acc, const bf16* x, int64_t n);  // in float, rounded once
// Host <-> device and device <-> device copies on leuko's stream. A copy to the host waits
// for it to finish, so the host may read the data at once.
void copy_to_device(void* dst, const void* src, size_t bytes);
void copy_to_host(void* dst, const void* src, size_t bytes);
void copy_on_device(void* dst, const void* src, size_t bytes);
}  // namespace cuda
}  // namespace leuko::kernels
