// safetensors: reading PyTorch's files, writing them byte for byte as safetensors.torch does,
// round trips of every dtype, the errors of broken files, and atomic saving.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "fixture.h"
#include "tensor/safetensors.h"

using namespace leuko;
using doctest::Contains;
namespace fs = std::filesystem;

namespace {

const std::string kTorchFile = std::string(LEUKO_TEST_DATA) + "/safetensors_torch.safetensors";

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

// A file: the 8-byte little-endian header length, the header, the data.
std::string st_file(const std::string& header, const std::string& data, uint64_t claimed_len = 0) {
  const uint64_t n = claimed_len ? claimed_len : header.size();
  std::string s;
  for (int i = 0; i < 8; i++) s.push_back(char((n >> (8 * i)) & 0xff));
  return s + header + data;
}

// A fresh directory under the system's temporary directory, removed at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("leuko_test_safetensors_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::vector<double> values(const Tensor& t) { return t.to_double_vector(); }

// The message of the Error `f` throws ("" when it does not throw).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("reads a file written by safetensors.torch.save_file") {
  // tests/fixtures/fx_safetensors.py: every value follows a formula recomputed here.
  SafetensorsFile f = load_safetensors(kTorchFile);
  // File order: by dtype (I64, F64, F32, BF16 as safetensors sorts them), then by name.
  std::vector<std::string> names;
  for (const auto& [n, t] : f.tensors) names.push_back(n);
  CHECK(names == std::vector<std::string>{"i64_labels", "i64_vector", "f64_cube", "f32_empty", "f32_matrix",
                                          "f32_scalar", "bf16_vector"});
  CHECK(f.metadata.size() == 1);
  CHECK(f.metadata.count("torch") == 1);

  Tensor m = f.find("f32_matrix");
  REQUIRE(m.defined());
  CHECK(m.dtype() == DType::f32);
  CHECK(m.shape() == Shape{2, 3});
  CHECK(m.device() == Device::CPU);
  for (int i = 0; i < 6; i++) CHECK(m.data<float>()[i] == float(i - 2) / 4);

  Tensor s = f.find("f32_scalar");
  CHECK(s.dim() == 0);
  CHECK(s.item() == 3.25);

  Tensor e = f.find("f32_empty");
  CHECK(e.shape() == Shape{0, 3});
  CHECK(e.numel() == 0);

  Tensor c = f.find("f64_cube");
  CHECK(c.dtype() == DType::f64);
  CHECK(c.shape() == Shape{2, 3, 4});
  for (int i = 0; i < 24; i++) CHECK(c.data<double>()[i] == double(i + 1) / 7);  // bit for bit

  Tensor h = f.find("bf16_vector");
  CHECK(h.dtype() == DType::bf16);
  const uint16_t want_bits[] = {0x3F80, 0xC020, 0x3DCD, 0x7F80, 0x8000};  // 1, -2.5, 0.1, inf, -0
  for (int i = 0; i < 5; i++) CHECK(h.data<bf16>()[i].bits == want_bits[i]);

  Tensor v = f.find("i64_vector");
  CHECK(v.dtype() == DType::i64);
  const int64_t want_i64[] = {0, -1, (int64_t(1) << 40) + 1, -(int64_t(1) << 62), (int64_t(1) << 53) + 1};
  for (int i = 0; i < 5; i++) CHECK(v.data<int64_t>()[i] == want_i64[i]);
  Tensor l = f.find("i64_labels");
  CHECK(l.shape() == Shape{2, 2});
  CHECK(values(l) == std::vector<double>{3, 1, 4, 1});

  CHECK_FALSE(f.find("no_such_tensor").defined());

  // Several metadata keys, with quotes, a backslash and non-ASCII text.
  SafetensorsFile meta = load_safetensors(std::string(LEUKO_TEST_DATA) + "/safetensors_meta.safetensors");
  CHECK(meta.metadata.at("format") == "pt");
  CHECK(meta.metadata.at("epoch") == "12");
  CHECK(meta.metadata.at("note") == "a \"quoted\" \\ backslash, caf\xC3\xA9");
  CHECK(values(meta.find("x")) == std::vector<double>{1.5, 2.5});
}

TEST_CASE("writes the same bytes as safetensors.torch.save_file") {
  TempDir dir;
  SafetensorsFile f = load_safetensors(kTorchFile);
  // Hand the tensors over in reverse order: the writer sorts them as safetensors does.
  std::vector<std::pair<std::string, Tensor>> reversed(f.tensors.rbegin(), f.tensors.rend());
  const std::string out = dir.file("leuko.safetensors");
  save_safetensors(out, reversed, f.metadata);
  const std::string ours = read_bytes(out), theirs = read_bytes(kTorchFile);
  CHECK(ours.size() == theirs.size());
  CHECK(ours == theirs);
}

TEST_CASE("round trip of every dtype, shape and metadata") {
  TempDir dir;
  std::vector<std::pair<std::string, Tensor>> tensors = {
      {"w", Tensor::from_vector(std::vector<float>{0.1f, -2.f, 3e-8f, 1e30f, -0.f, 7.f}, {3, 2})},
      {"d", Tensor::from_vector(std::vector<double>{1.0 / 3, -1e-300, 2.5}, {3, 1})},
      {"h", Tensor::from_vector(std::vector<float>{1.f, 0.1f, -65504.f}, {3}).to(DType::bf16)},
      {"i", Tensor::from_vector(std::vector<int64_t>{INT64_MIN, -1, INT64_MAX}, {1, 3})},
      {"scalar", Tensor::scalar(-0.5)},
      {"nothing", Tensor::zeros({2, 0, 3})},
      {"layer1.0.bn1.running_mean", Tensor::full({4}, 0.25)},
  };
  const std::map<std::string, std::string> meta = {
      {"epoch", "3"}, {"quote", "a \"b\" \\ c\nnew line"}, {"", "empty key"}, {"unicode", "\xCE\xBB=0.1"}};
  const std::string path = dir.file("all.safetensors");
  save_safetensors(path, tensors, meta);
  SafetensorsFile f = load_safetensors(path);
  CHECK(f.metadata == meta);
  CHECK(f.tensors.size() == tensors.size());
  for (const auto& [name, t] : tensors) {
    CAPTURE(name);
    Tensor back = f.find(name);
    REQUIRE(back.defined());
    CHECK(back.dtype() == t.dtype());
    CHECK(back.shape() == t.shape());
    REQUIRE(back.nbytes() == t.nbytes());
    CHECK(std::memcmp(back.raw_data(), t.raw_data(), t.nbytes()) == 0);  // bit for bit
  }
  // No metadata: no "__metadata__" entry at all.
  save_safetensors(path, {{"x", Tensor::ones({1})}});
  CHECK(read_bytes(path).find("__metadata__") == std::string::npos);
  CHECK(load_safetensors(path).metadata.empty());
  // No tensors at all.
  save_safetensors(path, {});
  CHECK(load_safetensors(path).tensors.empty());
  // The data section starts 8-byte aligned: the header is padded with spaces.
  const std::string bytes = read_bytes(path);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; i--) header_len = (header_len << 8) | uint8_t(bytes[size_t(i)]);
  CHECK(header_len % 8 == 0);

  CHECK_THROWS_WITH_AS(save_safetensors(path, {{"a", Tensor::ones({1})}, {"a", Tensor::ones({2})}}),
                       Contains("two tensors named 'a'"), Error);
}

TEST_CASE("broken files: errors name the file and what is wrong") {
  TempDir dir;
  const std::string good = read_bytes(kTorchFile);
  const std::string path = dir.file("broken.safetensors");

  SUBCASE("missing file") {
    const std::string missing = dir.file("missing.safetensors");
    CHECK_THROWS_WITH_AS(load_safetensors(missing), Contains((missing + ": cannot open").c_str()), Error);
  }
  SUBCASE("shorter than the length field") {
    write_bytes(path, "abc");
    CHECK_THROWS_WITH_AS(load_safetensors(path), Contains((path + ": not a valid safetensors file").c_str()), Error);
  }
  SUBCASE("truncated data") {
    write_bytes(path, good.substr(0, good.size() - 10));
    const std::string msg = error_of([&] { load_safetensors(path); });
    CHECK(msg.find(path) == 0);
    CHECK(msg.find("truncated?") != std::string::npos);
  }
  SUBCASE("truncated inside the header") {
    write_bytes(path, good.substr(0, 40));
    const std::string msg = error_of([&] { load_safetensors(path); });
    CHECK(msg.find(path) == 0);
    CHECK(msg.find("exceeds the file") != std::string::npos);
  }
  SUBCASE("header length larger than the file") {
    write_bytes(path, st_file("{}      ", "", 1000000));
    CHECK_THROWS_WITH_AS(load_safetensors(path), Contains("header length 1000000 exceeds the file (16 bytes)"), Error);
  }
  SUBCASE("header length of 2^64 - 1") {
    write_bytes(path, st_file("{}      ", "", UINT64_MAX));
    CHECK_THROWS_WITH_AS(load_safetensors(path), Contains("exceeds the file"), Error);
  }
  SUBCASE("non-JSON header") {
    write_bytes(path, st_file("{not json", ""));
    const std::string msg = error_of([&] { load_safetensors(path); });
    CHECK(msg.find(path) == 0);
    CHECK(msg.find("header is not JSON") != std::string::npos);
  }
  SUBCASE("JSON that is not an object") {
    write_bytes(path, st_file("[1, 2]", ""));
    CHECK_THROWS_WITH_AS(load_safetensors(path), Contains("header is not a JSON object"), Error);
  }
  SUBCASE("unknown dtype") {
    write_bytes(path, st_file(R"({"x":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})", "abcd"));
    const std::string msg = error_of([&] { load_safetensors(path); });
    CHECK(msg.find(path) == 0);
    CHECK(msg.find("entry 'x' has dtype F16, which leuko does not read") != std::string::npos);
  }
  SUBCASE("offsets that do not match the shape") {
    write_bytes(path, st_file(R"({"x":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})", std::string(16, '\0')));
    CHECK_THROWS_WITH_AS(load_safetensors(path),
                         Contains("entry 'x' has data_offsets [0, 12] that do not match its shape [2, 2]"), Error);
  }
  SUBCASE("offsets reversed") {
    write_bytes(path, st_file(R"({"x":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", std::string(8, '\0')));
    CHECK_THROWS_WITH_AS(load_safetensors(path), Contains("do not match its shape"), Error);
  }
  SUBCASE("offsets past the data") {
    write_bytes(path, st_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", std::string(8, '\0')));
    CHECK_THROWS_WITH_AS(load_safetensors(path), Contains("entry 'x' ends at byte 12 of a data section of 8 bytes"),
                         Error);
  }
  SUBCASE("an entry without its fields") {
    write_bytes(path, st_file(R"({"x":{"dtype":"F32","shape":[2]}})", ""));
    CHECK_THROWS_WITH_AS(load_safetensors(path), Contains("entry 'x' lacks dtype, shape or data_offsets"), Error);
  }
  SUBCASE("a negative dimension") {
    write_bytes(path, st_file(R"({"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", ""));
    CHECK_THROWS_WITH_AS(load_safetensors(path), Contains("entry 'x' has a bad shape"), Error);
  }
  SUBCASE("metadata that is not strings") {
    write_bytes(path, st_file(R"({"__metadata__":{"epoch":3}})", ""));
    CHECK_THROWS_WITH_AS(load_safetensors(path), Contains("__metadata__ value 'epoch' is not a string"), Error);
  }
}

TEST_CASE("saving is atomic") {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  save_safetensors(path, {{"a", Tensor::ones({4})}});
  CHECK(fs::exists(path));
  CHECK_FALSE(fs::exists(path + ".tmp"));  // the temporary was renamed, not left behind
  const std::string before = read_bytes(path);

  // A write that fails (the temporary cannot be created: a directory is in its way) leaves the
  // old file as it was.
  fs::create_directory(path + ".tmp");
  const std::string msg = error_of([&] { save_safetensors(path, {{"a", Tensor::zeros({8})}}); });
  CHECK(msg.find(path + ": cannot write") == 0);
  CHECK(read_bytes(path) == before);
  CHECK(values(load_safetensors(path).find("a")) == std::vector<double>(4, 1.0));
  fs::remove(path + ".tmp");

  // Into a directory that does not exist: an error naming the path, nothing created.
  const std::string nowhere = dir.file("no/such/dir/model.safetensors");
  CHECK_THROWS_WITH_AS(save_safetensors(nowhere, {{"a", Tensor::ones({1})}}),
                       Contains((nowhere + ": cannot write").c_str()), Error);
  CHECK_FALSE(fs::exists(dir.file("no")));

  // Overwriting replaces the whole file.
  save_safetensors(path, {{"b", Tensor::full({2}, 3.0)}});
  SafetensorsFile f = load_safetensors(path);
  CHECK_FALSE(f.find("a").defined());
  CHECK(values(f.find("b")) == std::vector<double>{3, 3});
  CHECK_FALSE(fs::exists(path + ".tmp"));

  // write_file_atomic, the building block, directly.
  const std::string text = dir.file("notes.txt");
  write_file_atomic(text, "first");
  write_file_atomic(text, "second");
  CHECK(read_bytes(text) == "second");
  CHECK_FALSE(fs::exists(text + ".tmp"));
}
