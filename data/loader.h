// The loader: batches of (images float32 (B, 3, S, S), labels int64 (B,)) on the training
// device, built ahead of time by worker threads.
//
//   LoaderOptions o;
//   o.batch_size = 64;
//   o.device = Device::CUDA;
//   o.transform = TransformSpec::train(224);
//   Loader loader(train, o);
//   for (int epoch = 0; epoch < epochs; epoch++) {
//     loader.start_epoch(epoch);
//     Batch b;
//     while (loader.next(b)) step(b.images, b.labels);
//   }
//
// How it works. Each epoch has an order of the dataset (a seeded shuffle of epoch e, or the
// dataset order). Batches go into `prefetch` host buffers ("slots"): batch b fills slot
// b % prefetch. Workers claim single samples in order, and may run ahead of the consumer by at
// most `prefetch` batches, so all workers help with the next batch (no batch waits for one slow
// thread) and memory stays bounded. next() waits until its batch is complete, then hands it over:
// on the CPU the slot's tensors themselves, normalised floats; on the GPU, the slot holds the
// uint8 values (a quarter of float32's bytes across PCIe), copied asynchronously from pinned
// memory on leuko's stream into a device staging buffer and normalised there by a kernel
// (kernels/normalize.h) into a fresh float batch, with the same bits as the CPU's; later kernels
// see the data in stream order, without the host waiting, and the slot's next writers wait for
// the copy to finish. One staging buffer serves every batch: the next copy into it is queued on
// the same stream after the kernel that read it.
//
// Determinism. Sample i of epoch e is augmented with a Generator seeded from (seed, e, i)
// alone, and batches are assembled in the epoch's order, so the batches are identical whatever
// the number of workers or the timing.
//
// Destroying a loader mid-epoch stops and joins its workers; buffered batches are dropped.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "data/dataset.h"
#include "data/transforms.h"
#include "tensor/tensor.h"

namespace leuko::data {

struct LoaderOptions {
  int batch_size = 32;
  bool shuffle = true;     // a new seeded order each epoch; false: the dataset's order
  bool drop_last = false;  // leave out the last, smaller batch
  uint64_t seed = 0;       // the shuffles and the augmentations
  int workers = 0;         // threads building samples; 0: default_threads() (min(8, hardware))
  int prefetch = 3;        // batches built ahead of the consumer (2 to 4 keep a GPU fed)
  Device device = Device::CPU;
  TransformSpec transform = TransformSpec::eval();
};

struct Batch {
  Tensor images;                 // float32 (B, 3, S, S) on the loader's device
  Tensor labels;                 // int64 (B,) on the loader's device
  std::vector<int64_t> indices;  // (B,): the dataset index of each sample (to name files)
  int64_t index = 0;             // the batch's number in its epoch
  int64_t size() const { return int64_t(indices.size()); }
};

// The seed of sample `index`'s augmentation in `epoch` (and, with index = UINT64_MAX, of the
// epoch's shuffle): a hash of the three numbers.
uint64_t sample_seed(uint64_t seed, uint64_t epoch, uint64_t index);

class Loader {
 public:
  Loader(Dataset dataset, LoaderOptions options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Begins epoch `epoch` (any number; the same number gives the same batches), dropping what
  // was left of the previous one.
  void start_epoch(int64_t epoch);
  // The next batch of the epoch; false once every batch was given. Rethrows a worker's error.
  bool next(Batch& batch);

  int64_t batches_per_epoch() const { return batches_; }
  int64_t samples_per_epoch() const;
  // The order of an epoch's samples (dataset indices), as the batches take them.
  std::vector<int64_t> epoch_order(int64_t epoch) const;
  const Dataset& dataset() const { return dataset_; }
  const LoaderOptions& options() const { return options_; }
  bool pinned() const { return pinned_; }  // GPU batches come from page-locked memory

 private:
  struct Slot {
    float* images = nullptr;     // CPU device: (B, 3, S, S) normalised, being filled
    uint8_t* bytes = nullptr;    // GPU device: (B, 3, S, S) uint8 pinned host buffer being filled
    int64_t* labels = nullptr;   // (B,)
    Tensor cpu_images, cpu_labels;  // CPU device: the tensors `images`/`labels` point into
    void* event = nullptr;          // GPU device: recorded after the copy out of this slot
    int64_t done = 0;               // samples of the slot's batch written
  };

  int64_t batch_size_of(int64_t b) const;
  void prepare_cpu_slot(Slot& slot, int64_t b);  // fresh tensors for batch b (consumer thread)
  void worker();

  Dataset dataset_;
  LoaderOptions options_;
  int64_t batches_ = 0, sample_floats_ = 0;  // sample_floats_ = 3 * S * S
  bool pinned_ = false;
  std::vector<Slot> slots_;
  std::vector<std::pair<void*, bool>> host_buffers_;  // GPU device: buffer, pinned (else malloc'ed)
  void* staging_ = nullptr;      // GPU device: (B, 3, S, S) uint8 on the device, the copies' target
  size_t staging_bytes_ = 0;
  Tensor table_;                 // GPU device: (3, 256) float32, data::normalization_table

  std::mutex mu_;
  std::condition_variable work_cv_, ready_cv_, idle_cv_;
  bool stop_ = false, active_ = false;
  int64_t epoch_ = 0;
  std::vector<int64_t> order_;
  int64_t next_sample_ = 0, consumed_ = 0, in_flight_ = 0;
  std::exception_ptr error_;
  std::vector<std::thread> threads_;
};

}  // namespace leuko::data
