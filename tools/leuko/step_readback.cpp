#include "tools/leuko/step_readback.h"

#include <cstdlib>

#include "tensor/check.h"

#if LEUKO_WITH_CUDA
#include "data/pinned.h"
#endif

namespace leuko::cli {

StepReadback::~StepReadback() {
#if LEUKO_WITH_CUDA
  // A destructor must not throw: after a kernel fault every CUDA call returns the same error,
  // and a throw here, while that error unwinds the trainer, would end the process in
  // std::terminate, hiding it (the loader's destructor ignores it too, data/loader.cpp). The
  // pinned buffer is then left allocated: no copy may land in freed memory.
  try {
    if (event_ != nullptr) {
      data::pinned::event_wait(event_);  // no copy may land in freed memory
      data::pinned::event_destroy(event_);
    }
    if (pinned_) data::pinned::free(host_);
  } catch (const Error&) {
  }
  if (!pinned_) std::free(host_);  // malloc'ed: its copies were synchronous
#endif
}

void StepReadback::start(const Tensor& loss, const Tensor& logits) {
  LEUKO_CHECK(!started_, "StepReadback: start() twice without finish()");
  LEUKO_CHECK(loss.numel() == 1 && logits.dim() == 2, "StepReadback: a one-element loss and (B, C) logits");
  started_ = true;
  // (1,) and (B, C) float32; a bf16 run's logits are converted on the device, in stream order.
  loss_ = loss.detach().to(DType::f32);
  logits_ = logits.detach().to(DType::f32);
  values_.rows = logits_.size(0);
  values_.cols = logits_.size(1);
  if (device_ != Device::CUDA || !loss_.is_cuda()) {
    values_.loss = loss_.item();
    values_.logits = logits_.to_vector();
    return;
  }
#if LEUKO_WITH_CUDA
  const size_t need = 1 + size_t(logits_.numel());
  if (need > capacity_) {  // the first step, or a larger batch: nothing is in flight here
    if (pinned_) data::pinned::free(host_);
    else std::free(host_);
    capacity_ = need;
    host_ = static_cast<float*>(data::pinned::alloc(capacity_ * sizeof(float)));
    pinned_ = host_ != nullptr;
    if (!pinned_) host_ = static_cast<float*>(std::malloc(capacity_ * sizeof(float)));  // slower, still right
    LEUKO_CHECK(host_ != nullptr, "StepReadback: cannot allocate ", capacity_ * sizeof(float), " bytes");
  }
  if (event_ == nullptr) event_ = data::pinned::event_create();
  data::pinned::copy_to_host_async(host_, loss_.raw_data(), sizeof(float), event_);
  data::pinned::copy_to_host_async(host_ + 1, logits_.raw_data(), size_t(logits_.numel()) * sizeof(float), event_);
#endif
}

StepReadback::Values StepReadback::finish() {
  LEUKO_CHECK(started_, "StepReadback: finish() without start()");
  started_ = false;
#if LEUKO_WITH_CUDA
  if (device_ == Device::CUDA && loss_.is_cuda()) {
    data::pinned::event_wait(event_);
    values_.loss = double(host_[0]);
    values_.logits.assign(host_ + 1, host_ + 1 + values_.rows * values_.cols);
  }
#endif
  loss_ = Tensor();
  logits_ = Tensor();
  return values_;
}

int64_t count_correct(const std::vector<float>& logits, int64_t cols, const std::vector<int64_t>& labels) {
  int64_t correct = 0;
  for (size_t b = 0; b < labels.size(); b++) {
    const float* row = logits.data() + b * size_t(cols);
    int64_t best = 0;
    for (int64_t c = 1; c < cols; c++)
      if (row[c] > row[best]) best = c;
    correct += best == labels[b];
  }
  return correct;
}

}  // namespace leuko::cli
