// CPU reference of the uint8 batch normalisation: one table lookup per value.
#include "kernels/normalize.h"

namespace leuko::kernels::cpu {

void normalize_u8(float* out, const uint8_t* in, const float* table, int64_t images, int64_t plane) {
  for (int64_t n = 0; n < images; n++) {
    for (int64_t c = 0; c < 3; c++) {
      const float* t = table + 256 * c;  // (256,) this channel's values
      const int64_t base = (n * 3 + c) * plane;
      for (int64_t p = 0; p < plane; p++) out[base + p] = t[in[base + p]];
    }
  }
}

}  // namespace leuko::kernels::cpu
