// Evaluation on the GPU (tools/leuko/evaluate.h) against the same evaluation on the CPU: the
// loader's pinned copies, the network on the GPU and the host softmax give the CPU's
// probabilities, predictions and loss, for an odd number of images in batches that do not
// divide it; and `leuko predict`'s path on the GPU agrees with evaluate().
#include <doctest/doctest.h>

#include <cmath>

#include "data/data_helpers.h"
#include "data/synth.h"
#include "tensor/device.h"
#include "tensor/random.h"
#include "tools/leuko/evaluate.h"

using namespace leuko;

namespace {

// 11 synthetic 32x32 cells, classes 0 (Benign) and 1 (Pro) alternating.
data::Dataset tiny_dataset() {
  std::vector<data::Image> images;
  std::vector<int64_t> labels;
  for (int i = 0; i < 11; i++) {
    images.push_back(data::synth_image(i % 2 == 0 ? 0 : 3, 32, 5, i));
    labels.push_back(i % 2);
  }
  return data::Dataset::from_images(images, labels, {"benign", "malignant"});
}

std::shared_ptr<Net> tiny_net() {
  manual_seed(11);
  NetOptions o;
  o.num_classes = 2;
  return make_net("resnet18", o);
}

}  // namespace

TEST_CASE("gpu: evaluate on the GPU equals evaluate on the CPU") {
  const data::Dataset ds = tiny_dataset();
  const data::TransformSpec spec = data::TransformSpec::eval(32);
  std::shared_ptr<Net> net = tiny_net();
  const cli::EvalResult cpu = cli::evaluate(*net, ds, spec, 4, Device::CPU, 2);
  net->to(Device::CUDA);
  const cli::EvalResult gpu = cli::evaluate(*net, ds, spec, 4, Device::CUDA, 2);
  REQUIRE(gpu.size() == 11);
  CHECK(gpu.confusion.total() == 11);
  CHECK(gpu.labels == cpu.labels);
  for (int64_t i = 0; i < 11; i++) {
    CAPTURE(i);
    // Float32 cuDNN/cuBLAS against float32 CPU loops through 18 layers: probabilities within
    // 1e-4 absolute (fp32 precision mode, no TF32).
    CHECK(std::fabs(gpu.probability(i, 1) - cpu.probability(i, 1)) < 1e-4);
    CHECK(std::isfinite(gpu.probability(i, 0)));  // a poisoned (unwritten) logit would be NaN
    // The predicted class is the same unless the two probabilities are within 1e-3.
    if (std::fabs(cpu.probability(i, 1) - cpu.probability(i, 0)) > 1e-3) {
      CHECK(gpu.predictions[size_t(i)] == cpu.predictions[size_t(i)]);
    }
  }
  // The mean cross-entropy: relative 1e-4 (from the same probabilities).
  CHECK(gpu.loss == doctest::Approx(cpu.loss).epsilon(1e-4));
}

TEST_CASE("gpu: predict_images on the GPU agrees with evaluate") {
  test::TempDir dir;
  const data::Dataset ds = tiny_dataset();
  std::vector<std::string> paths;
  for (int64_t i = 0; i < 5; i++) {
    paths.push_back(dir / ("cell" + std::to_string(i) + ".png"));
    data::write_image(paths.back(), ds.image(i));  // PNG: the same pixels back
  }
  std::shared_ptr<Net> net = tiny_net();
  net->to(Device::CUDA);
  cli::RunConfig config;
  config.classes = 2;
  config.class_names = {"benign", "malignant"};
  config.input = 32;
  const std::vector<cli::Prediction> preds = cli::predict_images(*net, config, paths, Device::CUDA, false, 3);
  const cli::EvalResult r = cli::evaluate(*net, ds, config.eval_transform(), 8, Device::CUDA, 1);
  REQUIRE(preds.size() == 5);
  for (size_t i = 0; i < 5; i++) {
    CAPTURE(i);
    // Same device, other batches: float32 rounding only, 1e-5 absolute.
    CHECK(std::fabs(preds[i].probabilities[1] - r.probability(int64_t(i), 1)) < 1e-5);
    if (std::fabs(r.probability(int64_t(i), 1) - r.probability(int64_t(i), 0)) > 1e-4) {
      CHECK(preds[i].label == r.predictions[i]);
    }
  }
}
