// channels_last tensors (tensor/tensor.h MemoryFormat): the storage order of Tensor::to, the
// format kept by copies and conversions, reshape and reads in NCHW order, gradients through the
// conversion, the autograd engine handing each backward its output's order, and saving.
#include <doctest/doctest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "helpers.h"
#include "layers/elementwise.h"
#include "tensor/autograd.h"
#include "tensor/safetensors.h"

using namespace leuko;
using doctest::Contains;
using leuko::test::leaf;
using leuko::test::max_abs_diff;
using leuko::test::uniform_t;

TEST_CASE("to(channels_last) stores (N, H, W, C); to(nchw) brings it back") {
  const int64_t N = 2, C = 3, H = 4, W = 5;
  Tensor x = uniform_t({N, C, H, W}, -1, 1, 1, DType::f64);
  Tensor y = x.to(MemoryFormat::channels_last);
  CHECK(y.is_channels_last());
  CHECK(y.shape() == x.shape());
  CHECK(y.describe() == "float64[2, 3, 4, 5] channels_last on cpu");
  const double* a = x.data<double>();
  const double* b = y.data<double>();
  for (int64_t n = 0; n < N; n++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t h = 0; h < H; h++)
        for (int64_t w = 0; w < W; w++) {
          INFO("n " << n << " c " << c << " h " << h << " w " << w);
          CHECK(b[((n * H + h) * W + w) * C + c] == a[((n * C + c) * H + h) * W + w]);
        }
  Tensor back = y.to(MemoryFormat::nchw);
  CHECK_FALSE(back.is_channels_last());
  CHECK(max_abs_diff(back, x) == 0);
  // Reads are in NCHW order whatever the storage.
  CHECK(y.to_double_vector() == x.to_double_vector());
  CHECK(y.to(MemoryFormat::channels_last).shares_storage(y));  // already so: no copy
  for (DType d : {DType::f32, DType::bf16, DType::i64}) {
    CAPTURE(dtype_name(d));
    Tensor t = x.to(d);
    CHECK(t.to(MemoryFormat::channels_last).to(MemoryFormat::nchw).to_double_vector() == t.to_double_vector());
  }
}

TEST_CASE("copies and conversions keep the memory order; views read NCHW order") {
  Tensor x = uniform_t({2, 3, 4, 5}, -1, 1, 2, DType::f32).to(MemoryFormat::channels_last);
  CHECK(x.clone().is_channels_last());
  CHECK(x.detach().is_channels_last());
  CHECK(x.to(DType::bf16).is_channels_last());
  CHECK(x.to(DType::f64).to_double_vector() == x.to_double_vector());
  CHECK(Tensor::empty_like(x).is_channels_last());
  CHECK(Tensor::zeros_like(x).is_channels_last());
  CHECK(exp(x).to_double_vector() == exp(x.to(MemoryFormat::nchw)).to_double_vector());
  // reshape and flatten read the NCHW order (a copy), as they would for an NCHW tensor.
  Tensor f = x.flatten(1);
  CHECK_FALSE(f.is_channels_last());
  CHECK(f.to_double_vector() == x.to_double_vector());
  CHECK_FALSE(f.shares_storage(x));
  // With 1x1 planes both orders are the same: the view is free.
  Tensor p = uniform_t({2, 6, 1, 1}, -1, 1, 3, DType::f32).to(MemoryFormat::channels_last);
  Tensor v = p.flatten(1);
  CHECK(v.shares_storage(p));
  CHECK(v.to_double_vector() == p.to_double_vector());
  // copy_ writes in the destination's order.
  Tensor dst = Tensor::empty({2, 3, 4, 5});
  dst.copy_(x);
  CHECK(dst.to_double_vector() == x.to_double_vector());
}

TEST_CASE("channels_last errors are one line") {
  Tensor x = Tensor::zeros({2, 3, 4});
  CHECK_THROWS_WITH_AS(x.to(MemoryFormat::channels_last),
                       Contains("to(channels_last): needs a 4-D (N, C, H, W) tensor, got [2, 3, 4]"), Error);
  CHECK_THROWS_WITH_AS(Tensor::empty({2, 3}, DType::f32, Device::CPU, MemoryFormat::channels_last),
                       Contains("a channels_last tensor must have 4 dimensions"), Error);
}

TEST_CASE("gradients pass through to(channels_last), and each backward gets its output's order") {
  Tensor x = leaf(uniform_t({2, 3, 2, 3}, -1, 1, 4, DType::f64));
  Tensor y = x.to(MemoryFormat::channels_last);
  // An op whose backward returns an NCHW gradient for a channels_last input, and checks that the
  // gradient it receives is in its output's (channels_last) order.
  Tensor out = Tensor::empty_like(y);
  out.copy_(y.detach());
  bool got_channels_last = false;
  autograd::record(out, "test_op", {y}, [&got_channels_last](const Tensor& g, const std::vector<bool>&) {
    got_channels_last = g.is_channels_last();
    return std::vector<Tensor>{mul(g.to(MemoryFormat::nchw), 2.0)};
  });
  Tensor up = uniform_t({2, 3, 2, 3}, -1, 1, 5, DType::f64);  // NCHW upstream gradient for a channels_last output
  out.backward(up);
  CHECK(got_channels_last);
  REQUIRE(x.grad().defined());
  CHECK_FALSE(x.grad().is_channels_last());
  CHECK(max_abs_diff(x.grad(), mul(up, 2.0)) == 0);
}

TEST_CASE("save_safetensors writes a channels_last tensor in NCHW order") {
  Tensor x = uniform_t({1, 2, 3, 4}, -1, 1, 6, DType::f32);
  const std::string path = "/tmp/leuko_test_memory_format.safetensors";
  save_safetensors(path, {{"x", x.to(MemoryFormat::channels_last)}});
  SafetensorsFile f = load_safetensors(path);
  std::remove(path.c_str());
  REQUIRE(f.tensors.size() == 1);
  CHECK_FALSE(f.tensors[0].second.is_channels_last());
  CHECK(max_abs_diff(f.tensors[0].second, x) == 0);
}
