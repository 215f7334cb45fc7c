#include "run_helpers.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "data/synth.h"

namespace leuko::test {

namespace fs = std::filesystem;

namespace {
struct Scratch {
  std::vector<std::string> paths;
  ~Scratch() {
    std::error_code ec;  // never throw from here: a folder already gone is fine
    for (const std::string& p : paths) {
      fs::remove_all(p, ec);
      for (const char* log : {".log", ".resume.log", ".again.log"}) fs::remove(p + log, ec);
    }
  }
};
}  // namespace

std::string scratch(const std::string& path) {
  static Scratch s;
  s.paths.push_back(path);
  fs::remove_all(path);
  return path;
}

std::string scratch_dir(const std::string& prefix, const std::string& name) {
  return scratch((fs::temp_directory_path() / ("leuko-" + prefix + "-" + name + "-" + std::to_string(getpid()))).string());
}

std::string synth_dataset(const std::string& prefix, int per_class, int size, uint64_t seed) {
  const std::string dir = scratch_dir(prefix, "data");
  data::SynthOptions o;
  o.per_class = per_class;
  o.size = size;
  o.seed = seed;
  o.format = "png";  // lossless: the same pixels on every machine
  data::write_synth_dataset(dir, o, nullptr);
  return dir;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace leuko::test
