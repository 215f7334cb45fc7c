#include "tensor/random.h"

#include <cmath>
#include <vector>

#include "kernels/random.h"

namespace leuko {

void Generator::manual_seed(uint64_t seed) {
  kernels::xoshiro_seed(s_, seed);
  has_spare_ = false;
  draws_ = 0;
  stepped_ = false;
}

void Generator::seed_step(uint64_t run_seed, int64_t step) {
  manual_seed(kernels::step_seed(run_seed, step));
  stepped_ = true;
  run_seed_ = run_seed;
}

uint64_t Generator::next_u64() {  // xoshiro256**
  draws_++;
  return kernels::xoshiro_next(s_);
}

double Generator::uniform() { return double(next_u64() >> 11) * 0x1.0p-53; }

double Generator::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u1 = uniform(), u2 = uniform();
  while (u1 <= 0.0) u1 = uniform();  // log(0) is -inf
  const double r = std::sqrt(-2.0 * std::log(u1)), theta = 2.0 * M_PI * u2;
  spare_ = r * std::sin(theta);
  has_spare_ = true;
  return r * std::cos(theta);
}

uint64_t Generator::below(uint64_t n) {
  LEUKO_CHECK(n > 0, "Generator::below(0)");
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;  // reject the uneven tail
  uint64_t x;
  do x = next_u64();
  while (x >= limit);
  return x % n;
}

Generator& default_generator() {
  static Generator g(0);
  return g;
}
void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }
void seed_step(uint64_t run_seed, int64_t step) { default_generator().seed_step(run_seed, step); }

namespace {
// Draws every value with `draw` (in float64) on the host, in element order, and writes them
// into t (any dtype, any device). A CPU float32 or float64 tensor is written directly: a
// 134M-parameter VGG16 must not need a gigabyte of temporaries to initialise.
template <typename F>
void fill_host(Tensor& t, F draw) {
  const int64_t n = t.numel();
  if (!t.is_cuda() && t.dtype() == DType::f64) {
    double* p = t.data<double>();
    for (int64_t i = 0; i < n; i++) p[i] = draw();
    return;
  }
  Tensor host = t.is_cuda() || t.dtype() != DType::f32 ? Tensor::empty(t.shape(), DType::f32) : t;
  float* p = host.data<float>();
  for (int64_t i = 0; i < n; i++) p[i] = float(draw());
  if (!host.shares_storage(t)) t.copy_(host.to(t.dtype()).to(t.device()));
}
}  // namespace

Tensor rand(const Shape& shape, Generator& gen, DType dtype, Device device) {
  Tensor t = Tensor::empty(shape, dtype, device);
  init::uniform_(t, 0.0, 1.0, gen);
  return t;
}

Tensor randn(const Shape& shape, Generator& gen, DType dtype, Device device) {
  Tensor t = Tensor::empty(shape, dtype, device);
  init::normal_(t, 0.0, 1.0, gen);
  return t;
}

namespace init {

std::pair<int64_t, int64_t> fans(const Tensor& t) {
  LEUKO_CHECK(t.dim() >= 2, "fan in and fan out need a tensor of at least 2 dimensions, got ",
              shape_str(t.shape()));
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.dim(); d++) receptive *= t.size(d);
  return {t.size(1) * receptive, t.size(0) * receptive};
}

double calculate_gain(const std::string& nonlinearity, double param) {
  if (nonlinearity == "linear" || nonlinearity == "conv1d" || nonlinearity == "conv2d" ||
      nonlinearity == "conv3d" || nonlinearity == "sigmoid")
    return 1.0;
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") return std::sqrt(2.0 / (1.0 + param * param));
  if (nonlinearity == "selu") return 3.0 / 4.0;
  LEUKO_FAIL("calculate_gain: unsupported nonlinearity '", nonlinearity, "'");
}

void uniform_(Tensor& t, double a, double b, Generator& gen) {
  fill_host(t, [&] { return a + (b - a) * gen.uniform(); });
}

void normal_(Tensor& t, double mean, double std, Generator& gen) {
  fill_host(t, [&] { return mean + std * gen.normal(); });
}

void trunc_normal_(Tensor& t, double mean, double std, double a, double b, Generator& gen) {
  LEUKO_CHECK(a < b, "trunc_normal_: empty interval [", a, ", ", b, "]");
  fill_host(t, [&] {
    for (int tries = 0; tries < 1000; tries++) {
      double x = mean + std * gen.normal();
      if (x >= a && x <= b) return x;
    }
    return std::min(std::max(mean, a), b);  // an interval far in the tail: fall back to its edge
  });
}

void constant_(Tensor& t, double value) { t.fill_(value); }
void zeros_(Tensor& t) { t.fill_(0.0); }
void ones_(Tensor& t) { t.fill_(1.0); }

namespace {
double kaiming_std(const Tensor& t, double a, FanMode mode, const std::string& nonlinearity) {
  auto [fan_in, fan_out] = fans(t);
  const int64_t fan = mode == FanMode::fan_in ? fan_in : fan_out;
  LEUKO_CHECK(fan > 0, "kaiming init of a tensor with zero elements, shape ", shape_str(t.shape()));
  return calculate_gain(nonlinearity, a) / std::sqrt(double(fan));
}
}  // namespace

void kaiming_uniform_(Tensor& t, double a, FanMode mode, const std::string& nonlinearity, Generator& gen) {
  const double bound = std::sqrt(3.0) * kaiming_std(t, a, mode, nonlinearity);
  uniform_(t, -bound, bound, gen);
}

void kaiming_normal_(Tensor& t, double a, FanMode mode, const std::string& nonlinearity, Generator& gen) {
  normal_(t, 0.0, kaiming_std(t, a, mode, nonlinearity), gen);
}

void xavier_uniform_(Tensor& t, double gain, Generator& gen) {
  auto [fan_in, fan_out] = fans(t);
  const double bound = gain * std::sqrt(6.0 / double(fan_in + fan_out));
  uniform_(t, -bound, bound, gen);
}

void xavier_normal_(Tensor& t, double gain, Generator& gen) {
  auto [fan_in, fan_out] = fans(t);
  normal_(t, 0.0, gain * std::sqrt(2.0 / double(fan_in + fan_out)), gen);
}

}  // namespace init
}  // namespace leuko
