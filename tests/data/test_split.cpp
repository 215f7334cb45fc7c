// The seeded stratified split (data/split.h). Folder listings are built in memory (the split
// only needs file names), so the real class sizes 504/985/963/804 cost nothing.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "data/split.h"
#include "data_helpers.h"

using namespace leuko;
using namespace leuko::test;
using data::Split;
using data::SplitCounts;
using data::Task;

namespace {

// A listing of the leukemia layout with `sizes` files per folder (names as the real data's).
data::FolderListing fake_listing(const std::vector<int>& sizes) {
  const std::vector<std::string> folders{"Benign", "Early", "Pre", "Pro"};
  const std::vector<std::string> stems{"WBC-Benign-", "WBC-Malignant-Early-", "WBC-Malignant-Pre-",
                                       "WBC-Malignant-Pro-"};
  data::FolderListing l;
  l.root = "/fake";
  for (size_t f = 0; f < sizes.size(); f++) {
    l.folders.push_back(folders[f]);
    std::vector<std::string> files;
    for (int i = 1; i <= sizes[f]; i++) {
      char num[16];
      std::snprintf(num, sizeof num, "%03d", i);
      files.push_back(stems[f] + num + ".jpg");
    }
    l.files.push_back(files);
  }
  return l;
}

const std::vector<int> kReal{504, 985, 963, 804};

}  // namespace

TEST_CASE("split: counts equal the README table") {
  // class: train, val, test (../shared/data/leukemia/README.md)
  const SplitCounts expect[4] = {{403, 50, 51}, {788, 98, 99}, {770, 96, 97}, {643, 80, 81}};
  SplitCounts all;
  for (int f = 0; f < 4; f++) {
    const SplitCounts c = data::split_counts(kReal[size_t(f)]);
    CAPTURE(kReal[size_t(f)]);
    CHECK(c.train == expect[f].train);
    CHECK(c.val == expect[f].val);
    CHECK(c.test == expect[f].test);
    all.train += c.train;
    all.val += c.val;
    all.test += c.test;
  }
  CHECK(all.train == 2604);
  CHECK(all.val == 324);
  CHECK(all.test == 328);
  // Small classes: the held-out part rounds up, then the test half rounds up.
  auto same = [](SplitCounts a, SplitCounts b) { return a.train == b.train && a.val == b.val && a.test == b.test; };
  CHECK(same(data::split_counts(0), {0, 0, 0}));
  CHECK(same(data::split_counts(1), {0, 0, 1}));
  CHECK(same(data::split_counts(5), {4, 0, 1}));
  CHECK(same(data::split_counts(6), {4, 1, 1}));
  CHECK(same(data::split_counts(10), {8, 1, 1}));
  CHECK(same(data::split_counts(11), {8, 1, 2}));
  // Against the formula in floating point (ceil(0.2 n), ceil(held / 2)) for every n up to 5000.
  for (int64_t n = 0; n <= 5000; n++) {
    const int64_t held = int64_t(std::ceil(0.2L * n - 1e-9L));
    const SplitCounts c = data::split_counts(n);
    REQUIRE(c.test == (held + 1) / 2);
    REQUIRE(c.val + c.test == held);
    REQUIRE(c.total() == n);
  }
}

TEST_CASE("split: stratified, disjoint, complete, with the README counts for any seed") {
  const data::FolderListing l = fake_listing(kReal);
  for (uint64_t seed : {0ull, 1ull, 42ull, 123456789ull}) {
    CAPTURE(seed);
    const Split s = data::make_split(l, Task::binary, seed);
    CHECK(s.seed == seed);
    CHECK(s.class_names == std::vector<std::string>{"benign", "malignant"});
    CHECK(s.folders == l.folders);
    CHECK(s.train.size() == 2604);
    CHECK(s.val.size() == 324);
    CHECK(s.test.size() == 328);
    for (size_t f = 0; f < 4; f++) {
      const SplitCounts c = s.folder_counts(l.folders[f]), e = data::split_counts(kReal[f]);
      CHECK(c.train == e.train);
      CHECK(c.val == e.val);
      CHECK(c.test == e.test);
    }
    std::set<std::string> all;
    for (const auto* part : {&s.train, &s.val, &s.test}) {
      CHECK(std::is_sorted(part->begin(), part->end()));
      all.insert(part->begin(), part->end());
    }
    CHECK(all.size() == 3256);  // disjoint and complete
    // The binary majority baseline of the README: 277 malignant of 328 test images.
    const int64_t benign_test = s.folder_counts("Benign").test;
    CHECK(int64_t(s.test.size()) - benign_test == 277);
  }
}

TEST_CASE("split: deterministic by seed, different seeds choose different files") {
  const data::FolderListing l = fake_listing({30, 41, 17, 25});
  const Split a = data::make_split(l, Task::subtype, 7), b = data::make_split(l, Task::subtype, 7);
  CHECK(a.train == b.train);
  CHECK(a.val == b.val);
  CHECK(a.test == b.test);
  const Split c = data::make_split(l, Task::subtype, 8);
  CHECK(a.test != c.test);
  // The two tasks share the split (it is made per folder), only the class names differ.
  const Split bin = data::make_split(l, Task::binary, 7);
  CHECK(bin.train == a.train);
  CHECK(bin.test == a.test);
  CHECK(a.class_names == l.folders);
  // The caller's file order does not matter: the files are sorted before shuffling.
  data::FolderListing reversed = l;
  for (auto& files : reversed.files) std::reverse(files.begin(), files.end());
  CHECK(data::make_split(reversed, Task::subtype, 7).test == a.test);
  // Over many seeds a given file lands in the test part as often as chance says: the shuffle
  // is not stuck on the first or last names.
  int first_in_test = 0;
  for (uint64_t seed = 0; seed < 400; seed++) {
    const Split s = data::make_split(l, Task::subtype, seed);
    first_in_test += std::count(s.test.begin(), s.test.end(), "Benign/WBC-Benign-001.jpg") ? 1 : 0;
  }
  // 3 of 30 Benign files are test files: p = 0.1, 400 draws -> 40 +- 6 (3 sigma: 22..58).
  CHECK(first_in_test > 22);
  CHECK(first_in_test < 58);
}

TEST_CASE("split: JSON round trip through a file") {
  TempDir dir;
  const Split s = data::make_split(fake_listing({12, 9, 7, 5}), Task::binary, 42);
  data::save_split(dir / "split.json", s);
  const Split r = data::load_split(dir / "split.json");
  CHECK(r.seed == 42);
  CHECK(r.task == Task::binary);
  CHECK(r.class_names == s.class_names);
  CHECK(r.folders == s.folders);
  CHECK(r.train == s.train);
  CHECK(r.val == s.val);
  CHECK(r.test == s.test);
  CHECK(data::split_to_json(r) == data::split_to_json(s));
  // A seed above 2^63 survives too.
  Split big = s;
  big.seed = 18446744073709551615ull;
  CHECK(data::split_from_json(data::split_to_json(big)).seed == big.seed);
}

TEST_CASE("split: bad split files are one-line errors naming the file") {
  TempDir dir;
  check_error([&] { data::load_split(dir / "none.json"); }, {dir / "none.json", "cannot open"});
  const std::string good = data::split_to_json(data::make_split(fake_listing({5, 5}), Task::binary, 1));
  auto with = [&](const std::string& from, const std::string& to) {
    std::string t = good;
    const size_t at = t.find(from);
    REQUIRE(at != std::string::npos);
    return t.replace(at, from.size(), to);
  };
  const std::vector<std::pair<std::string, std::vector<std::string>>> bad = {
      {"{\"seed\": 1,", {"not a valid JSON"}},
      {"[1, 2]", {"JSON object"}},
      {with("\"format\": \"leuko-split-1\"", "\"format\": \"other\""), {"format", "leuko-split-1"}},
      {with("\"seed\": 1", "\"x\": 1"), {"no 'seed' field"}},
      {with("\"seed\": 1", "\"seed\": -3"), {"'seed'", "non-negative"}},
      {with("\"seed\": 1", "\"seed\": \"1\""), {"'seed'"}},
      {with("\"task\": \"binary\"", "\"task\": \"ternary\""), {"ternary", "binary or subtype"}},
      {with("\"malignant\"", "\"malignant\", \"other\""), {"binary task has 2 classes"}},
      {with("\"train\": [", "\"train\": [3, "), {"'train'", "list of strings"}},
      {with("\"train\": [", "\"train\": [\"/etc/passwd\", "), {"/etc/passwd", "inside the data folder"}},
      {with("\"train\": [", "\"train\": [\"Benign/../../x.jpg\", "), {"../", "inside the data folder"}},
      {with("\"train\": [", "\"train\": [\"Other/x.jpg\", "), {"Other/x.jpg", "not one of 'folders'"}},
      {with("\"train\": [", "\"train\": [\"Benign/WBC-Benign-001.jpg\", \"Benign/WBC-Benign-001.jpg\", "),
       {"Benign/WBC-Benign-001.jpg", "listed twice"}},
      {with("\"test\": [", "\"test\": [\"Benign/WBC-Benign-001.jpg\", \"Benign/WBC-Benign-002.jpg\", "),
       {"listed twice"}},
  };
  for (const auto& [text, parts] : bad) {
    CAPTURE(text);
    write_bytes(dir / "bad.json", std::vector<uint8_t>(text.begin(), text.end()));
    std::vector<std::string> want = parts;
    want.push_back(dir / "bad.json");
    check_error([&] { data::load_split(dir / "bad.json"); }, want);
  }
}

TEST_CASE("split: applied to a dataset, files must match") {
  // An in-memory dataset whose files are "<class>/<i>", and a listing of the same names.
  std::vector<data::Image> imgs;
  std::vector<int64_t> labels;
  for (int i = 0; i < 23; i++) {
    imgs.push_back(solid_image(2, 2, uint8_t(i), 0, 0));
    labels.push_back(i < 10 ? 0 : 1);
  }
  const data::Dataset d = data::Dataset::from_images(imgs, labels, {"Benign", "Pro"});
  data::FolderListing l;
  l.folders = {"Benign", "Pro"};
  l.files.resize(2);
  for (int i = 0; i < 23; i++) l.files[i < 10 ? 0 : 1].push_back(std::to_string(i));
  const Split s = data::make_split(l, Task::subtype, 3);
  const data::SplitDatasets parts = data::apply_split(d, s);
  CHECK(parts.train.size() == int64_t(s.train.size()));
  CHECK(parts.val.size() == int64_t(s.val.size()));
  CHECK(parts.test.size() == int64_t(s.test.size()));
  CHECK(parts.train.size() + parts.val.size() + parts.test.size() == 23);
  for (int64_t i = 0; i < parts.test.size(); i++) {
    CHECK(parts.test.file(i) == s.test[size_t(i)]);
    CHECK(parts.test.label(i) == (parts.test.file(i).rfind("Benign/", 0) == 0 ? 0 : 1));
  }
  // A split that names a file the dataset lacks; a dataset with a file the split lacks.
  Split extra = s;
  extra.train.push_back("Pro/99");
  check_error([&] { data::apply_split(d, extra); }, {"Pro/99", "not in the dataset"});
  Split missing = s;
  missing.train.erase(missing.train.begin());
  check_error([&] { data::apply_split(d, missing); }, {s.train.front(), "in none of the split's parts"});
}
