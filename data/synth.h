// A synthetic blood-smear dataset: the demo and test stand-in for the leukemia images, in the
// same folder layout and file names (Benign/WBC-Benign-001.jpg, Early/WBC-Malignant-Early-001.jpg,
// Pre/..., Pro/...), so every command runs on it unchanged.
//
// Each image is one white blood cell on a pinkish plasma background among red-blood-cell discs
// (pale centres, as real biconcave cells). The cell's class shows in its nucleus, loosely after
// the morphology of hematogones and B-ALL blasts:
//   Benign  small cell, round smooth nucleus, dense dark chromatin, scant cytoplasm
//   Early   round nucleus with a slightly uneven outline, fine chromatin
//   Pre     larger, kidney-shaped (indented) nucleus, cytoplasmic vacuoles
//   Pro     largest, irregular lobed nucleus, coarse chromatin, visible nucleoli
// Sizes, colours, stain intensity, outline irregularity, position and rotation are jittered and
// their ranges overlap between classes, so a model must look at shape and texture together:
// learnable, not trivial.
//
// Deterministic: image i of class c is drawn from a Generator seeded by (seed, c, i) alone, so a
// seed gives the same files byte for byte whatever the number of threads.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/image.h"

namespace leuko::data {

// {"Benign", "Early", "Pre", "Pro"}: the class folders, as the real data's.
const std::vector<std::string>& synth_folders();
// "WBC-Benign-001.jpg", "WBC-Malignant-Early-001.jpg", ... (index from 1, at least 3 digits).
std::string synth_file_name(int cls, int64_t index, const std::string& extension = "jpg");

// One size x size image of class `cls` (0..3), the `index`-th of its class for `seed`.
Image synth_image(int cls, int size, uint64_t seed, int64_t index);

struct SynthOptions {
  int per_class = 60;
  int size = 224;
  uint64_t seed = 1;
  std::string format = "jpg";  // "jpg" (as the real data) or "png"
  int quality = 90;            // JPEG quality
  int threads = 0;             // 0: default_threads()
};

// Writes per_class images of each class under `out` (created if needed) and returns how many.
// Refuses (Error naming the file) when a class folder already holds image files that this run
// would not overwrite, so that a smaller run never leaves stale images behind in a dataset.
// `progress(done, total)` is called from one thread at a time as files are written.
int64_t write_synth_dataset(const std::string& out, const SynthOptions& options,
                            const std::function<void(int64_t done, int64_t total)>& progress = {});

}  // namespace leuko::data
