// GPU tensors: copies between host and device, fill, bf16 conversion against the CPU's bit for
// bit, the caching allocator (reuse, statistics, out of memory), autograd across devices.
// Run with `leuko_tests --gpu` (ctest -L gpu); every allocation is poisoned with NaN.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "fixture.h"
#include "gpu/gpu_helpers.h"
#include "layers/module.h"
#include "tensor/allocator.h"
#include "tensor/device.h"

using namespace leuko;
using doctest::Contains;

namespace {

float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// A float32 vector of tricky values for bf16 rounding: ties, near-ties, subnormals, the ends
// of the range, infinities; then random values over many binades.
std::vector<float> bf16_probe_values() {
  std::vector<float> v;
  for (uint32_t b :
       {0x3F808000u, 0x3F818000u, 0x3F808001u, 0x3F807FFFu, 0xBF818000u, 0x3FFFFFFFu, 0x7F7FFFFFu, 0x7F7F7FFFu,
        0x00000001u, 0x00018000u, 0x00808000u, 0x807FFFFFu, 0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u})
    v.push_back(float_of(b));
  Generator g(11);
  for (int i = 0; i < 100000; i++) {
    // Random bit patterns with exponents from subnormal to near overflow, and any low bits.
    const uint32_t bits = uint32_t(g.next_u64());
    if ((bits & 0x7F800000u) == 0x7F800000u) continue;  // NaN and infinity: tested above and below
    v.push_back(float_of(bits));
  }
  return v;
}

}  // namespace

TEST_CASE("host <-> device copies round trip bit for bit") {
  for (int64_t n : {int64_t(0), int64_t(1), int64_t(3), int64_t(17), int64_t(1000003)}) {
    CAPTURE(n);
    Tensor f = test::randn_t({n}, 1, DType::f32);
    Tensor g = f.cuda();
    CHECK(g.is_cuda());
    CHECK(g.device() == Device::CUDA);
    CHECK(g.shape() == f.shape());
    CHECK(g.describe() == "float32[" + std::to_string(n) + "] on cuda");
    Tensor back = g.cpu();
    CHECK(back.device() == Device::CPU);
    CHECK(std::memcmp(back.raw_data(), f.raw_data(), f.nbytes()) == 0);
    // Device to device: clone, and copy_ in every direction.
    CHECK(std::memcmp(g.clone().cpu().raw_data(), f.raw_data(), f.nbytes()) == 0);
    Tensor d = Tensor::empty({n}, DType::f32, Device::CUDA);
    d.copy_(g);
    CHECK(std::memcmp(d.cpu().raw_data(), f.raw_data(), f.nbytes()) == 0);
    Tensor e = Tensor::empty({n}, DType::f32, Device::CUDA);
    e.copy_(f);  // host -> device
    Tensor h = Tensor::empty({n});
    h.copy_(e);  // device -> host
    CHECK(std::memcmp(h.raw_data(), f.raw_data(), f.nbytes()) == 0);
  }
  // int64 and bf16 travel as bytes.
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{0, -7, (int64_t(1) << 53) + 1, 9}, {2, 2}, Device::CUDA);
  CHECK(labels.is_cuda());
  const Tensor lb = labels.cpu();
  CHECK(lb.data<int64_t>()[2] == (int64_t(1) << 53) + 1);
  Tensor h = Tensor::from_vector(std::vector<float>{1.5f, -0.1f}, {2}).to(DType::bf16);
  CHECK(h.cuda().cpu().data<bf16>()[1].bits == h.data<bf16>()[1].bits);
  // from_vector straight to the GPU, views of GPU tensors, item() and to_vector().
  Tensor v = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3}, DType::f32, Device::CUDA);
  CHECK(v.reshape({3, 2}).shares_storage(v));
  CHECK(v.flatten(0).to_vector() == std::vector<float>{1, 2, 3, 4, 5, 6});
  CHECK(Tensor::scalar(2.5, DType::f32, Device::CUDA).item() == 2.5);
  CHECK(to_string(v, 2) == "Tensor(float32[2, 3] on cuda) [1, 2, ... (6 values)]");
}

TEST_CASE("fill on the GPU equals the CPU's") {
  for (double value : {0.0, 1.0, -2.5, 0.1, 1e-3, 3.0e38, 1e-40}) {
    CAPTURE(value);
    for (DType dt : {DType::f32, DType::bf16}) {
      CAPTURE(dtype_name(dt));
      for (int64_t n : {int64_t(1), int64_t(17), int64_t(1000003)}) {
        Tensor g = Tensor::full({n}, value, dt, Device::CUDA);
        Tensor c = Tensor::full({n}, value, dt);
        CHECK(std::memcmp(g.cpu().raw_data(), c.raw_data(), c.nbytes()) == 0);
      }
    }
  }
  CHECK(Tensor::zeros({5}, DType::f32, Device::CUDA).to_vector() == std::vector<float>(5, 0.f));
  CHECK(Tensor::ones({5}, DType::f32, Device::CUDA).to_vector() == std::vector<float>(5, 1.f));
  // int64 fills too (zeros_like of labels), rounding as the CPU does.
  Tensor l = Tensor::full({1001}, 7.0, DType::i64, Device::CUDA);
  const Tensor lc = l.cpu();
  CHECK(lc.data<int64_t>()[1000] == 7);
  CHECK(Tensor::zeros_like(l).cpu().data<int64_t>()[0] == 0);
}

TEST_CASE("bf16 <-> float32 on the GPU equals the CPU conversion bit for bit") {
  // NaNs compare as NaN only: the GPU's cvt.rn.bf16.f32 makes every NaN 0x7FFF, the CPU keeps
  // the sign and payload (both are NaN).
  const std::vector<float> vals = bf16_probe_values();
  const int64_t n = int64_t(vals.size());
  Tensor f = Tensor::from_vector(vals, {n});
  Tensor cpu = f.to(DType::bf16);
  Tensor gpu = f.cuda().to(DType::bf16);
  CHECK(gpu.is_cuda());
  CHECK(gpu.dtype() == DType::bf16);
  Tensor back = gpu.cpu();
  const bf16* pc = cpu.data<bf16>();
  const bf16* pg = back.data<bf16>();
  int64_t mismatches = 0, first = -1;
  for (int64_t i = 0; i < n; i++) {
    if (pc[i].bits != pg[i].bits) {
      mismatches++;
      if (first < 0) first = i;
    }
  }
  INFO("first mismatch at " << first << ": float32 value " << (first >= 0 ? vals[size_t(first)] : 0.f));
  CHECK(mismatches == 0);
  // bf16 -> float32 on the GPU: exact, as on the CPU.
  Tensor up_gpu = cpu.cuda().to(DType::f32).cpu(), up_cpu = cpu.to(DType::f32);
  CHECK(std::memcmp(up_gpu.raw_data(), up_cpu.raw_data(), up_cpu.nbytes()) == 0);
  // NaN stays NaN, including a signalling NaN with its payload in the low bits.
  Tensor nans =
      Tensor::from_vector(std::vector<float>{float_of(0x7FC00000u), float_of(0x7F800001u), float_of(0xFFC00000u)}, {3},
                          DType::f32, Device::CUDA);
  for (float x : nans.to(DType::bf16).to_vector()) CHECK(std::isnan(x));
  // PyTorch's conversions of the fixture's values, converted here on the GPU.
  test::Fixture fx = test::load_fixture("safetensors_bf16");
  Tensor src = fx.file.find("f32"), want = fx.file.find("f32_to_bf16");
  REQUIRE(src.defined());
  const Tensor got = src.cuda().to(DType::bf16).cpu();
  for (int64_t i = 0; i < src.numel(); i++) {
    CAPTURE(i);
    if (std::isnan(bf16_to_float(want.data<bf16>()[i])))
      CHECK(std::isnan(bf16_to_float(got.data<bf16>()[i])));
    else
      CHECK(got.data<bf16>()[i].bits == want.data<bf16>()[i].bits);
  }
}

TEST_CASE("GPU conversion and dtype errors") {
  Tensor g = Tensor::ones({2}, DType::f32, Device::CUDA);
  CHECK_THROWS_WITH_AS(g.to(DType::f64), Contains("float64 tensors live on the CPU only"), Error);
  Tensor l = Tensor::from_vector(std::vector<int64_t>{1, 2}, {2}, Device::CUDA);
  CHECK_THROWS_WITH_AS(l.to(DType::f32), Contains("no CUDA conversion from int64 to float32"), Error);
  CHECK_THROWS_WITH_AS(exp(l), Contains("exp on the GPU takes float32, got int64"), Error);
  CHECK(exp(g.to(DType::bf16)).dtype() == DType::bf16);  // bf16 activations: through float32 (layers/dispatch.h)
  CHECK_THROWS_WITH_AS(add(g, Tensor::ones({2})), Contains("add: inputs on different devices"), Error);
}

TEST_CASE("the caching allocator reuses freed blocks and keeps statistics") {
  // The policy itself (best fit, splitting, merging, pools) is tested on the CPU
  // (tests/tensor/test_block_cache.cpp); here, that cudaMalloc and cudaFree sit behind it as
  // they should. Segments that earlier tests' live tensors keep may have free room, so a new
  // block comes either from there or from a new segment: both are allowed below. Under
  // LEUKO_CUDA_EXACT_BLOCKS=1 (tools/gpu_sanitize.sh) a new segment is the block's own size.
  const char* exact_env = std::getenv("LEUKO_CUDA_EXACT_BLOCKS");
  const bool exact = exact_env != nullptr && std::string(exact_env) == "1";
  cuda_synchronize();
  empty_cuda_cache();
  const MemoryStats s0 = memory_stats(Device::CUDA);
  constexpr size_t MiB = size_t(1) << 20;
  // 1000 floats = 4000 bytes, rounded to 4096 (512-byte steps); a new segment would be 2 MiB.
  {
    Tensor a = Tensor::empty({1000}, DType::f32, Device::CUDA);
    const MemoryStats s1 = memory_stats(Device::CUDA);
    CHECK(s1.current == s0.current + 4096);
    CHECK((s1.reserved == s0.reserved || s1.reserved == s0.reserved + (exact ? 4096 : 2 * MiB)));
    CHECK(s1.allocations == s0.allocations + 1);
    CHECK(s1.peak >= s1.current);
  }
  const MemoryStats s2 = memory_stats(Device::CUDA);
  CHECK(s2.current == s0.current);  // freed into the cache, not to the driver
  {
    Tensor b = Tensor::empty({1000}, DType::f32, Device::CUDA);  // the same size again
    const MemoryStats s3 = memory_stats(Device::CUDA);
    CHECK(s3.cache_hits == s2.cache_hits + 1);
    CHECK(s3.reserved == s2.reserved);  // served from the cache
    // A reused block is poisoned again (tests/main.cpp turns poisoning on).
    for (float v : b.to_vector()) REQUIRE(std::isnan(v));
  }
  // A large block counts its own size, rounded to 512 bytes; a new segment would be 256 MiB (a
  // segment of its own size, rounded to 2 MiB, where 256 MiB cannot be had).
  {
    const size_t before = memory_stats(Device::CUDA).reserved;
    Tensor big = Tensor::empty({3 << 18}, DType::f32, Device::CUDA);  // 3 MiB
    CHECK(memory_stats(Device::CUDA).current == s0.current + 3 * MiB);
    const size_t grew = memory_stats(Device::CUDA).reserved - before;
    CHECK((grew == 0 || grew == (exact ? 3 * MiB : 256 * MiB) || (!exact && grew == 4 * MiB)));
    for (float v : big.to_vector()) REQUIRE(std::isnan(v));
  }

  // Peak: remembers the largest current since the last reset.
  reset_peak_memory(Device::CUDA);
  const MemoryStats r = memory_stats(Device::CUDA);
  CHECK(r.peak == r.current);
  CHECK(r.peak_reserved == r.reserved);
  {
    Tensor x = Tensor::empty({2 << 20}, DType::f32, Device::CUDA);  // 8 MiB
    Tensor y = Tensor::empty({2 << 20}, DType::f32, Device::CUDA);
    CHECK(memory_stats(Device::CUDA).current == r.current + 16 * MiB);
  }
  CHECK(memory_stats(Device::CUDA).current == r.current);
  CHECK(memory_stats(Device::CUDA).peak == r.current + 16 * MiB);
  reset_peak_memory(Device::CUDA);
  CHECK(memory_stats(Device::CUDA).peak == r.current);

  // empty_cuda_cache returns the segments this test made, all of whose blocks are free now, to
  // the driver: what was held at the start (after the same call) is what is held again.
  CHECK(memory_stats(Device::CUDA).reserved >= s0.reserved);
  empty_cuda_cache();
  CHECK(memory_stats(Device::CUDA).reserved == s0.reserved);
  CHECK(memory_stats(Device::CUDA).current == s0.current);
}

TEST_CASE("an impossible allocation throws OutOfMemory, and the allocator still works") {
  const MemoryStats before = memory_stats(Device::CUDA);
  // 2^48 floats = 1 PiB = 2^30 MiB, printed with one decimal as every size in the message.
  try {
    Tensor huge = Tensor::empty({int64_t(1) << 48}, DType::f32, Device::CUDA);
    FAIL("a 1 PiB allocation succeeded");
  } catch (const OutOfMemory& e) {
    const std::string what = e.what();
    CHECK(what.find("CUDA out of memory: asked for 1073741824.0 MiB") != std::string::npos);
    CHECK(what.find(" free of ") != std::string::npos);  // says how much the device has
    CHECK(e.bytes() == size_t(1) << 50);
  }
  // OutOfMemory is an Error, so a generic handler catches it too.
  CHECK_THROWS_AS(Tensor::empty({int64_t(1) << 48}, DType::f32, Device::CUDA), Error);
  const MemoryStats after = memory_stats(Device::CUDA);
  CHECK(after.current == before.current);  // nothing was counted as in use
  // The allocator and the stream are usable afterwards.
  Tensor t = Tensor::full({1000}, 3.0, DType::f32, Device::CUDA);
  CHECK(sum(t).item() == 3000.0);
}

TEST_CASE("autograd across devices; gradients accumulate on the GPU") {
  // to(Device) is differentiable: the gradient of x.cuda() comes back to the CPU.
  Tensor x = test::randn_t({3, 4}, 5, DType::f32).set_requires_grad();
  sum(mul(x.cuda(), 2.0)).backward();
  REQUIRE(x.grad().defined());
  CHECK(x.grad().device() == Device::CPU);
  CHECK(x.grad().to_vector() == std::vector<float>(12, 2.f));

  // A GPU leaf: the second backward adds (+=) on the GPU.
  Tensor w = test::randn_t({1000}, 6, DType::f32, Device::CUDA).set_requires_grad();
  sum(mul(w, 3.0)).backward();
  sum(mul(w, 0.5)).backward();
  CHECK(w.grad().is_cuda());
  CHECK(w.grad().to_vector() == std::vector<float>(1000, 3.5f));
  // to(dtype) on the GPU: float32 -> bf16 -> float32 passes the gradient through.
  Tensor v = Tensor::ones({4}, DType::f32, Device::CUDA).set_requires_grad();
  sum(v.to(DType::bf16).to(DType::f32)).backward();
  CHECK(v.grad().to_vector() == std::vector<float>(4, 1.f));
}

TEST_CASE("same seed, same weights on the CPU and the GPU") {
  Generator gc(42), gg(42);
  Tensor c = Tensor::empty({64, 3, 11, 11});
  Tensor g = Tensor::empty({64, 3, 11, 11}, DType::f32, Device::CUDA);
  init::kaiming_uniform_(c, std::sqrt(5.0), init::FanMode::fan_in, "leaky_relu", gc);
  init::kaiming_uniform_(g, std::sqrt(5.0), init::FanMode::fan_in, "leaky_relu", gg);
  CHECK(std::memcmp(g.cpu().raw_data(), c.raw_data(), c.nbytes()) == 0);
  // A tensor moved in place (a module's handle) sees the new storage.
  Tensor m = Tensor::ones({3});
  Tensor alias = m;
  move_tensor_to(m, Device::CUDA);
  CHECK(alias.is_cuda());
  CHECK(alias.to_vector() == std::vector<float>(3, 1.f));
}
