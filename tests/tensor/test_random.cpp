// The seeded generator and torch.nn.init's initialisers.
//
// The statistical checks draw from fixed seeds, so they are deterministic; their tolerances are
// nonetheless several standard errors wide (stated beside each), so that any seed would pass,
// while a wrong formula (a missing sqrt(3), a fan_in for a fan_out, a wrong gain) misses by
// far more.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "kernels/random.h"
#include "tensor/random.h"

using namespace leuko;
using doctest::Contains;

namespace {

struct Moments {
  double mean = 0, std = 0, min = 0, max = 0;
};

Moments moments(const std::vector<double>& v) {
  Moments m;
  m.min = *std::min_element(v.begin(), v.end());
  m.max = *std::max_element(v.begin(), v.end());
  for (double x : v) m.mean += x;
  m.mean /= double(v.size());
  for (double x : v) m.std += (x - m.mean) * (x - m.mean);
  m.std = std::sqrt(m.std / double(v.size() - 1));
  return m;
}

Moments moments(const Tensor& t) { return moments(t.to_double_vector()); }

}  // namespace

TEST_CASE("xoshiro256** seeded by splitmix64: known values") {
  // Reference values from an independent implementation of the published algorithms
  // (splitmix64 to fill the state from the seed, then xoshiro256**).
  Generator g0(0);
  CHECK(g0.next_u64() == 0x99ec5f36cb75f2b4ULL);
  CHECK(g0.next_u64() == 0xbf6e1f784956452aULL);
  CHECK(g0.next_u64() == 0x1a5f849d4933e6e0ULL);
  Generator g42(42);
  CHECK(g42.next_u64() == 0x15780b2e0c2ec716ULL);
  CHECK(g42.next_u64() == 0x6104d9866d113a7eULL);
  CHECK(g42.next_u64() == 0xae17533239e499a1ULL);
  // uniform() is the top 53 bits over 2^53.
  Generator u(42);
  CHECK(u.uniform() == double(0x15780b2e0c2ec716ULL >> 11) * 0x1.0p-53);
}

TEST_CASE("the generator's arithmetic on its own (kernels/random.h), as the GPU draws it in a CUDA graph") {
  for (uint64_t seed : {0ULL, 42ULL, 0x9e3779b97f4a7c15ULL}) {
    CAPTURE(seed);
    Generator g(seed);
    for (int64_t k = 0; k < 12; k++) {
      CHECK(g.draws() == k);
      CHECK(kernels::xoshiro_draw(seed, k) == g.next_u64());
    }
  }
  // seed_step is manual_seed(step_seed(...)), remembered as such until the next seeding.
  Generator a(1), b(1);
  a.seed_step(21, 7);
  b.manual_seed(kernels::step_seed(21, 7));
  CHECK(a.step_seeded());
  CHECK_FALSE(b.step_seeded());
  CHECK(a.run_seed() == 21);
  for (int i = 0; i < 5; i++) CHECK(a.next_u64() == b.next_u64());
  CHECK(a.draws() == 5);
  a.manual_seed(3);
  CHECK_FALSE(a.step_seeded());
  CHECK(a.draws() == 0);
  // A step's seed depends on the run's seed and the step, and on nothing else.
  CHECK(kernels::step_seed(21, 7) == kernels::step_seed(21, 7));
  CHECK(kernels::step_seed(21, 7) != kernels::step_seed(21, 8));
  CHECK(kernels::step_seed(21, 7) != kernels::step_seed(22, 7));
}

TEST_CASE("same seed, same numbers; different seeds, different numbers") {
  Generator a(7), b(7), c(8);
  std::vector<uint64_t> va, vb, vc;
  for (int i = 0; i < 100; i++) {
    va.push_back(a.next_u64());
    vb.push_back(b.next_u64());
    vc.push_back(c.next_u64());
  }
  CHECK(va == vb);
  CHECK(va != vc);
  for (size_t i = 0; i < va.size(); i++) CHECK(va[i] != vc[i]);

  // Tensors: same seed, same values, whatever the dtype they are stored in.
  Generator g1(123), g2(123), g3(124);
  Tensor r1 = randn({5, 7}, g1, DType::f64), r2 = randn({5, 7}, g2, DType::f64), r3 = randn({5, 7}, g3, DType::f64);
  CHECK(r1.to_double_vector() == r2.to_double_vector());
  CHECK(r1.to_double_vector() != r3.to_double_vector());
  Generator g4(123);
  CHECK(randn({5, 7}, g4, DType::f32).to_vector() == r1.to(DType::f32).to_vector());

  // manual_seed restarts the sequence, including the spare value of Box-Muller.
  Generator m(5);
  const double n1 = m.normal();
  m.normal();
  m.normal();  // leaves a spare
  m.manual_seed(5);
  CHECK(m.normal() == n1);

  // The default generator follows manual_seed().
  manual_seed(99);
  Tensor d1 = rand({10});
  manual_seed(99);
  Tensor d2 = rand({10});
  CHECK(d1.to_vector() == d2.to_vector());
  CHECK(&default_generator() == &default_generator());
}

TEST_CASE("uniform: range and moments") {
  // n = 200000 draws of U[0, 1): mean 1/2 (standard error 6.5e-4), std sqrt(1/12) = 0.288675
  // (standard error ~3e-4). Tolerances: 5e-3 and 3e-3, about 8 and 10 standard errors.
  Generator g(2024);
  std::vector<double> v(200000);
  for (double& x : v) x = g.uniform();
  const Moments m = moments(v);
  CHECK(m.min >= 0.0);
  CHECK(m.max < 1.0);
  CHECK(m.min < 1e-4);  // the ends of the range are reached
  CHECK(m.max > 1 - 1e-4);
  CHECK(m.mean == doctest::Approx(0.5).epsilon(0.01));
  CHECK(std::fabs(m.std - std::sqrt(1.0 / 12)) < 3e-3);
  // Each tenth of the interval holds a tenth of the draws (+- 0.01, ~15 standard errors).
  std::vector<int> bins(10, 0);
  for (double x : v) bins[size_t(x * 10)]++;
  for (int b : bins) CHECK(std::fabs(b / 200000.0 - 0.1) < 0.01);

  // rand() tensors: [0, 1), stored in the requested dtype.
  Generator t(1);
  Tensor r = rand({1000}, t, DType::f32);
  CHECK(r.dtype() == DType::f32);
  const Moments mr = moments(r);
  CHECK(mr.min >= 0.0);
  CHECK(mr.max <= 1.0);                    // float32 rounding may reach 1.0
  CHECK(std::fabs(mr.mean - 0.5) < 0.05);  // n = 1000: standard error 0.009
  // uniform_(a, b) scales and shifts.
  Tensor w = Tensor::empty({100000}, DType::f64);
  init::uniform_(w, -3.0, 5.0, g);
  const Moments mw = moments(w);
  CHECK(mw.min >= -3.0);
  CHECK(mw.max < 5.0);
  CHECK(std::fabs(mw.mean - 1.0) < 0.05);                 // standard error 0.0073
  CHECK(std::fabs(mw.std - 8 / std::sqrt(12.0)) < 0.03);  // standard error ~0.005
}

TEST_CASE("normal: moments and shape of the distribution") {
  // n = 200000 draws of N(0, 1): the mean has standard error 0.0022 (tolerance 0.015), the
  // std 0.0016 (tolerance 0.01); P(|x| < 1) = 0.682689 (standard error 0.001, tolerance 0.008);
  // the fourth moment is 3 (standard error ~0.02, tolerance 0.15).
  Generator g(31337);
  std::vector<double> v(200000);
  for (double& x : v) x = g.normal();
  const Moments m = moments(v);
  CHECK(std::fabs(m.mean) < 0.015);
  CHECK(std::fabs(m.std - 1.0) < 0.01);
  const double within1 = double(std::count_if(v.begin(), v.end(), [](double x) { return std::fabs(x) < 1; })) / 2e5;
  CHECK(std::fabs(within1 - 0.682689) < 0.008);
  const double within2 = double(std::count_if(v.begin(), v.end(), [](double x) { return std::fabs(x) < 2; })) / 2e5;
  CHECK(std::fabs(within2 - 0.954500) < 0.005);
  double m4 = 0;
  for (double x : v) m4 += x * x * x * x;
  CHECK(std::fabs(m4 / 2e5 - 3.0) < 0.15);
  CHECK(m.min < -3.5);  // the tails are there
  CHECK(m.max > 3.5);

  Tensor n = Tensor::empty({100000}, DType::f64);
  init::normal_(n, 2.0, 0.5, g);
  const Moments mn = moments(n);
  CHECK(std::fabs(mn.mean - 2.0) < 0.01);  // standard error 0.0016
  CHECK(std::fabs(mn.std - 0.5) < 0.01);   // standard error 0.0011
}

TEST_CASE("below(n): every value of [0, n), evenly") {
  Generator g(77);
  std::vector<int> counts(7, 0);
  for (int i = 0; i < 70000; i++) {
    const uint64_t x = g.below(7);
    REQUIRE(x < 7);
    counts[x]++;
  }
  // Each value 10000 times in expectation (standard deviation 93): +- 600.
  for (int c : counts) CHECK(std::abs(c - 10000) < 600);
  for (int i = 0; i < 100; i++) CHECK(g.below(1) == 0);
  // A bound just above 2^63: half the 64-bit values would be rejected; still in range.
  const uint64_t big = (uint64_t(1) << 63) + 1;
  std::set<bool> halves;
  for (int i = 0; i < 200; i++) {
    const uint64_t x = g.below(big);
    CHECK(x < big);
    halves.insert(x >= big / 2);
  }
  CHECK(halves.size() == 2);  // both halves of the range are drawn
  CHECK_THROWS_WITH_AS(g.below(0), Contains("Generator::below(0)"), Error);
}

TEST_CASE("fans and calculate_gain as torch.nn.init") {
  // A conv weight (out, in, kh, kw) = (64, 3, 11, 11): receptive field 121,
  // fan_in = 3 * 121 = 363, fan_out = 64 * 121 = 7744.
  Tensor conv = Tensor::empty({64, 3, 11, 11});
  CHECK(init::fans(conv) == std::pair<int64_t, int64_t>{363, 7744});
  // A linear weight (out, in) = (10, 20): fan_in 20, fan_out 10.
  CHECK(init::fans(Tensor::empty({10, 20})) == std::pair<int64_t, int64_t>{20, 10});
  CHECK_THROWS_WITH_AS(init::fans(Tensor::empty({5})),
                       Contains("fan in and fan out need a tensor of at least 2 dimensions, got [5]"), Error);

  CHECK(init::calculate_gain("linear") == 1.0);
  CHECK(init::calculate_gain("conv2d") == 1.0);
  CHECK(init::calculate_gain("conv1d") == 1.0);
  CHECK(init::calculate_gain("sigmoid") == 1.0);
  CHECK(init::calculate_gain("tanh") == doctest::Approx(5.0 / 3.0).epsilon(1e-15));
  CHECK(init::calculate_gain("relu") == doctest::Approx(std::sqrt(2.0)).epsilon(1e-15));
  // leaky_relu: sqrt(2 / (1 + slope^2)), slope 0.01 when not given.
  CHECK(init::calculate_gain("leaky_relu") == doctest::Approx(std::sqrt(2.0 / 1.0001)).epsilon(1e-15));
  CHECK(init::calculate_gain("leaky_relu", 0.2) == doctest::Approx(std::sqrt(2.0 / 1.04)).epsilon(1e-15));
  CHECK(init::calculate_gain("leaky_relu", std::sqrt(5.0)) == doctest::Approx(std::sqrt(1.0 / 3.0)).epsilon(1e-15));
  CHECK(init::calculate_gain("selu") == 0.75);
  CHECK_THROWS_WITH_AS(init::calculate_gain("swish"), Contains("calculate_gain: unsupported nonlinearity 'swish'"),
                       Error);
}

TEST_CASE("kaiming, xavier and trunc_normal: bounds and std of torch.nn.init's formulas") {
  // The conv weight of AlexNet's first layer: 232,320 values, so a sample std has a relative
  // standard error of ~0.15% (normal) or ~0.1% (uniform); tolerance 1.5%. Uniform draws must
  // stay within the bound and come within 0.1% of it.
  const Shape shape{64, 3, 11, 11};
  const double fan_in = 363, fan_out = 7744;
  Generator g(2718);

  SUBCASE("kaiming_uniform_, a = sqrt(5) (PyTorch's Conv2d and Linear default)") {
    // gain = sqrt(2 / (1 + 5)), std = gain / sqrt(fan_in), bound = sqrt(3) * std = 1 / sqrt(fan_in).
    Tensor w = Tensor::empty(shape);
    init::kaiming_uniform_(w, std::sqrt(5.0), init::FanMode::fan_in, "leaky_relu", g);
    const double bound = 1.0 / std::sqrt(fan_in);
    const Moments m = moments(w);
    CHECK(m.min >= -bound);
    CHECK(m.max <= bound);
    CHECK(m.max > 0.999 * bound);
    CHECK(m.min < -0.999 * bound);
    CHECK(m.std == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.015));
    CHECK(std::fabs(m.mean) < 0.01 * bound);
  }
  SUBCASE("kaiming_uniform_, relu, fan_out") {
    Tensor w = Tensor::empty(shape);
    init::kaiming_uniform_(w, 0, init::FanMode::fan_out, "relu", g);
    const double bound = std::sqrt(2.0) * std::sqrt(3.0 / fan_out);
    const Moments m = moments(w);
    CHECK(m.min >= -bound);
    CHECK(m.max <= bound);
    CHECK(m.max > 0.999 * bound);
    CHECK(m.std == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.015));
  }
  SUBCASE("kaiming_normal_, relu, fan_out (torchvision's ResNet and VGG convs)") {
    Tensor w = Tensor::empty(shape);
    init::kaiming_normal_(w, 0, init::FanMode::fan_out, "relu", g);
    const Moments m = moments(w);
    CHECK(m.std == doctest::Approx(std::sqrt(2.0) / std::sqrt(fan_out)).epsilon(0.015));
    CHECK(std::fabs(m.mean) < 0.01 * m.std);
  }
  SUBCASE("kaiming_normal_, default leaky_relu with a = 0, fan_in") {
    Tensor w = Tensor::empty(shape);
    init::kaiming_normal_(w, 0, init::FanMode::fan_in, "leaky_relu", g);
    CHECK(moments(w).std == doctest::Approx(std::sqrt(2.0 / fan_in)).epsilon(0.015));
  }
  SUBCASE("xavier_uniform_") {
    Tensor w = Tensor::empty(shape);
    init::xavier_uniform_(w, 1.0, g);
    const double bound = std::sqrt(6.0 / (fan_in + fan_out));
    const Moments m = moments(w);
    CHECK(m.min >= -bound);
    CHECK(m.max <= bound);
    CHECK(m.max > 0.999 * bound);
    CHECK(m.std == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.015));
  }
  SUBCASE("xavier_uniform_ with a gain") {
    Tensor w = Tensor::empty({300, 200}, DType::f64);
    init::xavier_uniform_(w, init::calculate_gain("tanh"), g);
    const double bound = 5.0 / 3.0 * std::sqrt(6.0 / 500.0);
    const Moments m = moments(w);
    CHECK(m.max <= bound);
    CHECK(m.max > 0.999 * bound);
  }
  SUBCASE("xavier_normal_") {
    Tensor w = Tensor::empty(shape);
    init::xavier_normal_(w, 2.0, g);
    CHECK(moments(w).std == doctest::Approx(2.0 * std::sqrt(2.0 / (fan_in + fan_out))).epsilon(0.015));
  }
  SUBCASE("trunc_normal_, [-2, 2] with std 1: the truncated distribution's std") {
    // Var of N(0,1) truncated to [-a, a] = 1 - 2 a phi(a) / (Phi(a) - Phi(-a)); for a = 2 the
    // std is 0.879626 (untruncated would be 1).
    Tensor w = Tensor::empty(shape, DType::f64);
    init::trunc_normal_(w, 0.0, 1.0, -2.0, 2.0, g);
    const Moments m = moments(w);
    CHECK(m.min >= -2.0);
    CHECK(m.max <= 2.0);
    CHECK(m.max > 1.99);
    CHECK(m.std == doctest::Approx(0.879626).epsilon(0.01));
  }
  SUBCASE("trunc_normal_, one-sided [0, 1]: the truncated mean") {
    // Mean of N(0,1) truncated to [0, 1] = (phi(0) - phi(1)) / (Phi(1) - Phi(0)) = 0.459862.
    Tensor w = Tensor::empty({100000}, DType::f64);
    init::trunc_normal_(w, 0.0, 1.0, 0.0, 1.0, g);
    const Moments m = moments(w);
    CHECK(m.min >= 0.0);
    CHECK(m.max <= 1.0);
    CHECK(m.mean == doctest::Approx(0.459862).epsilon(0.01));  // standard error 0.0009
  }
  SUBCASE("trunc_normal_, std 0.02 in [-2, 2] (as ViT's): effectively untruncated") {
    Tensor w = Tensor::empty(shape);
    init::trunc_normal_(w, 0.0, 0.02, -2.0, 2.0, g);
    CHECK(moments(w).std == doctest::Approx(0.02).epsilon(0.015));
    CHECK_THROWS_WITH_AS(init::trunc_normal_(w, 0.0, 1.0, 1.0, -1.0, g),
                         Contains("trunc_normal_: empty interval [1, -1]"), Error);
  }
  SUBCASE("constant_, zeros_, ones_") {
    Tensor w = Tensor::empty({3, 3});
    init::constant_(w, 0.25);
    CHECK(w.to_vector() == std::vector<float>(9, 0.25f));
    init::zeros_(w);
    CHECK(w.to_vector() == std::vector<float>(9, 0.f));
    init::ones_(w);
    CHECK(w.to_vector() == std::vector<float>(9, 1.f));
  }
}

TEST_CASE("initialisers: same seed, same weights; storage is kept") {
  Tensor a = Tensor::empty({16, 8}), b = Tensor::empty({16, 8});
  const void* storage = a.raw_data();
  Generator ga(5), gb(5);
  init::kaiming_uniform_(a, std::sqrt(5.0), init::FanMode::fan_in, "leaky_relu", ga);
  init::kaiming_uniform_(b, std::sqrt(5.0), init::FanMode::fan_in, "leaky_relu", gb);
  CHECK(a.to_vector() == b.to_vector());
  CHECK(a.raw_data() == storage);  // filled in place: a module's handle stays valid
  // float32 weights are the float64 draws rounded: the same seed gives the same float32
  // values whether drawn into float32 or drawn into float64 and converted.
  Tensor d = Tensor::empty({16, 8}, DType::f64);
  Generator gd(5);
  init::kaiming_uniform_(d, std::sqrt(5.0), init::FanMode::fan_in, "leaky_relu", gd);
  CHECK(d.to(DType::f32).to_vector() == a.to_vector());
  Tensor no_fan = Tensor::empty({4, 0});
  CHECK_THROWS_WITH_AS(init::kaiming_uniform_(no_fan, 0, init::FanMode::fan_in, "leaky_relu", ga),
                       Contains("kaiming init of a tensor with zero elements, shape [4, 0]"), Error);
}
