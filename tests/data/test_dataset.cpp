// Image-folder datasets (data/dataset.h), on folders the tests write into a temporary folder.
#include <doctest/doctest.h>

#include <filesystem>

#include "data/dataset.h"
#include "data_helpers.h"

using namespace leuko;
using namespace leuko::test;
using data::Dataset;
using data::DatasetOptions;
using data::Task;

namespace fs = std::filesystem;

TEST_CASE("dataset: task names") {
  CHECK(data::parse_task("binary") == Task::binary);
  CHECK(data::parse_task("subtype") == Task::subtype);
  CHECK(std::string(data::task_name(Task::subtype)) == "subtype");
  check_error([] { data::parse_task("Binary"); }, {"Binary", "binary, subtype"});
}

TEST_CASE("dataset: image file names") {
  for (const char* yes : {"a.jpg", "b.JPG", "c.jpeg", "d.JpEg", "e.png", "f.PNG", "g.bmp", "x.y.png"}) {
    CHECK(data::is_image_file_name(yes));
  }
  for (const char* no : {"a.gif", "README.md", "jpg", "a.jpg.txt", "a.tif", "a."}) CHECK_FALSE(data::is_image_file_name(no));
}

TEST_CASE("dataset: labels of the binary and subtype tasks, over any folder names") {
  const std::vector<std::string> folders{"Benign", "Early", "Pre", "Pro"};
  const data::LabelMap b = data::make_labels(folders, Task::binary);
  CHECK(b.class_names == std::vector<std::string>{"benign", "malignant"});
  CHECK(b.folder_label == std::vector<int64_t>{0, 1, 1, 1});
  const data::LabelMap s = data::make_labels(folders, Task::subtype);
  CHECK(s.class_names == folders);
  CHECK(s.folder_label == std::vector<int64_t>{0, 1, 2, 3});
  // The benign folder is found by name wherever it sorts, in any letter case, or renamed.
  CHECK(data::make_labels({"ALL", "benign", "zeta"}, Task::binary).folder_label == std::vector<int64_t>{1, 0, 1});
  CHECK(data::make_labels({"healthy", "sick"}, Task::binary, "healthy").folder_label == std::vector<int64_t>{0, 1});
  check_error([] { data::make_labels({"Early", "Pre"}, Task::binary); }, {"binary", "no folder named 'Benign'", "Early, Pre"});
  check_error([] { data::make_labels({"Benign"}, Task::binary); }, {"binary", "at least one other folder"});
  check_error([] { data::make_labels({"Benign", "benign", "X"}, Task::binary); }, {"two folders"});
}

#if LEUKO_HAVE_STB

namespace {

// root/Benign: 2 images, Early: 3, Pre: 1, Pro: 2. Each image is solid, with red = 10 * folder
// + file number, so a test can tell which file it got; green = 7, blue = 9.
void make_layout(const std::string& root, bool mixed_sizes = false) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> layout = {
      {"Benign", {"b2.png", "b1.png"}},
      {"Early", {"e3.PNG", "e1.png", "e2.bmp"}},
      {"Pre", {"p1.png"}},
      {"Pro", {"q2.jpeg.png", "q1.png"}},
  };
  for (size_t f = 0; f < layout.size(); f++) {
    fs::create_directories(root + "/" + layout[f].first);
    for (const auto& name : layout[f].second) {
      const int k = name[1] - '0';
      const int side = mixed_sizes && f == 2 ? 12 : 8;
      data::write_image(root + "/" + layout[f].first + "/" + name, solid_image(side, side, uint8_t(10 * f + k), 7, 9));
    }
  }
}

}  // namespace

TEST_CASE("dataset: folders and files sorted, labels by task, other files ignored") {
  TempDir dir;
  make_layout(dir.path());
  // Things that are not samples: files in the root, a hidden folder, a text file, a hidden image,
  // a nested folder inside a class folder.
  write_bytes(dir / "README.md", {'x'});
  write_bytes(dir / "MANIFEST.sha256", {'x'});
  fs::create_directories(dir / ".cache");
  data::write_image(dir / ".cache/h.png", solid_image(8, 8, 1, 1, 1));
  write_bytes(dir / "Pre/notes.txt", {'x'});
  data::write_image(dir / "Pre/._p0.png", solid_image(8, 8, 1, 1, 1));
  fs::create_directories(dir / "Pro/nested");
  data::write_image(dir / "Pro/nested/n.png", solid_image(8, 8, 1, 1, 1));

  const data::FolderListing listing = data::list_image_folder(dir.path());
  CHECK(listing.folders == std::vector<std::string>{"Benign", "Early", "Pre", "Pro"});
  CHECK(listing.files[1] == std::vector<std::string>{"e1.png", "e2.bmp", "e3.PNG"});
  CHECK(listing.files[3] == std::vector<std::string>{"q1.png", "q2.jpeg.png"});
  CHECK(listing.total() == 8);

  for (int threads : {1, 3}) {
    CAPTURE(threads);
    DatasetOptions o;
    o.threads = threads;
    const Dataset d = Dataset::load(dir.path(), o);  // binary by default
    REQUIRE(d.size() == 8);
    CHECK(d.task() == Task::binary);
    CHECK(d.class_names() == std::vector<std::string>{"benign", "malignant"});
    CHECK(d.folders() == listing.folders);
    CHECK(d.class_counts() == std::vector<int64_t>{2, 6});
    const std::vector<std::string> files{"Benign/b1.png", "Benign/b2.png", "Early/e1.png", "Early/e2.bmp",
                                         "Early/e3.PNG",  "Pre/p1.png",    "Pro/q1.png",   "Pro/q2.jpeg.png"};
    const std::vector<int> folder{0, 0, 1, 1, 1, 2, 3, 3}, red{1, 2, 11, 12, 13, 21, 31, 32};
    for (int64_t i = 0; i < d.size(); i++) {
      CAPTURE(i);
      CHECK(d.file(i) == files[size_t(i)]);
      CHECK(d.sample(i).folder == folder[size_t(i)]);
      CHECK(d.label(i) == (folder[size_t(i)] == 0 ? 0 : 1));
      CHECK(d.image(i) == solid_image(8, 8, uint8_t(red[size_t(i)]), 7, 9));  // decoded once, the right file
      CHECK(d.find(files[size_t(i)]) == i);
    }
    CHECK(d.find("Pro/none.png") == -1);
    CHECK(d.skipped().empty());

    o.task = Task::subtype;
    const Dataset s = Dataset::load(dir.path(), o);
    CHECK(s.class_names() == listing.folders);
    CHECK(s.class_counts() == std::vector<int64_t>{2, 3, 1, 2});
    for (int64_t i = 0; i < s.size(); i++) CHECK(s.label(i) == folder[size_t(i)]);
  }
}

TEST_CASE("dataset: cache size") {
  TempDir dir;
  make_layout(dir.path(), /*mixed_sizes=*/true);
  // Cache size 0 with mixed sizes: every image to the default 256 x 256.
  const Dataset d = Dataset::load(dir.path());
  for (int64_t i = 0; i < d.size(); i++) {
    CHECK(d.image(i).height == data::kDefaultCacheSize);
    CHECK(d.image(i).width == data::kDefaultCacheSize);
  }
  CHECK(d.image(0) == solid_image(256, 256, 1, 7, 9));  // resizing a solid image keeps it solid
  // An explicit size: every image to it.
  DatasetOptions o;
  o.cache_size = 16;
  const Dataset d16 = Dataset::load(dir.path(), o);
  for (int64_t i = 0; i < d16.size(); i++) CHECK(d16.image(i).height == 16);
  // All the same size: kept as they are.
  TempDir same;
  make_layout(same.path());
  const Dataset ds = Dataset::load(same.path());
  for (int64_t i = 0; i < ds.size(); i++) CHECK(ds.image(i).width == 8);
  o.cache_size = -1;
  check_error([&] { Dataset::load(same.path(), o); }, {"cache size"});
}

TEST_CASE("dataset: every error names the path") {
  TempDir dir;
  check_error([&] { Dataset::load(dir / "missing"); }, {dir / "missing", "does not exist"});
  write_bytes(dir / "file", {'x'});
  check_error([&] { Dataset::load(dir / "file"); }, {dir / "file", "not a folder"});
  fs::create_directories(dir / "flat");
  data::write_image(dir / "flat/a.png", solid_image(4, 4, 1, 2, 3));
  check_error([&] { Dataset::load(dir / "flat"); }, {dir / "flat", "no class folders"});
  fs::create_directories(dir / "empty/Benign");
  fs::create_directories(dir / "empty/Pro");
  data::write_image(dir / "empty/Benign/a.png", solid_image(4, 4, 1, 2, 3));
  write_bytes(dir / "empty/Pro/readme.txt", {'x'});  // files, but no image
  check_error([&] { Dataset::load(dir / "empty"); }, {dir / "empty/Pro", "holds no"});
  // Binary without a Benign folder.
  fs::create_directories(dir / "nobenign/A");
  fs::create_directories(dir / "nobenign/B");
  data::write_image(dir / "nobenign/A/a.png", solid_image(4, 4, 1, 2, 3));
  data::write_image(dir / "nobenign/B/b.png", solid_image(4, 4, 1, 2, 3));
  check_error([&] { Dataset::load(dir / "nobenign"); }, {"no folder named 'Benign'"});
  DatasetOptions o;
  o.task = Task::subtype;
  CHECK(Dataset::load(dir / "nobenign", o).size() == 2);  // fine for the subtype task
}

TEST_CASE("dataset: a corrupt image fails the load, or is skipped and counted with skip_bad") {
  TempDir dir;
  make_layout(dir.path());
  write_bytes(dir / "Early/e0.png", {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 1, 2, 3});  // truncated
  write_bytes(dir / "Pro/q0.jpg", {'n', 'o', 't', ' ', 'a', 'n', ' ', 'i', 'm', 'a', 'g', 'e'});
  for (int threads : {1, 4}) {  // the first bad file in order is the one reported, whatever the threads
    DatasetOptions o;
    o.threads = threads;
    check_error([&] { Dataset::load(dir.path(), o); }, {dir / "Early/e0.png", "PNG"});
  }
  DatasetOptions o;
  o.skip_bad = true;
  o.quiet = true;
  const Dataset d = Dataset::load(dir.path(), o);
  CHECK(d.size() == 8);
  REQUIRE(d.skipped().size() == 2);
  CHECK(d.skipped()[0].file == "Early/e0.png");
  CHECK(d.skipped()[0].reason.find("truncated PNG") != std::string::npos);
  CHECK(d.skipped()[1].file == "Pro/q0.jpg");
  CHECK(d.skipped()[1].reason.find("not a JPEG, PNG or BMP") != std::string::npos);
  CHECK(d.find("Early/e0.png") == -1);
  // All bad: an error even with skip_bad.
  TempDir bad;
  fs::create_directories(bad / "Benign");
  fs::create_directories(bad / "X");
  write_bytes(bad / "Benign/a.png", {'x'});
  write_bytes(bad / "X/b.png", {'y'});
  check_error([&] { Dataset::load(bad.path(), o); }, {"every one of the 2 images failed"});
}

#else

TEST_CASE("dataset: loading needs stb") {
  WARN_MESSAGE(false, "skipped: the dataset-loading tests need stb (libstb-dev); this build has none");
}

#endif

TEST_CASE("dataset: in-memory datasets and subsets share images") {
  std::vector<data::Image> imgs;
  for (int i = 0; i < 5; i++) imgs.push_back(solid_image(3, 4, uint8_t(i), 0, 0));
  const Dataset d = Dataset::from_images(imgs, {0, 1, 1, 0, 1}, {"a", "b"});
  CHECK(d.size() == 5);
  CHECK(d.file(2) == "b/2");
  CHECK(d.class_counts() == std::vector<int64_t>{2, 3});
  const Dataset s = d.subset({4, 0});
  CHECK(s.size() == 2);
  CHECK(s.label(0) == 1);
  CHECK(s.file(1) == "a/0");
  CHECK(&s.image(0) == &d.image(4));  // the same pixels, not a copy
  check_error([&] { d.subset({5}); }, {"sample 5", "out of range"});
  check_error([&] { Dataset::from_images(imgs, {0, 1}, {"a", "b"}); }, {"5 images but 2 labels"});
  check_error([&] { Dataset::from_images(imgs, {0, 1, 2, 0, 1}, {"a", "b"}); }, {"label 2"});
}
