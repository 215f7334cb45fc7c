#include "tensor/profile.h"

#include <algorithm>
#include <map>
#include <utility>

#include "tensor/check.h"

#if LEUKO_WITH_CUDA
#include "tensor/cuda/check_cuda.h"
#include "tensor/cuda/context.h"
#endif

namespace leuko::profile {

namespace {
thread_local Profiler* t_active = nullptr;

#if LEUKO_WITH_CUDA
// Events outlive a Profiler, so that a second profile (after a first that warmed up) creates
// none while it measures: creating one costs host time that would be charged to an op.
std::vector<cudaEvent_t>& event_pool() {
  static thread_local std::vector<cudaEvent_t> pool;
  return pool;
}
#endif
}  // namespace

const char* phase_name(Phase p) {
  switch (p) {
    case Phase::forward: return "forward";
    case Phase::backward: return "backward";
    case Phase::other: return "other";
  }
  return "?";
}

Profiler::Profiler(Device device) : device_(device) {
  LEUKO_CHECK(t_active == nullptr, "profile: another Profiler is already active on this thread");
  marks_.reserve(4096);
  marks_.push_back({"start", Phase::other, std::chrono::steady_clock::now()});
  record_event(0);
  t_active = this;
}

Profiler::~Profiler() {
  if (t_active == this) t_active = nullptr;
#if LEUKO_WITH_CUDA
  // The events go back to the pool (they are plain handles: nothing to free here).
  std::vector<cudaEvent_t>& pool = event_pool();
  for (void* e : events_) pool.push_back(static_cast<cudaEvent_t>(e));
#endif
}

void Profiler::record_event(size_t i) {
#if LEUKO_WITH_CUDA
  if (device_ != Device::CUDA) return;
  if (events_.size() <= i) {
    std::vector<cudaEvent_t>& pool = event_pool();
    cudaEvent_t e = nullptr;
    if (!pool.empty()) {
      e = pool.back();
      pool.pop_back();
    } else {
      LEUKO_CUDA_CHECK(cudaEventCreate(&e));
    }
    events_.push_back(e);
  }
  LEUKO_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(events_[i]), cuda::stream()));
#else
  (void)i;
#endif
}

void Profiler::mark(const std::string& name, Phase phase) {
  if (!active_) return;
  marks_.push_back({name, phase, std::chrono::steady_clock::now()});
  record_event(marks_.size() - 1);
}

std::vector<Row> Profiler::finish() {
  LEUKO_CHECK(active_, "profile: finish() called twice");
  active_ = false;
  if (t_active == this) t_active = nullptr;
#if LEUKO_WITH_CUDA
  if (device_ == Device::CUDA && !events_.empty()) {
    LEUKO_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(events_.back())));
  }
#endif
  // Aggregate by (name, phase).
  std::map<std::pair<std::string, int>, Row> rows;
  for (size_t i = 1; i < marks_.size(); i++) {
    Row& r = rows[{marks_[i].name, int(marks_[i].phase)}];
    r.name = marks_[i].name;
    r.phase = marks_[i].phase;
    r.calls++;
    const double host = std::chrono::duration<double, std::milli>(marks_[i].host - marks_[i - 1].host).count();
    r.host_ms += host;
    double device = host;
#if LEUKO_WITH_CUDA
    if (device_ == Device::CUDA) {
      float ms = 0;
      LEUKO_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(events_[i - 1]),
                                            static_cast<cudaEvent_t>(events_[i])));
      device = ms;
    }
#endif
    r.device_ms += device;
  }
  std::vector<Row> out;
  out.reserve(rows.size());
  for (auto& kv : rows) out.push_back(std::move(kv.second));
  std::stable_sort(out.begin(), out.end(), [](const Row& a, const Row& b) { return a.device_ms > b.device_ms; });
  return out;
}

void mark(const char* name, Phase phase) {
  if (t_active != nullptr) t_active->mark(name, phase);
}

bool active() { return t_active != nullptr; }

}  // namespace leuko::profile
