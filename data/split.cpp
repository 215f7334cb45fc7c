#include "data/split.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <unordered_map>

#include "tensor/check.h"
#include "tensor/random.h"
#include "tensor/safetensors.h"

namespace leuko::data {

using nlohmann::json;

namespace {
constexpr const char* kFormat = "leuko-split-1";
}

SplitCounts split_counts(int64_t n) {
  LEUKO_CHECK(n >= 0, "split_counts: ", n, " images");
  // Integer arithmetic: ceil(0.2 n) = ceil(n / 5), with no floating-point rounding to doubt.
  const int64_t held = (n + 4) / 5;
  SplitCounts c;
  c.test = (held + 1) / 2;
  c.val = held - c.test;
  c.train = n - held;
  return c;
}

SplitCounts Split::folder_counts(const std::string& folder) const {
  auto count = [&](const std::vector<std::string>& files) {
    const std::string prefix = folder + "/";
    return int64_t(std::count_if(files.begin(), files.end(),
                                 [&](const std::string& f) { return f.compare(0, prefix.size(), prefix) == 0; }));
  };
  return {count(train), count(val), count(test)};
}

Split make_split(const FolderListing& listing, Task task, uint64_t seed, const std::string& benign) {
  Split s;
  s.seed = seed;
  s.task = task;
  s.class_names = make_labels(listing.folders, task, benign).class_names;
  s.folders = listing.folders;
  Generator gen(seed);
  for (size_t f = 0; f < listing.folders.size(); f++) {
    std::vector<std::string> files = listing.files[f];  // sorted by name
    std::sort(files.begin(), files.end());               // (whatever the caller passed)
    for (size_t i = files.size(); i > 1; i--) {           // Fisher-Yates
      std::swap(files[i - 1], files[size_t(gen.below(i))]);
    }
    const SplitCounts c = split_counts(int64_t(files.size()));
    for (size_t i = 0; i < files.size(); i++) {
      const std::string path = listing.folders[f] + "/" + files[i];
      if (int64_t(i) < c.test) s.test.push_back(path);
      else if (int64_t(i) < c.test + c.val) s.val.push_back(path);
      else s.train.push_back(path);
    }
  }
  for (auto* part : {&s.train, &s.val, &s.test}) std::sort(part->begin(), part->end());
  return s;
}

std::string split_to_json(const Split& split) {
  json j;
  j["format"] = kFormat;
  j["seed"] = split.seed;
  j["task"] = task_name(split.task);
  j["class_names"] = split.class_names;
  j["folders"] = split.folders;
  j["train"] = split.train;
  j["val"] = split.val;
  j["test"] = split.test;
  return j.dump(1) + "\n";
}

namespace {

const json& field(const json& j, const char* key, const std::string& source) {
  LEUKO_CHECK(j.contains(key), source, ": the split has no '", key, "' field");
  return j.at(key);
}

std::vector<std::string> string_list(const json& j, const char* key, const std::string& source) {
  const json& v = field(j, key, source);
  LEUKO_CHECK(v.is_array(), source, ": '", key, "' must be a list of strings, not ", v.type_name());
  std::vector<std::string> out;
  for (const json& e : v) {
    LEUKO_CHECK(e.is_string(), source, ": '", key, "' must be a list of strings, but holds a ", e.type_name());
    out.push_back(e.get<std::string>());
  }
  return out;
}

// "Pro/x.jpg" and not "/abs", "../up", "a//b", "./x": the path stays inside the data folder.
bool inside_folder(const std::string& path) {
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    const std::string part = path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (slash == std::string::npos) return true;
    start = slash + 1;
  }
}

}  // namespace

Split split_from_json(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 1e999
    LEUKO_FAIL(source, ": not a valid JSON split file (", e.what(), ")");
  }
  LEUKO_CHECK(j.is_object(), source, ": a split file holds a JSON object, not ", j.type_name());
  const json& format = field(j, "format", source);
  LEUKO_CHECK(format.is_string() && format.get<std::string>() == kFormat, source, ": format ", format.dump(),
              " is not \"", kFormat, "\"");
  Split s;
  const json& seed = field(j, "seed", source);
  LEUKO_CHECK(seed.is_number_unsigned() || (seed.is_number_integer() && seed.get<int64_t>() >= 0), source,
              ": 'seed' must be a non-negative integer, not ", seed.dump());
  s.seed = seed.get<uint64_t>();
  const json& task = field(j, "task", source);
  LEUKO_CHECK(task.is_string(), source, ": 'task' must be a string, not ", task.dump());
  LEUKO_CHECK(task == "binary" || task == "subtype", source, ": task ", task.dump(), " is not binary or subtype");
  s.task = parse_task(task.get<std::string>());
  s.class_names = string_list(j, "class_names", source);
  s.folders = string_list(j, "folders", source);
  LEUKO_CHECK(s.class_names.size() >= 2, source, ": 'class_names' lists ", s.class_names.size(),
              " classes; a classifier needs at least 2");
  LEUKO_CHECK(s.task != Task::binary || s.class_names.size() == 2, source, ": the binary task has 2 classes, but ",
              "'class_names' lists ", s.class_names.size());
  LEUKO_CHECK(!s.folders.empty(), source, ": 'folders' is empty");
  const std::set<std::string> folders(s.folders.begin(), s.folders.end());
  std::set<std::string> seen;
  for (auto [key, part] : {std::pair{"train", &s.train}, std::pair{"val", &s.val}, std::pair{"test", &s.test}}) {
    *part = string_list(j, key, source);
    for (const std::string& f : *part) {
      const size_t slash = f.find('/');
      LEUKO_CHECK(inside_folder(f) && slash != std::string::npos, source, ": '", key, "' lists \"", f,
                  "\", which is not a path \"<folder>/<file>\" inside the data folder");
      LEUKO_CHECK(folders.count(f.substr(0, slash)), source, ": '", key, "' lists \"", f,
                  "\", whose folder is not one of 'folders'");
      LEUKO_CHECK(seen.insert(f).second, source, ": \"", f, "\" is listed twice");
    }
  }
  LEUKO_CHECK(!s.train.empty(), source, ": the training part is empty");
  return s;
}

void save_split(const std::string& path, const Split& split) { write_file_atomic(path, split_to_json(split)); }

Split load_split(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  LEUKO_FILE_CHECK(f.good(), path, "cannot open the split file");
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return split_from_json(text, path);
}

SplitDatasets apply_split(const Dataset& dataset, const Split& split) {
  std::unordered_map<std::string, int64_t> index;
  for (int64_t i = 0; i < dataset.size(); i++) index.emplace(dataset.file(i), i);
  std::set<std::string> skipped;
  for (const auto& s : dataset.skipped()) skipped.insert(s.file);
  auto pick = [&](const std::vector<std::string>& files, const char* part) {
    std::vector<int64_t> idx;
    for (const std::string& f : files) {
      auto it = index.find(f);
      if (it != index.end()) idx.push_back(it->second);
      else LEUKO_CHECK(skipped.count(f), "split: the ", part, " part lists ", f, ", which is not in the dataset at ",
                       dataset.root());
    }
    return dataset.subset(idx);
  };
  // Every image of the dataset must be in one part: otherwise the split belongs to another folder.
  std::set<std::string> listed;
  for (const auto* part : {&split.train, &split.val, &split.test}) listed.insert(part->begin(), part->end());
  for (int64_t i = 0; i < dataset.size(); i++) {
    LEUKO_CHECK(listed.count(dataset.file(i)), "split: ", dataset.file(i), " of ", dataset.root(),
                " is in none of the split's parts (was the split made for another folder?)");
  }
  SplitDatasets parts{pick(split.train, "training"), pick(split.val, "validation"), pick(split.test, "test")};
  return parts;
}

}  // namespace leuko::data
