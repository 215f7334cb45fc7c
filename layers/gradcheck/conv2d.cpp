#include "layers/conv2d.h"

#include "layers/gradcheck/cases.h"
#include "layers/gradcheck/inputs.h"

namespace leuko {

namespace {
// One case: x (N, C, H, W), weight (K, C / groups, R, S), bias (K,) unless !with_bias.
struct ConvCase {
  std::string name;
  Shape x, w;
  Conv2dOptions opt;
  bool with_bias = true;
  bool x_grad = true;  // false: the input is data (a first layer), only weight and bias are checked
};
}  // namespace

std::vector<GradcheckCase> conv2d_cases() {
  using V = const std::vector<Tensor>&;
  // conv2d is linear in each input, so central differences are exact up to rounding; the
  // shapes are kept small because the check runs two forwards per input element.
  const std::vector<ConvCase> configs = {
      {"3x3, batch 2", {2, 3, 5, 5}, {4, 3, 3, 3}, {}},
      {"stride 2, padding 1", {1, 2, 7, 6}, {3, 2, 3, 3}, {2, 1}},
      {"padding 2, 2x3 kernel, batch 3", {3, 2, 4, 5}, {2, 2, 2, 3}, {1, 2}},
      {"dilation 2, padding 2", {1, 2, 7, 7}, {2, 2, 3, 3}, {1, 2, 2}},
      {"groups 2, stride (2, 1), padding (1, 0)", {2, 4, 5, 4}, {6, 2, 3, 3}, {{2, 1}, {1, 0}, 1, 2}},
      {"depthwise (groups = channels)", {1, 3, 5, 5}, {3, 1, 3, 3}, {1, 1, 1, 3}},
      {"1x1, no bias, batch 3", {3, 3, 4, 4}, {5, 3, 1, 1}, {}, false},
      {"1x1, stride 2", {2, 3, 5, 5}, {2, 3, 1, 1}, {2}},
      {"stride 3 past a 2x2 kernel (rows skipped)", {1, 2, 8, 7}, {2, 2, 2, 2}, {3}},
      {"non-square input, (3, 1) kernel, dilation (1, 2), padding (0, 3)", {2, 2, 6, 3}, {3, 2, 3, 1},
       {1, {0, 3}, {1, 2}}},
      {"11x11 stride 4 padding 2 (AlexNet-like)", {1, 3, 19, 19}, {2, 3, 11, 11}, {4, 2}},
      {"input without grad (first layer)", {2, 3, 6, 5}, {4, 3, 3, 3}, {2, 1}, true, false},
  };
  std::vector<GradcheckCase> c;
  uint64_t seed = 500;
  for (const ConvCase& k : configs) {
    const Conv2dOptions opt = k.opt;
    Tensor x = k.x_grad ? gc::param(k.x, seed++) : gc::constant(k.x, seed++);
    std::vector<Tensor> inputs = {x, gc::param(k.w, seed++)};
    if (k.with_bias) {
      inputs.push_back(gc::param({k.w[0]}, seed++));
      c.push_back({"conv2d", k.name, [opt](V in) { return conv2d(in[0], in[1], in[2], opt); }, inputs});
    } else {
      c.push_back({"conv2d", k.name, [opt](V in) { return conv2d(in[0], in[1], Tensor(), opt); }, inputs});
    }
  }
  // The fused ReLU: random weights leave outputs near 0 rarely enough for a 1e-6 step (the
  // seeds are fixed: a case either passes every time or never).
  {
    const Conv2dOptions opt{1, 1};
    c.push_back({"conv2d_relu", "3x3 padding 1, batch 2, bias",
                 [opt](V in) { return conv2d_relu(in[0], in[1], in[2], opt); },
                 {gc::param({2, 3, 5, 4}, seed++), gc::param({4, 3, 3, 3}, seed++), gc::param({4}, seed++)}});
    c.push_back({"conv2d_relu", "1x1 stride 2, no bias", [](V in) { return conv2d_relu(in[0], in[1], Tensor(), {2}); },
                 {gc::param({2, 3, 5, 5}, seed++), gc::param({3, 3, 1, 1}, seed++)}});
  }
  return c;
}

}  // namespace leuko
