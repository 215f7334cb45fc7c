// Decoding, encoding and resizing of 8-bit RGB images, with stb_image and stb_image_write
// (compiled in data/stb_codecs.cpp). Before stb_image sees a file, data/image_checks.cpp walks
// its structure: the fuzzers found inputs that Debian 12's stb_image 2.27 mishandles.
#include "data/image.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "data/image_checks.h"
#include "tensor/check.h"
#include "tensor/safetensors.h"

#if LEUKO_HAVE_STB
// The declarations only: the code of both libraries is compiled in data/stb_codecs.cpp.
#define STBI_NO_STDIO  // leuko reads the file itself, so that it can name what went wrong
#include <stb_image.h>
#include <stb_image_write.h>

#include "data/stb_codecs.h"
#endif

namespace leuko::data {

Image::Image(int h, int w) : height(h), width(w), pixels(size_t(h) * size_t(w) * 3, 0) {
  LEUKO_CHECK(h > 0 && w > 0, "Image: size ", h, "x", w, " is not positive");
}

#if LEUKO_HAVE_STB
bool have_image_codecs() { return true; }
#else
bool have_image_codecs() { return false; }
#endif

namespace {

#if !LEUKO_HAVE_STB
[[noreturn]] void no_stb() {
  LEUKO_FAIL("this leuko was built without stb (the image codecs): install libstb-dev and rebuild");
}
#endif

std::vector<uint8_t> read_bytes(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  LEUKO_FILE_CHECK(f != nullptr, path, std::string("cannot open (") + std::strerror(errno) + ")");
  std::vector<uint8_t> bytes;
  uint8_t buf[1 << 16];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.insert(bytes.end(), buf, buf + got);
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  LEUKO_FILE_CHECK(!failed, path, std::string("cannot read (") + std::strerror(err) + ")");
  return bytes;
}

enum class Format { jpeg, png, bmp };

// What the first bytes say the file is.
Format sniff(const uint8_t* b, size_t n, const std::string& name) {
  LEUKO_CHECK(n > 0, name, ": empty file, not an image");
  if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return Format::jpeg;
  if (n >= 8 && std::memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return Format::png;
  if (n >= 2 && b[0] == 'B' && b[1] == 'M') return Format::bmp;
  char hex[64] = "";
  for (size_t i = 0; i < std::min<size_t>(n, 8); i++) {
    std::snprintf(hex + std::strlen(hex), sizeof hex - std::strlen(hex), "%s%02x", i ? " " : "", b[i]);
  }
  LEUKO_FAIL(name, ": not a JPEG, PNG or BMP image (it starts with bytes ", hex, ")");
}

const char* format_name(Format f) { return f == Format::jpeg ? "JPEG" : f == Format::png ? "PNG" : "BMP"; }

#if LEUKO_HAVE_STB
void append_bytes(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(context);
  const auto* p = static_cast<const uint8_t*>(data);
  out->insert(out->end(), p, p + size);
}
#endif

void check_encodable(const Image& img, const char* what) {
  LEUKO_CHECK(!img.empty() && img.height > 0 && img.width > 0 &&
                  img.pixels.size() == size_t(img.height) * size_t(img.width) * 3,
              what, ": image ", img.height, "x", img.width, " with ", img.pixels.size(),
              " bytes is not a valid RGB image");
}

std::string lower_extension(const std::string& path) {
  const size_t dot = path.rfind('.');
  if (dot == std::string::npos || path.find('/', dot) != std::string::npos) return "";
  std::string ext = path.substr(dot + 1);
  for (char& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

}  // namespace

Image decode_image_bytes(const uint8_t* bytes, size_t size, const std::string& name, int64_t max_pixels) {
  const Format format = sniff(bytes, size, name);
  if (format == Format::jpeg) check_jpeg_structure(bytes, size, name);
  if (format == Format::png) check_png_structure(bytes, size, name);
  if (format == Format::bmp) check_bmp_structure(bytes, size, name);
#if LEUKO_HAVE_STB
  LEUKO_CHECK(size <= size_t(INT32_MAX), name, ": file too large (", size, " bytes)");
  int w = 0, h = 0, channels_in_file = 0;
  // The size in the header first: a decompression bomb is refused before anything is allocated.
  // A top-down BMP stores its height negated, and stb_image's probe passes it on as it is.
  if (stbi_info_from_memory(bytes, int(size), &w, &h, &channels_in_file) != 0) {
    const int64_t wide = std::abs(int64_t(w)), high = std::abs(int64_t(h));
    LEUKO_CHECK(wide * high <= max_pixels, name, ": a ", format_name(format), " ", wide, " wide and ", high,
                " high, more than the ", max_pixels, " pixels leuko decodes (a decompression bomb?)");
  }
  // Ask for 3 channels: stb_image repeats gray into RGB and drops alpha.
  clear_stb_failure_reason();
  stbi_uc* data = stbi_load_from_memory(bytes, int(size), &w, &h, &channels_in_file, 3);
  if (data == nullptr) {
    const char* reason = stbi_failure_reason();
    // stb_image probes for a PNG before it tries JPEG or BMP, and some JPEG failures set no
    // reason of their own: the probe's "bad png sig" is then left, and would mislead.
    if (reason != nullptr && format != Format::png && std::strcmp(reason, "bad png sig") == 0) reason = nullptr;
    LEUKO_FAIL(name, ": corrupt ", format_name(format), " (stb_image: ", reason ? reason : "no reason given", ")");
  }
  if (w <= 0 || h <= 0) {  // stb_image 2.27 accepts a BMP 0 rows high
    stbi_image_free(data);
    LEUKO_FAIL(name, ": corrupt ", format_name(format), " (", w, " wide and ", h, " high)");
  }
  Image img;
  img.height = h;
  img.width = w;
  img.pixels.assign(data, data + size_t(w) * size_t(h) * 3);
  stbi_image_free(data);
  return img;
#else
  (void)format_name;
  no_stb();
#endif
}

Image decode_image(const std::string& path) {
  const std::vector<uint8_t> bytes = read_bytes(path);
  return decode_image_bytes(bytes.data(), bytes.size(), path);
}

std::vector<uint8_t> encode_png(const Image& img) {
  check_encodable(img, "encode_png");
#if LEUKO_HAVE_STB
  std::vector<uint8_t> out;
  const int ok = stbi_write_png_to_func(append_bytes, &out, img.width, img.height, 3, img.pixels.data(),
                                        img.width * 3);
  LEUKO_CHECK(ok != 0, "encode_png: stb_image_write failed for a ", img.height, "x", img.width, " image");
  return out;
#else
  no_stb();
#endif
}

std::vector<uint8_t> encode_jpeg(const Image& img, int quality) {
  check_encodable(img, "encode_jpeg");
  LEUKO_CHECK(quality >= 1 && quality <= 100, "encode_jpeg: quality ", quality, " is not in 1..100");
#if LEUKO_HAVE_STB
  std::vector<uint8_t> out;
  const int ok = stbi_write_jpg_to_func(append_bytes, &out, img.width, img.height, 3, img.pixels.data(), quality);
  LEUKO_CHECK(ok != 0, "encode_jpeg: stb_image_write failed for a ", img.height, "x", img.width, " image");
  return out;
#else
  no_stb();
#endif
}

void write_image(const std::string& path, const Image& img, int jpeg_quality) {
  const std::string ext = lower_extension(path);
  std::vector<uint8_t> bytes;
  if (ext == "png") {
    bytes = encode_png(img);
  } else if (ext == "jpg" || ext == "jpeg") {
    bytes = encode_jpeg(img, jpeg_quality);
  } else if (ext == "bmp") {
    check_encodable(img, "write_image");
#if LEUKO_HAVE_STB
    const int ok = stbi_write_bmp_to_func(append_bytes, &bytes, img.width, img.height, 3, img.pixels.data());
    LEUKO_CHECK(ok != 0, path, ": stb_image_write failed");
#else
    no_stb();
#endif
  } else {
    LEUKO_FAIL(path, ": cannot tell the image format from the extension (use .png, .jpg, .jpeg or .bmp)");
  }
  write_file_atomic(path, std::string(bytes.begin(), bytes.end()));
}

// ---- Resizing ---------------------------------------------------------------------------------

namespace {

// The filter of one axis: output index i reads `count[i]` source pixels from `first[i]`, with
// weights weight[i * taps ...] that sum to 1.
struct Taps {
  int taps = 0;
  std::vector<int> first;      // (out,)
  std::vector<int> count;      // (out,)
  std::vector<float> weight;   // (out, taps)
};

// As PIL's precompute_coeffs and PyTorch's _compute_indices_weights_aa: output pixel i is
// centred at scale * (i + 0.5) in the source; the triangle filter spans `support` source
// pixels each side, widened by the shrink factor; weights are renormalised at the borders.
Taps make_taps(int in, int out) {
  Taps t;
  const double scale = double(in) / double(out);
  const double support = scale >= 1.0 ? scale : 1.0;
  const double inv = scale >= 1.0 ? 1.0 / scale : 1.0;
  t.taps = int(std::ceil(support)) * 2 + 1;
  t.first.resize(size_t(out));
  t.count.resize(size_t(out));
  t.weight.assign(size_t(out) * size_t(t.taps), 0.0f);
  std::vector<double> w(size_t(t.taps));
  for (int i = 0; i < out; i++) {
    const double center = scale * (i + 0.5);
    const int lo = std::max(int(center - support + 0.5), 0);  // int(): truncation, as both libraries
    const int hi = std::min(int(center + support + 0.5), in);
    const int n = std::min(hi - lo, t.taps);
    double total = 0;
    for (int j = 0; j < n; j++) {
      const double x = std::fabs((j + lo - center + 0.5) * inv);
      w[size_t(j)] = x < 1.0 ? 1.0 - x : 0.0;
      total += w[size_t(j)];
    }
    t.first[size_t(i)] = lo;
    t.count[size_t(i)] = n;
    for (int j = 0; j < n; j++) t.weight[size_t(i) * size_t(t.taps) + size_t(j)] = float(w[size_t(j)] / total);
  }
  return t;
}

}  // namespace

Image resize_region(const Image& src, const Box& box, int out_h, int out_w) {
  LEUKO_CHECK(out_h > 0 && out_w > 0, "resize: output size ", out_h, "x", out_w, " is not positive");
  LEUKO_CHECK(box.height > 0 && box.width > 0 && box.top >= 0 && box.left >= 0 &&
                  box.top + box.height <= src.height && box.left + box.width <= src.width,
              "resize: box (top ", box.top, ", left ", box.left, ", ", box.height, "x", box.width,
              ") is not inside the ", src.height, "x", src.width, " image");
  Image out(out_h, out_w);
  if (box.height == out_h && box.width == out_w) {  // a plain crop: no filtering
    for (int y = 0; y < out_h; y++) std::memcpy(out.at(y, 0), src.at(box.top + y, box.left), size_t(out_w) * 3);
    return out;
  }
  const Taps tx = make_taps(box.width, out_w), ty = make_taps(box.height, out_h);
  // Horizontal pass: every source row of the box, resampled to out_w columns.
  std::vector<float> tmp(size_t(box.height) * size_t(out_w) * 3);  // (box.height, out_w, 3)
  for (int y = 0; y < box.height; y++) {
    const uint8_t* row = src.at(box.top + y, box.left);  // (box.width, 3)
    float* dst = &tmp[size_t(y) * size_t(out_w) * 3];      // (out_w, 3)
    for (int x = 0; x < out_w; x++) {
      const float* w = &tx.weight[size_t(x) * size_t(tx.taps)];
      const uint8_t* p = row + size_t(tx.first[size_t(x)]) * 3;
      float r = 0, g = 0, b = 0;
      for (int k = 0; k < tx.count[size_t(x)]; k++) {
        r += w[k] * p[3 * k];
        g += w[k] * p[3 * k + 1];
        b += w[k] * p[3 * k + 2];
      }
      dst[3 * x] = r;
      dst[3 * x + 1] = g;
      dst[3 * x + 2] = b;
    }
  }
  // Vertical pass: whole rows at a time (contiguous, so the compiler vectorises it).
  const size_t row_len = size_t(out_w) * 3;
  std::vector<float> acc(row_len);  // (out_w * 3,)
  for (int y = 0; y < out_h; y++) {
    std::fill(acc.begin(), acc.end(), 0.0f);
    const float* w = &ty.weight[size_t(y) * size_t(ty.taps)];
    for (int k = 0; k < ty.count[size_t(y)]; k++) {
      const float* r = &tmp[size_t(ty.first[size_t(y)] + k) * row_len];
      const float wk = w[k];
      for (size_t i = 0; i < row_len; i++) acc[i] += wk * r[i];
    }
    uint8_t* dst = out.at(y, 0);
    for (size_t i = 0; i < row_len; i++) {
      const float v = acc[i] + 0.5f;  // round to nearest; the weights are positive, so v >= 0.5
      dst[i] = uint8_t(v >= 255.0f ? 255 : int(v));
    }
  }
  return out;
}

Image resize(const Image& src, int out_h, int out_w) {
  LEUKO_CHECK(!src.empty(), "resize: empty image");
  return resize_region(src, Box{0, 0, src.height, src.width}, out_h, out_w);
}

}  // namespace leuko::data
