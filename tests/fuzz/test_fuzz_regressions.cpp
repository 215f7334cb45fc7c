// The fuzzers' inputs in the ordinary test suite: every seed of corpus/<target>/ and every
// input a fuzzer once crashed on (regressions/<target>/, named after the bug) goes through the
// same entry point as the fuzzer (targets.h). Under tools/sanitize.sh this replays them with
// AddressSanitizer and UndefinedBehaviorSanitizer too. Bug-specific checks of the error
// message live beside the replay.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "../data/data_helpers.h"
#include "data/split.h"
#include "targets.h"
#include "tensor/safetensors.h"
#include "tools/leuko/plot.h"
#include "tools/leuko/run_config.h"

namespace fs = std::filesystem;
using namespace leuko;

namespace {

const fs::path kFuzzDir = fs::path(LEUKO_TEST_DATA) / ".." / "fuzz";

// The files of corpus/<target>/ and regressions/<target>/, sorted (a reproducible order).
std::vector<fs::path> inputs(const std::string& folder, const std::string& target) {
  std::vector<fs::path> files;
  const fs::path dir = kFuzzDir / folder / target;
  if (!fs::is_directory(dir)) return files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Replays every input of `target` through `entry`; the corpus must not be empty (else this
// would check nothing).
template <typename F>
void replay(const std::string& target, F entry) {
  const std::vector<fs::path> seeds = inputs("corpus", target);
  CHECK(seeds.size() >= 5);
  std::vector<fs::path> all = seeds;
  for (const fs::path& p : inputs("regressions", target)) all.push_back(p);
  for (const fs::path& p : all) {
    CAPTURE(p.string());
    const std::vector<uint8_t> bytes = test::read_bytes(p.string());
    CHECK_NOTHROW(entry(bytes.data(), bytes.size()));
  }
}

}  // namespace

TEST_CASE("fuzz: safetensors corpus and regressions replay cleanly") { replay("safetensors", fuzz::safetensors_input); }

TEST_CASE("fuzz: image corpus and regressions replay cleanly") { replay("image", fuzz::image_input); }

TEST_CASE("fuzz: split/config/log corpus and regressions replay cleanly") { replay("split", fuzz::text_input); }

TEST_CASE("fuzz: the corpus holds valid files that the readers accept") {
  // So the seeds really start the fuzzer inside each format, not at its first error.
  const fs::path c = kFuzzDir / "corpus";
  CHECK(load_safetensors((c / "safetensors" / "checkpoint").string()).tensors.size() == 4);
  for (const char* name :
       {"rgb.png", "gray.png", "rgba.png", "palette.png", "gray16.png", "rgb.jpg", "gray.jpg", "progressive.jpg",
        "subsampled.jpg", "rgb.bmp", "rgba.bmp", "palette.bmp", "mono.bmp", "top_down.bmp"}) {
    CAPTURE(name);
    const data::Image img = data::decode_image((c / "image" / name).string());
    CHECK(img.height == (std::string(name) == "subsampled.jpg" ? 12 : 6));
  }
  for (const char* name : {"truncated.png", "truncated.jpg", "truncated.bmp"}) {
    CAPTURE(name);
    CHECK_THROWS_AS(data::decode_image((c / "image" / name).string()), Error);
  }
  CHECK(data::load_split((c / "split" / "split.json").string()).train.size() == 3);
}

// ---- The bugs the fuzzers found, one case each (the inputs are in regressions/) -------------

TEST_CASE("fuzz regression: a JSON number out of double's range is a split file error") {
  // nlohmann throws out_of_range (not parse_error) for 1e999; it escaped split_from_json.
  test::check_error([] { data::split_from_json("{\"format\": 1e999}", "s.json"); },
                    {"s.json", "not a valid JSON split file", "1e999"});
}

TEST_CASE("fuzz regression: a JPEG Huffman table with more than 256 codes is corrupt") {
  // stb_image 2.27 wrote past its 257-entry tables (a heap overflow inside its decoder state).
  const std::string path = (kFuzzDir / "regressions/image/jpeg-dht-more-than-256-codes.jpg").string();
  test::check_error([&] { data::decode_image(path); }, {path, "corrupt JPEG", "Huffman table"});
}

TEST_CASE("fuzz regression: a BMP whose rows times stride overflow int64 is truncated") {
  // The size check computed stride * rows in int64 (undefined behaviour past 2^63).
  const std::string path = (kFuzzDir / "regressions/image/bmp-stride-times-rows-overflow.bmp").string();
  test::check_error([&] { data::decode_image(path); }, {path, "truncated BMP"});
}

TEST_CASE("fuzz regression: an image claiming too many pixels is refused before decoding") {
  // 871 bytes that claim a 64263 x 4102 JPEG took minutes and 790 MB to decode.
  const std::string path = (kFuzzDir / "regressions/image/jpeg-871-bytes-claiming-263M-pixels.jpg").string();
  test::check_error([&] { data::decode_image(path); },
                    {path, "64263 wide and 4102 high", "178956970", "decompression bomb"});
  // The limit counts pixels: an 8 x 6 image passes at 48 and is refused at 47.
  const std::vector<uint8_t> png = test::read_bytes((kFuzzDir / "corpus/image/rgb.png").string());
  CHECK(data::decode_image_bytes(png.data(), png.size(), "rgb.png", 48).width == 8);
  test::check_error([&] { data::decode_image_bytes(png.data(), png.size(), "rgb.png", 47); },
                    {"rgb.png", "8 wide and 6 high", "47"});
}

TEST_CASE("fuzz regression: integer fields of a run configuration take whole numbers only") {
  // nlohmann cast 1e300 to int64 (undefined behaviour: UBSan's float-cast-overflow).
  for (const char* text : {R"({"epochs": 1e300})", R"({"seed": -1.5})", R"({"batch": 32.0})"}) {
    CAPTURE(text);
    test::check_error([&] { cli::RunConfig::from_json(nlohmann::json::parse(text), "config.json"); },
                      {"config.json", "must be a whole number"});
  }
  CHECK(cli::RunConfig::from_json(nlohmann::json::parse(R"({"epochs": 7})"), "config.json").epochs == 7);
}

TEST_CASE("fuzz regression: a log.csv epoch outside int64's range is not a whole number") {
  // read_log_csv converted the epoch to int64 before checking it (undefined for 1e300).
  const std::string path = (kFuzzDir / "regressions/split/log-epoch-1e300.csv").string();
  test::check_error([&] { cli::read_log_csv(path); }, {path + ":2", "epoch '1e300'", "whole number"});
}

TEST_CASE("fuzz regression: a BMP with no rows is corrupt, not an empty image") {
  // stb_image decoded it to a 0 x 264 image, which decode_image returned as a success.
  const std::string path = (kFuzzDir / "regressions/image/bmp-zero-height.bmp").string();
  test::check_error([&] { data::decode_image(path); }, {path, "corrupt BMP", "264 wide and 0 high"});
}

TEST_CASE("fuzz regression: a PNG chunk claiming more bytes than the file holds is truncated") {
  // A 242-byte PNG whose second IDAT chunk claims 2^30 bytes: stb_image 2.27 allocated 2 GiB
  // for it before finding the bytes missing.
  const std::string path = (kFuzzDir / "regressions/image/png-second-idat-claiming-1GiB.png").string();
  test::check_error([&] { data::decode_image(path); }, {path, "truncated PNG", "IDAT chunk of 1073741824 bytes"});
}

TEST_CASE("fuzz regression: a JPEG scan that decodes with a Huffman table no segment defined") {
  // stb_image 2.27 decoded with the uninitialised table: garbage code lengths drove its bit count
  // below zero (UBSan: a shift by 34) and crashed the optimised build (a read out of bounds that
  // depended on what the heap held; AddressSanitizer's fresh memory hid it).
  const std::string path = (kFuzzDir / "regressions/image/jpeg-scan-with-undefined-huffman-table.jpg").string();
  test::check_error([&] { data::decode_image(path); },
                    {path, "corrupt JPEG", "AC Huffman table 0, which no DHT segment before it defines"});
}

TEST_CASE("fuzz regression: a BMP with a compression stb_image does not know is refused") {
  // 454 bytes claiming 2.5 million rows, top-down, compression 0xff000000: stb_image 2.27 took
  // the compression for none and decoded 20 million pixels of zeros past the end (12 s), and
  // the pixel limit missed it because the probe passed the height on negated.
  const std::string path = (kFuzzDir / "regressions/image/bmp-unknown-compression-2.5M-rows.bmp").string();
  test::check_error([&] { data::decode_image(path); }, {path, "unsupported BMP (compression 4278190080"});
  // The pixel limit counts a top-down BMP's rows (its height is stored negated): 8 x 6 = 48.
  const std::vector<uint8_t> bmp = test::read_bytes((kFuzzDir / "corpus/image/top_down.bmp").string());
  CHECK(data::decode_image_bytes(bmp.data(), bmp.size(), "top_down.bmp", 48).height == 6);
  test::check_error([&] { data::decode_image_bytes(bmp.data(), bmp.size(), "top_down.bmp", 47); },
                    {"top_down.bmp", "8 wide and 6 high", "47"});
}
