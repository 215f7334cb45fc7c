// The synthetic blood-smear dataset (data/synth.h): file names, determinism, the written
// folder loads back as a balanced dataset, and the classes differ in what they should.
#include <doctest/doctest.h>

#include <filesystem>

#include "data/dataset.h"
#include "data/synth.h"
#include "data_helpers.h"

using namespace leuko;
using namespace leuko::test;

namespace fs = std::filesystem;

namespace {

// Pixels dark and purple enough to be nucleus (the background, red cells and cytoplasm are
// lighter or redder): a crude segmentation, enough to compare classes.
int nucleus_pixels(const data::Image& img) {
  int n = 0;
  for (size_t i = 0; i < img.pixels.size(); i += 3) {
    const int r = img.pixels[i], g = img.pixels[i + 1], b = img.pixels[i + 2];
    n += (r < 150 && g < 110 && b > g + 30) ? 1 : 0;
  }
  return n;
}

}  // namespace

TEST_CASE("synth: file names as the real data's") {
  CHECK(data::synth_folders() == std::vector<std::string>{"Benign", "Early", "Pre", "Pro"});
  CHECK(data::synth_file_name(0, 1) == "WBC-Benign-001.jpg");
  CHECK(data::synth_file_name(1, 42) == "WBC-Malignant-Early-042.jpg");
  CHECK(data::synth_file_name(2, 7, "png") == "WBC-Malignant-Pre-007.png");
  CHECK(data::synth_file_name(3, 1234) == "WBC-Malignant-Pro-1234.jpg");
  check_error([] { data::synth_file_name(4, 1); }, {"class 4"});
}

TEST_CASE("synth: images are deterministic and differ by seed, index and class") {
  const data::Image a = data::synth_image(2, 64, 1, 5);
  CHECK(a.height == 64);
  CHECK(a.width == 64);
  CHECK(a == data::synth_image(2, 64, 1, 5));
  CHECK_FALSE(a == data::synth_image(2, 64, 2, 5));
  CHECK_FALSE(a == data::synth_image(2, 64, 1, 6));
  CHECK_FALSE(a == data::synth_image(3, 64, 1, 5));
  check_error([] { data::synth_image(0, 8, 1, 1); }, {"size 8"});
}

TEST_CASE("synth: classes differ in nucleus size on average, with overlap between images") {
  // Benign (small cells, large nucleus ratio) and Pro (large cells) over 24 images each, 112 px.
  double mean[4] = {0, 0, 0, 0};
  int lo[4] = {1 << 30, 1 << 30, 1 << 30, 1 << 30}, hi[4] = {0, 0, 0, 0};
  for (int cls = 0; cls < 4; cls++) {
    for (int i = 1; i <= 24; i++) {
      const int n = nucleus_pixels(data::synth_image(cls, 112, 9, i));
      mean[cls] += n / 24.0;
      lo[cls] = std::min(lo[cls], n);
      hi[cls] = std::max(hi[cls], n);
    }
  }
  for (int cls = 0; cls < 4; cls++) {
    CAPTURE(cls);
    CHECK(mean[cls] > 100);  // there is a nucleus in every class
  }
  CHECK(mean[3] > 1.3 * mean[0]);  // Pro's nuclei are larger than Benign's on average
  CHECK(lo[3] < hi[0]);            // ... but not always: the ranges overlap
}

#if LEUKO_HAVE_STB

TEST_CASE("synth: writes the leukemia layout, loads back balanced, same bytes for a seed") {
  TempDir dir;
  data::SynthOptions o;
  o.per_class = 5;
  o.size = 48;
  o.seed = 3;
  o.threads = 4;
  int64_t calls = 0, last = 0;
  CHECK(data::write_synth_dataset(dir / "a", o, [&](int64_t done, int64_t total) {
    calls++;
    CHECK(total == 20);
    CHECK(done == last + 1);  // called once per file, one thread at a time, counting up
    last = done;
  }) == 20);
  CHECK(calls == 20);
  CHECK(fs::exists(dir / "a/Benign/WBC-Benign-001.jpg"));
  CHECK(fs::exists(dir / "a/Pro/WBC-Malignant-Pro-005.jpg"));
  CHECK_FALSE(fs::exists(dir / "a/Pro/WBC-Malignant-Pro-006.jpg"));

  data::DatasetOptions dopt;
  dopt.task = data::Task::subtype;
  const data::Dataset d = data::Dataset::load(dir / "a", dopt);
  CHECK(d.size() == 20);
  CHECK(d.class_counts() == std::vector<int64_t>{5, 5, 5, 5});
  CHECK(d.class_names() == data::synth_folders());
  CHECK(d.image(0).height == 48);
  CHECK(data::Dataset::load(dir / "a").class_counts() == std::vector<int64_t>{5, 15});  // binary

  // Same seed, one thread: the same bytes. Another seed: other bytes.
  o.threads = 1;
  data::write_synth_dataset(dir / "b", o);
  o.seed = 4;
  data::write_synth_dataset(dir / "c", o);
  for (const char* f : {"Benign/WBC-Benign-001.jpg", "Pre/WBC-Malignant-Pre-003.jpg", "Pro/WBC-Malignant-Pro-005.jpg"}) {
    CAPTURE(f);
    CHECK(read_bytes(dir / std::string("a/") + f) == read_bytes(dir / std::string("b/") + f));
    CHECK(read_bytes(dir / std::string("a/") + f) != read_bytes(dir / std::string("c/") + f));
  }
  // PNG: lossless, so the decoded file is the generated image itself.
  o.format = "png";
  o.seed = 3;
  data::write_synth_dataset(dir / "p", o);
  CHECK(data::decode_image(dir / "p/Early/WBC-Malignant-Early-002.png") == data::synth_image(1, 48, 3, 2));

  // Rewriting the same folder is fine; a stale image that would stay behind is refused.
  o.format = "jpg";
  CHECK(data::write_synth_dataset(dir / "a", o) == 20);
  o.per_class = 3;
  check_error([&] { data::write_synth_dataset(dir / "a", o); }, {"WBC-Benign-004.jpg", "would stay"});
  o.format = "gif";
  check_error([&] { data::write_synth_dataset(dir / "x", o); }, {"gif"});
}

#else

TEST_CASE("synth: writing needs stb") {
  WARN_MESSAGE(false, "skipped: writing the synthetic dataset needs stb (libstb-dev); this build has none");
}

#endif
