// The split of the real leukemia images (../shared/data/leukemia beside the repository, for
// evaluation only, never committed). Only file names are read: nothing is decoded.
// Where the folder is absent (CI, a user's checkout) the test reports itself as skipped with a
// warning that shows in doctest's output; it checks nothing it could pass by accident.
#include <doctest/doctest.h>

#include <filesystem>

#include "data/split.h"

using namespace leuko;

namespace {
// tests/fixtures/../../../shared/data/leukemia: the shared folder next to the repository.
std::string leukemia_dir() { return std::string(LEUKO_TEST_DATA) + "/../../../shared/data/leukemia"; }
}  // namespace

TEST_CASE("leukemia data (needs ../shared/data/leukemia): split counts equal the README table") {
  const std::string dir = leukemia_dir();
  if (!std::filesystem::is_directory(dir)) {
    WARN_MESSAGE(false, "skipped: " << dir << " not present (the real images are not part of the repository)");
    return;
  }
  const data::FolderListing l = data::list_image_folder(dir);
  REQUIRE(l.folders == std::vector<std::string>{"Benign", "Early", "Pre", "Pro"});
  const int64_t sizes[4] = {504, 985, 963, 804};
  for (size_t f = 0; f < 4; f++) CHECK(int64_t(l.files[f].size()) == sizes[f]);
  CHECK(l.files[0].front() == "WBC-Benign-001.jpg");
  // README: class, train, val, test.
  const data::SplitCounts table[4] = {{403, 50, 51}, {788, 98, 99}, {770, 96, 97}, {643, 80, 81}};
  for (uint64_t seed : {42ull, 0ull, 7ull}) {
    CAPTURE(seed);
    const data::Split s = data::make_split(l, data::Task::binary, seed);
    for (size_t f = 0; f < 4; f++) {
      const data::SplitCounts c = s.folder_counts(l.folders[f]);
      CAPTURE(l.folders[f]);
      CHECK(c.train == table[f].train);
      CHECK(c.val == table[f].val);
      CHECK(c.test == table[f].test);
    }
    CHECK(s.train.size() == 2604);
    CHECK(s.val.size() == 324);
    CHECK(s.test.size() == 328);
    CHECK(int64_t(s.test.size()) - s.folder_counts("Benign").test == 277);  // the majority baseline's 277/328
  }
}
