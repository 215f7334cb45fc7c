// Scratch folders and small synthetic datasets for the tests that train whole runs
// (tests/tools/, tests/gpu/). Everything made here is removed when the test binary exits: a run
// folder holds megabytes of checkpoints, and the suite makes dozens.
#pragma once

#include <cstdint>
#include <string>

#include "tools/leuko/trainer.h"

namespace leuko::test {

// Registers `path` for removal at exit (with the logs beside it: PATH.log, PATH.resume.log,
// PATH.again.log), removes whatever is there now, and returns it.
std::string scratch(const std::string& path);

// A fresh folder <temp>/leuko-<prefix>-<name>-<pid>, registered by scratch(): the pid keeps two
// test processes running at once (ctest -j) apart.
std::string scratch_dir(const std::string& prefix, const std::string& name);

// A synthetic dataset (data/synth.h: 4 classes of per_class PNG images, size x size pixels) in
// scratch_dir(prefix, "data"). Each call writes a new one: callers keep it in a static.
std::string synth_dataset(const std::string& prefix, int per_class, int size, uint64_t seed);

// The whole file as bytes ("" when it cannot be read): logs, checkpoints, config.json.
std::string read_file(const std::string& path);

// A short, quiet CPU run of ResNet-18 on `data` into `out` with every part of a real recipe
// whose randomness must repeat: AdamW, a cosine schedule with warm-up, label smoothing, class
// weights, random flips and turns, 2 loader workers; 2 epochs of batch 8 at 32 x 32, seed 5.
cli::TrainOptions tiny_train_options(const std::string& data, const std::string& out);

// Every tensor of two safetensors files (model and optimizer state), compared byte for byte:
// the same names, shapes, dtypes and bits.
void check_same_bits(const std::string& a, const std::string& b);

}  // namespace leuko::test
