// Shared by the data tests: a temporary folder that removes itself, raw file writing, and small
// images with known pixels.
#pragma once

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/image.h"
#include "tensor/check.h"

namespace leuko::test {

// A fresh folder under the system's temporary directory, deleted with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "leuko-test-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  REQUIRE(f.good());
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE(f.good());
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// An h x w image whose every pixel differs: r = 7y + 3x + seed, g = 5x + 11y, b = (x * y + seed).
inline data::Image pattern_image(int h, int w, int seed = 0) {
  data::Image img(h, w);
  for (int y = 0; y < h; y++) {
    for (int x = 0; x < w; x++) {
      uint8_t* p = img.at(y, x);
      p[0] = uint8_t(7 * y + 3 * x + seed);
      p[1] = uint8_t(5 * x + 11 * y);
      p[2] = uint8_t(x * y + seed);
    }
  }
  return img;
}

inline data::Image solid_image(int h, int w, uint8_t r, uint8_t g, uint8_t b) {
  data::Image img(h, w);
  for (int i = 0; i < h * w; i++) {
    img.pixels[size_t(3 * i)] = r;
    img.pixels[size_t(3 * i + 1)] = g;
    img.pixels[size_t(3 * i + 2)] = b;
  }
  return img;
}

// Runs f and checks that it throws leuko::Error whose message contains every one of `parts`.
template <typename F>
void check_error(F&& f, const std::vector<std::string>& parts) {
  std::string message;
  try {
    f();
  } catch (const Error& e) {
    message = e.what();
  }
  INFO("error message: \"" << message << "\"");
  REQUIRE_FALSE(message.empty());
  for (const auto& p : parts) {
    INFO("expected to contain: \"" << p << "\"");
    CHECK(message.find(p) != std::string::npos);
  }
  CHECK(message.find('\n') == std::string::npos);  // one line
}

}  // namespace leuko::test
