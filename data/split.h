// The seeded, stratified train / validation / test split (../shared/data/leukemia/README.md).
//
// Per class folder, with n images:
//   held = ceil(0.2 n)   the held-out part, rounded up (as scikit-learn's train_test_split)
//   train = n - held
//   test = ceil(held / 2), val = held - test
// The counts depend on n only (Benign 504 -> 403 / 50 / 51); the seed chooses which files.
// Each folder's sorted file names are shuffled (Fisher-Yates) with one leuko::Generator seeded
// with `seed`, going through the folders in sorted order; the first `test` shuffled files are
// the test part, the next `val` the validation part, the rest the training part.
// The split is made per folder, not per label, so the binary and the subtype tasks share it.
//
// A split is saved as JSON that lists the files (relative to the data folder) of each part:
//   {"format": "leuko-split-1", "seed": 42, "task": "binary",
//    "class_names": ["benign", "malignant"], "folders": ["Benign", "Early", "Pre", "Pro"],
//    "train": ["Benign/WBC-Benign-002.jpg", ...], "val": [...], "test": [...]}
// Each list is sorted by name, so two splits compare with diff.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace leuko::data {

struct SplitCounts {
  int64_t train = 0, val = 0, test = 0;
  int64_t total() const { return train + val + test; }
};
// The counts for a class of n images (formula above).
SplitCounts split_counts(int64_t n);

struct Split {
  uint64_t seed = 0;
  Task task = Task::binary;
  std::vector<std::string> class_names;  // the task's label names
  std::vector<std::string> folders;      // sorted class folders
  std::vector<std::string> train, val, test;  // files relative to the data folder, sorted

  // The counts of one folder's files in each part.
  SplitCounts folder_counts(const std::string& folder) const;
};

// Splits a listed folder (see the top of this file).
Split make_split(const FolderListing& listing, Task task, uint64_t seed, const std::string& benign = "Benign");

// JSON text and files. Reading checks everything and throws a one-line Error naming the file
// (`source`) and the problem: not JSON, a missing or mistyped field, an unknown format or
// task, a path that is absolute or leaves the data folder, a file listed twice.
std::string split_to_json(const Split& split);
Split split_from_json(const std::string& text, const std::string& source = "split");
void save_split(const std::string& path, const Split& split);  // atomic (write_file_atomic)
Split load_split(const std::string& path);

// The three parts of a loaded dataset. Every listed file must be in the dataset (Error naming
// the first missing one), except files the dataset skipped as corrupt, which are left out.
struct SplitDatasets {
  Dataset train, val, test;
};
SplitDatasets apply_split(const Dataset& dataset, const Split& split);

}  // namespace leuko::data
