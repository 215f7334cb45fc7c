// What the trainer reads back from each training step, the loss and the main logits, copied to
// the host behind the step's own work. The trainer launches step k+1 before it reads step k's
// numbers, so the GPU always has a step queued and never idles while the host reads a loss and
// then launches the next kernels (docs/PERFORMANCE.md, version 3). On the CPU the numbers are
// read at once; the trainer's bookkeeping is the same.
//
// One StepReadback holds one step's numbers: start() and finish() alternate. The trainer keeps
// two, for the step in flight and the one being launched.
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace leuko::cli {

class StepReadback {
 public:
  explicit StepReadback(Device device) : device_(device) {}
  ~StepReadback();
  StepReadback(const StepReadback&) = delete;
  StepReadback& operator=(const StepReadback&) = delete;

  // Starts copying `loss` (one element) and `logits` (B, C) to the host, in stream order after
  // the work that computes them; returns without waiting.
  void start(const Tensor& loss, const Tensor& logits);
  struct Values {
    double loss = 0;
    std::vector<float> logits;  // (B, C), row-major
    int64_t rows = 0, cols = 0;
  };
  // Waits for the copies of the last start() (only for them, not for work queued after) and
  // returns the numbers.
  Values finish();
  bool started() const { return started_; }

 private:
  Device device_;
  bool started_ = false;
  Tensor loss_, logits_;  // (1,) and (B, C) float32, alive until their copies are done
  Values values_;         // the CPU's numbers, read in start()
  // The GPU's copies: one pinned buffer, the loss then the logits, and an event after them.
  float* host_ = nullptr;  // (1 + B * C,)
  size_t capacity_ = 0;    // floats in host_
  bool pinned_ = false;
  void* event_ = nullptr;
};

// Correctly classified rows: the argmax of each row of `logits` (rows x cols) against `labels`
// (rows,); ties go to the lower class, as torch.argmax.
int64_t count_correct(const std::vector<float>& logits, int64_t cols, const std::vector<int64_t>& labels);

}  // namespace leuko::cli
