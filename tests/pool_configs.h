// The pooling geometries the pooling tests run on, shared by the float32, bf16 and
// channels_last test files (CPU: tests/layers/, GPU: tests/gpu/) so that each variant of a
// kernel is held to the same cases.
#pragma once

#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace leuko::test {

struct PoolConfig {
  std::string name;
  Shape x;  // (N, C, H, W)
  int64_t k, s, p;
  bool ceil;
};

// The networks' poolings (AlexNet, ResNet, GoogLeNet, VGG) and odd shapes, small enough for the
// CPU tests that run every dtype and memory order.
inline const std::vector<PoolConfig> kSmallPools = {
    {"3/2 (AlexNet)", {2, 3, 13, 13}, 3, 2, 0, false},
    {"3/2 padding 1 (ResNet)", {2, 4, 11, 9}, 3, 2, 1, false},
    {"3/2 ceil_mode (GoogLeNet)", {1, 5, 9, 10}, 3, 2, 0, true},
    {"3/1 padding 1 ceil_mode (GoogLeNet branch)", {2, 3, 7, 8}, 3, 1, 1, true},
    {"2/2 (VGG), odd", {3, 2, 8, 7}, 2, 2, 0, false},
    {"4/3 padding 2 ceil_mode", {1, 3, 14, 19}, 4, 3, 2, true},
};

// The GPU tests' cases: the networks' poolings at larger, odd sizes, odd channel counts (in
// channels_last a warp spans several pixels), a last window that ceil_mode drops, and one large,
// ResNet-like input that spreads over many blocks.
inline const std::vector<PoolConfig> kGpuPools = {
    {"3/2 ceil_mode (GoogLeNet)", {2, 5, 17, 15}, 3, 2, 0, true},
    {"3/1 padding 1 ceil_mode (GoogLeNet branch)", {3, 7, 13, 11}, 3, 1, 1, true},
    {"3/2 (AlexNet), 55x55", {2, 16, 55, 55}, 3, 2, 0, false},
    {"3/2 padding 1 (ResNet), 57x49", {2, 9, 57, 49}, 3, 2, 1, false},
    {"2/2 (VGG), odd 29x31, 33 channels", {3, 33, 29, 31}, 2, 2, 0, false},
    {"5/3 (Inception-v3 aux), 17x17", {2, 11, 17, 17}, 5, 3, 0, false},
    {"2/2 padding 1 ceil_mode, last window dropped, 1 channel", {1, 1, 5, 9}, 2, 2, 1, true},
    {"4/3 padding 2 ceil_mode", {2, 3, 14, 19}, 4, 3, 2, true},
    {"large: 3/2 padding 1 on (8, 64, 56, 56)", {8, 64, 56, 56}, 3, 2, 1, false},
};

struct AdaptiveConfig {
  Shape x;  // (N, C, H, W)
  int64_t oh, ow;
};

// Global pooling (ResNet, GoogLeNet), AlexNet's 6x6 from larger and smaller planes (windows that
// overlap, or repeat one pixel), and uneven splits.
inline const std::vector<AdaptiveConfig> kSmallAdaptive = {
    {{2, 3, 7, 7}, 1, 1}, {{2, 3, 13, 13}, 6, 6}, {{1, 4, 5, 5}, 6, 6}, {{2, 3, 9, 11}, 4, 5}};

inline const std::vector<AdaptiveConfig> kGpuAdaptive = {
    {{2, 7, 13, 13}, 6, 6}, {{3, 5, 5, 5}, 6, 6},   {{4, 33, 7, 7}, 1, 1}, {{2, 3, 9, 11}, 4, 5},
    {{2, 4, 3, 17}, 7, 2},  {{8, 512, 7, 7}, 1, 1}, {{2, 16, 6, 6}, 6, 6}, {{1, 3, 31, 29}, 4, 4}};

}  // namespace leuko::test
