// The op-by-op profile on the GPU (tensor/profile.h): CUDA events on leuko's stream at each
// mark, so each op's row holds the time its kernels took the stream, and the rows add up to
// the profiled span; a second profile reuses the first one's events.
#include <doctest/doctest.h>

#include <chrono>
#include <map>

#include "gpu/gpu_helpers.h"
#include "tensor/profile.h"

using namespace leuko;

namespace {

// conv -> relu -> sum, forward and backward, on the GPU: (N, 32, 56, 56) activations.
void conv_relu_step(const Tensor& x, const Tensor& w) {
  Tensor loss = sum(relu(conv2d(x, w, Tensor(), Conv2dOptions{1, 1})));  // stride 1, padding 1
  loss.backward();
}

}  // namespace

TEST_CASE("gpu: profile charges each op's stream time to its name, and the rows add up to the profiled span") {
  Tensor x = test::randn_t({16, 32, 56, 56}, 1, DType::f32, Device::CUDA);                  // (N, C, H, W)
  Tensor w = test::randn_t({32, 32, 3, 3}, 2, DType::f32, Device::CUDA).set_requires_grad();  // (K, C, R, S)
  conv_relu_step(x, w);  // cuDNN's algorithm search, outside the profile
  cuda_synchronize();
  for (int round = 0; round < 2; round++) {  // the second round takes its events from the pool
    CAPTURE(round);
    w.set_grad(Tensor());
    const auto t0 = std::chrono::steady_clock::now();
    profile::Profiler profiler(Device::CUDA);
    conv_relu_step(x, w);
    const std::vector<profile::Row> rows = profiler.finish();  // waits for the GPU
    const double wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::map<std::string, profile::Row> m;
    double total = 0;
    for (const profile::Row& r : rows) {
      m[r.name + " " + profile::phase_name(r.phase)] = r;
      CHECK(r.device_ms >= 0);
      CHECK(r.host_ms >= 0);
      total += r.device_ms;
    }
    for (const char* key : {"conv2d forward", "conv2d backward", "relu forward", "relu backward", "sum forward",
                            "sum backward"}) {
      CAPTURE(key);
      REQUIRE(m.count(key) == 1);
      CHECK(m[key].calls == 1);
    }
    // The convolution's backward (data and filter) is real GPU work: a positive interval.
    CHECK(m["conv2d backward"].device_ms > 0);
    CHECK(m["conv2d forward"].device_ms > 0);
    // The GPU's intervals lie inside the host's span from the Profiler's start to finish().
    CHECK(total > 0);
    CHECK(total <= wall_ms);
  }
}
