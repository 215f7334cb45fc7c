// Image decoding, encoding and resizing (data/image.h).
#include <doctest/doctest.h>

#include <cmath>

#include "data/image.h"
#include "data_helpers.h"
#include "fixture.h"

#if LEUKO_HAVE_STB
#include <stb_image_write.h>  // declarations only: the test writes gray and RGBA files itself
#endif

using namespace leuko;
using namespace leuko::test;
using data::Image;

#if LEUKO_HAVE_STB

namespace {

// Encodes `channels`-channel pixels as PNG with stb_image_write directly (an encoder leuko's own
// API does not offer: leuko only writes RGB).
std::vector<uint8_t> raw_png(const std::vector<uint8_t>& px, int h, int w, int channels) {
  std::vector<uint8_t> out;
  auto sink = [](void* ctx, void* data, int size) {
    auto* v = static_cast<std::vector<uint8_t>*>(ctx);
    v->insert(v->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  };
  REQUIRE(stbi_write_png_to_func(sink, &out, w, h, channels, px.data(), w * channels) != 0);
  return out;
}

std::vector<uint8_t> raw_jpeg(const std::vector<uint8_t>& px, int h, int w, int channels) {
  std::vector<uint8_t> out;
  auto sink = [](void* ctx, void* data, int size) {
    auto* v = static_cast<std::vector<uint8_t>*>(ctx);
    v->insert(v->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  };
  REQUIRE(stbi_write_jpg_to_func(sink, &out, w, h, channels, px.data(), 95) != 0);
  return out;
}

double mean_abs_diff(const Image& a, const Image& b) {
  REQUIRE(a.height == b.height);
  REQUIRE(a.width == b.width);
  double s = 0;
  for (size_t i = 0; i < a.pixels.size(); i++) s += std::abs(int(a.pixels[i]) - int(b.pixels[i]));
  return s / double(a.pixels.size());
}

// A smooth image (JPEG compresses it with little loss).
Image gradient_image(int h, int w) {
  Image img(h, w);
  for (int y = 0; y < h; y++) {
    for (int x = 0; x < w; x++) {
      uint8_t* p = img.at(y, x);
      p[0] = uint8_t(40 + 150 * x / w);
      p[1] = uint8_t(30 + 180 * y / h);
      p[2] = uint8_t(120);
    }
  }
  return img;
}

}  // namespace

TEST_CASE("image: PNG and BMP round trips are exact, JPEG is close, any size") {
  TempDir dir;
  for (auto [h, w] : {std::pair{1, 1}, std::pair{7, 13}, std::pair{31, 5}, std::pair{64, 64}}) {
    CAPTURE(h);
    CAPTURE(w);
    const Image img = pattern_image(h, w, h + w);
    data::write_image(dir / "a.png", img);
    CHECK(data::decode_image(dir / "a.png") == img);
    data::write_image(dir / "a.BMP", img);  // the extension's letter case does not matter
    CHECK(data::decode_image(dir / "a.BMP") == img);
  }
  const Image smooth = gradient_image(40, 56);
  data::write_image(dir / "a.jpg", smooth, 95);
  const Image back = data::decode_image(dir / "a.jpg");
  CHECK(back.height == 40);
  CHECK(back.width == 56);
  // Lossy: quality 95 on a smooth image stays within ~2 levels on average.
  CHECK(mean_abs_diff(back, smooth) < 2.0);
  data::write_image(dir / "b.jpeg", smooth, 95);
  CHECK(data::decode_image(dir / "b.jpeg") == back);  // the same encoder, the same bytes decoded
  CHECK(data::encode_png(smooth).size() > 8);
}

TEST_CASE("image: gray, gray+alpha and RGBA files decode to RGB") {
  TempDir dir;
  const int h = 5, w = 7;
  std::vector<uint8_t> gray(h * w), ga(h * w * 2), rgba(h * w * 4);
  for (int i = 0; i < h * w; i++) {
    gray[size_t(i)] = uint8_t(i * 7);
    ga[size_t(2 * i)] = uint8_t(i * 5);
    ga[size_t(2 * i + 1)] = uint8_t(255 - i);  // alpha: dropped
    for (int c = 0; c < 4; c++) rgba[size_t(4 * i + c)] = uint8_t(i * (c + 1) + c);
  }
  write_bytes(dir / "gray.png", raw_png(gray, h, w, 1));
  write_bytes(dir / "ga.png", raw_png(ga, h, w, 2));
  write_bytes(dir / "rgba.png", raw_png(rgba, h, w, 4));
  const Image g = data::decode_image(dir / "gray.png");
  const Image a = data::decode_image(dir / "ga.png");
  const Image r = data::decode_image(dir / "rgba.png");
  REQUIRE(g.pixels.size() == size_t(h * w * 3));
  REQUIRE(a.pixels.size() == size_t(h * w * 3));
  REQUIRE(r.pixels.size() == size_t(h * w * 3));
  for (int i = 0; i < h * w; i++) {
    for (int c = 0; c < 3; c++) {
      CHECK(g.pixels[size_t(3 * i + c)] == gray[size_t(i)]);
      CHECK(a.pixels[size_t(3 * i + c)] == ga[size_t(2 * i)]);
      CHECK(r.pixels[size_t(3 * i + c)] == rgba[size_t(4 * i + c)]);
    }
  }
  // A one-component (grayscale) JPEG.
  std::vector<uint8_t> smooth(16 * 16);
  for (int i = 0; i < 256; i++) smooth[size_t(i)] = uint8_t(60 + (i % 16) * 4);
  write_bytes(dir / "gray.jpg", raw_jpeg(smooth, 16, 16, 1));
  const Image gj = data::decode_image(dir / "gray.jpg");
  REQUIRE(gj.pixels.size() == 16 * 16 * 3);
  for (int i = 0; i < 256; i++) {
    CHECK(gj.pixels[size_t(3 * i)] == gj.pixels[size_t(3 * i + 1)]);
    CHECK(gj.pixels[size_t(3 * i)] == gj.pixels[size_t(3 * i + 2)]);
    CHECK(std::abs(int(gj.pixels[size_t(3 * i)]) - int(smooth[size_t(i)])) <= 3);
  }
}

TEST_CASE("image: missing, empty, non-image, truncated and corrupt files are errors naming the file") {
  TempDir dir;
  check_error([&] { data::decode_image(dir / "nope.jpg"); }, {dir / "nope.jpg", "cannot open"});
  write_bytes(dir / "empty.png", {});
  check_error([&] { data::decode_image(dir / "empty.png"); }, {dir / "empty.png", "empty file"});
  write_bytes(dir / "text.jpg", {'h', 'e', 'l', 'l', 'o', '\n'});
  check_error([&] { data::decode_image(dir / "text.jpg"); }, {dir / "text.jpg", "not a JPEG, PNG or BMP"});
  // A GIF header: stb could read it, but leuko's datasets are JPEG, PNG and BMP.
  write_bytes(dir / "x.png", {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0});
  check_error([&] { data::decode_image(dir / "x.png"); }, {dir / "x.png", "not a JPEG, PNG or BMP"});

  const Image img = gradient_image(48, 48);
  const std::vector<uint8_t> jpg = data::encode_jpeg(img, 90), png = data::encode_png(pattern_image(48, 48));
  std::vector<uint8_t> bmp;
  data::write_image(dir / "ok.bmp", img);
  bmp = read_bytes(dir / "ok.bmp");

  // Truncations: in the middle of the data, and just before the end marker.
  for (double keep : {0.5, 0.97}) {
    CAPTURE(keep);
    write_bytes(dir / "cut.jpg", std::vector<uint8_t>(jpg.begin(), jpg.begin() + long(jpg.size() * keep)));
    check_error([&] { data::decode_image(dir / "cut.jpg"); }, {dir / "cut.jpg", "truncated JPEG"});
    write_bytes(dir / "cut.png", std::vector<uint8_t>(png.begin(), png.begin() + long(png.size() * keep)));
    check_error([&] { data::decode_image(dir / "cut.png"); }, {dir / "cut.png", "PNG"});
    write_bytes(dir / "cut.bmp", std::vector<uint8_t>(bmp.begin(), bmp.begin() + long(bmp.size() * keep)));
    check_error([&] { data::decode_image(dir / "cut.bmp"); }, {dir / "cut.bmp", "truncated BMP"});
  }
  // Cut inside the headers.
  write_bytes(dir / "head.jpg", std::vector<uint8_t>(jpg.begin(), jpg.begin() + 40));
  check_error([&] { data::decode_image(dir / "head.jpg"); }, {dir / "head.jpg", "JPEG"});

  // Corrupt: a JPEG whose frame header says 0 lines (stb's reason is part of the message).
  std::vector<uint8_t> bad = jpg;
  for (size_t i = 2; i + 8 < bad.size(); i++) {
    if (bad[i] == 0xFF && bad[i + 1] == 0xC0) {  // SOF0: FF C0 len(2) precision(1) height(2) width(2)
      bad[i + 5] = 0;
      bad[i + 6] = 0;
      break;
    }
  }
  write_bytes(dir / "zero.jpg", bad);
  check_error([&] { data::decode_image(dir / "zero.jpg"); }, {dir / "zero.jpg", "corrupt JPEG", "stb_image"});
  // A PNG with a damaged compressed stream.
  std::vector<uint8_t> bad_png = png;
  for (size_t i = 8; i + 8 < bad_png.size(); i++) {
    if (std::memcmp(&bad_png[i], "IDAT", 4) == 0) {
      for (size_t k = i + 4; k < i + 40 && k < bad_png.size(); k++) bad_png[k] = 0xFF;
      break;
    }
  }
  write_bytes(dir / "bad.png", bad_png);
  check_error([&] { data::decode_image(dir / "bad.png"); }, {dir / "bad.png", "corrupt PNG", "stb_image"});
  // Scans that decode with tables no segment defined (stb_image_write defines Huffman and
  // quantization tables 0 and 1; stb_image would read table 2 from uninitialised memory).
  auto with_jpeg_byte = [&](uint8_t marker, size_t offset, uint8_t value) {  // offset from the marker's FF
    std::vector<uint8_t> out = jpg;
    for (size_t i = 2; i + offset < out.size(); i++) {
      if (out[i] == 0xFF && out[i + 1] == marker) {
        out[i + offset] = value;
        return out;
      }
    }
    FAIL("no marker FF ", int(marker));
    return out;
  };
  // SOS: FF DA, length (2), count (1), then (component id, DC << 4 | AC) per component.
  write_bytes(dir / "dc.jpg", with_jpeg_byte(0xDA, 6, 0x20));
  check_error([&] { data::decode_image(dir / "dc.jpg"); },
              {dir / "dc.jpg", "corrupt JPEG", "component 1 with DC Huffman table 2, which no DHT segment"});
  write_bytes(dir / "ac.jpg", with_jpeg_byte(0xDA, 8, 0x13));
  check_error([&] { data::decode_image(dir / "ac.jpg"); },
              {dir / "ac.jpg", "corrupt JPEG", "component 2 with AC Huffman table 3"});
  // SOF0: FF C0, length (2), precision, height (2), width (2), count, then (id, sampling, table).
  write_bytes(dir / "dqt.jpg", with_jpeg_byte(0xC0, 12, 2));
  check_error([&] { data::decode_image(dir / "dqt.jpg"); },
              {dir / "dqt.jpg", "corrupt JPEG", "component 1 uses quantization table 2, which no DQT segment"});
  // A scan naming a component the frame lacks: stb_image fails without a reason of its own (the
  // message once quoted its PNG probe's "bad png sig").
  write_bytes(dir / "id.jpg", with_jpeg_byte(0xDA, 5, 9));
  check_error([&] { data::decode_image(dir / "id.jpg"); }, {dir / "id.jpg", "corrupt JPEG (stb_image: no reason given)"});
  // PNG chunk types: four letters, and no critical chunk (upper-case first letter) that stb_image
  // does not know.
  auto with_png_type = [&](const char* type) {
    std::vector<uint8_t> out = png;
    for (size_t i = 8; i + 4 < out.size(); i++) {
      if (std::memcmp(&out[i], "IDAT", 4) == 0) {
        std::memcpy(&out[i], type, 4);
        break;
      }
    }
    return out;
  };
  write_bytes(dir / "type.png", with_png_type("ID\x01T"));
  check_error([&] { data::decode_image(dir / "type.png"); },
              {dir / "type.png", "corrupt PNG", "has type bytes 49 44 01 54, not four letters"});
  write_bytes(dir / "crit.png", with_png_type("IDXT"));
  check_error([&] { data::decode_image(dir / "crit.png"); }, {dir / "crit.png", "corrupt PNG", "unknown critical chunk IDXT"});
  // A folder where a file is expected.
  check_error([&] { data::decode_image(dir.path()); }, {dir.path()});
  // Writing: unknown extension, bad quality.
  check_error([&] { data::write_image(dir / "x.tiff", img); }, {"x.tiff", "extension"});
  check_error([&] { data::encode_jpeg(img, 0); }, {"quality"});
}

#else

TEST_CASE("image: built without stb, decoding says so") {
  WARN_MESSAGE(false, "skipped: the image-codec tests need stb (libstb-dev); this build has none");
  TempDir dir;
  write_bytes(dir / "x.png", {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 0, 'I', 'E', 'N', 'D'});
  check_error([&] { data::decode_image(dir / "x.png"); }, {"without stb"});
}

#endif

// ---- Resizing (no codec needed) ---------------------------------------------------------------

TEST_CASE("resize: enlarging is bilinear with half-pixel centres, clamped at the borders") {
  // A 1x2 row [0, 100] to 1x4: source positions -0.25, 0.25, 0.75, 1.25 -> 0, 25, 75, 100.
  Image row(1, 2);
  for (int c = 0; c < 3; c++) row.at(0, 1)[c] = 100;
  const Image out = data::resize(row, 1, 4);
  const int expect[4] = {0, 25, 75, 100};
  for (int x = 0; x < 4; x++) CHECK(int(out.at(0, x)[0]) == expect[x]);
  // Vertical direction: the same along a column.
  Image col(2, 1);
  col.at(1, 0)[1] = 100;
  const Image out2 = data::resize(col, 4, 1);
  for (int y = 0; y < 4; y++) CHECK(int(out2.at(y, 0)[1]) == expect[y]);
}

TEST_CASE("resize: constant images stay constant, same size is the identity") {
  const Image solid = solid_image(37, 23, 200, 17, 99);
  for (auto [h, w] : {std::pair{1, 1}, std::pair{5, 80}, std::pair{37, 23}, std::pair{100, 3}, std::pair{224, 224}}) {
    CHECK(data::resize(solid, h, w) == solid_image(h, w, 200, 17, 99));
  }
  const Image p = pattern_image(9, 14);
  CHECK(data::resize(p, 9, 14) == p);
}

TEST_CASE("resize: shrinking by more than 2x averages (antialiasing), no aliasing") {
  // A one-pixel checkerboard of 0 and 255: point sampling would give 0s and 255s; a proper
  // antialiased shrink gives mid-grey everywhere (away from the borders: within 10 levels).
  Image board(1000, 1000);
  for (int y = 0; y < 1000; y++) {
    for (int x = 0; x < 1000; x++) {
      const uint8_t v = (x + y) % 2 ? 255 : 0;
      for (int c = 0; c < 3; c++) board.at(y, x)[c] = v;
    }
  }
  const Image small = data::resize(board, 224, 224);
  int lo = 255, hi = 0;
  for (int y = 1; y < 223; y++) {
    for (int x = 1; x < 223; x++) {
      lo = std::min(lo, int(small.at(y, x)[0]));
      hi = std::max(hi, int(small.at(y, x)[0]));
    }
  }
  CHECK(lo >= 117);
  CHECK(hi <= 138);
  // Stripes 4 pixels wide shrunk 4x: each output pixel covers one full period plus tails.
  Image stripes(8, 64);
  for (int y = 0; y < 8; y++) {
    for (int x = 0; x < 64; x++) stripes.at(y, x)[0] = (x / 2) % 2 ? 200 : 40;
  }
  const Image s4 = data::resize(stripes, 2, 16);
  for (int x = 1; x < 15; x++) CHECK(std::abs(int(s4.at(0, x)[0]) - 120) <= 12);
}

TEST_CASE("resize: matches PyTorch's antialiased bilinear interpolation") {
  const Fixture fx = load_fixture("image_resize");
  const int cases = int(fx.meta_int("cases"));
  REQUIRE(cases == 6);
  for (int i = 0; i < cases; i++) {
    const std::string name = fx.meta("case" + std::to_string(i));
    CAPTURE(name);
    const Tensor in = fx.get("input_" + name), ref = fx.get("out" + std::to_string(i));
    Image img(int(in.size(0)), int(in.size(1)));
    const std::vector<double> v = in.to_double_vector();
    for (size_t k = 0; k < v.size(); k++) img.pixels[k] = uint8_t(v[k]);
    const Image out = data::resize(img, int(ref.size(0)), int(ref.size(1)));
    const std::vector<double> r = ref.to_double_vector();
    REQUIRE(out.pixels.size() == r.size());
    double worst = 0;
    for (size_t k = 0; k < r.size(); k++) worst = std::max(worst, std::fabs(double(out.pixels[k]) - r[k]));
    CAPTURE(worst);
    // leuko rounds PyTorch's real-valued result to the nearest level: within half a level,
    // plus float32 accumulation (about 1e-4 of a level).
    CHECK(worst <= 0.5 + 1e-3);
  }
}

TEST_CASE("resize: a region equals cropping then resizing; bad boxes are errors") {
  const Image p = pattern_image(30, 40, 3);
  const data::Box box{4, 7, 17, 25};
  Image crop(box.height, box.width);
  for (int y = 0; y < box.height; y++) {
    for (int x = 0; x < box.width; x++) std::memcpy(crop.at(y, x), p.at(box.top + y, box.left + x), 3);
  }
  CHECK(data::resize_region(p, box, 17, 25) == crop);  // same size: the crop itself
  CHECK(data::resize_region(p, box, 11, 50) == data::resize(crop, 11, 50));
  CHECK(data::resize_region(p, box, 6, 5) == data::resize(crop, 6, 5));
  check_error([&] { data::resize_region(p, data::Box{20, 0, 11, 5}, 4, 4); }, {"resize", "not inside", "30x40"});
  check_error([&] { data::resize(p, 0, 4); }, {"resize", "not positive"});
}
