// Scratch folders and small synthetic datasets for the tests that train whole runs
// (tests/tools/, tests/gpu/). Everything made here is removed when the test binary exits: a run
// folder holds megabytes of checkpoints, and the suite makes dozens.
#pragma once

#include <cstdint>
#include <string>

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

}  // namespace leuko::test
