#include "run_helpers.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include <doctest/doctest.h>

#include "data/synth.h"
#include "tensor/safetensors.h"

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

cli::TrainOptions tiny_train_options(const std::string& data, const std::string& out) {
  cli::TrainOptions o;
  cli::RunConfig& c = o.config;
  c.model = "resnet18";
  c.data = data;
  c.input = 32;
  c.epochs = 2;
  c.batch = 8;
  c.optimizer = "adamw";
  c.lr = 1e-3;
  c.weight_decay = 1e-4;
  c.schedule = "cosine";
  c.warmup_epochs = 1;
  c.label_smoothing = 0.1;
  c.class_weights = true;
  c.augment = "flips";  // random flips and turns: the augmentation's randomness must repeat too
  c.device = "cpu";
  c.workers = 2;
  c.seed = 5;
  o.run_dir = out;
  o.quiet = true;
  return o;
}

void check_same_bits(const std::string& a, const std::string& b) {
  SafetensorsFile fa = load_safetensors(a), fb = load_safetensors(b);
  REQUIRE(fa.tensors.size() == fb.tensors.size());
  for (size_t i = 0; i < fa.tensors.size(); i++) {
    CAPTURE(fa.tensors[i].first);
    REQUIRE(fa.tensors[i].first == fb.tensors[i].first);
    const Tensor& x = fa.tensors[i].second;
    const Tensor& y = fb.tensors[i].second;
    REQUIRE(x.shape() == y.shape());
    REQUIRE(x.dtype() == y.dtype());
    CHECK(std::memcmp(x.raw_data(), y.raw_data(), x.nbytes()) == 0);
  }
}

}  // namespace leuko::test
