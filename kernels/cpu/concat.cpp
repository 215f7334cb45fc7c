// CPU block copy for concatenation: one memcpy per row, rows shared among threads when large.
#include <cstring>

#include "kernels/concat.h"

namespace leuko::kernels::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 16;  // elements
}

template <typename T>
void copy_rows(T* dst, int64_t dst_stride, const T* src, int64_t src_stride, int64_t rows, int64_t cols) {
  if (cols == 0) return;  // an empty input: nothing to copy (and no pointer to touch)
#pragma omp parallel for if (rows * cols > kParallelMin && rows > 1)
  for (int64_t r = 0; r < rows; r++) std::memcpy(dst + r * dst_stride, src + r * src_stride, size_t(cols) * sizeof(T));
}

template void copy_rows<float>(float*, int64_t, const float*, int64_t, int64_t, int64_t);
template void copy_rows<double>(double*, int64_t, const double*, int64_t, int64_t, int64_t);

}  // namespace leuko::kernels::cpu
