// 8-bit RGB images: decoding (JPEG, PNG, BMP through stb_image), encoding (PNG, JPEG through
// stb_image_write) and resizing.
//
// Everything in data/ works on this one format, the way the files store it: rows of pixels,
// three interleaved channels, one byte each, (H, W, 3). Grayscale images are repeated into
// three channels and alpha is dropped (as PIL's convert("RGB")), so a folder that mixes
// formats still gives one kind of image. The conversion to float CHW happens once per sample,
// in transforms.h, at the last moment.
//
// stb_image is lenient in places: it decodes a truncated BMP with the missing rows zeroed and
// reports success (and JPEG and PNG strictness has varied between its versions). A truncated
// file is a broken file, not a partly black one, so decode_image checks the structure first
// (data/image_checks.h: a JPEG's end-of-image marker after its first scan and the tables its
// scans decode with, a PNG's chunks up to IEND, a BMP's pixel array inside the file) and names
// the file and what is wrong.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace leuko::data {

struct Image {
  int height = 0, width = 0;
  std::vector<uint8_t> pixels;  // (H, W, 3)

  Image() = default;
  Image(int h, int w);  // zero-filled (black)
  bool empty() const { return pixels.empty(); }
  uint8_t* at(int y, int x) { return &pixels[(size_t(y) * size_t(width) + size_t(x)) * 3]; }
  const uint8_t* at(int y, int x) const { return &pixels[(size_t(y) * size_t(width) + size_t(x)) * 3]; }
  bool operator==(const Image& o) const {
    return height == o.height && width == o.width && pixels == o.pixels;
  }
};

// True when leuko was built with stb (the image codecs); otherwise every decode and encode
// throws Error saying so.
bool have_image_codecs();

// Reads and decodes a JPEG, PNG or BMP file into RGB. Throws Error naming the file and the
// reason: missing or unreadable, not one of the three formats, truncated, or corrupt (with
// stb_image's own reason).
Image decode_image(const std::string& path);
// The same from bytes in memory; `name` is used in error messages. An image whose header claims
// more than max_pixels pixels is refused before decoding: a few hundred bytes can claim a 64k x
// 64k image, a decompression bomb that would take gigabytes and minutes. The default is PIL's
// limit (twice Image.MAX_IMAGE_PIXELS, above which it raises DecompressionBombError).
Image decode_image_bytes(const uint8_t* bytes, size_t size, const std::string& name,
                         int64_t max_pixels = int64_t(178956970));

// Encoders: PNG (lossless) and baseline JPEG at `quality` 1..100 (stb_image_write).
std::vector<uint8_t> encode_png(const Image& img);
std::vector<uint8_t> encode_jpeg(const Image& img, int quality = 90);
// Writes the image in the format its extension names (.png, .jpg/.jpeg, .bmp), atomically
// (a temporary file renamed over `path`).
void write_image(const std::string& path, const Image& img, int jpeg_quality = 90);

// A rectangle of an image, in pixels.
struct Box {
  int top = 0, left = 0, height = 0, width = 0;
};

// Bilinear resize to (out_h, out_w) with antialiasing, the filter of PIL's Image.resize(BILINEAR)
// and of torch.nn.functional.interpolate(mode="bilinear", antialias=True, align_corners=False):
// a triangle filter whose width grows with the shrink factor, so that shrinking a 1000-pixel
// image to 224 averages every source pixel instead of sampling a few of them (aliasing).
// When enlarging it is plain bilinear interpolation with half-pixel centres.
// Values are computed in float and rounded once at the end.
Image resize(const Image& src, int out_h, int out_w);
// The same for the part of `src` inside `box` (a crop and a resize in one pass: the random
// resized crop of the loader).
Image resize_region(const Image& src, const Box& box, int out_h, int out_w);

}  // namespace leuko::data
