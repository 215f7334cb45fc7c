// Transforms (data/transforms.h): crops, flips, quarter turns, normalisation, channel statistics
// and whole pipelines, each against a direct (slow, obvious) computation.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <set>
#include <tuple>

#include "data/transforms.h"
#include "data_helpers.h"
#include "kernels/normalize.h"

using namespace leuko;
using namespace leuko::test;
using data::Box;
using data::Image;
using data::TransformSpec;

namespace {

bool same_box(const Box& a, const Box& b) {
  return a.top == b.top && a.left == b.left && a.height == b.height && a.width == b.width;
}

// The normalised float (3, H, W) of an image, straight from the formula, in double.
std::vector<float> normalized(const Image& img, const data::Channels& mean = data::kImageNetMean,
                              const data::Channels& std = data::kImageNetStd) {
  std::vector<float> out(size_t(3 * img.height * img.width));
  for (int c = 0; c < 3; c++) {
    for (int y = 0; y < img.height; y++) {
      for (int x = 0; x < img.width; x++) {
        out[size_t((c * img.height + y) * img.width + x)] = float((img.at(y, x)[c] / 255.0 - mean[size_t(c)]) / std[size_t(c)]);
      }
    }
  }
  return out;
}

// Largest difference; float32 LUT vs double formula agree to a few ulps of values ~2.
double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); i++) m = std::max(m, std::fabs(double(a[i]) - double(b[i])));
  return m;
}

std::vector<float> run(const TransformSpec& spec, const Image& img, uint64_t seed) {
  std::vector<float> out(size_t(3 * spec.size * spec.size), NAN);
  Generator g(seed);
  data::apply_transform(spec, img, g, out.data());
  return out;
}

}  // namespace

TEST_CASE("transforms: center crop as torchvision (halves rounded to even)") {
  CHECK(same_box(data::center_crop_box(10, 10, 5, 5), Box{2, 2, 5, 5}));   // round(2.5) = 2
  CHECK(same_box(data::center_crop_box(11, 11, 4, 4), Box{4, 4, 4, 4}));   // round(3.5) = 4
  CHECK(same_box(data::center_crop_box(256, 256, 224, 224), Box{16, 16, 224, 224}));
  CHECK(same_box(data::center_crop_box(9, 20, 9, 7), Box{0, 6, 9, 7}));    // round(6.5) = 6
  const Image p = pattern_image(9, 12);
  const Image c = data::center_crop(p, 4, 5);
  const Box b = data::center_crop_box(9, 12, 4, 5);
  for (int y = 0; y < 4; y++) {
    for (int x = 0; x < 5; x++) CHECK(std::memcmp(c.at(y, x), p.at(b.top + y, b.left + x), 3) == 0);
  }
  check_error([&] { data::center_crop(p, 10, 5); }, {"center_crop", "does not fit", "9x12"});
}

TEST_CASE("transforms: flips and quarter turns, as numpy") {
  // [[a b c], [d e f]] with a..f distinct.
  Image m(2, 3);
  for (int i = 0; i < 6; i++) m.pixels[size_t(3 * i)] = uint8_t(i + 1), m.pixels[size_t(3 * i + 1)] = uint8_t(10 * i);
  auto red = [](const Image& img) {
    std::vector<int> v;
    for (size_t i = 0; i < img.pixels.size(); i += 3) v.push_back(img.pixels[i]);
    return v;
  };
  CHECK(red(data::hflip(m)) == std::vector<int>{3, 2, 1, 6, 5, 4});
  CHECK(red(data::vflip(m)) == std::vector<int>{4, 5, 6, 1, 2, 3});
  const Image r1 = data::rot90(m, 1);  // numpy.rot90: [[c f], [b e], [a d]]
  CHECK(r1.height == 3);
  CHECK(r1.width == 2);
  CHECK(red(r1) == std::vector<int>{3, 6, 2, 5, 1, 4});
  CHECK(red(data::rot90(m, 2)) == std::vector<int>{6, 5, 4, 3, 2, 1});
  CHECK(red(data::rot90(m, 3)) == std::vector<int>{4, 1, 5, 2, 6, 3});  // [[d a], [e b], [f c]]
  CHECK(data::rot90(m, -1) == data::rot90(m, 3));
  CHECK(data::rot90(m, 4) == m);
  CHECK(data::rot90(data::rot90(m, 1), 1) == data::rot90(m, 2));
  CHECK(data::hflip(data::hflip(m)) == m);
  CHECK(data::hflip(m).pixels[1] == 20);  // all three channels move together
}

TEST_CASE("transforms: random resized crop boxes, as torchvision's get_params") {
  Generator g(3);
  double area_sum = 0;
  const int draws = 4000;
  for (int i = 0; i < draws; i++) {
    const Box b = data::random_resized_crop_box(224, 224, g);
    REQUIRE(b.top >= 0);
    REQUIRE(b.left >= 0);
    REQUIRE(b.top + b.height <= 224);
    REQUIRE(b.left + b.width <= 224);
    const double area = double(b.height) * b.width / (224.0 * 224.0), ratio = double(b.width) / b.height;
    // Rounding the sides to whole pixels moves the area and the ratio a little.
    REQUIRE(area >= 0.08 * 0.97);
    REQUIRE(area <= 1.0);
    REQUIRE(ratio >= 0.75 * 0.97);
    REQUIRE(ratio <= 4.0 / 3.0 * 1.03);
    area_sum += area;
  }
  // Area fractions are uniform on [0.08, 1] except for the rejected draws (wide crops near
  // scale 1 do not fit): the mean is a little below 0.54, far above 0.08 and below 1.
  const double mean_area = area_sum / draws;
  CHECK(mean_area > 0.45);
  CHECK(mean_area < 0.55);
  // Every offset is possible: small crops land all over the image.
  Generator g2(9);
  int min_top = 224, max_top = 0;
  for (int i = 0; i < 2000; i++) {
    const Box b = data::random_resized_crop_box(224, 224, g2, 0.08, 0.1);
    min_top = std::min(min_top, b.top);
    max_top = std::max(max_top, b.top + b.height);
  }
  CHECK(min_top <= 2);
  CHECK(max_top >= 222);
  // The fallback after 10 failed tries: a very wide image gets a centred crop of ratio 4/3.
  Generator g3(1);
  CHECK(same_box(data::random_resized_crop_box(10, 1000, g3, 0.9, 1.0), Box{0, 493, 10, 13}));
  // A ratio no crop of a square can have: the whole width, height = width / 2, centred.
  CHECK(same_box(data::random_resized_crop_box(100, 100, g3, 1.0, 1.0, 2.0, 3.0), Box{25, 0, 50, 100}));
  check_error([&] { data::random_resized_crop_box(10, 10, g3, 0.5, 0.2); }, {"scale"});
  check_error([&] { data::random_resized_crop_box(10, 10, g3, 0.1, 1.0, 2.0, 1.0); }, {"ratio"});
}

TEST_CASE("transforms: normalisation to float CHW") {
  const Image p = pattern_image(5, 7, 11);
  std::vector<float> out(3 * 5 * 7);
  data::normalize_to_chw(p, data::kImageNetMean, data::kImageNetStd, out.data());
  CHECK(max_diff(out, normalized(p)) < 1e-6);
  // Channel c of pixel (y, x) sits at [c][y][x].
  CHECK(out[size_t((2 * 5 + 3) * 7 + 4)] == doctest::Approx((p.at(3, 4)[2] / 255.0 - 0.406) / 0.225).epsilon(1e-6));
  const data::Channels mean{0.5f, 0.25f, 0}, std{0.5f, 2, 1};
  data::normalize_to_chw(p, mean, std, out.data());
  CHECK(max_diff(out, normalized(p, mean, std)) < 1e-6);
  check_error([&] { data::normalize_to_chw(p, mean, data::Channels{1, 0, 1}, out.data()); }, {"std", "not positive"});
}

TEST_CASE("transforms: channel statistics over a dataset") {
  // Two 1x2 images: red values {0, 255, 51, 102}, green all 255, blue {0, 0, 0, 255}.
  Image a(1, 2), b(1, 2);
  a.pixels = {0, 255, 0, 255, 255, 0};
  b.pixels = {51, 255, 0, 102, 255, 255};
  const data::Dataset d = data::Dataset::from_images({a, b}, {0, 1}, {"x", "y"});
  for (int threads : {1, 2}) {
    const data::ChannelStats s = data::channel_stats(d, threads);
    auto stats = [](std::vector<double> v) {
      double m = 0, q = 0;
      for (double x : v) m += x / 255.0 / double(v.size());
      for (double x : v) q += (x / 255.0 - m) * (x / 255.0 - m) / double(v.size());
      return std::pair{m, std::sqrt(q)};
    };
    const auto [rm, rs] = stats({0, 255, 51, 102});
    const auto [bm, bs] = stats({0, 0, 0, 255});
    CHECK(s.mean[0] == doctest::Approx(rm).epsilon(1e-6));
    CHECK(s.std[0] == doctest::Approx(rs).epsilon(1e-6));
    CHECK(s.mean[1] == doctest::Approx(1.0).epsilon(1e-6));
    CHECK(s.std[1] == doctest::Approx(0.0));
    CHECK(s.mean[2] == doctest::Approx(bm).epsilon(1e-6));
    CHECK(s.std[2] == doctest::Approx(bs).epsilon(1e-6));
  }
}

TEST_CASE("transforms: the evaluation pipeline is resize, center crop, normalise") {
  const Image p = pattern_image(9, 9, 2);
  // Already the output size: normalisation only.
  CHECK(max_diff(run(TransformSpec::eval(9), p, 0), normalized(p)) < 1e-6);
  // Another size: resize.
  CHECK(max_diff(run(TransformSpec::eval(6), p, 0), normalized(data::resize(p, 6, 6))) < 1e-6);
  // Resize then center crop (ImageNet style: 256 then 224, here 8 then 5).
  TransformSpec s = TransformSpec::eval(5);
  s.resize = 8;
  CHECK(max_diff(run(s, p, 0), normalized(data::center_crop(data::resize(p, 8, 8), 5, 5))) < 1e-6);
  // A non-square image resized to a square.
  const Image wide = pattern_image(6, 11, 1);
  CHECK(max_diff(run(TransformSpec::eval(7), wide, 0), normalized(data::resize(wide, 7, 7))) < 1e-6);
  CHECK_FALSE(TransformSpec::eval().random());
  CHECK(TransformSpec::eval().describe() == "Resize(224x224), Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))");
  s.resize = 4;
  std::vector<float> out(3 * 25);
  Generator g(0);
  check_error([&] { data::apply_transform(s, p, g, out.data()); }, {"center_crop", "does not fit"});
}

TEST_CASE("transforms: flips and quarter turns folded into normalisation equal the slow composition") {
  // Draws in the documented order: hflip, vflip, quarter turns (crop off), for many seeds: all
  // eight symmetries of the square appear and each equals rot90(vflip(hflip(img)), k).
  const Image p = pattern_image(7, 7, 5);
  TransformSpec s = TransformSpec::eval(7);
  s.hflip = s.vflip = s.rotate90 = true;
  std::set<std::tuple<bool, bool, int>> seen;
  for (uint64_t seed = 0; seed < 64; seed++) {
    Generator g(seed);
    const bool h = g.below(2) == 1, v = g.below(2) == 1;
    const int k = int(g.below(4));
    seen.insert({h, v, k});
    Image expect = p;
    if (h) expect = data::hflip(expect);
    if (v) expect = data::vflip(expect);
    expect = data::rot90(expect, k);
    CAPTURE(seed);
    CHECK(max_diff(run(s, p, seed), normalized(expect)) < 1e-6);
  }
  CHECK(seen.size() == 16);
  // Only hflip on: the image or its mirror, nothing else.
  TransformSpec only = TransformSpec::eval(7);
  only.hflip = true;
  int mirrored = 0;
  for (uint64_t seed = 0; seed < 40; seed++) {
    const std::vector<float> out = run(only, p, seed);
    const bool is_plain = max_diff(out, normalized(p)) < 1e-6, is_mirror = max_diff(out, normalized(data::hflip(p))) < 1e-6;
    CHECK(is_plain != is_mirror);
    mirrored += is_mirror;
  }
  CHECK(mirrored > 5);
  CHECK(mirrored < 35);
}

TEST_CASE("transforms: the training pipeline's crop equals crop-then-resize with the same draws") {
  const Image p = pattern_image(40, 30, 7);
  TransformSpec s = TransformSpec::train(16);
  s.hflip = s.vflip = s.rotate90 = false;
  for (uint64_t seed = 0; seed < 20; seed++) {
    Generator g(seed);
    const Box b = data::random_resized_crop_box(40, 30, g);
    CAPTURE(seed);
    CHECK(max_diff(run(s, p, seed), normalized(data::resize_region(p, b, 16, 16))) < 1e-6);
  }
  // With everything on, the output is finite and the same for the same seed.
  const TransformSpec t = TransformSpec::train(16);
  CHECK(t.random());
  const std::vector<float> a = run(t, p, 5), b = run(t, p, 5);
  CHECK(a == b);
  for (float x : a) REQUIRE(std::isfinite(x));
  CHECK(t.describe().find("RandomResizedCrop(16, scale=(0.08, 1), ratio=(0.75, 1.33333))") == 0);
}

TEST_CASE("transforms: the uint8 pipeline, normalised by the batch kernel, gives the float pipeline's bits") {
  // What the GPU loader does (uint8 samples, then kernels/normalize.h on the device), with the
  // CPU reference of the kernel: equal to the float pipeline bit for bit, for every draw.
  const Image p = pattern_image(40, 30, 7);
  TransformSpec s = TransformSpec::train(16);
  s.mean = {0.5f, 0.25f, 0.75f};  // not ImageNet's: the table must follow the spec
  s.std = {0.2f, 0.3f, 0.1f};
  const data::NormalizationTable table = data::normalization_table(s.mean, s.std);
  const int64_t plane = 16 * 16, images = 3;
  std::vector<uint8_t> bytes(size_t(images * 3 * plane));  // (3 images, 3, 16, 16)
  std::vector<float> expect(bytes.size());
  for (uint64_t seed = 0; seed < 12; seed++) {
    for (int64_t n = 0; n < images; n++) {
      Generator g8(seed * 10 + uint64_t(n)), gf(seed * 10 + uint64_t(n));
      data::apply_transform(s, p, g8, bytes.data() + n * 3 * plane);
      data::apply_transform(s, p, gf, expect.data() + n * 3 * plane);
    }
    std::vector<float> out(bytes.size(), -99.0f);
    kernels::cpu::normalize_u8(out.data(), bytes.data(), table.data(), images, plane);
    CAPTURE(seed);
    CHECK(out == expect);
  }
  // The table is the formula in float32.
  CHECK(table[0] == (0.0f / 255.0f - 0.5f) / 0.2f);
  CHECK(table[256 + 255] == (255.0f / 255.0f - 0.25f) / 0.3f);
  CHECK(table[512 + 77] == (77.0f / 255.0f - 0.75f) / 0.1f);
  CHECK_THROWS_WITH_AS(data::normalization_table(s.mean, {0.2f, 0.0f, 0.1f}), doctest::Contains("std of channel 1"), Error);
}
