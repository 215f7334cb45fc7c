#include "data/loader.h"

#include <cstdlib>
#include <cstring>
#include <numeric>

#include "data/parallel.h"
#include "data/pinned.h"
#include "kernels/normalize.h"
#include "tensor/allocator.h"
#include "tensor/device.h"
#include "tensor/random.h"

namespace leuko::data {

namespace {
uint64_t mix(uint64_t z) {  // splitmix64's finaliser: every input bit moves every output bit
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
}  // namespace

uint64_t sample_seed(uint64_t seed, uint64_t epoch, uint64_t index) { return mix(mix(mix(seed) ^ epoch) ^ index); }

Loader::Loader(Dataset dataset, LoaderOptions options) : dataset_(std::move(dataset)), options_(std::move(options)) {
  const int B = options_.batch_size, S = options_.transform.size;
  const int64_t n = dataset_.size();
  LEUKO_CHECK(B > 0, "loader: batch size ", B, " is not positive");
  LEUKO_CHECK(S > 0, "loader: image size ", S, " is not positive");
  LEUKO_CHECK(n > 0, "loader: the dataset is empty");
  LEUKO_CHECK(options_.prefetch >= 1, "loader: prefetch ", options_.prefetch, " must be at least 1");
  batches_ = options_.drop_last ? n / B : (n + B - 1) / B;
  LEUKO_CHECK(batches_ > 0, "loader: drop_last with batch size ", B, " leaves no batch of the ", n, " images");
  sample_floats_ = 3 * int64_t(S) * S;
  if (options_.device == Device::CUDA) require_cuda("loader on the GPU");

  slots_.resize(size_t(options_.prefetch));
#if LEUKO_WITH_CUDA
  if (options_.device == Device::CUDA) {
    // One pinned buffer per slot, reused all run long: cudaHostAlloc is slow, copies from it fast.
    // uint8 images, then the labels at a 64-byte boundary.
    const size_t image_bytes = (size_t(B) * size_t(sample_floats_) + 63) / 64 * 64;
    const size_t bytes = image_bytes + size_t(B) * sizeof(int64_t);
    pinned_ = true;
    for (Slot& slot : slots_) {
      void* p = pinned::alloc(bytes);
      const bool is_pinned = p != nullptr;
      if (!is_pinned) {  // no page-locked memory left: pageable memory works, only slower
        pinned_ = false;
        p = std::malloc(bytes);
        LEUKO_CHECK(p != nullptr, "loader: cannot allocate ", bytes, " bytes of host memory");
      }
      host_buffers_.push_back({p, is_pinned});
      slot.bytes = static_cast<uint8_t*>(p);
      slot.labels = reinterpret_cast<int64_t*>(static_cast<char*>(p) + image_bytes);
      slot.event = pinned::event_create();
    }
    staging_bytes_ = size_t(B) * size_t(sample_floats_);
    staging_ = device_alloc(Device::CUDA, staging_bytes_);
    const NormalizationTable t = normalization_table(options_.transform.mean, options_.transform.std);
    table_ = Tensor::from_vector(std::vector<float>(t.begin(), t.end()), {3, 256}, DType::f32, Device::CUDA);
  }
#endif
  const int workers = options_.workers > 0 ? options_.workers : default_threads();
  for (int t = 0; t < workers; t++) threads_.emplace_back([this] { worker(); });
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : threads_) t.join();
#if LEUKO_WITH_CUDA
  // Copies out of the host buffers may still be queued on the stream: wait before freeing.
  for (Slot& slot : slots_) {
    if (slot.event == nullptr) continue;
    try {
      pinned::event_wait(slot.event);
      pinned::event_destroy(slot.event);
    } catch (const Error&) {  // a destructor must not throw; the process is failing anyway
    }
  }
  // The events above passed, so every copy into the staging buffer has run; a kernel that reads
  // it may still be queued, and the caching allocator hands the block out again only in stream
  // order (tensor/allocator.h).
  if (staging_ != nullptr) device_free(Device::CUDA, staging_, staging_bytes_);
  for (auto [p, is_pinned] : host_buffers_) {
    if (is_pinned) {
      try {
        pinned::free(p);
      } catch (const Error&) {
      }
    } else {
      std::free(p);
    }
  }
#endif
}

int64_t Loader::samples_per_epoch() const {
  return options_.drop_last ? batches_ * options_.batch_size : dataset_.size();
}

int64_t Loader::batch_size_of(int64_t b) const {
  return std::min<int64_t>(options_.batch_size, samples_per_epoch() - b * options_.batch_size);
}

std::vector<int64_t> Loader::epoch_order(int64_t epoch) const {
  std::vector<int64_t> order(size_t(dataset_.size()));
  std::iota(order.begin(), order.end(), 0);
  if (options_.shuffle) {
    Generator gen(sample_seed(options_.seed, uint64_t(epoch), UINT64_MAX));
    for (size_t i = order.size(); i > 1; i--) std::swap(order[i - 1], order[size_t(gen.below(i))]);
  }
  return order;
}

void Loader::prepare_cpu_slot(Slot& slot, int64_t b) {
  const int64_t nb = batch_size_of(b);
  const int S = options_.transform.size;
  slot.cpu_images = Tensor::empty({nb, 3, S, S}, DType::f32, Device::CPU);
  slot.cpu_labels = Tensor::empty({nb}, DType::i64, Device::CPU);
  slot.images = slot.cpu_images.data<float>();
  slot.labels = slot.cpu_labels.data<int64_t>();
}

void Loader::start_epoch(int64_t epoch) {
  std::vector<int64_t> order = epoch_order(epoch);
  std::unique_lock<std::mutex> lock(mu_);
  // Stop handing out samples of the old epoch and let the ones being built finish.
  active_ = false;
  idle_cv_.wait(lock, [&] { return in_flight_ == 0; });
  order_ = std::move(order);
  epoch_ = epoch;
  next_sample_ = consumed_ = 0;
  error_ = nullptr;
  for (size_t k = 0; k < slots_.size(); k++) {
    Slot& slot = slots_[k];
    slot.done = 0;
    if (options_.device == Device::CPU) {
      if (int64_t(k) < batches_) prepare_cpu_slot(slot, int64_t(k));
      else slot.cpu_images = slot.cpu_labels = Tensor();
    }
  }
  active_ = true;
  lock.unlock();
  work_cv_.notify_all();
}

bool Loader::next(Batch& batch) {
  std::unique_lock<std::mutex> lock(mu_);
  LEUKO_CHECK(active_ || error_, "loader: call start_epoch before next");
  if (consumed_ == batches_) return false;
  const int64_t b = consumed_, nb = batch_size_of(b), B = options_.batch_size;
  Slot& slot = slots_[size_t(b % int64_t(slots_.size()))];
  ready_cv_.wait(lock, [&] { return slot.done == nb || error_; });
  if (error_) std::rethrow_exception(error_);
  batch.index = b;
  batch.indices.assign(order_.begin() + b * B, order_.begin() + b * B + nb);
  const int64_t refill = b + int64_t(slots_.size());  // the slot's next batch
  lock.unlock();  // workers cannot touch this slot until consumed_ moves on

  const int S = options_.transform.size;
  if (options_.device == Device::CPU) {
    batch.images = std::move(slot.cpu_images);
    batch.labels = std::move(slot.cpu_labels);
    if (refill < batches_) prepare_cpu_slot(slot, refill);
  } else {
#if LEUKO_WITH_CUDA
    batch.images = Tensor::empty({nb, 3, S, S}, DType::f32, Device::CUDA);
    batch.labels = Tensor::empty({nb}, DType::i64, Device::CUDA);
    // Two copies, one event after both: the slot is free again once the event has passed.
    pinned::copy_to_device_async(staging_, slot.bytes, size_t(nb * sample_floats_), slot.event);
    pinned::copy_to_device_async(batch.labels.raw_data(), slot.labels, size_t(nb) * sizeof(int64_t), slot.event);
    kernels::cuda::normalize_u8(batch.images.data<float>(), static_cast<const uint8_t*>(staging_),
                                table_.data<float>(), nb, int64_t(S) * S);
#else
    (void)S;
    detail::no_cuda_build();
#endif
  }

  lock.lock();
  slot.done = 0;
  consumed_++;
  lock.unlock();
  work_cv_.notify_all();
  return true;
}

void Loader::worker() {
  const int64_t B = options_.batch_size, P = int64_t(slots_.size());
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    // A sample may be built when its batch's slot is free: at most P batches ahead of the consumer.
    work_cv_.wait(lock, [&] {
      return stop_ || (active_ && !error_ && next_sample_ < samples_per_epoch() && next_sample_ / B < consumed_ + P);
    });
    if (stop_) return;
    const int64_t s = next_sample_++, b = s / B;
    Slot& slot = slots_[size_t(b % P)];
    const int64_t at = (s - b * B) * sample_floats_;  // where the sample's (3, S, S) values start
    float* dst = slot.images;                         // CPU: normalised floats
    uint8_t* dst_bytes = slot.bytes;                  // GPU: uint8, normalised on the device
    int64_t* label = slot.labels + (s - b * B);
    void* copy_event = slot.event;  // GPU: the copy of this slot's previous batch
    const int64_t index = order_[size_t(s)];
    const uint64_t seed = sample_seed(options_.seed, uint64_t(epoch_), uint64_t(index));
    in_flight_++;
    lock.unlock();

    std::exception_ptr err;
    try {
#if LEUKO_WITH_CUDA
      if (copy_event != nullptr) pinned::event_wait(copy_event);
#else
      (void)copy_event;
#endif
      Generator gen(seed);
      if (dst_bytes != nullptr) apply_transform(options_.transform, dataset_.image(index), gen, dst_bytes + at);
      else apply_transform(options_.transform, dataset_.image(index), gen, dst + at);
      *label = dataset_.label(index);
    } catch (...) {
      err = std::current_exception();
    }

    lock.lock();
    in_flight_--;
    if (err && !error_) error_ = err;
    slot.done++;
    if (slot.done == batch_size_of(b) || error_) ready_cv_.notify_all();
    if (in_flight_ == 0) idle_cv_.notify_all();
  }
}

}  // namespace leuko::data
