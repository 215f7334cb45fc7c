// The trainer's read-back on the GPU (tools/leuko/step_readback.h): the copies to pinned memory
// hold the values of the moment start() was called, even when later work on the stream
// overwrites the tensors before finish(); two read-backs alternate as the trainer uses them;
// bf16 logits come back as their float32 values.
#include <doctest/doctest.h>

#include "gpu/gpu_helpers.h"
#include "tools/leuko/step_readback.h"

using namespace leuko;

TEST_CASE("gpu: step readback returns the values of start(), not of the work queued after it") {
  cli::StepReadback r[2] = {cli::StepReadback(Device::CUDA), cli::StepReadback(Device::CUDA)};
  std::vector<float> expected[2];
  double expected_loss[2] = {0, 0};
  for (int step = 0; step < 6; step++) {
    const int slot = step % 2;
    // This step's loss (1,) and logits (B, C): a larger batch on step 3 makes the buffer grow.
    const int64_t B = step == 3 ? 300 : 64;
    Tensor logits = test::randn_t({B, 4}, 100 + uint64_t(step), DType::f32, Device::CUDA);  // (B, 4)
    Tensor loss = Tensor::full({1}, 0.5 + step, DType::f32, Device::CUDA);                // (1,)
    expected[slot] = logits.to_vector();
    expected_loss[slot] = 0.5 + step;
    r[slot].start(loss, logits);
    // Work queued after the copies overwrites their sources before the host reads them.
    logits.fill_(-7.0);
    loss.fill_(-7.0);
    if (step == 0) continue;
    const int prev = 1 - slot;  // the step before, read after this one was queued
    const cli::StepReadback::Values v = r[prev].finish();
    CHECK(v.loss == expected_loss[prev]);
    CHECK(v.cols == 4);
    CHECK(v.logits == expected[prev]);
  }
  r[1].finish();  // the last step's copies
}

TEST_CASE("gpu: step readback of bf16 logits gives their float32 values") {
  cli::StepReadback r(Device::CUDA);
  Tensor logits = test::randn_t({32, 3}, 5, DType::f32, Device::CUDA).to(DType::bf16);  // (32, 3) bf16
  Tensor loss = Tensor::full({1}, 1.25, DType::f32, Device::CUDA);
  r.start(loss, logits);
  const cli::StepReadback::Values v = r.finish();
  CHECK(v.loss == 1.25);
  CHECK(v.logits == logits.to(DType::f32).to_vector());
}
