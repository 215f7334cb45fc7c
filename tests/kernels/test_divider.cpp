// kernels/divider.h against true division: the CUDA kernels' index arithmetic (batch norm's
// NCHW kernels, pooling) runs these very member functions, here compiled for the host.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/divider.h"
#include "tensor/check.h"

using leuko::kernels::Divider;

namespace {

constexpr int64_t kMax32 = INT32_MAX;  // 2^31 - 1: the largest n and d of Divider<int32_t>

// Checks div and divmod of `dv` on every n of `ns` against n / d and n % d. Counts the
// mismatches instead of asserting each (millions of values), and reports the first.
template <typename I>
int64_t mismatches(const Divider<I>& dv, const std::vector<int64_t>& ns, std::string* first) {
  int64_t bad = 0;
  for (const int64_t n : ns) {
    const I q = dv.div(I(n));
    I q2 = -1, r = -1;
    dv.divmod(I(n), &q2, &r);
    if (q != n / dv.d || q2 != q || r != n % dv.d) {
      if (bad++ == 0) {
        *first = "n " + std::to_string(n) + " d " + std::to_string(dv.d) + ": div " + std::to_string(q) + ", divmod " +
                 std::to_string(q2) + " r " + std::to_string(r);
      }
    }
  }
  return bad;
}

// The edge values of n for divisor d, within [0, 2^31 - 1]: 0, 1, d - 1, d, d + 1, the last
// multiples of d below 2^31 and their neighbours, and 2^31 - 1.
std::vector<int64_t> edges(int64_t d) {
  const int64_t k = kMax32 / d;  // k * d <= 2^31 - 1 < (k + 1) * d
  std::vector<int64_t> ns{0, 1, d - 1, d, d + 1, kMax32, kMax32 - 1};
  for (int64_t j = std::max<int64_t>(1, k - 3); j <= k; j++) {
    for (int64_t delta = -1; delta <= 1; delta++) ns.push_back(j * d + delta);
  }
  std::vector<int64_t> kept;
  for (const int64_t n : ns) {
    if (n >= 0 && n <= kMax32) kept.push_back(n);
  }
  return kept;
}

// The divisors of the edge tests: every power of two up to 2^30 and its neighbours, 2^31 - 1,
// small ones, and random ones spread over every magnitude (log-uniform).
std::vector<int64_t> divisors() {
  std::vector<int64_t> ds;
  for (int k = 0; k <= 30; k++) {
    const int64_t p = int64_t(1) << k;
    for (const int64_t d : {p - 1, p, p + 1}) {
      if (d >= 1) ds.push_back(d);
    }
  }
  ds.push_back(kMax32 - 1);
  ds.push_back(kMax32);
  for (int64_t d = 1; d <= 100; d++) ds.push_back(d);
  std::mt19937_64 rng(12345);
  std::uniform_int_distribution<int> bits(1, 31);
  for (int i = 0; i < 2000; i++) {
    const int b = bits(rng);  // d in [2^(b-1), 2^b - 1]
    ds.push_back(std::uniform_int_distribution<int64_t>(int64_t(1) << (b - 1), (int64_t(1) << b) - 1)(rng));
  }
  return ds;
}

// The edge values of d, and `count` random n in [0, 2^31 - 1].
std::vector<int64_t> values(int64_t d, std::mt19937_64& rng, int count) {
  std::vector<int64_t> ns = edges(d);
  std::uniform_int_distribution<int64_t> any(0, kMax32);
  for (int i = 0; i < count; i++) ns.push_back(any(rng));
  return ns;
}

}  // namespace

TEST_CASE("Divider<int32_t>: every n below 2^16 for every d below 300") {
  std::vector<int64_t> ns(int64_t(1) << 16);
  for (size_t n = 0; n < ns.size(); n++) ns[n] = int64_t(n);
  std::string first;
  int64_t bad = 0;
  for (int64_t d = 1; d < 300; d++) bad += mismatches(Divider<int32_t>(d), ns, &first);
  INFO(first);
  CHECK(bad == 0);
}

TEST_CASE("Divider<int32_t>: edge and random n up to 2^31 - 1, divisors of every magnitude") {
  std::mt19937_64 rng(2024);
  std::string first;
  int64_t bad = 0, checked = 0;
  for (const int64_t d : divisors()) {
    const std::vector<int64_t> ns = values(d, rng, 3000);
    bad += mismatches(Divider<int32_t>(d), ns, &first);
    checked += int64_t(ns.size());
  }
  INFO(first);
  CHECK(checked > 6'000'000);
  CHECK(bad == 0);
}

TEST_CASE("Divider<int32_t>: a divisor below 1 is taken as 1") {
  for (const int64_t d : {int64_t(0), int64_t(-5)}) {
    const Divider<int32_t> dv(d);
    CHECK(dv.d == 1);
    CHECK(dv.div(0) == 0);
    CHECK(dv.div(INT32_MAX) == INT32_MAX);
  }
  const Divider<int32_t> dflt;  // the default: the identity
  CHECK(dflt.div(12345) == 12345);
}

TEST_CASE("Divider<int32_t>: a divisor above 2^31 - 1 is refused on the host, not truncated") {
  // Truncated, 2^31 would become negative (and the magic-number loop never end) and 2^32 + 7
  // would divide by 7.
  CHECK_THROWS_WITH_AS(Divider<int32_t>{kMax32 + 1}, doctest::Contains("above 2^31 - 1"), leuko::Error);
  CHECK_THROWS_WITH_AS(Divider<int32_t>{(int64_t(1) << 32) + 7}, doctest::Contains("above 2^31 - 1"), leuko::Error);
  CHECK_THROWS_AS(Divider<int32_t>{INT64_MAX}, leuko::Error);
  CHECK_NOTHROW(Divider<int32_t>{kMax32});  // braces: a temporary, not a declaration
  const Divider<int32_t> largest(kMax32);
  CHECK(largest.d == kMax32);
  CHECK(largest.div(kMax32) == 1);
  CHECK(largest.div(kMax32 - 1) == 0);
}

TEST_CASE("Divider<int64_t>: the same values, and n and d beyond 32 bits") {
  std::mt19937_64 rng(7);
  std::string first;
  int64_t bad = 0;
  for (const int64_t d : divisors()) bad += mismatches(Divider<int64_t>(d), values(d, rng, 200), &first);
  std::uniform_int_distribution<int64_t> big(0, INT64_MAX);
  for (const int64_t d : {kMax32 + 1, int64_t(1) << 40, (int64_t(1) << 40) + 7, INT64_MAX}) {
    std::vector<int64_t> ns{0, 1, d - 1, d, INT64_MAX};
    if (d < INT64_MAX) ns.push_back(d + 1);
    for (int i = 0; i < 1000; i++) ns.push_back(big(rng));
    bad += mismatches(Divider<int64_t>(d), ns, &first);
  }
  INFO(first);
  CHECK(bad == 0);
}
