#include "data/dataset.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>

#include "data/parallel.h"
#include "tensor/check.h"

namespace fs = std::filesystem;

namespace leuko::data {

Task parse_task(const std::string& text) {
  if (text == "binary") return Task::binary;
  if (text == "subtype") return Task::subtype;
  LEUKO_FAIL("task '", text, "' is not one of binary, subtype");
}

const char* task_name(Task task) { return task == Task::binary ? "binary" : "subtype"; }

int64_t FolderListing::total() const {
  int64_t n = 0;
  for (const auto& f : files) n += int64_t(f.size());
  return n;
}

namespace {
std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
}  // namespace

bool is_image_file_name(const std::string& name) {
  const size_t dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  const std::string ext = lower(name.substr(dot + 1));
  return ext == "jpg" || ext == "jpeg" || ext == "png" || ext == "bmp";
}

FolderListing list_image_folder(const std::string& root) {
  FolderListing listing;
  listing.root = root;
  std::error_code ec;
  const fs::file_status st = fs::status(root, ec);
  LEUKO_CHECK(fs::exists(st), "dataset: ", root, " does not exist");
  LEUKO_CHECK(fs::is_directory(st), "dataset: ", root, " is not a folder");
  try {
    // Class folders: the subfolders (symbolic links followed), hidden ones left out.
    for (const auto& entry : fs::directory_iterator(root)) {
      const std::string name = entry.path().filename().string();
      if (name.empty() || name[0] == '.' || !entry.is_directory()) continue;
      listing.folders.push_back(name);
    }
    std::sort(listing.folders.begin(), listing.folders.end());
    LEUKO_CHECK(!listing.folders.empty(), "dataset: ", root,
                " has no class folders (expected one subfolder of images per class)");
    for (const std::string& folder : listing.folders) {
      std::vector<std::string> names;
      for (const auto& entry : fs::directory_iterator(fs::path(root) / folder)) {
        const std::string name = entry.path().filename().string();
        if (name.empty() || name[0] == '.' || !entry.is_regular_file() || !is_image_file_name(name)) continue;
        names.push_back(name);
      }
      std::sort(names.begin(), names.end());
      LEUKO_CHECK(!names.empty(), "dataset: class folder ", (fs::path(root) / folder).string(),
                  " holds no .jpg, .jpeg, .png or .bmp image");
      listing.files.push_back(std::move(names));
    }
  } catch (const fs::filesystem_error& e) {  // permissions, a folder removed while listing
    LEUKO_FAIL("dataset: cannot list ", root, ": ", e.code().message(), " (", e.path1().string(), ")");
  }
  return listing;
}

LabelMap make_labels(const std::vector<std::string>& folders, Task task, const std::string& benign) {
  LabelMap map;
  if (task == Task::subtype) {
    map.class_names = folders;
    for (size_t i = 0; i < folders.size(); i++) map.folder_label.push_back(int64_t(i));
    return map;
  }
  int found = -1;
  for (size_t i = 0; i < folders.size(); i++) {
    if (lower(folders[i]) != lower(benign)) continue;
    LEUKO_CHECK(found < 0, "binary task: two folders are named '", benign, "' (", folders[size_t(found)], " and ",
                folders[i], ")");
    found = int(i);
  }
  std::string list;
  for (const auto& f : folders) list += (list.empty() ? "" : ", ") + f;
  LEUKO_CHECK(found >= 0, "binary task: no folder named '", benign, "' for label 0 (folders: ", list, ")");
  LEUKO_CHECK(folders.size() >= 2, "binary task: only the '", benign,
              "' folder is present; the malignant class (label 1) needs at least one other folder");
  map.class_names = {"benign", "malignant"};
  for (size_t i = 0; i < folders.size(); i++) map.folder_label.push_back(int(i) == found ? 0 : 1);
  return map;
}

Dataset Dataset::load(const std::string& root, const DatasetOptions& options) {
  LEUKO_CHECK(options.cache_size >= 0, "dataset: cache size ", options.cache_size, " is negative");
  const FolderListing listing = list_image_folder(root);
  const LabelMap labels = make_labels(listing.folders, options.task, options.benign);

  // Flatten (folder, file) pairs: the order of the dataset, sorted by folder then name.
  struct Entry {
    int folder;
    std::string file;
  };
  std::vector<Entry> entries;
  for (size_t f = 0; f < listing.folders.size(); f++) {
    for (const auto& name : listing.files[f]) entries.push_back({int(f), listing.folders[f] + "/" + name});
  }
  const int64_t n = int64_t(entries.size());

  // Decode (and, with a fixed cache size, resize) in parallel; each thread writes its own slots.
  std::vector<std::shared_ptr<const Image>> images(static_cast<size_t>(n));
  std::vector<std::string> bad(static_cast<size_t>(n));  // reason per skipped file, empty if decoded
  const int cache = options.cache_size;
  parallel_for(n, options.threads, [&](int64_t i) {
    const std::string path = (fs::path(root) / entries[size_t(i)].file).string();
    try {
      Image img = decode_image(path);
      if (cache > 0 && (img.height != cache || img.width != cache)) img = resize(img, cache, cache);
      images[size_t(i)] = std::make_shared<const Image>(std::move(img));
    } catch (const Error& e) {
      if (!options.skip_bad) throw;
      bad[size_t(i)] = e.what();
    }
  });

  Dataset d;
  d.root_ = root;
  d.task_ = options.task;
  d.class_names_ = labels.class_names;
  d.folders_ = listing.folders;
  for (int64_t i = 0; i < n; i++) {
    if (!bad[size_t(i)].empty()) {
      d.skipped_.push_back({entries[size_t(i)].file, bad[size_t(i)]});
      if (!options.quiet) std::fprintf(stderr, "leuko: warning: skipped %s\n", bad[size_t(i)].c_str());
      continue;
    }
    const Entry& e = entries[size_t(i)];
    d.samples_.push_back({images[size_t(i)], labels.folder_label[size_t(e.folder)], e.folder, e.file});
  }
  LEUKO_CHECK(!d.samples_.empty(), "dataset: ", root, ": every one of the ", n, " images failed to decode");

  // Cache size 0: keep the decoded sizes if they agree, else bring every image to the default.
  if (cache == 0) {
    const Image& first = *d.samples_[0].image;
    bool same = true;
    for (const auto& s : d.samples_) same = same && s.image->height == first.height && s.image->width == first.width;
    if (!same) {
      parallel_for(d.size(), options.threads, [&](int64_t i) {
        Sample& s = d.samples_[size_t(i)];
        if (s.image->height != kDefaultCacheSize || s.image->width != kDefaultCacheSize) {
          s.image = std::make_shared<const Image>(resize(*s.image, kDefaultCacheSize, kDefaultCacheSize));
        }
      });
    }
  }
  return d;
}

Dataset Dataset::from_images(std::vector<Image> images, std::vector<int64_t> labels,
                             std::vector<std::string> class_names) {
  LEUKO_CHECK(images.size() == labels.size(), "Dataset::from_images: ", images.size(), " images but ",
              labels.size(), " labels");
  Dataset d;
  d.root_ = "(memory)";
  d.task_ = Task::subtype;
  d.class_names_ = class_names;
  d.folders_ = class_names;
  for (size_t i = 0; i < images.size(); i++) {
    const int64_t l = labels[i];
    LEUKO_CHECK(l >= 0 && l < int64_t(class_names.size()), "Dataset::from_images: label ", l, " of image ", i,
                " is not in [0, ", class_names.size(), ")");
    LEUKO_CHECK(!images[i].empty(), "Dataset::from_images: image ", i, " is empty");
    d.samples_.push_back({std::make_shared<const Image>(std::move(images[i])), l, int(l),
                          class_names[size_t(l)] + "/" + std::to_string(i)});
  }
  return d;
}

const Dataset::Sample& Dataset::sample(int64_t i) const {
  LEUKO_CHECK(i >= 0 && i < size(), "dataset: sample ", i, " is out of range [0, ", size(), ")");
  return samples_[size_t(i)];
}

std::vector<int64_t> Dataset::class_counts() const {
  std::vector<int64_t> counts(class_names_.size(), 0);
  for (const auto& s : samples_) counts[size_t(s.label)]++;
  return counts;
}

Dataset Dataset::subset(const std::vector<int64_t>& indices) const {
  Dataset d;
  d.root_ = root_;
  d.task_ = task_;
  d.class_names_ = class_names_;
  d.folders_ = folders_;
  d.skipped_ = skipped_;
  d.samples_.reserve(indices.size());
  for (int64_t i : indices) d.samples_.push_back(sample(i));
  return d;
}

int64_t Dataset::find(const std::string& file) const {
  for (size_t i = 0; i < samples_.size(); i++) {
    if (samples_[i].file == file) return int64_t(i);
  }
  return -1;
}

}  // namespace leuko::data
