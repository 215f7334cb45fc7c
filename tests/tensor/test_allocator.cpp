// The CPU allocator: statistics (current, peak, reset) and poisoned allocations.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "tensor/allocator.h"
#include "tensor/tensor.h"

using namespace leuko;

namespace {
// Restores the poison setting on scope exit (tests/main.cpp turns it on for every test).
struct PoisonSetting {
  bool saved = poison_allocations();
  explicit PoisonSetting(bool on) { set_poison_allocations(on); }
  ~PoisonSetting() { set_poison_allocations(saved); }
};
}  // namespace

TEST_CASE("CPU memory statistics: current, peak, reset_peak") {
  // CPU blocks are rounded up to whole 64-byte lines; the statistics count the rounded bytes.
  const MemoryStats s0 = memory_stats(Device::CPU);
  size_t peak_after_a = 0;
  {
    Tensor a = Tensor::empty({1000});  // 4000 bytes -> 4032
    const MemoryStats s1 = memory_stats(Device::CPU);
    CHECK(s1.current == s0.current + 4032);
    CHECK(s1.reserved == s0.reserved + 4032);
    CHECK(s1.allocations == s0.allocations + 1);
    CHECK(s1.peak >= s1.current);
    {
      Tensor b = Tensor::empty({16}, DType::f64);  // 128 bytes, already whole lines
      Tensor c = Tensor::empty({0});               // a zero-byte tensor still takes one line
      CHECK(memory_stats(Device::CPU).current == s1.current + 128 + 64);
      peak_after_a = memory_stats(Device::CPU).peak;
      CHECK(peak_after_a >= s1.current + 192);
    }
    CHECK(memory_stats(Device::CPU).current == s1.current);
    CHECK(memory_stats(Device::CPU).peak == peak_after_a);  // the peak remembers b and c
    Tensor view = a.reshape({10, 100});                     // views allocate nothing
    CHECK(memory_stats(Device::CPU).current == s1.current);
    CHECK(memory_stats(Device::CPU).allocations == s1.allocations + 2);
  }
  CHECK(memory_stats(Device::CPU).current == s0.current);  // freed with the last handle

  reset_peak_memory(Device::CPU);
  MemoryStats r = memory_stats(Device::CPU);
  CHECK(r.peak == r.current);
  CHECK(r.peak_reserved == r.reserved);
  {
    Tensor big = Tensor::empty({1 << 20});  // 4 MiB
    CHECK(memory_stats(Device::CPU).peak == r.current + (size_t(4) << 20));
  }
  CHECK(memory_stats(Device::CPU).peak == r.current + (size_t(4) << 20));
  CHECK(memory_stats(Device::CPU).peak_reserved >= r.reserved + (size_t(4) << 20));
  reset_peak_memory(Device::CPU);
  CHECK(memory_stats(Device::CPU).peak == memory_stats(Device::CPU).current);
  CHECK(memory_stats(Device::CPU).cache_hits == 0);  // the CPU allocator has no cache

  // device_alloc / device_free directly.
  const size_t before = memory_stats(Device::CPU).current;
  void* p = device_alloc(Device::CPU, 100);
  CHECK(p != nullptr);
  CHECK(reinterpret_cast<uintptr_t>(p) % 64 == 0);
  CHECK(memory_stats(Device::CPU).current == before + 128);
  device_free(Device::CPU, p, 100);
  CHECK(memory_stats(Device::CPU).current == before);
  device_free(Device::CPU, nullptr, 0);  // freeing nothing is a no-op
  CHECK(memory_stats(Device::CPU).current == before);
}

TEST_CASE("poisoned allocations are filled with 0xFF bytes (NaN in every float type)") {
  PoisonSetting poison(true);
  CHECK(poison_allocations());
  Tensor f = Tensor::empty({37});
  const unsigned char* bytes = static_cast<const unsigned char*>(f.raw_data());
  bool all_ff = true;
  for (size_t i = 0; i < f.nbytes(); i++) all_ff = all_ff && bytes[i] == 0xFF;
  CHECK(all_ff);
  for (float v : f.to_vector()) CHECK(std::isnan(v));
  for (double v : Tensor::empty({5}, DType::f64).to_double_vector()) CHECK(std::isnan(v));
  for (float v : Tensor::empty({5}, DType::bf16).to_vector()) CHECK(std::isnan(v));
  CHECK(Tensor::empty({1}, DType::i64).data<int64_t>()[0] == -1);  // all ones in int64
  // Factories that write their values are unaffected.
  CHECK(Tensor::zeros({3}).to_vector() == std::vector<float>(3, 0.f));
  CHECK(Tensor::full({2}, 1.5, DType::f64).to_double_vector() == std::vector<double>(2, 1.5));

  set_poison_allocations(false);
  CHECK_FALSE(poison_allocations());
  Tensor z = Tensor::zeros({4});  // no poison: the factories still write every value
  CHECK(z.to_vector() == std::vector<float>(4, 0.f));
}
