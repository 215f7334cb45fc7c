// The op-by-op profile (tensor/profile.h) on the CPU: each op's interval goes to its name and
// phase, the engine's gradient sums to "accumulate", the intervals add up to the whole, and
// nothing is marked without a Profiler. (On the GPU the same marks record CUDA events: that
// path runs in tools/gpu_check.sh's `bench --profile`.)
#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <thread>

#include "helpers.h"
#include "tensor/profile.h"

using namespace leuko;
using doctest::Contains;

namespace {

using Clock = std::chrono::steady_clock;

// y = x, after sleeping `forward_ms`; its backward sleeps `backward_ms`: intervals of a known
// least length.
Tensor slow_identity(const Tensor& x, int forward_ms, int backward_ms) {
  Tensor out;
  {
    autograd::NoGradGuard no_grad;
    std::this_thread::sleep_for(std::chrono::milliseconds(forward_ms));
    out = x.clone();
  }
  autograd::record(out, "slow", {x}, [backward_ms](const Tensor& g, const std::vector<bool>&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(backward_ms));
    return std::vector<Tensor>{g};
  });
  return out;
}

std::map<std::pair<std::string, profile::Phase>, profile::Row> by_key(const std::vector<profile::Row>& rows) {
  std::map<std::pair<std::string, profile::Phase>, profile::Row> m;
  for (const profile::Row& r : rows) {
    const bool fresh = m.emplace(std::make_pair(r.name, r.phase), r).second;
    CHECK_MESSAGE(fresh, "two rows for " << r.name << " " << profile::phase_name(r.phase));
  }
  return m;
}

}  // namespace

TEST_CASE("profile: each op's forward and backward under its name, gradient sums as accumulate, adding up to the whole") {
  Tensor x = Tensor::from_vector(std::vector<double>{1, -2, 3, 4}, {4}).set_requires_grad();
  const Clock::time_point t0 = Clock::now();
  profile::Profiler profiler(Device::CPU);
  CHECK(profile::active());
  Tensor y = slow_identity(relu(x), 20, 30);  // relu forward, then 20 ms charged to "slow"
  Tensor z = mul(y, y);                       // y used twice: its two gradients are summed
  Tensor loss = sum(z);
  loss.backward();
  profile::mark("optimizer", profile::Phase::other);  // what a caller marks itself
  const std::vector<profile::Row> rows = profiler.finish();
  const double wall_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  CHECK_FALSE(profile::active());

  auto m = by_key(rows);
  using P = profile::Phase;
  for (const char* op : {"relu", "slow", "mul", "sum"}) {
    CAPTURE(op);
    REQUIRE(m.count({op, P::forward}) == 1);
    REQUIRE(m.count({op, P::backward}) == 1);
    CHECK(m[{op, P::forward}].calls == 1);
    CHECK(m[{op, P::backward}].calls == 1);
  }
  REQUIRE(m.count({"accumulate", P::backward}) == 1);
  CHECK(m[{"accumulate", P::backward}].calls == 1);  // mul's two gradients for y, summed once
  REQUIRE(m.count({"optimizer", P::other}) == 1);
  CHECK(rows.size() == 10);

  // The sleeps land in their op's rows, in the right phase; on the CPU both clocks are the host's.
  CHECK(m[{"slow", P::forward}].device_ms >= 20);
  CHECK(m[{"slow", P::backward}].device_ms >= 30);
  CHECK(m[{"slow", P::forward}].device_ms < 20 + 1000);  // not the backward's too
  double total = 0;
  for (const profile::Row& r : rows) {
    CHECK(r.device_ms >= 0);
    CHECK(r.device_ms == r.host_ms);
    total += r.device_ms;
  }
  // The intervals partition the profiled time: nothing lost, nothing counted twice.
  CHECK(total >= 50);
  CHECK(total <= wall_ms);
  // The costliest first.
  for (size_t i = 1; i < rows.size(); i++) CHECK(rows[i - 1].device_ms >= rows[i].device_ms);
  CHECK(rows[0].name == "slow");
  CHECK(rows[0].phase == P::backward);
}

TEST_CASE("profile: nothing is marked without a Profiler; one per thread; finish once") {
  CHECK_FALSE(profile::active());
  profile::mark("nobody", profile::Phase::other);  // no Profiler: nothing happens
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2}, {2}).set_requires_grad();
  sum(mul(x, x)).backward();  // the engine's marks, with no Profiler

  {
    profile::Profiler profiler(Device::CPU);
    CHECK_THROWS_WITH_AS(profile::Profiler(Device::CPU), Contains("another Profiler is already active"), Error);
    const std::vector<profile::Row> rows = profiler.finish();
    CHECK(rows.empty());  // nothing was marked in between
    CHECK_THROWS_WITH_AS(profiler.finish(), Contains("finish() called twice"), Error);
  }
  // A Profiler that dies without finish() lets the next one start.
  { profile::Profiler abandoned(Device::CPU); }
  profile::Profiler next(Device::CPU);
  profile::mark("one", profile::Phase::other);
  const std::vector<profile::Row> rows = next.finish();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].name == "one");
  CHECK(rows[0].calls == 1);
  CHECK(std::string(profile::phase_name(profile::Phase::forward)) == "forward");
}
