// Whole networks against torchvision (tests/fixtures/fx_nets.py, float64 on the CPU): the same
// weights and batch give the same logits, loss, parameter gradients and running statistics.
#include "fixture.h"
#include "helpers.h"
#include "hash_fill.h"
#include "layers/loss.h"
#include "nets/nets.h"

namespace leuko::test {

namespace {

double rel(double a, double b) { return std::fabs(a - b) / std::max(std::fabs(b), 1e-12); }

// Compares a model's output `y` with the fixture's `key` (whole, or sum/sq/samples).
void check_output(const Fixture& fx, const std::string& key, const Tensor& y) {
  CAPTURE(key);
  if (fx.has(key)) {
    // float64 both sides. Batch norm over 2 values per channel (ResNet's last stage at 1x1)
    // amplifies rounding: differences in summation order grow to ~1e-10.
    CHECK(rel_error(y, fx.get(key)) < 1e-8);
    return;
  }
  std::vector<double> v = y.to_double_vector();
  double sum = 0, sq = 0;
  for (double x : v) sum += x, sq += x * x;
  CHECK(rel(sq, fx.get(key + ".sq").item()) < 1e-8);
  CHECK(std::fabs(sum - fx.get(key + ".sum").item()) < 1e-8 * std::sqrt(sq));
  std::vector<double> want = fx.get(key + ".sample").to_double_vector();
  auto pos = sample_positions(int64_t(v.size()), 256);
  for (size_t j = 0; j < pos.size(); j++) CHECK(std::fabs(v[size_t(pos[j])] - want[j]) < 1e-8 * std::sqrt(sq));
}

// Runs the fixture's training step on `model` and compares everything it recorded.
void check_against_torch(Module& model, const std::string& fixture, const Shape& input_shape, bool use_targets) {
  Fixture fx = load_fixture(fixture);
  model.to(DType::f64);
  hash_fill(model);
  Tensor x = Tensor::from_vector(hash_uniform(7, shape_numel(input_shape)), input_shape, DType::f64);
  model.train();
  Tensor y = model(x);
  Tensor loss = use_targets ? cross_entropy(y, fx.get("targets")) : sum(mul(y, y)) / 2.0;
  loss.backward();
  check_output(fx, "out", y.detach());
  CHECK(rel(loss.item(), fx.get("loss").item()) < 1e-10);  // float64 both sides

  double worst = 0;
  std::string where;
  for (const auto& [name, p] : model.named_parameters()) {
    REQUIRE(p.grad().defined());
    std::vector<double> g = p.grad().to_double_vector();
    double sum = 0, sq = 0;
    for (double v : g) sum += v, sq += v * v;
    const double scale = std::sqrt(sq) + 1e-300;
    std::vector<double> want = fx.get("gsample." + name).to_double_vector();
    auto pos = sample_positions(int64_t(g.size()));
    double e = std::max(rel(sq, fx.get("gsq." + name).item()), std::fabs(sum - fx.get("gsum." + name).item()) / scale);
    for (size_t j = 0; j < pos.size(); j++) e = std::max(e, std::fabs(g[size_t(pos[j])] - want[j]) / scale);
    if (e > worst) worst = e, where = name;
  }
  INFO("largest gradient error " << worst << " at " << where);
  // float64 both sides; sums in another order, amplified by batch norm over 2 values per
  // channel in ResNet's last stage (seen: 5.5e-9). A wrong formula gives errors near 1.
  CHECK(worst < 1e-7);

  for (const auto& [name, b] : model.named_buffers()) {
    if (b.dtype() == DType::i64) {
      CHECK(b.to_double_vector()[0] == 1.0);  // num_batches_tracked after one training step
      continue;
    }
    std::vector<double> v = b.to_double_vector(), want = fx.get("after." + name).to_double_vector();
    auto pos = sample_positions(int64_t(v.size()));
    for (size_t j = 0; j < pos.size(); j++) CHECK(std::fabs(v[size_t(pos[j])] - want[j]) < 1e-10);
  }
  model.eval();
  autograd::NoGradGuard no_grad;
  check_output(fx, "eval_out", model(x));
}

}  // namespace

TEST_CASE("ResNet-18 at 32x32 equals torchvision's: logits, loss, every gradient, running stats") {
  NetOptions o;
  o.num_classes = 3;
  auto net = make_net("resnet18", o);
  check_against_torch(*net, "nets_resnet18", {2, 3, 32, 32}, true);
}

TEST_CASE("a GoogLeNet Inception block equals torchvision's") {
  auto block = nets::make_googlenet_inception(192, 64, 96, 128, 16, 32, 32);
  check_against_torch(*block, "nets_inception_block", {2, 192, 7, 7}, false);
}

}  // namespace leuko::test
