// Pooling: gradient checks, a naive float64 reference written from the definitions, PyTorch's
// values for every configuration the networks use, the error messages and the modules.
#include <array>
#include <cmath>
#include <limits>

#include "fixture.h"
#include "helpers.h"
#include "kernels/pool.h"
#include "layers/gradcheck/cases.h"
#include "layers/pool.h"

using namespace leuko;

namespace {

// The number of windows along an axis, counted one by one from their definition rather than
// with pool_output_size's closed form. Floor mode: every window lies inside the padded input.
// Ceil mode: windows are added while the previous one has not reached the padded end, as long
// as the new one starts inside the input or its left padding.
int64_t count_windows(int64_t in, int64_t k, int64_t s, int64_t p, bool ceil_mode) {
  int64_t n = 0;
  for (int64_t o = 0;; o++) {
    const int64_t start = o * s - p;  // in input coordinates
    const bool ok = ceil_mode ? (o == 0 || (o - 1) * s - p + k < in + p) && start < in : start + k <= in + p;
    if (!ok) return n;
    n++;
  }
}

enum class Kind { max, avg, avg_exclude_pad };

// Pooling by the definition: every window position, padding cells skipped (max) or counted in
// the divisor (avg with count_include_pad), the divisor counting cells inside [-p, in + p).
std::vector<double> naive_pool(const std::vector<double>& x, int64_t planes, int64_t H, int64_t W, int64_t k,
                               int64_t s, int64_t p, bool ceil_mode, Kind kind, int64_t* OH, int64_t* OW) {
  *OH = count_windows(H, k, s, p, ceil_mode);
  *OW = count_windows(W, k, s, p, ceil_mode);
  std::vector<double> out;
  for (int64_t pl = 0; pl < planes; pl++) {
    for (int64_t oh = 0; oh < *OH; oh++) {
      for (int64_t ow = 0; ow < *OW; ow++) {
        double best = -std::numeric_limits<double>::infinity(), sum = 0;
        int64_t real = 0, padded = 0;
        for (int64_t dh = 0; dh < k; dh++) {
          for (int64_t dw = 0; dw < k; dw++) {
            const int64_t h = oh * s - p + dh, w = ow * s - p + dw;
            if (h >= -p && h < H + p && w >= -p && w < W + p) padded++;
            if (h < 0 || h >= H || w < 0 || w >= W) continue;
            const double v = x[size_t((pl * H + h) * W + w)];
            best = std::max(best, v);
            sum += v;
            real++;
          }
        }
        out.push_back(kind == Kind::max ? best : sum / double(kind == Kind::avg ? padded : real));
      }
    }
  }
  return out;
}

// Adaptive pooling by the definition, in floating point: [floor(i H / o), ceil((i + 1) H / o)).
std::vector<double> naive_adaptive(const std::vector<double>& x, int64_t planes, int64_t H, int64_t W, int64_t OH,
                                   int64_t OW) {
  std::vector<double> out;
  for (int64_t pl = 0; pl < planes; pl++) {
    for (int64_t oh = 0; oh < OH; oh++) {
      const auto h0 = int64_t(std::floor(double(oh) * double(H) / double(OH)));
      const auto h1 = int64_t(std::ceil(double(oh + 1) * double(H) / double(OH)));
      for (int64_t ow = 0; ow < OW; ow++) {
        const auto w0 = int64_t(std::floor(double(ow) * double(W) / double(OW)));
        const auto w1 = int64_t(std::ceil(double(ow + 1) * double(W) / double(OW)));
        double sum = 0;
        for (int64_t h = h0; h < h1; h++)
          for (int64_t w = w0; w < w1; w++) sum += x[size_t((pl * H + h) * W + w)];
        out.push_back(sum / double((h1 - h0) * (w1 - w0)));
      }
    }
  }
  return out;
}

}  // namespace

TEST_CASE("pool: every gradient-check case passes") {
  for (const GradcheckCase& c : pool_cases()) {
    INFO(c.op << ": " << c.name);
    test::check_gradients(c.f, c.inputs, c.rtol);
  }
}

TEST_CASE("pool: output sizes of the networks' poolings (torchvision's feature map sizes)") {
  CHECK(pool_output_size(55, 3, 2, 0, false) == 27);   // AlexNet
  CHECK(pool_output_size(13, 3, 2, 0, false) == 6);    // AlexNet
  CHECK(pool_output_size(224, 2, 2, 0, false) == 112); // VGG
  CHECK(pool_output_size(112, 3, 2, 1, false) == 56);  // ResNet
  CHECK(pool_output_size(112, 3, 2, 0, true) == 56);   // GoogLeNet maxpool1
  CHECK(pool_output_size(28, 3, 2, 0, true) == 14);    // GoogLeNet maxpool3
  CHECK(pool_output_size(14, 2, 2, 0, true) == 7);     // GoogLeNet maxpool4
  CHECK(pool_output_size(147, 3, 2, 0, false) == 73);  // Inception-v3
  CHECK(pool_output_size(17, 5, 3, 0, false) == 5);    // Inception-v3 aux
  // ceil_mode: 6 would be the ceil, but the 4th window would start in the right padding.
  CHECK(pool_output_size(5, 2, 2, 1, true) == 3);
  CHECK(pool_output_size(8, 3, 2, 0, true) == 4);  // ceil adds a window floor (3) does not have
  // Against the window-by-window count, over many sizes.
  for (int64_t in = 1; in <= 20; in++)
    for (int64_t k = 1; k <= 5; k++)
      for (int64_t s = 1; s <= 4; s++)
        for (int64_t p = 0; p <= k / 2; p++)
          for (bool ceil : {false, true}) {
            if (in + 2 * p < k) continue;
            INFO("in " << in << " k " << k << " s " << s << " p " << p << " ceil " << ceil);
            CHECK(pool_output_size(in, k, s, p, ceil) == count_windows(in, k, s, p, ceil));
          }
}

TEST_CASE("pool: forward against the naive float64 reference") {
  struct Cfg {
    Shape shape;
    int64_t k, s, p;
    bool ceil;
  };
  const std::vector<Cfg> cfgs = {{{2, 3, 9, 9}, 3, 2, 0, true}, {{1, 2, 8, 7}, 3, 2, 1, false},
                                 {{2, 2, 7, 6}, 2, 2, 0, false}, {{1, 3, 6, 5}, 3, 1, 1, true},
                                 {{1, 2, 11, 10}, 5, 3, 2, true}, {{1, 1, 5, 5}, 2, 2, 1, true},
                                 {{2, 1, 4, 7}, 4, 3, 2, true}};
  uint64_t seed = 1;
  for (const Cfg& c : cfgs) {
    INFO("input " << shape_str(c.shape) << " kernel " << c.k << " stride " << c.s << " padding " << c.p
                  << " ceil_mode " << c.ceil);
    Tensor x = test::randn_t(c.shape, seed++);
    const std::vector<double> xv = x.to_double_vector();
    const int64_t planes = c.shape[0] * c.shape[1], H = c.shape[2], W = c.shape[3];
    int64_t OH, OW;
    for (Kind kind : {Kind::max, Kind::avg, Kind::avg_exclude_pad}) {
      const std::vector<double> ref = naive_pool(xv, planes, H, W, c.k, c.s, c.p, c.ceil, kind, &OH, &OW);
      Tensor y = kind == Kind::max ? max_pool2d(x, c.k, c.s, c.p, c.ceil)
                                   : avg_pool2d(x, c.k, c.s, c.p, c.ceil, kind == Kind::avg);
      REQUIRE(y.shape() == Shape{c.shape[0], c.shape[1], OH, OW});
      // Same float64 sums in a possibly different order: agreement to rounding, 1e-14.
      CHECK(test::rel_error(y, Tensor::from_vector(ref, y.shape())) < 1e-14);
    }
  }
  for (auto [H, W, OH, OW] : std::vector<std::array<int64_t, 4>>{{13, 13, 6, 6}, {5, 5, 6, 6}, {7, 7, 1, 1},
                                                                  {9, 5, 4, 3}, {3, 8, 5, 8}, {6, 6, 6, 6}}) {
    INFO("adaptive " << H << "x" << W << " to " << OH << "x" << OW);
    Tensor x = test::randn_t({2, 2, H, W}, seed++);
    Tensor y = adaptive_avg_pool2d(x, OH, OW);
    const std::vector<double> ref = naive_adaptive(x.to_double_vector(), 4, H, W, OH, OW);
    CHECK(test::rel_error(y, Tensor::from_vector(ref, y.shape())) < 1e-14);  // rounding only
  }
  // adaptive pooling to the input's own size is the identity.
  Tensor x = test::randn_t({1, 2, 6, 6}, seed++);
  CHECK(test::max_abs_diff(adaptive_avg_pool2d(x, 6, 6), x) == 0.0);
}

TEST_CASE("pool: PyTorch fixtures, forward and backward") {
  const char* max_names[] = {"pool_max_googlenet", "pool_max_googlenet_branch", "pool_max_alexnet", "pool_max_resnet",
                             "pool_max_vgg",        "pool_max_dropped_window",   "pool_max_ties"};
  for (const char* name : max_names) {
    INFO("fixture " << std::string(name));
    test::Fixture f = test::load_fixture(name);
    Tensor x = f.get("input").set_requires_grad();
    auto [y, idx] = max_pool2d_with_indices(x, f.meta_int("kernel"), f.meta_int("stride"), f.meta_int("padding"),
                                            f.meta_int("ceil_mode") != 0);
    // A max selects one of the inputs: exactly equal values and indices (the first maximum
    // wins ties, as PyTorch's: pool_max_ties is mostly ties).
    CHECK(test::max_abs_diff(y, f.get("out")) == 0.0);
    CHECK(idx.to_double_vector() == f.get("indices").to_double_vector());
    y.backward(f.get("grad_out"));
    // Sums of at most a few float64 gradients: 1e-14 relative.
    CHECK(test::rel_error(x.grad(), f.get("grad_input")) < 1e-14);
    MaxPool2d m(f.meta_int("kernel"), f.meta_int("stride"), f.meta_int("padding"), f.meta_int("ceil_mode") != 0);
    CHECK(m.repr() == f.meta("repr"));
  }
  const char* avg_names[] = {"pool_avg_inception_aux", "pool_avg_inception_branch", "pool_avg_ceil_pad",
                             "pool_avg_ceil_pad_exclude", "pool_avg_ceil_nopad"};
  for (const char* name : avg_names) {
    INFO("fixture " << std::string(name));
    test::Fixture f = test::load_fixture(name);
    Tensor x = f.get("input").set_requires_grad();
    AvgPool2d m(f.meta_int("kernel"), f.meta_int("stride"), f.meta_int("padding"), f.meta_int("ceil_mode") != 0,
                f.meta_int("count_include_pad") != 0);
    Tensor y = m(x);
    CHECK(test::rel_error(y, f.get("out")) < 1e-13);  // float64 vs float64: rounding only
    y.backward(f.get("grad_out"));
    CHECK(test::rel_error(x.grad(), f.get("grad_input")) < 1e-13);
    CHECK(m.repr() == f.meta("repr"));
  }
  const char* adaptive_names[] = {"pool_adaptive_13_to_6", "pool_adaptive_13_to_1", "pool_adaptive_5_to_6",
                                  "pool_adaptive_5_to_1", "pool_adaptive_7x5_to_3x2"};
  for (const char* name : adaptive_names) {
    INFO("fixture " << std::string(name));
    test::Fixture f = test::load_fixture(name);
    Tensor x = f.get("input").set_requires_grad();
    AdaptiveAvgPool2d m(f.meta_int("out_h"), f.meta_int("out_w"));
    Tensor y = m(x);
    CHECK(test::rel_error(y, f.get("out")) < 1e-13);  // float64 vs float64: rounding only
    y.backward(f.get("grad_out"));
    CHECK(test::rel_error(x.grad(), f.get("grad_input")) < 1e-13);
    CHECK(m.repr() == f.meta("repr"));
    if (f.file.metadata.count("repr_int")) {  // square outputs: also the module built from one int
      CHECK(AdaptiveAvgPool2d(f.meta_int("out_h")).repr() == f.meta("repr_int"));
    }
  }
}

TEST_CASE("pool: the window ranges the CUDA backward gathers over are exact") {
  // The GPU backward visits, for input i, only the outputs windows_containing (or
  // adaptive_windows_containing) returns. It must be exactly the outputs whose window holds i:
  // checked here on the host against every window, since these functions are shared.
  for (int64_t in = 1; in <= 16; in++) {
    for (int64_t k = 1; k <= 5; k++)
      for (int64_t s = 1; s <= 4; s++)
        for (int64_t p = 0; p <= k / 2; p++)
          for (bool ceil : {false, true}) {
            if (in + 2 * p < k) continue;
            const int64_t out = pool_output_size(in, k, s, p, ceil);
            for (int64_t i = 0; i < in; i++) {
              int64_t first, last;
              kernels::windows_containing(i, out, k, s, p, &first, &last);
              for (int64_t o = 0; o < out; o++) {
                const bool holds = o * s - p <= i && i < o * s - p + k;
                INFO("in " << in << " k " << k << " s " << s << " p " << p << " ceil " << ceil << " i " << i
                           << " o " << o);
                CHECK(holds == (o >= first && o < last));
              }
            }
          }
    for (int64_t out = 1; out <= 16; out++) {
      for (int64_t i = 0; i < in; i++) {
        int64_t first, last;
        kernels::adaptive_windows_containing(i, in, out, &first, &last);
        for (int64_t o = 0; o < out; o++) {
          const bool holds = kernels::adaptive_start(o, in, out) <= i && i < kernels::adaptive_end(o, in, out);
          INFO("adaptive in " << in << " out " << out << " i " << i << " o " << o);
          CHECK(holds == (o >= first && o < last));
        }
      }
    }
  }
}

TEST_CASE("pool: float32 on the CPU agrees with float64") {
  Tensor x = test::randn_t({2, 3, 9, 8}, 77);
  Tensor x32 = x.to(DType::f32);
  CHECK(test::max_abs_diff(max_pool2d(x32, 3, 2, 1), max_pool2d(x, 3, 2, 1).to(DType::f32)) == 0.0);  // a max is exact
  CHECK(test::rel_error(avg_pool2d(x32, 3, 2, 1, true), avg_pool2d(x, 3, 2, 1, true)) < 1e-6);  // float32 rounding
  CHECK(test::rel_error(adaptive_avg_pool2d(x32, 4, 3), adaptive_avg_pool2d(x, 4, 3)) < 1e-6);
}

TEST_CASE("pool: overlapping windows sharing a maximum add their gradients") {
  // 1x1x3x3 with its maximum in the centre: every 2x2 window (stride 1) picks the centre.
  Tensor x = Tensor::from_vector(std::vector<double>{0, 1, 0, 1, 5, 1, 0, 1, 0}, {1, 1, 3, 3}).set_requires_grad();
  Tensor y = max_pool2d(x, 2, 1);
  y.backward(Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {1, 1, 2, 2}));
  CHECK(x.grad().to_double_vector() == std::vector<double>{0, 0, 0, 0, 10, 0, 0, 0, 0});
}

TEST_CASE("pool: errors name the op and the problem") {
  Tensor x = test::randn_t({1, 2, 6, 6}, 5);
  CHECK_THROWS_WITH_AS(max_pool2d(x, 3, 2, 2), doctest::Contains("max_pool2d: padding 2 must be at most half"), Error);
  CHECK_THROWS_WITH_AS(avg_pool2d(x, 2, 2, 2), doctest::Contains("avg_pool2d: padding 2 must be at most half"), Error);
  CHECK_THROWS_WITH_AS(max_pool2d(test::randn_t({2, 6, 6}, 6), 2, 2),
                       doctest::Contains("max_pool2d: input must have 4 dimensions, got [2, 6, 6]"), Error);
  CHECK_THROWS_WITH_AS(max_pool2d(x, 7, 1), doctest::Contains("is too small for kernel 7"), Error);
  CHECK_THROWS_WITH_AS(max_pool2d(x, 2, 0), doctest::Contains("must be >= 1"), Error);
  CHECK_THROWS_WITH_AS(adaptive_avg_pool2d(x, 0, 3), doctest::Contains("adaptive_avg_pool2d: output size 0x3"),
                       Error);
  CHECK_THROWS_WITH_AS(max_pool2d(Tensor::zeros({1, 1, 4, 4}, DType::i64), 2, 2),
                       doctest::Contains("max_pool2d: int64 is a storage type"), Error);
}

TEST_CASE("pool: modules") {
  MaxPool2d vgg(2);  // stride defaults to the kernel size
  CHECK(vgg.stride == 2);
  CHECK(vgg.repr() == "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)");
  CHECK(vgg.parameters().empty());
  CHECK(vgg.state_dict().empty());
  Tensor x = test::randn_t({2, 3, 8, 8}, 9);
  CHECK(vgg(x).shape() == Shape{2, 3, 4, 4});
  CHECK(test::max_abs_diff(vgg(x), max_pool2d(x, 2, 2)) == 0.0);
  AvgPool2d avg(3, 1, 1);
  CHECK(test::max_abs_diff(avg(x), avg_pool2d(x, 3, 1, 1)) == 0.0);
  AdaptiveAvgPool2d gap(1);
  CHECK(gap(x).shape() == Shape{2, 3, 1, 1});
  // Global average pooling is the mean over H and W.
  CHECK(test::rel_error(gap(x).reshape({2, 3}), mean(x, {2, 3})) < 1e-14);
  // Pooling has no train/eval difference.
  Tensor y_train = gap(x);
  gap.eval();
  CHECK(test::max_abs_diff(gap(x), y_train) == 0.0);
}
