#include "targets.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "data/image.h"
#include "data/split.h"
#include "tensor/safetensors.h"
#include "tools/leuko/plot.h"
#include "tools/leuko/run_config.h"

namespace leuko::fuzz {

void safetensors_input(const uint8_t* data, size_t size) {
  SafetensorsFile file;
  try {
    file = parse_safetensors(std::string(reinterpret_cast<const char*>(data), size), "fuzz.safetensors");
  } catch (const Error&) {
    return;
  }
  // Touch every byte of every tensor (ASan checks the reads), converting from its dtype.
  double sum = 0;
  for (const auto& [name, t] : file.tensors) {
    for (double v : t.to_double_vector()) sum += v;
  }
  (void)sum;
  auto config = file.metadata.find("leuko.config");
  if (config == file.metadata.end()) return;
  try {  // as load_checkpoint reads it
    cli::RunConfig::from_json(nlohmann::json::parse(config->second), "fuzz.safetensors");
  } catch (const nlohmann::json::exception&) {  // load_checkpoint turns these into an Error
  } catch (const Error&) {
  }
}

// Images above a million pixels are refused (by the same check that refuses decompression
// bombs above leuko's default limit), as libjpeg-turbo's fuzzers skip them: decoding one takes
// seconds under the sanitizers, and the bugs sought need no large image.
constexpr int64_t kMaxPixels = int64_t(1) << 20;

void image_input(const uint8_t* data, size_t size) {
  data::Image img;
  try {
    img = data::decode_image_bytes(data, size, "fuzz.img", kMaxPixels);
  } catch (const Error&) {
    return;
  }
  // A decoded image must be what it says: its pixels, and resizable (the loader's first step).
  if (img.height <= 0 || img.width <= 0 || img.pixels.size() != size_t(img.height) * size_t(img.width) * 3) {
    std::fprintf(stderr, "decode_image_bytes returned an image %d high and %d wide with %zu bytes\n", img.height,
                 img.width, img.pixels.size());
    std::abort();
  }
  data::resize(img, 7, 5);
  // A crop of the middle, enlarged to a size that differs from the source in both directions.
  const data::Box box{img.height / 3, img.width / 4, std::max(1, img.height / 2), std::max(1, img.width / 2)};
  data::resize_region(img, box, std::min(img.height, 9) + 2, 3);
}

namespace {

// read_log_csv reads a file: this process's own temporary file holds the input.
std::string temp_path() {
  static const std::string path = "/tmp/leuko-fuzz-" + std::to_string(getpid()) + ".csv";
  return path;
}

}  // namespace

void text_input(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    data::split_from_json(text, "split.json");
  } catch (const Error&) {
  }
  try {  // as load_checkpoint reads a configuration
    cli::RunConfig::from_json(nlohmann::json::parse(text), "config.json");
  } catch (const nlohmann::json::exception&) {  // load_checkpoint turns these into an Error
  } catch (const Error&) {
  }
  const std::string path = temp_path();
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return;
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
  try {
    cli::read_log_csv(path);
  } catch (const Error&) {
  }
  std::remove(path.c_str());
}

}  // namespace leuko::fuzz
