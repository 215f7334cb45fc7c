// Seeded random numbers and the initialisers of torch.nn.init.
//
// The generator is xoshiro256** seeded through splitmix64: the same seed gives the same
// numbers on every machine and compiler (std::normal_distribution would not). Values are drawn
// on the host in float64 and then converted and copied to the tensor's dtype and device, so a
// CPU and a GPU model initialised from the same seed hold the same weights.
// The initialisers follow torch.nn.init's formulas (fans, gains, bounds); the numbers drawn
// differ from PyTorch's because the generators differ.
#pragma once

#include <cstdint>
#include <string>

#include "tensor/tensor.h"

namespace leuko {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) { manual_seed(seed); }
  void manual_seed(uint64_t seed);
  // manual_seed(step_seed(run_seed, step)) (kernels/random.h), remembered as such: a CUDA graph
  // that records the step can then draw each replay's numbers on the device (layers/activation.cpp).
  void seed_step(uint64_t run_seed, int64_t step);
  uint64_t next_u64();
  double uniform();              // [0, 1), 53 random bits
  double normal();               // mean 0, std 1 (Box-Muller)
  uint64_t below(uint64_t n);    // uniform integer in [0, n), unbiased

  int64_t draws() const { return draws_; }          // next_u64 calls since the last seeding
  bool step_seeded() const { return stepped_; }     // last seeded by seed_step
  uint64_t run_seed() const { return run_seed_; }   // its run_seed

 private:
  uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0;
  int64_t draws_ = 0;
  bool stepped_ = false;
  uint64_t run_seed_ = 0;
};

// The process-wide generator used when none is passed; `leuko train --seed` seeds it, and
// before every training step seed_step(seed, step) (so dropout is a function of the seed and
// the step alone).
Generator& default_generator();
void manual_seed(uint64_t seed);
void seed_step(uint64_t run_seed, int64_t step);

// New tensors of random values.
Tensor rand(const Shape& shape, Generator& gen = default_generator(), DType dtype = DType::f32,
            Device device = Device::CPU);  // uniform [0, 1)
Tensor randn(const Shape& shape, Generator& gen = default_generator(), DType dtype = DType::f32,
             Device device = Device::CPU);  // standard normal

namespace init {
enum class FanMode { fan_in, fan_out };

// fan_in = size(1) * receptive field, fan_out = size(0) * receptive field (dim >= 2).
std::pair<int64_t, int64_t> fans(const Tensor& t);
// torch.nn.init.calculate_gain: "linear", "conv2d", "sigmoid", "tanh", "relu", "leaky_relu", "selu".
double calculate_gain(const std::string& nonlinearity, double param = 0.01);

void uniform_(Tensor& t, double a, double b, Generator& gen = default_generator());
void normal_(Tensor& t, double mean, double std, Generator& gen = default_generator());
// Normal(mean, std) redrawn until inside [a, b], as torch.nn.init.trunc_normal_.
void trunc_normal_(Tensor& t, double mean, double std, double a, double b, Generator& gen = default_generator());
void constant_(Tensor& t, double value);
void zeros_(Tensor& t);
void ones_(Tensor& t);
// bound = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a).
void kaiming_uniform_(Tensor& t, double a = 0, FanMode mode = FanMode::fan_in,
                      const std::string& nonlinearity = "leaky_relu", Generator& gen = default_generator());
// std = gain / sqrt(fan).
void kaiming_normal_(Tensor& t, double a = 0, FanMode mode = FanMode::fan_in,
                     const std::string& nonlinearity = "leaky_relu", Generator& gen = default_generator());
// bound = gain * sqrt(6 / (fan_in + fan_out)).
void xavier_uniform_(Tensor& t, double gain = 1.0, Generator& gen = default_generator());
// std = gain * sqrt(2 / (fan_in + fan_out)).
void xavier_normal_(Tensor& t, double gain = 1.0, Generator& gen = default_generator());
}  // namespace init

}  // namespace leuko
