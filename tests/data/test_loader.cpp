// The loader (data/loader.h), on in-memory datasets: complete batches with the right labels and
// pixels, every sample once per epoch, drop_last, determinism across worker counts, restarts
// and shutdown mid-epoch.
#include <doctest/doctest.h>

#include <set>

#include "data/loader.h"
#include "data_helpers.h"
#include "tensor/device.h"

using namespace leuko;
using namespace leuko::test;
using data::Batch;
using data::Loader;
using data::LoaderOptions;
using data::TransformSpec;

namespace {

// n images of h x w (sizes vary when `mixed`), each a distinct pattern; label = i % 3.
data::Dataset make_dataset(int n, int h = 6, int w = 6, bool mixed = false) {
  std::vector<data::Image> imgs;
  std::vector<int64_t> labels;
  for (int i = 0; i < n; i++) {
    imgs.push_back(pattern_image(mixed ? h + i % 4 : h, mixed ? w + i % 3 : w, 13 * i));
    labels.push_back(i % 3);
  }
  return data::Dataset::from_images(imgs, labels, {"a", "b", "c"});
}

// All batches of one epoch.
std::vector<Batch> epoch(Loader& loader, int64_t e) {
  loader.start_epoch(e);
  std::vector<Batch> out;
  Batch b;
  while (loader.next(b)) out.push_back(b);
  return out;
}

// Every batch of `a` equals `b` bit for bit.
void check_same(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); i++) {
    CAPTURE(i);
    CHECK(a[i].indices == b[i].indices);
    CHECK(a[i].images.to_vector() == b[i].images.to_vector());
    CHECK(a[i].labels.to_double_vector() == b[i].labels.to_double_vector());
  }
}

}  // namespace

TEST_CASE("loader: complete batches, labels and pixels of the right samples") {
  const data::Dataset d = make_dataset(23);
  LoaderOptions o;
  o.batch_size = 5;
  o.workers = 3;
  o.transform = TransformSpec::eval(6);
  o.seed = 11;
  Loader loader(d, o);
  CHECK(loader.batches_per_epoch() == 5);
  CHECK(loader.samples_per_epoch() == 23);
  const std::vector<Batch> batches = epoch(loader, 0);
  REQUIRE(batches.size() == 5);
  std::vector<int64_t> seen;
  for (size_t k = 0; k < batches.size(); k++) {
    const Batch& b = batches[k];
    const int64_t n = k < 4 ? 5 : 3;  // 23 = 4 x 5 + 3
    CHECK(b.index == int64_t(k));
    REQUIRE(b.size() == n);
    CHECK(b.images.shape() == Shape{n, 3, 6, 6});
    CHECK(b.images.dtype() == DType::f32);
    CHECK(b.images.device() == Device::CPU);
    CHECK(b.labels.shape() == Shape{n});
    CHECK(b.labels.dtype() == DType::i64);
    const std::vector<double> labels = b.labels.to_double_vector();
    const std::vector<float> px = b.images.to_vector();
    for (int64_t i = 0; i < n; i++) {
      const int64_t idx = b.indices[size_t(i)];
      seen.push_back(idx);
      CHECK(labels[size_t(i)] == double(d.label(idx)));
      // The eval transform of a 6x6 image at size 6 is its normalisation, exactly.
      std::vector<float> expect(3 * 36);
      data::normalize_to_chw(d.image(idx), data::kImageNetMean, data::kImageNetStd, expect.data());
      CHECK(std::vector<float>(px.begin() + i * 108, px.begin() + (i + 1) * 108) == expect);
    }
  }
  // Every sample exactly once, in the order epoch_order says.
  CHECK(seen == loader.epoch_order(0));
  std::set<int64_t> unique(seen.begin(), seen.end());
  CHECK(unique.size() == 23);
  CHECK(*unique.begin() == 0);
  CHECK(*unique.rbegin() == 22);
  // Another epoch: another order, again complete; the same epoch number: the same order.
  CHECK(loader.epoch_order(1) != loader.epoch_order(0));
  CHECK(loader.epoch_order(0) == loader.epoch_order(0));
  std::vector<int64_t> e1;
  for (const Batch& b : epoch(loader, 1)) e1.insert(e1.end(), b.indices.begin(), b.indices.end());
  CHECK(e1 == loader.epoch_order(1));
  CHECK(std::set<int64_t>(e1.begin(), e1.end()).size() == 23);
}

TEST_CASE("loader: drop_last, no shuffle, batch larger than the dataset") {
  const data::Dataset d = make_dataset(23);
  LoaderOptions o;
  o.batch_size = 5;
  o.drop_last = true;
  o.shuffle = false;
  o.transform = TransformSpec::eval(6);
  Loader loader(d, o);
  CHECK(loader.batches_per_epoch() == 4);
  CHECK(loader.samples_per_epoch() == 20);
  const std::vector<Batch> batches = epoch(loader, 3);
  REQUIRE(batches.size() == 4);
  for (size_t k = 0; k < 4; k++) {
    REQUIRE(batches[k].size() == 5);
    for (int64_t i = 0; i < 5; i++) CHECK(batches[k].indices[size_t(i)] == int64_t(k) * 5 + i);  // dataset order
  }
  // A batch bigger than the dataset: one short batch, or (drop_last) an error.
  o.batch_size = 64;
  o.drop_last = false;
  Loader big(d, o);
  const std::vector<Batch> one = epoch(big, 0);
  REQUIRE(one.size() == 1);
  CHECK(one[0].size() == 23);
  o.drop_last = true;
  check_error([&] { Loader l(d, o); }, {"loader", "drop_last", "leaves no batch"});
}

TEST_CASE("loader: batches are identical whatever the number of workers and the prefetch depth") {
  // Mixed image sizes and the full training pipeline (random resized crop, flips, turns).
  const data::Dataset d = make_dataset(37, 9, 11, /*mixed=*/true);
  LoaderOptions o;
  o.batch_size = 4;
  o.seed = 2024;
  o.transform = TransformSpec::train(8);
  std::vector<std::vector<Batch>> runs;
  for (auto [workers, prefetch] : {std::pair{1, 1}, std::pair{2, 2}, std::pair{5, 3}, std::pair{8, 4}}) {
    o.workers = workers;
    o.prefetch = prefetch;
    Loader loader(d, o);
    std::vector<Batch> both = epoch(loader, 0);
    const std::vector<Batch> e1 = epoch(loader, 1);
    both.insert(both.end(), e1.begin(), e1.end());
    runs.push_back(both);
  }
  for (size_t r = 1; r < runs.size(); r++) {
    CAPTURE(r);
    check_same(runs[r], runs[0]);
  }
  const std::vector<Batch>& all = runs[0];
  // Another seed: other batches.
  o.seed = 2025;
  Loader other(d, o);
  const std::vector<Batch> b = epoch(other, 0);
  CHECK(b[0].indices != all[0].indices);
  // The same sample in the same epoch gets the same augmentation whatever its batch: with the
  // order unshuffled and a different batch size, sample i's pixels are unchanged.
  o.seed = 2024;
  o.shuffle = false;
  o.batch_size = 4;
  Loader a4(d, o);
  o.batch_size = 7;
  Loader a7(d, o);
  const std::vector<Batch> x = epoch(a4, 5), y = epoch(a7, 5);
  const std::vector<float> px4 = x[1].images.to_vector(), px7 = y[0].images.to_vector();  // samples 4..7 and 0..6
  const size_t per = 3 * 8 * 8;
  CHECK(std::vector<float>(px4.begin(), px4.begin() + per) == std::vector<float>(px7.begin() + 4 * per, px7.begin() + 5 * per));
  // The augmentation is really random: sample 0 of epoch 6 differs from sample 0 of epoch 5.
  const std::vector<float> e6 = epoch(a7, 6)[0].images.to_vector();
  CHECK(std::vector<float>(e6.begin(), e6.begin() + per) != std::vector<float>(px7.begin(), px7.begin() + per));
}

TEST_CASE("loader: restarting an epoch midway, and destroying a loader midway") {
  const data::Dataset d = make_dataset(50, 16, 16);
  LoaderOptions o;
  o.batch_size = 3;
  o.workers = 4;
  o.transform = TransformSpec::train(12);
  Loader fresh(d, o);
  const std::vector<Batch> reference = epoch(fresh, 1);
  {
    Loader loader(d, o);
    loader.start_epoch(0);
    Batch b;
    REQUIRE(loader.next(b));
    REQUIRE(loader.next(b));
    // Abandon epoch 0 with batches still being built; epoch 1 must be exactly the fresh one.
    check_same(epoch(loader, 1), reference);
    // A loader destroyed in the middle of an epoch stops its workers (the test would hang or
    // crash otherwise).
    loader.start_epoch(2);
    REQUIRE(loader.next(b));
  }
  {
    Loader never_started(d, o);  // destroyed with no epoch at all
    Batch b;
    check_error([&] { never_started.next(b); }, {"start_epoch"});
  }
}

TEST_CASE("loader: a failing sample is rethrown by next; bad options are errors") {
  const data::Dataset d = make_dataset(10);
  LoaderOptions o;
  o.batch_size = 4;
  o.transform = TransformSpec::eval(6);
  o.transform.resize = 4;  // resize to 4, then a center crop of 6 cannot fit
  Loader loader(d, o);
  loader.start_epoch(0);
  Batch b;
  check_error([&] { loader.next(b); }, {"center_crop", "does not fit"});
  LoaderOptions bad;
  bad.batch_size = 0;
  check_error([&] { Loader l(d, bad); }, {"batch size 0"});
  bad.batch_size = 2;
  bad.prefetch = 0;
  check_error([&] { Loader l(d, bad); }, {"prefetch"});
  check_error([&] { Loader l{data::Dataset(), LoaderOptions()}; }, {"dataset is empty"});
  if (!cuda_available()) {
    LoaderOptions gpu;
    gpu.device = Device::CUDA;
    check_error([&] { Loader l(d, gpu); }, {"GPU"});
  }
}

TEST_CASE("loader: sample seeds differ in every argument") {
  const uint64_t s = data::sample_seed(1, 2, 3);
  CHECK(s == data::sample_seed(1, 2, 3));
  CHECK(s != data::sample_seed(0, 2, 3));
  CHECK(s != data::sample_seed(1, 3, 3));
  CHECK(s != data::sample_seed(1, 2, 4));
  CHECK(data::sample_seed(1, 2, 3) != data::sample_seed(1, 3, 2));  // not symmetric
}
