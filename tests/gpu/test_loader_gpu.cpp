// The loader on the GPU (data/loader.h): batches copied asynchronously from pinned memory on
// leuko's stream must be the CPU loader's batches exactly, and kernels queued right after
// next() must see the copied data (stream order, no host synchronisation in between).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

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

TEST_CASE("loader gpu: batches taken with no host wait keep their pixels while the GPU is busy") {
  // The test above reads each batch back (a host wait) before taking the next, so its pinned
  // slots are always free again by then. Here the stream is kept busy and every batch of an
  // epoch is taken first: a worker refilling a slot whose copy is still queued (a missing event
  // wait in the loader) would put a later batch's pixels into an earlier one.
  const data::Dataset d = gpu_dataset(45);
  LoaderOptions o;
  o.batch_size = 4;
  o.prefetch = 2;
  o.workers = 3;
  o.seed = 78;
  o.transform = data::TransformSpec::train(17);
  Loader cpu(d, o);
  o.device = Device::CUDA;
  Loader gpu(d, o);
  cpu.start_epoch(0);
  gpu.start_epoch(0);
  Tensor a = test::randn_t({2048, 2048}, 5, DType::f32, Device::CUDA);
  for (int i = 0; i < 20; i++) a = matmul(a, a) * (1.0 / 2048.0);  // ~0.3 TFLOP queued ahead of the copies
  std::vector<Batch> held;
  Batch g;
  while (gpu.next(g)) held.push_back(g);
  REQUIRE(held.size() == 12);
  Batch c;
  for (const Batch& h : held) {
    REQUIRE(cpu.next(c));
    CHECK(h.indices == c.indices);
    CHECK(h.images.cpu().to_vector() == c.images.to_vector());  // a copy: bit for bit
    CHECK(h.labels.cpu().to_double_vector() == c.labels.to_double_vector());
  }
  CHECK(std::isfinite(sum(a).item()));  // the queued work ran (and is used)
}
