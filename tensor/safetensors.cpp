#include "tensor/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

namespace leuko {

namespace {

const char* st_dtype(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::bf16: return "BF16";
    case DType::i64: return "I64";
  }
  return "?";
}

// The order safetensors sorts dtypes in (its Dtype enum, largest first): I64, F64, F32, BF16.
int st_rank(DType t) {
  switch (t) {
    case DType::i64: return 4;
    case DType::f64: return 3;
    case DType::f32: return 2;
    case DType::bf16: return 1;
  }
  return 0;
}

bool parse_dtype(const std::string& s, DType* out) {
  if (s == "F32") *out = DType::f32;
  else if (s == "F64") *out = DType::f64;
  else if (s == "BF16") *out = DType::bf16;
  else if (s == "I64") *out = DType::i64;
  else return false;
  return true;
}

std::string quote(const std::string& s) { return nlohmann::json(s).dump(); }

}  // namespace

Tensor SafetensorsFile::find(const std::string& name) const {
  for (const auto& [n, t] : tensors) {
    if (n == name) return t;
  }
  return Tensor();
}

SafetensorsFile load_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open (does the file exist?)");
  in.seekg(0, std::ios::end);
  std::string bytes(size_t(std::max<std::streamoff>(in.tellg(), 0)), '\0');
  in.seekg(0);
  in.read(bytes.data(), std::streamsize(bytes.size()));
  if (!in) throw Error(path + ": cannot read");
  return parse_safetensors(bytes, path);
}

SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& path) {
  const int64_t size = int64_t(bytes.size());
  auto fail = [&](const std::string& what) -> Error { return Error(path + ": not a valid safetensors file: " + what); };
  if (size < 8) throw fail("shorter than its 8-byte header length");
  const auto* len_bytes = reinterpret_cast<const unsigned char*>(bytes.data());
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; i--) header_len = (header_len << 8) | len_bytes[i];
  if (header_len > uint64_t(size - 8) || header_len > (100u << 20)) {
    throw fail("header length " + std::to_string(header_len) + " exceeds the file (" + std::to_string(size) +
               " bytes): truncated?");
  }
  const std::string header = bytes.substr(8, size_t(header_len));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(header);
  } catch (const std::exception& e) {
    throw fail(std::string("header is not JSON (") + e.what() + ")");
  }
  if (!j.is_object()) throw fail("header is not a JSON object");
  const int64_t data_size = size - 8 - int64_t(header_len);

  SafetensorsFile file;
  struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
    int64_t begin, end;
  };
  std::vector<Entry> entries;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) throw fail("__metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) throw fail("__metadata__ value '" + m.key() + "' is not a string");
        file.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    const auto& v = *it;
    Entry e;
    e.name = it.key();
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets") ||
        !v["dtype"].is_string() || !v["shape"].is_array() || !v["data_offsets"].is_array() ||
        v["data_offsets"].size() != 2)
      throw fail("entry '" + e.name + "' lacks dtype, shape or data_offsets");
    if (!parse_dtype(v["dtype"].get<std::string>(), &e.dtype))
      throw fail("entry '" + e.name + "' has dtype " + v["dtype"].get<std::string>() +
                 ", which leuko does not read (F32, F64, BF16, I64)");
    int64_t numel = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) throw fail("entry '" + e.name + "' has a bad shape");
      e.shape.push_back(d.get<int64_t>());
      if (e.shape.back() > 0 && numel > (int64_t(1) << 40) / e.shape.back())
        throw fail("entry '" + e.name + "' is impossibly large");
      numel *= e.shape.back();
    }
    for (const auto& o : v["data_offsets"]) {
      if (!o.is_number_integer() || o.get<int64_t>() < 0) throw fail("entry '" + e.name + "' has bad data_offsets");
    }
    e.begin = v["data_offsets"][0].get<int64_t>();
    e.end = v["data_offsets"][1].get<int64_t>();
    if (e.end < e.begin || e.end - e.begin != numel * int64_t(dtype_size(e.dtype)))
      throw fail("entry '" + e.name + "' has data_offsets [" + std::to_string(e.begin) + ", " +
                 std::to_string(e.end) + "] that do not match its shape " + shape_str(e.shape));
    if (e.end > data_size)
      throw fail("entry '" + e.name + "' ends at byte " + std::to_string(e.end) + " of a data section of " +
                 std::to_string(data_size) + " bytes: truncated?");
    entries.push_back(std::move(e));
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype, Device::CPU);
    const char* data = bytes.data() + 8 + header_len;  // the data section
    if (e.end > e.begin) std::memcpy(t.raw_data(), data + e.begin, size_t(e.end - e.begin));
    file.tensors.emplace_back(e.name, t);
  }
  return file;
}

namespace {

// Test hook: LEUKO_TEST_WRITE_DELAY_MS=N makes every write_file_atomic pause N ms between
// writing (and syncing) the temporary file and renaming it, so that a test can kill the
// process inside that window at will (tests/tools/test_reliability.cpp). Read once; unset or
// 0 in normal use.
int write_delay_ms() {
  static const int ms = [] {
    const char* env = std::getenv("LEUKO_TEST_WRITE_DELAY_MS");
    return env == nullptr ? 0 : std::max(0, std::atoi(env));
  }();
  return ms;
}

// Makes a rename in `dir` durable: the new directory entry reaches the disk with the file's
// data, so a power cut right after cannot bring back the old file or an empty one. (A killed
// process needs no such care: the kernel completes the rename either way.) Best effort: some
// file systems refuse to sync a directory, which loses nothing that was not at risk anyway.
void sync_directory(const std::string& file) {
  const size_t slash = file.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : file.substr(0, slash));
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

}  // namespace

void write_file_atomic(const std::string& path, const std::string& bytes) {
  write_file_atomic(path, [&](std::FILE* f) { return std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size(); });
}

void write_file_atomic(const std::string& path, const std::function<bool(std::FILE*)>& write) {
  const std::string tmp = path + ".tmp";
  {
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (f == nullptr) throw Error(path + ": cannot write (" + std::string(std::strerror(errno)) + ")");
    bool wrote = false;
    try {
      wrote = write(f);
    } catch (...) {  // e.g. a device copy that failed: no temporary file is left behind
      std::fclose(f);
      std::remove(tmp.c_str());
      throw;
    }
    const bool ok = wrote && std::fflush(f) == 0 && fsync(fileno(f)) == 0;
    const int err = errno;
    std::fclose(f);
    if (!ok) {
      std::remove(tmp.c_str());
      throw Error(path + ": write failed (" + std::string(std::strerror(err)) + "); the previous file is untouched");
    }
  }
  if (write_delay_ms() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(write_delay_ms()));
  // rename() replaces `path` in one step: a reader, or a process killed at any moment, sees
  // the old file or the new one, never a mix.
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw Error(path + ": cannot replace (" + std::string(std::strerror(err)) + ")");
  }
  sync_directory(path);
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, Tensor>> sorted = tensors;
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    const int ra = st_rank(a.second.dtype()), rb = st_rank(b.second.dtype());
    return ra != rb ? ra > rb : a.first < b.first;
  });
  for (size_t i = 1; i < sorted.size(); i++) {
    LEUKO_CHECK(sorted[i].first != sorted[i - 1].first, path, ": two tensors named '", sorted[i].first, "'");
  }
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      header += (first ? "" : ",") + quote(k) + ":" + quote(v);
      first = false;
    }
    header += "}";
  }
  int64_t offset = 0;
  for (size_t i = 0; i < sorted.size(); i++) {
    const Tensor& t = sorted[i].second;
    std::string shape = "[";
    for (size_t d = 0; d < t.shape().size(); d++) shape += (d ? "," : "") + std::to_string(t.shape()[d]);
    shape += "]";
    const int64_t end = offset + int64_t(t.nbytes());
    header += ((i == 0 && metadata.empty()) ? "" : ",") + quote(sorted[i].first) + ":{\"dtype\":\"" +
              st_dtype(t.dtype()) + "\",\"shape\":" + shape + ",\"data_offsets\":[" + std::to_string(offset) + "," +
              std::to_string(end) + "]}";
    offset = end;
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');  // the data starts 8-byte aligned

  // Streamed to the file tensor by tensor: a VGG16 checkpoint with Adam's state is 1.61 GB, and
  // gathering it in one string first cost a second copy of it (and the page faults of a fresh
  // allocation as large) at every epoch.
  write_file_atomic(path, [&](std::FILE* f) {
    char len[8];  // the header's length, little-endian
    const uint64_t n = header.size();
    for (int i = 0; i < 8; i++) len[i] = char((n >> (8 * i)) & 0xff);
    if (std::fwrite(len, 1, 8, f) != 8 || std::fwrite(header.data(), 1, header.size(), f) != header.size()) return false;
    for (const auto& [name, t] : sorted) {
      const Tensor host = t.detach().to(MemoryFormat::nchw).cpu();  // (shape) the bytes on the host, NCHW
      if (std::fwrite(host.raw_data(), 1, host.nbytes(), f) != host.nbytes()) return false;
    }
    return true;
  });
}

}  // namespace leuko
