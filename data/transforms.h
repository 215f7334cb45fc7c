// Transforms: from a cached uint8 image (H, W, 3) to the float (3, S, S) a network reads.
//
// Geometry works on uint8 images (cheap, and how torchvision's uint8 tensor transforms work);
// the last step, normalisation, writes float CHW straight into the batch, with any flip or
// quarter-turn folded into where it reads from, so a sample costs one resampling (if any) and
// one pass over its pixels.
//
// A pipeline is described by a TransformSpec, applied by apply_transform:
//   training:   random resized crop to S (or resize + center crop), random flips and
//               quarter turns, normalisation
//   evaluation: resize to `resize` (S when 0) and center crop to S, normalisation
// Randomness comes from the Generator the caller passes: the loader seeds one per sample from
// (seed, epoch, sample index), so a sample's augmentation does not depend on which thread ran it.
#pragma once

#include <array>
#include <string>

#include "data/dataset.h"
#include "data/image.h"
#include "tensor/random.h"

namespace leuko::data {

// ---- Single transforms on uint8 images ----------------------------------------------------

// The middle (h, w) of the image, as torchvision's CenterCrop: the offsets are
// round((H - h) / 2) and round((W - w) / 2), halves rounded to even as Python's round.
// The crop must fit inside the image.
Box center_crop_box(int height, int width, int h, int w);
Image center_crop(const Image& img, int h, int w);

// The random crop of torchvision's RandomResizedCrop.get_params: up to 10 tries of an area
// fraction uniform in [scale_min, scale_max] and an aspect ratio log-uniform in
// [ratio_min, ratio_max], accepted when the crop fits; otherwise the whole image, center-
// cropped to the nearest allowed aspect ratio.
Box random_resized_crop_box(int height, int width, Generator& gen, double scale_min = 0.08, double scale_max = 1.0,
                            double ratio_min = 3.0 / 4.0, double ratio_max = 4.0 / 3.0);

Image hflip(const Image& img);  // mirror left-right
Image vflip(const Image& img);  // mirror top-bottom
// k quarter turns counter-clockwise (numpy.rot90 / torch.rot90 over (H, W)); k may be any integer.
Image rot90(const Image& img, int k);

// ---- Normalisation ------------------------------------------------------------------------

using Channels = std::array<float, 3>;
inline constexpr Channels kImageNetMean{0.485f, 0.456f, 0.406f};
inline constexpr Channels kImageNetStd{0.229f, 0.224f, 0.225f};

// The 256 normalised values of each channel, (3, 256): t[256 c + v] = (v / 255 - mean[c]) / std[c],
// in float32. Every normalisation in leuko reads this table (the GPU loader's kernel too,
// kernels/normalize.h), so all give the same bits.
using NormalizationTable = std::array<float, 3 * 256>;
NormalizationTable normalization_table(const Channels& mean, const Channels& std);

// out[c, y, x] = (img[y, x, c] / 255 - mean[c]) / std[c]: float (3, H, W), as torchvision's
// ToTensor followed by Normalize.
void normalize_to_chw(const Image& img, const Channels& mean, const Channels& std, float* out /* (3, H, W) */);

// Per-channel mean and (population) standard deviation of the pixel values / 255 over every
// pixel of every image of `dataset` (its training part, for a dataset's own normalisation).
// Exact whatever the threads: the sums are integers.
struct ChannelStats {
  Channels mean{}, std{};
};
ChannelStats channel_stats(const Dataset& dataset, int threads = 0);

// ---- Pipelines ----------------------------------------------------------------------------

struct TransformSpec {
  int size = 224;  // the output is (3, size, size)
  // Geometry. With random_resized_crop: RandomResizedCrop(size, scale, ratio). Without: resize
  // to resize x resize (size when 0; nothing when the image already has that size; both sides,
  // as torchvision's Resize((r, r)), not the shorter side), then center crop to size x size.
  bool random_resized_crop = false;
  double scale_min = 0.08, scale_max = 1.0;
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;
  int resize = 0;
  // Each with probability 1/2; quarter turns: k uniform in 0..3. Blood-smear cells have no up
  // or left, so all eight symmetries of the square are fair augmentations.
  bool hflip = false, vflip = false, rotate90 = false;
  Channels mean = kImageNetMean, std = kImageNetStd;

  // Training: random resized crop (torchvision's defaults), flips and quarter turns.
  static TransformSpec train(int size = 224);
  // Evaluation: resize to size, no randomness.
  static TransformSpec eval(int size = 224);
  bool random() const { return random_resized_crop || hflip || vflip || rotate90; }
  // "RandomResizedCrop(224, scale=(0.08, 1), ratio=(0.75, 1.33333)), RandomHorizontalFlip, ..., Normalize(...)"
  std::string describe() const;
};

// Applies `spec` to one image and writes float (3, size, size) to `out`. Draws from `gen` in a
// fixed order (crop, then hflip, vflip, quarter turns), only for the steps that are on.
void apply_transform(const TransformSpec& spec, const Image& img, Generator& gen, float* out /* (3, S, S) */);
// The same steps and draws without the normalisation: uint8 (3, S, S), the values the float
// version looks up in normalization_table(spec.mean, spec.std).
void apply_transform(const TransformSpec& spec, const Image& img, Generator& gen, uint8_t* out /* (3, S, S) */);

}  // namespace leuko::data
