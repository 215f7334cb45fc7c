// Image-folder datasets: one subfolder per class, as torchvision's ImageFolder.
//
//   root/Benign/WBC-Benign-001.jpg
//   root/Early/WBC-Malignant-Early-001.jpg
//   ...
//
// Folders are sorted by name, and so are the files in each (.jpg, .jpeg, .png, .bmp in any
// letter case; hidden files, other files and nested folders are ignored). Two tasks read the
// same folders:
//   binary   the folder named Benign (any letter case; overridable) is label 0 ("benign"),
//            every other folder label 1 ("malignant", the positive class);
//   subtype  one label per folder, in sorted order (Benign, Early, Pre, Pro).
//
// A dataset is decoded once, in parallel, into memory as uint8 RGB images, and every epoch
// reads that cache (3,256 images of 224x224 take 490 MB). The cached size:
//   cache_size > 0   every image resized to cache_size x cache_size;
//   cache_size == 0  (default) the images as decoded when they all share one size (the
//                    leukemia images are all 224x224: no resampling at all), otherwise all
//                    resized to 256 x 256 (kDefaultCacheSize), from which the transforms crop.
// Images are shared between a dataset and its subsets (the split's train, val and test parts),
// never copied.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/image.h"

namespace leuko::data {

enum class Task { binary, subtype };
Task parse_task(const std::string& text);  // "binary" or "subtype"; Error otherwise
const char* task_name(Task task);

// The image files of an image folder, not decoded.
struct FolderListing {
  std::string root;
  std::vector<std::string> folders;             // sorted class folder names
  std::vector<std::vector<std::string>> files;  // per folder: sorted file names
  int64_t total() const;
};

// True for names ending in .jpg, .jpeg, .png or .bmp (any letter case).
bool is_image_file_name(const std::string& name);

// Lists `root`. Throws a one-line Error naming the path when root is missing or not a folder,
// has no class folders, or a class folder holds no image.
FolderListing list_image_folder(const std::string& root);

// The labels of a task over sorted class folders.
struct LabelMap {
  std::vector<std::string> class_names;  // binary: {"benign", "malignant"}; subtype: the folders
  std::vector<int64_t> folder_label;     // (folders,)
};
// Binary needs exactly one folder named `benign` (letter case ignored) and at least one other.
LabelMap make_labels(const std::vector<std::string>& folders, Task task, const std::string& benign = "Benign");

inline constexpr int kDefaultCacheSize = 256;

struct DatasetOptions {
  Task task = Task::binary;
  std::string benign = "Benign";  // the binary task's label-0 folder
  int cache_size = 0;             // see the top of this file
  int threads = 0;                // decoding threads; 0: default_threads() (min(8, hardware))
  bool skip_bad = false;          // leave out (and warn about) images that fail to decode
  bool quiet = false;             // no warnings on stderr for skipped images
};

class Dataset {
 public:
  struct Sample {
    std::shared_ptr<const Image> image;
    int64_t label = 0;
    int folder = 0;    // index into folders()
    std::string file;  // relative to the root: "Benign/WBC-Benign-001.jpg"
  };

  Dataset() = default;

  // Lists and decodes `root` (see the top of this file). Throws Error naming the path or the
  // file that is wrong; with options.skip_bad a corrupt image is left out, named in a warning on
  // stderr and in skipped(), and counted.
  static Dataset load(const std::string& root, const DatasetOptions& options = {});

  // A dataset from images in memory (tests, synthetic data): folder i of folders() is class i,
  // file names are "<class>/<index>".
  static Dataset from_images(std::vector<Image> images, std::vector<int64_t> labels,
                             std::vector<std::string> class_names);

  int64_t size() const { return int64_t(samples_.size()); }
  const Sample& sample(int64_t i) const;
  const Image& image(int64_t i) const { return *sample(i).image; }
  int64_t label(int64_t i) const { return sample(i).label; }
  const std::string& file(int64_t i) const { return sample(i).file; }

  const std::string& root() const { return root_; }
  Task task() const { return task_; }
  const std::vector<std::string>& class_names() const { return class_names_; }
  int64_t num_classes() const { return int64_t(class_names_.size()); }
  const std::vector<std::string>& folders() const { return folders_; }
  std::vector<int64_t> class_counts() const;  // (num_classes,): samples per label
  // Files left out by skip_bad: the file relative to the root and the decoder's message.
  struct Skipped {
    std::string file, reason;
  };
  const std::vector<Skipped>& skipped() const { return skipped_; }

  // The samples at `indices`, in that order (images shared, not copied).
  Dataset subset(const std::vector<int64_t>& indices) const;
  // The index of a relative file name, or -1.
  int64_t find(const std::string& file) const;

 private:
  std::string root_;
  Task task_ = Task::subtype;
  std::vector<std::string> class_names_, folders_;
  std::vector<Skipped> skipped_;
  std::vector<Sample> samples_;
};

}  // namespace leuko::data
