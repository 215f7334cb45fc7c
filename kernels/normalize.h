// Normalising a batch of uint8 images: out[n, c, p] = table[c][in[n, c, p]].
//
// The loader on a GPU sends its batches across PCIe as uint8, a quarter of the bytes of
// float32, and this kernel normalises them on the device. The table holds the 256 normalised
// values of each channel, (v / 255 - mean[c]) / std[c], computed once on the host
// (data::normalization_table), so the device's floats are the CPU loader's bit for bit.
#pragma once

#include <cstdint>

namespace leuko::kernels {

namespace cpu {
// out: (images, 3, plane) float32; in: (images, 3, plane) uint8; table: (3, 256).
void normalize_u8(float* out, const uint8_t* in, const float* table, int64_t images, int64_t plane);
}  // namespace cpu

namespace cuda {
// The same, on leuko's stream; `table` is device memory.
void normalize_u8(float* out, const uint8_t* in, const float* table, int64_t images, int64_t plane);
}  // namespace cuda

}  // namespace leuko::kernels
