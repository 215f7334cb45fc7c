// The trainer's read-back of each step's loss and logits (tools/leuko/step_readback.h) on the
// CPU, and count_correct. The GPU's asynchronous copies: tests/gpu/test_step_readback_gpu.cpp.
#include <doctest/doctest.h>

#include "helpers.h"
#include "tools/leuko/step_readback.h"

using namespace leuko;

TEST_CASE("step readback on the CPU: the numbers of the moment of start(), once per start") {
  cli::StepReadback r(Device::CPU);
  Tensor loss = Tensor::full({1}, 0.75);                   // (1,)
  Tensor logits = test::randn_t({5, 3}, 11, DType::f32);  // (5, 3)
  const std::vector<float> expected = logits.to_vector();
  r.start(loss, logits);
  CHECK(r.started());
  logits.fill_(0.0);  // the next step's work: it must not show
  loss.fill_(9.0);
  const cli::StepReadback::Values v = r.finish();
  CHECK_FALSE(r.started());
  CHECK(v.loss == 0.75);
  CHECK(v.rows == 5);
  CHECK(v.cols == 3);
  CHECK(v.logits == expected);
  CHECK_THROWS_AS(r.finish(), Error);  // nothing started
  r.start(loss, logits);
  CHECK_THROWS_AS(r.start(loss, logits), Error);  // the first was not read
  CHECK_THROWS_AS(cli::StepReadback(Device::CPU).start(Tensor::full({2}, 1.0), logits), Error);  // not one element
}

TEST_CASE("count_correct: the argmax of each row against its label, ties to the lower class") {
  // (3, 3): row 0 argmax 2, row 1 a tie of classes 0 and 1 (0 counts), row 2 argmax 1.
  const std::vector<float> logits = {0.1f, 0.2f, 0.9f, 0.5f, 0.5f, 0.1f, -1.f, 3.f, 2.f};
  CHECK(cli::count_correct(logits, 3, {2, 0, 1}) == 3);
  CHECK(cli::count_correct(logits, 3, {2, 1, 1}) == 2);
  CHECK(cli::count_correct(logits, 3, {0, 2, 0}) == 0);
}
