#include "data/transforms.h"

#include <cmath>
#include <cstring>
#include <sstream>

#include "data/parallel.h"
#include "tensor/check.h"

namespace leuko::data {

// ---- Crops --------------------------------------------------------------------------------

Box center_crop_box(int height, int width, int h, int w) {
  LEUKO_CHECK(h > 0 && w > 0 && h <= height && w <= width, "center_crop: a ", h, "x", w,
              " crop does not fit in a ", height, "x", width, " image");
  // std::nearbyint rounds halves to even (the default rounding mode), as Python's round.
  return Box{int(std::nearbyint((height - h) / 2.0)), int(std::nearbyint((width - w) / 2.0)), h, w};
}

Image center_crop(const Image& img, int h, int w) {
  const Box b = center_crop_box(img.height, img.width, h, w);
  return resize_region(img, b, h, w);  // same size: a plain copy of the box
}

Box random_resized_crop_box(int height, int width, Generator& gen, double scale_min, double scale_max,
                            double ratio_min, double ratio_max) {
  LEUKO_CHECK(height > 0 && width > 0, "random_resized_crop: image size ", height, "x", width);
  LEUKO_CHECK(0 < scale_min && scale_min <= scale_max && scale_max <= 1.0, "random_resized_crop: scale (", scale_min,
              ", ", scale_max, ") must satisfy 0 < min <= max <= 1");
  LEUKO_CHECK(0 < ratio_min && ratio_min <= ratio_max, "random_resized_crop: ratio (", ratio_min, ", ", ratio_max,
              ") must satisfy 0 < min <= max");
  const double area = double(height) * double(width);
  const double log_lo = std::log(ratio_min), log_hi = std::log(ratio_max);
  for (int attempt = 0; attempt < 10; attempt++) {
    const double target = area * (scale_min + (scale_max - scale_min) * gen.uniform());
    const double aspect = std::exp(log_lo + (log_hi - log_lo) * gen.uniform());
    const int w = int(std::nearbyint(std::sqrt(target * aspect)));
    const int h = int(std::nearbyint(std::sqrt(target / aspect)));
    if (0 < w && w <= width && 0 < h && h <= height) {
      const int top = int(gen.below(uint64_t(height - h + 1)));
      const int left = int(gen.below(uint64_t(width - w + 1)));
      return Box{top, left, h, w};
    }
  }
  // Fallback: the whole image, cut to the nearest allowed aspect ratio, centred.
  const double in_ratio = double(width) / double(height);
  int w = width, h = height;
  if (in_ratio < ratio_min) h = int(std::nearbyint(w / ratio_min));
  else if (in_ratio > ratio_max) w = int(std::nearbyint(h * ratio_max));
  return Box{(height - h) / 2, (width - w) / 2, h, w};
}

// ---- Flips and quarter turns ----------------------------------------------------------------

Image hflip(const Image& img) {
  Image out(img.height, img.width);
  for (int y = 0; y < img.height; y++) {
    for (int x = 0; x < img.width; x++) std::memcpy(out.at(y, x), img.at(y, img.width - 1 - x), 3);
  }
  return out;
}

Image vflip(const Image& img) {
  Image out(img.height, img.width);
  for (int y = 0; y < img.height; y++) std::memcpy(out.at(y, 0), img.at(img.height - 1 - y, 0), size_t(img.width) * 3);
  return out;
}

Image rot90(const Image& img, int k) {
  k = ((k % 4) + 4) % 4;
  if (k == 0) return img;
  if (k == 2) return vflip(hflip(img));
  Image out(img.width, img.height);  // a quarter turn swaps height and width
  for (int y = 0; y < out.height; y++) {
    for (int x = 0; x < out.width; x++) {
      // Counter-clockwise: out[y][x] = in[x][W-1-y]; clockwise (k = 3): out[y][x] = in[H-1-x][y].
      const uint8_t* p = k == 1 ? img.at(x, img.width - 1 - y) : img.at(img.height - 1 - x, y);
      std::memcpy(out.at(y, x), p, 3);
    }
  }
  return out;
}

// ---- Normalisation ----------------------------------------------------------------------------

namespace {

// The 256 possible normalised values of each channel: normalising is then one load per value.
struct Lut {
  NormalizationTable t;
  Lut(const Channels& mean, const Channels& std) : t(normalization_table(mean, std)) {}
  float operator()(int c, uint8_t v) const { return t[size_t(256 * c + v)]; }
};

// The geometry alone: the value passes through (the GPU loader normalises on the device).
struct Identity {
  uint8_t operator()(int, uint8_t v) const { return v; }
};

// Writes the S x S square of `src` whose top-left corner is (top, left), turned by the dihedral
// transform (hflip, then vflip, then k counter-clockwise quarter turns), normalised, as float
// (3, S, S). Output (i, j) reads source (top + r0 + ri*i + rj*j, left + c0 + ci*i + cj*j): the
// map from output to source pixels is affine, so each output row walks the source with a fixed step.
template <typename T, typename Map>
void write_square(const Image& src, int top, int left, int S, bool flip_h, bool flip_v, int k, const Map& map,
                  T* out /* (3, S, S) */) {
  // Where output (i, j) comes from, undoing the steps in reverse order.
  auto source = [&](int i, int j) {
    int r = i, c = j;
    for (int t = 0; t < k; t++) {  // undo one counter-clockwise turn: out[r][c] = in[c][S-1-r]
      const int rr = c, cc = S - 1 - r;
      r = rr;
      c = cc;
    }
    if (flip_v) r = S - 1 - r;
    if (flip_h) c = S - 1 - c;
    return std::pair<int, int>{r, c};
  };
  const auto [r0, c0] = source(0, 0);
  const auto [r1, c1] = source(S > 1 ? 1 : 0, 0);
  const auto [r2, c2] = source(0, S > 1 ? 1 : 0);
  const int ri = r1 - r0, ci = c1 - c0, rj = r2 - r0, cj = c2 - c0;
  const ptrdiff_t row_stride = ptrdiff_t(src.width) * 3;
  const ptrdiff_t step = rj * row_stride + cj * 3;  // source bytes between neighbours of an output row
  const size_t plane = size_t(S) * size_t(S);
  for (int i = 0; i < S; i++) {
    const uint8_t* p = src.at(top + r0 + ri * i, left + c0 + ci * i);
    T* o0 = out + size_t(i) * size_t(S);  // (S,) of channel 0
    T* o1 = o0 + plane;
    T* o2 = o1 + plane;
    for (int j = 0; j < S; j++) {
      const uint8_t* q = p + j * step;
      o0[j] = map(0, q[0]);
      o1[j] = map(1, q[1]);
      o2[j] = map(2, q[2]);
    }
  }
}

}  // namespace

NormalizationTable normalization_table(const Channels& mean, const Channels& std) {
  NormalizationTable t{};
  for (int c = 0; c < 3; c++) {
    LEUKO_CHECK(std[size_t(c)] > 0, "normalize: std of channel ", c, " is ", std[size_t(c)], ", not positive");
    for (int i = 0; i < 256; i++) t[size_t(256 * c + i)] = (float(i) / 255.0f - mean[size_t(c)]) / std[size_t(c)];
  }
  return t;
}

void normalize_to_chw(const Image& img, const Channels& mean, const Channels& std, float* out) {
  LEUKO_CHECK(!img.empty(), "normalize: empty image");
  const Lut lut(mean, std);
  const size_t plane = size_t(img.height) * size_t(img.width);
  const uint8_t* p = img.pixels.data();  // (H, W, 3)
  for (size_t i = 0; i < plane; i++) {
    out[i] = lut(0, p[3 * i]);
    out[plane + i] = lut(1, p[3 * i + 1]);
    out[2 * plane + i] = lut(2, p[3 * i + 2]);
  }
}

ChannelStats channel_stats(const Dataset& dataset, int threads) {
  LEUKO_CHECK(dataset.size() > 0, "channel_stats: the dataset is empty");
  struct Sums {
    uint64_t n = 0, sum[3] = {0, 0, 0}, sq[3] = {0, 0, 0};
  };
  std::vector<Sums> per(size_t(dataset.size()));
  parallel_for(dataset.size(), threads, [&](int64_t i) {
    const Image& img = dataset.image(i);
    Sums s;
    s.n = uint64_t(img.height) * uint64_t(img.width);
    for (size_t p = 0; p < img.pixels.size(); p += 3) {
      for (int c = 0; c < 3; c++) {
        const uint64_t v = img.pixels[p + size_t(c)];
        s.sum[c] += v;
        s.sq[c] += v * v;
      }
    }
    per[size_t(i)] = s;
  });
  Sums t;
  for (const Sums& s : per) {
    t.n += s.n;
    for (int c = 0; c < 3; c++) {
      t.sum[c] += s.sum[c];
      t.sq[c] += s.sq[c];
    }
  }
  ChannelStats st;
  for (int c = 0; c < 3; c++) {
    const double mean = double(t.sum[c]) / double(t.n);
    const double var = std::max(0.0, double(t.sq[c]) / double(t.n) - mean * mean);
    st.mean[size_t(c)] = float(mean / 255.0);
    st.std[size_t(c)] = float(std::sqrt(var) / 255.0);
  }
  return st;
}

// ---- Pipelines --------------------------------------------------------------------------------

TransformSpec TransformSpec::train(int size) {
  TransformSpec s;
  s.size = size;
  s.random_resized_crop = true;
  s.hflip = s.vflip = s.rotate90 = true;
  return s;
}

TransformSpec TransformSpec::eval(int size) {
  TransformSpec s;
  s.size = size;
  return s;
}

std::string TransformSpec::describe() const {
  std::ostringstream os;
  if (random_resized_crop) {
    os << "RandomResizedCrop(" << size << ", scale=(" << scale_min << ", " << scale_max << "), ratio=(" << ratio_min
       << ", " << ratio_max << "))";
  } else {
    const int r = resize > 0 ? resize : size;
    os << "Resize(" << r << "x" << r << ")";  // both sides: a square, whatever the aspect ratio
    if (r != size) os << ", CenterCrop(" << size << ")";
  }
  if (hflip) os << ", RandomHorizontalFlip";
  if (vflip) os << ", RandomVerticalFlip";
  if (rotate90) os << ", RandomRot90";
  os << ", Normalize(mean=(" << mean[0] << ", " << mean[1] << ", " << mean[2] << "), std=(" << std[0] << ", "
     << std[1] << ", " << std[2] << "))";
  return os.str();
}

namespace {

// apply_transform's steps, writing through `map`: normalised floats, or the uint8 values.
template <typename T, typename Map>
void transform_into(const TransformSpec& spec, const Image& img, Generator& gen, const Map& map, T* out) {
  const int S = spec.size;
  LEUKO_CHECK(S > 0, "transform: output size ", S, " is not positive");
  LEUKO_CHECK(!img.empty(), "transform: empty image");
  Image resized;              // (S, S, 3) or (resize, resize, 3) when resampling was needed
  const Image* src = &img;    // what write_square reads
  int top = 0, left = 0;
  if (spec.random_resized_crop) {
    const Box b = random_resized_crop_box(img.height, img.width, gen, spec.scale_min, spec.scale_max,
                                          spec.ratio_min, spec.ratio_max);
    if (b.height == S && b.width == S) {  // the crop is already S x S: read it in place
      top = b.top;
      left = b.left;
    } else {
      resized = resize_region(img, b, S, S);
      src = &resized;
    }
  } else {
    const int r = spec.resize > 0 ? spec.resize : S;
    if (img.height != r || img.width != r) {
      resized = resize(img, r, r);
      src = &resized;
    }
    const Box b = center_crop_box(src->height, src->width, S, S);
    top = b.top;
    left = b.left;
  }
  const bool flip_h = spec.hflip && gen.below(2) == 1;
  const bool flip_v = spec.vflip && gen.below(2) == 1;
  const int k = spec.rotate90 ? int(gen.below(4)) : 0;
  write_square(*src, top, left, S, flip_h, flip_v, k, map, out);
}

}  // namespace

void apply_transform(const TransformSpec& spec, const Image& img, Generator& gen, float* out) {
  transform_into(spec, img, gen, Lut(spec.mean, spec.std), out);
}

void apply_transform(const TransformSpec& spec, const Image& img, Generator& gen, uint8_t* out) {
  transform_into(spec, img, gen, Identity{}, out);
}

}  // namespace leuko::data
