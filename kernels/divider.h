// Division by an integer fixed at launch (a tensor's HW, C, W, a pooling's stride...), for the
// CUDA kernels that split flat indices: Divider<I>(d).div(n) = n / d and divmod(n, &q, &r) for
// n >= 0, with I = int32_t or int64_t the kernel's index type.
//
// Why: a GPU has no integer divide instruction. nvcc turns `/` into a routine of tens of
// instructions in 32 bits, and a call in 64 bits; a kernel that divides a few times per element
// is then bound by that arithmetic instead of by memory. Divider<int32_t> divides by a
// multiply-high, an add and a shift with a magic number made once on the host; Divider<int64_t>
// is the plain division, for tensors too large for 32-bit indices. Both give the true quotient,
// so a kernel computes the same integers with either.
//
// Host and device: the member functions are LEUKO_HOST_DEVICE, so the CPU tests run the very
// code the kernels run (tests/kernels/test_divider.cpp); the constructor runs on the host only
// (and checks its divisor there).
#pragma once

#include <cstdint>

#include "kernels/host_device.h"
#include "tensor/check.h"

namespace leuko::kernels {

// The high 32 bits of the 64-bit product a * b: one instruction on the GPU.
LEUKO_HOST_DEVICE inline uint32_t umulhi32(uint32_t a, uint32_t b) {
#ifdef __CUDA_ARCH__
  return __umulhi(a, b);
#else
  return uint32_t((uint64_t(a) * b) >> 32);
#endif
}

template <typename I>
struct Divider;

// The general path: the division itself.
template <>
struct Divider<int64_t> {
  using Index = int64_t;
  int64_t d = 1;
  Divider() = default;
  explicit Divider(int64_t divisor) : d(divisor) {}
  LEUKO_HOST_DEVICE int64_t div(int64_t n) const { return n / d; }
  LEUKO_HOST_DEVICE void divmod(int64_t n, int64_t* q, int64_t* r) const {
    *q = n / d;
    *r = n - *q * d;
  }
};

// n / d for 0 <= n <= 2^31 - 1 and 1 <= d <= 2^31 - 1 (the int32_t range), by the round-up
// method of Granlund and Montgomery ("Division by invariant integers using multiplication",
// 1994; PyTorch's IntDivider is the same). With
// l = ceil(log2 d) and m' = ceil(2^(32+l) / d) = 2^32 + m,
//   n * m' / 2^(32+l) = n / d + n * e / 2^(32+l),   e = m' - 2^(32+l) / d in [0, 1),
// and the excess n * e / 2^(32+l) < 2^31 / 2^(32+l) = 2^-(l+1) < 1 / d (as d <= 2^l) cannot
// carry n / d past the next integer (its fraction is at most (d - 1) / d):
// floor(n * m' / 2^(32+l)) = floor(n / d). div computes floor(n * m' / 2^32) as
// umulhi(n, m) + n, below 2^32 since umulhi(n, m) <= n < 2^31, then shifts by l. m fits in 32
// bits: d = 2^l gives m = 0 (and d = 1 the identity, l = 0); otherwise d >= 2^(l-1) + 1, so
// 2^(32+l) / d <= 2^33 - 2^33 / (2^(l-1) + 1) < 2^33 - 1 and m < 2^32 - 1.
// A divisor below 1 is taken as 1: callers make one for an empty dimension, whose quotients are
// never used, and the magic number of 0 would divide by zero here. A divisor above 2^31 - 1 is
// refused (leuko::Error, on the host): d holds no such value, and truncated it would divide by
// the wrong number (2^32 + 7 as 7) or, negative, never finish the loop below; such sizes take
// Divider<int64_t>.
template <>
struct Divider<int32_t> {
  using Index = int32_t;
  int32_t d = 1;
  uint32_t m = 0, l = 0;  // d = 1: umulhi(n, 0) = 0, n >> 0 = n
  Divider() = default;
  explicit Divider(int64_t divisor) : d(narrow(divisor)) {
    while ((uint64_t(1) << l) < uint64_t(d)) l++;
    m = uint32_t(((uint64_t(1) << (32 + l)) + uint64_t(d) - 1) / uint64_t(d) - (uint64_t(1) << 32));
  }
  LEUKO_HOST_DEVICE int32_t div(int32_t n) const { return int32_t((umulhi32(uint32_t(n), m) + uint32_t(n)) >> l); }
  LEUKO_HOST_DEVICE void divmod(int32_t n, int32_t* q, int32_t* r) const {
    *q = div(n);
    *r = n - *q * d;
  }

 private:
  static int32_t narrow(int64_t divisor) {  // host only, as the constructor
    LEUKO_CHECK(divisor <= INT32_MAX, "Divider<int32_t>: divisor ", divisor, " above 2^31 - 1");
    return int32_t(divisor < 1 ? 1 : divisor);
  }
};

}  // namespace leuko::kernels
