// The loader on the GPU (data/loader.h): batches copied asynchronously from pinned memory on
// leuko's stream must be the CPU loader's batches exactly, and kernels queued right after
// next() must see the copied data (stream order, no host synchronisation in between).
#include <doctest/doctest.h>

#include "data/loader.h"
#include "gpu_helpers.h"
#include "layers/ops.h"

using namespace leuko;
using data::Batch;
using data::Loader;
using data::LoaderOptions;

namespace {
data::Dataset gpu_dataset(int n) {
  std::vector<data::Image> imgs;
  std::vector<int64_t> labels;
  for (int i = 0; i < n; i++) {
    data::Image img(19 + i % 5, 23 - i % 4);  // odd, varying sizes
    for (size_t k = 0; k < img.pixels.size(); k++) img.pixels[k] = uint8_t((k * 7 + size_t(i) * 31) % 251);
    imgs.push_back(img);
    labels.push_back(i % 4);
  }
  return data::Dataset::from_images(imgs, labels, {"Benign", "Early", "Pre", "Pro"});
}
}  // namespace

TEST_CASE("loader gpu: the same batches as the CPU loader, in stream order") {
  const data::Dataset d = gpu_dataset(45);
  LoaderOptions o;
  o.batch_size = 4;  // 12 batches, the last of 1: many more batches than slots
  o.prefetch = 2;
  o.workers = 3;
  o.seed = 77;
  o.transform = data::TransformSpec::train(17);
  Loader cpu(d, o);
  o.device = Device::CUDA;
  Loader gpu(d, o);
  CHECK(gpu.pinned());
  for (int64_t epoch : {0, 1}) {
    cpu.start_epoch(epoch);
    gpu.start_epoch(epoch);
    Batch c, g;
    int64_t n = 0;
    while (cpu.next(c)) {
      REQUIRE(gpu.next(g));
      // Queue a reduction on the batch at once: it must run after the copy on the stream.
      const Tensor gpu_mean = mean(g.images);
      REQUIRE(g.images.is_cuda());
      REQUIRE(g.labels.is_cuda());
      CHECK(g.images.shape() == c.images.shape());
      CHECK(g.indices == c.indices);
      // A copy: bit for bit (tolerance 0).
      CHECK(g.images.cpu().to_vector() == c.images.to_vector());
      CHECK(g.labels.cpu().to_double_vector() == c.labels.to_double_vector());
      // float32 sums in different orders: relative 1e-5.
      CHECK(gpu_mean.item() == doctest::Approx(mean(c.images).item()).epsilon(1e-5));
      n++;
    }
    CHECK_FALSE(gpu.next(g));
    CHECK(n == 12);
  }
  // Destroyed mid-epoch with copies possibly still queued: the destructor waits for them.
  gpu.start_epoch(2);
  Batch g;
  REQUIRE(gpu.next(g));
  REQUIRE(gpu.next(g));
}
