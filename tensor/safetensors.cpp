#include "tensor/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include <unistd.h>

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
  const int64_t size = int64_t(in.tellg());
  in.seekg(0);
  auto fail = [&](const std::string& what) -> Error { return Error(path + ": not a valid safetensors file: " + what); };
  if (size < 8) throw fail("shorter than its 8-byte header length");
  unsigned char len_bytes[8];
  in.read(reinterpret_cast<char*>(len_bytes), 8);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; i--) header_len = (header_len << 8) | len_bytes[i];
  if (header_len > uint64_t(size - 8) || header_len > (100u << 20)) {
    throw fail("header length " + std::to_string(header_len) + " exceeds the file (" + std::to_string(size) +
               " bytes): truncated?");
  }
  std::string header(size_t(header_len), '\0');
  in.read(header.data(), std::streamsize(header_len));
  if (!in) throw fail("could not read the header");
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
    in.seekg(8 + int64_t(header_len) + e.begin);
    in.read(static_cast<char*>(t.raw_data()), e.end - e.begin);
    if (!in) throw fail("could not read the data of '" + e.name + "'");
    file.tensors.emplace_back(e.name, t);
  }
  return file;
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  {
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (f == nullptr) throw Error(path + ": cannot write (" + std::string(std::strerror(errno)) + ")");
    const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size() && std::fflush(f) == 0 &&
                    fsync(fileno(f)) == 0;
    const int err = errno;
    std::fclose(f);
    if (!ok) {
      std::remove(tmp.c_str());
      throw Error(path + ": write failed (" + std::string(std::strerror(err)) + "); the previous file is untouched");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw Error(path + ": cannot replace (" + std::string(std::strerror(err)) + ")");
  }
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

  std::string bytes;
  bytes.reserve(8 + header.size() + size_t(offset));
  uint64_t n = header.size();
  for (int i = 0; i < 8; i++) bytes.push_back(char((n >> (8 * i)) & 0xff));
  bytes += header;
  for (const auto& [name, t] : sorted) {
    Tensor host = t.detach().cpu();
    bytes.append(static_cast<const char*>(host.raw_data()), host.nbytes());
  }
  write_file_atomic(path, bytes);
}

}  // namespace leuko
