// Concatenation on the GPU against the CPU: Inception's channel concatenations, other dims,
// odd sizes, inputs without gradients; and its kernel, copy_rows, bit for bit with every width
// of unit it copies in (16, 8, 4 and 2 bytes).
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "gpu/gpu_helpers.h"
#include "kernels/concat.h"
#include "layers/concat.h"
#include "tensor/device.h"

using namespace leuko;
using V = const std::vector<Tensor>&;

TEST_CASE("cat: GPU matches CPU") {
  struct Cfg {
    std::vector<Shape> shapes;
    int64_t dim;
  };
  const std::vector<Cfg> cfgs = {
      {{{2, 64, 28, 28}, {2, 128, 28, 28}, {2, 32, 28, 28}, {2, 32, 28, 28}}, 1},  // GoogLeNet inception3a
      {{{3, 5, 7, 9}, {3, 1, 7, 9}, {3, 11, 7, 9}}, 1},
      {{{2, 3, 5}, {7, 3, 5}}, 0},
      {{{3, 4, 5}, {3, 4, 1}, {3, 4, 13}}, -1},
      {{{5, 2, 3, 3}, {5, 2, 6, 3}}, 2},
      {{{1, 1}, {1, 1}, {1, 1}}, 0},
  };
  uint64_t seed = 500;
  for (const Cfg& c : cfgs) {
    INFO("dim " << c.dim << ", first input " << shape_str(c.shapes[0]));
    std::vector<Tensor> xs;
    for (size_t i = 0; i < c.shapes.size(); i++) {
      Tensor x = test::randn_t(c.shapes[i], seed++, DType::f32);
      if (i != 1) x.set_requires_grad(true);  // input 1 needs no gradient
      xs.push_back(x);
    }
    const int64_t dim = c.dim;
    // The forward copies float32 values (exact); gradients are copies of the float32-rounded
    // upstream gradient: 1e-6 relative.
    test::check_gpu_matches_cpu([dim](V in) { return cat(in, dim); }, xs, 1e-6, seed++);
  }
}

#if LEUKO_WITH_CUDA
TEST_CASE("copy_rows: the same bits as a plain copy, in every unit width") {
  // The kernel copies units of the widest of 16, 8, 4, 2 bytes dividing the addresses, the
  // strides and the row width: these cases pick each (column offsets 0 and 1, in dst and in
  // src, each its own, move the addresses). dst's whole buffer is compared: the columns outside
  // the copied ones and kGuard elements after the last row must keep their values.
  constexpr int64_t kGuard = 16;
  struct Cfg {
    int64_t rows, cols, dst_stride, src_stride;
  };
  const std::vector<Cfg> cfgs = {{64, 64, 256, 64},  {3, 8, 24, 8},   {5, 4, 12, 4},   {7, 2, 6, 2},
                                 {9, 3, 10, 3},      {1, 1, 1, 1},    {4099, 8, 16, 8}, {2, 1000, 3001, 1003},
                                 {30, 16, 384, 16}};
  auto run = [&](auto tag) {
    using T = decltype(tag);
    const DType dt = std::is_same_v<T, float> ? DType::f32 : DType::bf16;
    uint64_t seed = 40;
    for (const Cfg& c : cfgs) {
      for (int64_t col : {int64_t(0), int64_t(1)}) {
        for (int64_t src_col : {int64_t(0), int64_t(1)}) {
          CAPTURE(c.rows);
          CAPTURE(c.cols);
          CAPTURE(c.dst_stride);
          CAPTURE(c.src_stride);
          CAPTURE(col);
          CAPTURE(src_col);
          if (col + c.cols > c.dst_stride) continue;
          // src's rows start src_col elements into its buffer (cols <= src_stride: the last row ends
          // within it), dst's col elements into its own.
          Tensor src = test::randn_t({c.rows * c.src_stride + src_col}, seed++, DType::f32).to(dt);
          Tensor dst = test::randn_t({c.rows * c.dst_stride + kGuard}, seed++, DType::f32).to(dt);
          Tensor want = dst.clone();
          for (int64_t r = 0; r < c.rows; r++)
            std::memcpy(want.data<T>() + col + r * c.dst_stride, src.data<T>() + src_col + r * c.src_stride,
                        size_t(c.cols) * sizeof(T));
          Tensor dst_gpu = dst.cuda(), src_gpu = src.cuda();
          kernels::cuda::copy_rows(dst_gpu.data<T>() + col, c.dst_stride, src_gpu.data<T>() + src_col, c.src_stride,
                                   c.rows, c.cols);
          const Tensor got = dst_gpu.cpu();
          CHECK(std::memcmp(got.data<T>(), want.data<T>(), size_t(want.nbytes())) == 0);
        }
      }
    }
  };
  SUBCASE("float32") { run(float{}); }
  SUBCASE("bf16") { run(bf16{}); }
}
#endif
