// Where a training step's time goes, op by op: the profile of `leuko bench --profile`.
//
// A Profiler, while it lives, collects marks. Each mark closes an interval that began at the
// previous mark, and the interval is charged to the mark's name and phase:
//   - autograd::record() marks the op it records (phase forward) right after the op has queued
//     its kernels, so the interval holds that op's work;
//   - the autograd engine marks each node after its backward closure (phase backward, the op's
//     name) and, where it summed gradients, after the sums ("accumulate");
//   - the caller marks the rest ("zero_grad", "optimizer").
// Work queued between two marks by code that does not mark (a view, a copy) is charged to the
// next mark: the intervals always add up to the whole profiled time, nothing is lost or double
// counted.
//
// Two clocks per interval. The host clock says how long the host took to launch the op. On the
// GPU a CUDA event is recorded on leuko's stream at each mark, so the event-to-event time is
// what the op cost the stream: its kernels' run time, plus any time the GPU sat idle waiting
// for the host to launch them (a launch-bound network shows that as GPU time close to host
// time). On the CPU every op has finished when it returns, so the two clocks are one.
//
// Marking costs a cudaEventRecord (about a microsecond of host time) per op, which slows the
// host side of a launch-bound step a little: profile in windows of their own, not in the
// windows that measure images/s. When no Profiler is active, mark() is one thread-local load.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/device.h"

namespace leuko::profile {

enum class Phase { forward, backward, other };
const char* phase_name(Phase p);

// One (name, phase) over every profiled step.
struct Row {
  std::string name;      // the op ("conv2d"), "accumulate", or the caller's ("optimizer")
  Phase phase = Phase::other;
  int64_t calls = 0;     // marks with this name and phase
  double device_ms = 0;  // summed intervals on the device's clock (the GPU's events, or the host)
  double host_ms = 0;    // summed intervals on the host clock
};

class Profiler {
 public:
  // Starts the first interval now (on the GPU: an event on leuko's stream). One active
  // Profiler per thread; the marks of other threads are not seen.
  explicit Profiler(Device device);
  ~Profiler();
  Profiler(const Profiler&) = delete;
  Profiler& operator=(const Profiler&) = delete;

  // Closes the current interval, charging it to (name, phase).
  void mark(const std::string& name, Phase phase);

  // Waits for the device, stops collecting, and returns one row per (name, phase), the most
  // expensive on the device first. Their device_ms add up to the whole profiled time.
  std::vector<Row> finish();

 private:
  struct Mark {
    std::string name;  // a copy: the engine's node, which holds the name, dies before finish()
    Phase phase;
    std::chrono::steady_clock::time_point host;
  };
  void record_event(size_t i);

  Device device_;
  bool active_ = true;
  std::vector<Mark> marks_;  // marks_[0] is the start
  std::vector<void*> events_;  // GPU: a cudaEvent_t per mark, created as needed; CPU: empty
};

// Charges the interval since the last mark to (name, phase) in this thread's active Profiler;
// nothing when none is active (then no string is made: the call costs one thread-local load).
void mark(const char* name, Phase phase);
// Whether a Profiler is active on this thread (callers skip work that exists only to mark).
bool active();

}  // namespace leuko::profile
