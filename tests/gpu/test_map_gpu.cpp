// The element-wise map kernels (kernels/cuda/map.cuh: 8 elements a thread when every pointer is
// aligned to a pack, one by one otherwise) against the CPU kernels, bit for bit, through each
// public function that runs on them: ReLU, add + ReLU, ReLU's backward, the gradient sum, the
// float32 <-> bf16 conversions, the same-shape binary ops, affine, scalar_div and the unary ops.
// Lengths around the pack size and its tails; pointers offset by 0, 1, 3 and 8 elements, alike
// or each operand its own, so that both the packed kernel and the element-by-element one run,
// and their results must agree. Each output buffer has values before and after its n elements
// that must keep their bits. ReLU and its backward pass their values through: there a NaN must
// keep its bits (its sign) too.
#include <doctest/doctest.h>

#if LEUKO_WITH_CUDA
#include <cmath>
#include <cstring>
#include <functional>
#include <vector>

#include "helpers.h"
#include "kernels/activation.h"
#include "kernels/elementwise.h"
#include "kernels/memory.h"
#include "tensor/cuda/context.h"
#include "tensor/device.h"

using namespace leuko;
namespace kc = kernels::cpu;
namespace kg = kernels::cuda;

namespace {

const int64_t kLengths[] = {1, 7, 8, 9, 63, 4099, (1 << 20) + 5};
constexpr int64_t kGuard = 16;  // elements after an operand's n values in its buffer (two packs)

// Where the n values of the output and of the operands a and b start in their buffers, in
// elements of each one's type.
struct Offsets {
  int64_t out, a, b;
};

double to_double(float v) { return v; }
double to_double(bf16 v) { return double(bf16_to_float(v)); }

// n values of T on the GPU, `offset` elements into their buffer, with kGuard elements after
// them, and their host copy. The values depend on n and the seed, not on the offset: normal,
// with zeros and NaNs of both signs among them (or all positive, for a divisor). The `offset`
// values before them and the kGuard after are normal too, from another seed.
template <typename T>
struct Operand {
  Tensor storage;  // (offset + n + kGuard,) on the GPU
  int64_t offset = 0;
  std::vector<T> all;   // the host copy of the whole buffer
  std::vector<T> host;  // the n values: all[offset, offset + n)
  T* device = nullptr;  // the n values on the GPU
};

template <typename T>
Operand<T> operand(int64_t offset, int64_t n, uint64_t seed, bool positive = false) {
  const std::vector<double> guard = test::randn_t({offset + kGuard}, seed + 7777, DType::f64).to_double_vector();
  std::vector<double> v(guard.begin(), guard.begin() + offset);
  std::vector<double> drawn = test::randn_t({n}, seed, DType::f64).to_double_vector();
  for (size_t i = 0; i < drawn.size(); i++) {
    if (positive) drawn[i] = std::fabs(drawn[i]) + 0.25;
    else if (i % 97 == 5) drawn[i] = i % 2 == 1 ? double(NAN) : -double(NAN);
    else if (i % 11 == 3) drawn[i] = i % 2 == 1 ? 0.0 : -0.0;
  }
  v.insert(v.end(), drawn.begin(), drawn.end());
  v.insert(v.end(), guard.begin() + offset, guard.end());
  const DType dt = std::is_same_v<T, float> ? DType::f32 : DType::bf16;
  Tensor t = Tensor::from_vector(v, {offset + n + kGuard}, DType::f64).to(dt);
  Operand<T> o;
  o.offset = offset;
  o.all.assign(t.data<T>(), t.data<T>() + offset + n + kGuard);
  o.host.assign(o.all.begin() + offset, o.all.begin() + offset + n);
  o.storage = t.cuda();
  o.device = o.storage.template data<T>() + offset;
  return o;
}

template <typename T>
std::vector<T> download(const T* device, int64_t n) {
  std::vector<T> h(static_cast<size_t>(n));
  cuda_synchronize();
  kg::copy_to_host(h.data(), device, size_t(n) * sizeof(T));
  return h;
}

// Whether `buffer` (an output's whole buffer, back from the GPU) kept the bits of its values
// outside the n elements: the `offset` before them and the kGuard after.
template <typename T>
bool guards_kept(const Operand<T>& o, const std::vector<T>& buffer) {
  const size_t before = size_t(o.offset), after = o.all.size() - size_t(kGuard);
  return buffer.size() == o.all.size() && std::memcmp(buffer.data(), o.all.data(), before * sizeof(T)) == 0 &&
         std::memcmp(buffer.data() + after, o.all.data() + after, size_t(kGuard) * sizeof(T)) == 0;
}

// The index of the first element whose bits differ, or -1. Two NaNs are equal unless `nan_bits`.
template <typename T>
int64_t first_difference(const std::vector<T>& x, const std::vector<T>& y, bool nan_bits = false) {
  if (x.size() != y.size()) return 0;
  for (size_t i = 0; i < x.size(); i++) {
    const bool both_nan = !nan_bits && std::isnan(to_double(x[i])) && std::isnan(to_double(y[i]));
    if (!both_nan && std::memcmp(&x[i], &y[i], sizeof(T)) != 0) return int64_t(i);
  }
  return -1;
}

template <typename To, typename Ta, typename Tb>
using Kernel = std::function<void(To*, const Ta*, const Tb*, int64_t)>;
// The same type, where a template argument must not be deduced from it (a lambda is no
// std::function): the callers name To and Ta.
template <typename T>
struct Given {
  using type = T;
};

// Runs `gpu` (n outputs of To from operands a and b) for every length and offsets. Every
// offsets must give the same bits as the first (all 0: the packed kernel); where `cpu` is given
// (on host copies), the CPU's bits too; NaNs alike bit for bit where `nan_bits`. The output's
// buffer must keep its values outside the n elements.
template <typename To, typename Ta, typename Tb = Ta>
void for_each_case(const typename Given<Kernel<To, Ta, Tb>>::type& gpu,
                   const typename Given<Kernel<To, Ta, Tb>>::type& cpu, bool positive_b = false,
                   bool nan_bits = false) {
  // All alike: 0 and 8 keep every pointer aligned to a pack (16 bytes of bf16, 32 of float32),
  // 1 and 3 break it. Then one or two operands unaligned beside aligned ones, so that the launch
  // must check each pointer; b 16 bytes in is aligned for bf16, but not to float32's 32 bytes.
  const int64_t b16 = 16 / int64_t(sizeof(Tb));
  const Offsets offsets[] = {{0, 0, 0}, {1, 1, 1}, {3, 3, 3}, {8, 8, 8}, {0, 1, b16}, {1, 0, 0}, {0, 0, 1}};
  uint64_t seed = 900;
  for (int64_t n : kLengths) {
    CAPTURE(n);
    seed += 3;
    std::vector<To> packed;
    for (const Offsets& off : offsets) {
      CAPTURE(off.out);
      CAPTURE(off.a);
      CAPTURE(off.b);
      Operand<Ta> a = operand<Ta>(off.a, n, seed);
      Operand<Tb> b = operand<Tb>(off.b, n, seed + 1, positive_b);
      Operand<To> out = operand<To>(off.out, n, seed + 2);  // holds values: each must be overwritten
      gpu(out.device, a.device, b.device, n);
      const std::vector<To> buffer = download(out.device - off.out, int64_t(out.all.size()));
      CHECK(guards_kept(out, buffer));
      const std::vector<To> got(buffer.begin() + off.out, buffer.begin() + off.out + n);
      if (&off == &offsets[0]) packed = got;
      CHECK(first_difference(got, packed, nan_bits) == -1);
      if (cpu) {
        std::vector<To> want(static_cast<size_t>(n));
        cpu(want.data(), a.host.data(), b.host.data(), n);
        CHECK(first_difference(got, want, nan_bits) == -1);
      }
    }
  }
}

// The CPU reference of a bf16 kernel: its float32 CPU kernel on the widened values, rounded once.
template <typename F>
void through_float(bf16* out, const bf16* a, const bf16* b, int64_t n, F cpu_float) {
  const size_t count = static_cast<size_t>(n);
  std::vector<float> fa(count), fb(count), fo(count);
  kc::convert(fa.data(), a, n);
  kc::convert(fb.data(), b, n);
  cpu_float(fo.data(), fa.data(), fb.data(), n);
  kc::convert(out, fo.data(), n);
}

}  // namespace

TEST_CASE("map kernels: ReLU, add + ReLU and ReLU's backward give the CPU's bits, packed or not") {
  // ReLU and its backward select their values: a NaN keeps its bits (nan_bits), as on the CPU.
  const bool positive_b = false, nan_bits = true;
  using F = float;
  const Kernel<F, F, F> relu = [](F* o, const F* a, const F*, int64_t n) { kc::relu_forward(o, a, n); };
  const Kernel<F, F, F> add_relu = [](F* o, const F* a, const F* b, int64_t n) { kc::add_relu_forward(o, a, b, n); };
  const Kernel<F, F, F> relu_bw = [](F* o, const F* g, const F* y, int64_t n) { kc::relu_backward(o, g, y, n); };
  SUBCASE("float32") {
    for_each_case<F, F>([](F* o, const F* a, const F*, int64_t n) { kg::relu_forward(o, a, n); }, relu, positive_b,
                        nan_bits);
    for_each_case<F, F>([](F* o, const F* a, const F* b, int64_t n) { kg::add_relu_forward(o, a, b, n); }, add_relu);
    for_each_case<F, F>([](F* o, const F* g, const F* y, int64_t n) { kg::relu_backward(o, g, y, n); }, relu_bw,
                        positive_b, nan_bits);
  }
  SUBCASE("bf16") {
    using B = bf16;
    for_each_case<B, B>([](B* o, const B* a, const B*, int64_t n) { kg::relu_forward(o, a, n); },
                        [&](B* o, const B* a, const B* b, int64_t n) { through_float(o, a, b, n, relu); }, positive_b,
                        nan_bits);
    for_each_case<B, B>([](B* o, const B* a, const B* b, int64_t n) { kg::add_relu_forward(o, a, b, n); },
                        [&](B* o, const B* a, const B* b, int64_t n) { through_float(o, a, b, n, add_relu); });
    for_each_case<B, B>([](B* o, const B* g, const B* y, int64_t n) { kg::relu_backward(o, g, y, n); },
                        [&](B* o, const B* g, const B* y, int64_t n) { through_float(o, g, y, n, relu_bw); },
                        positive_b, nan_bits);
  }
}

TEST_CASE("map kernels: the gradient sum (in place) and the conversions give the CPU's bits") {
  auto sum = [](auto tag) {
    using T = decltype(tag);
    // acc += x: the output starts as a copy of a on both sides.
    for_each_case<T, T>(
        [](T* o, const T* a, const T* b, int64_t n) {
          kg::copy_on_device(o, a, size_t(n) * sizeof(T));
          kg::accumulate(o, b, n);
        },
        [](T* o, const T* a, const T* b, int64_t n) {
          std::memcpy(o, a, size_t(n) * sizeof(T));
          kc::accumulate(o, b, n);
        });
  };
  SUBCASE("float32") { sum(float{}); }
  SUBCASE("bf16") { sum(bf16{}); }
  SUBCASE("float32 to bf16 (round to nearest even) and back") {
    for_each_case<bf16, float>([](bf16* o, const float* a, const float*, int64_t n) { kg::convert(o, a, n); },
                               [](bf16* o, const float* a, const float*, int64_t n) { kc::convert(o, a, n); });
    for_each_case<float, bf16>([](float* o, const bf16* a, const bf16*, int64_t n) { kg::convert(o, a, n); },
                               [](float* o, const bf16* a, const bf16*, int64_t n) { kc::convert(o, a, n); });
  }
}

TEST_CASE("map kernels: binary ops, affine, scalar_div and the unary ops, packed or not") {
  using F = float;
  // +, -, * and / are correctly rounded on both devices: the CPU's bits.
  for (kernels::BinaryOp op : {kernels::BinaryOp::add, kernels::BinaryOp::sub, kernels::BinaryOp::mul,
                               kernels::BinaryOp::div}) {
    CAPTURE(int(op));
    for_each_case<F, F>([op](F* o, const F* a, const F* b, int64_t n) { kg::binary(op, o, a, b, n, nullptr); },
                        [op](F* o, const F* a, const F* b, int64_t n) { kc::binary(op, o, a, b, n, nullptr); });
  }
  for_each_case<F, F>([](F* o, const F*, const F* b, int64_t n) { kg::scalar_div(o, 3.0, b, n); },
                      [](F* o, const F*, const F* b, int64_t n) { kc::scalar_div(o, 3.0, b, n); }, true);
  for_each_case<F, F>([](F* o, const F* a, const F*, int64_t n) { kg::unary(kernels::UnaryOp::neg, o, a, n); },
                      [](F* o, const F* a, const F*, int64_t n) { kc::unary(kernels::UnaryOp::neg, o, a, n); });
  // affine may fuse into one FMA on the GPU, and expf and logf are within 2 ulp of the CPU's:
  // these are held to the same bits packed and unpacked here, to the CPU by test_ops_gpu (1e-6).
  for_each_case<F, F>([](F* o, const F* a, const F*, int64_t n) { kg::affine(o, a, n, 0.75, -1.5); }, nullptr);
  for_each_case<F, F>([](F* o, const F* a, const F*, int64_t n) { kg::unary(kernels::UnaryOp::exp, o, a, n); },
                      nullptr);
  for_each_case<F, F>([](F* o, const F*, const F* b, int64_t n) { kg::unary(kernels::UnaryOp::log, o, b, n); },
                      nullptr, true);
}

#else
TEST_CASE("map kernels: skipped (built without CUDA)") {}
#endif
