// safetensors files: read and write named tensors in the format of Hugging Face's safetensors
// (https://github.com/huggingface/safetensors), so weights move to and from PyTorch.
//
// Layout: 8 bytes little-endian header length N, N bytes of JSON (padded with spaces to a
// multiple of 8), then the raw little-endian data of each tensor. The header maps each name to
// {"dtype", "shape", "data_offsets"} and may hold "__metadata__" (string to string).
// Writing follows safetensors.torch.save_file byte for byte: metadata first, tensors ordered
// by dtype (I64, F64, F32, BF16) and then by name, compact JSON.
#pragma once

#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace leuko {

struct SafetensorsFile {
  std::vector<std::pair<std::string, Tensor>> tensors;  // in file order, on the CPU
  std::map<std::string, std::string> metadata;
  // The tensor named `name`, or an undefined tensor.
  Tensor find(const std::string& name) const;
};

// Reads a whole file. Throws Error naming the file and what is wrong (missing, truncated, bad
// header, unsupported dtype, offsets outside the data).
SafetensorsFile load_safetensors(const std::string& path);
// The same from the file's bytes in memory (what load_safetensors does after reading the file;
// also the entry point of the fuzzer); `name` is used in error messages.
SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& name);

// Writes tensors (any device; copied to the host) to `path` atomically: the bytes go to
// "<path>.tmp", which is flushed and then renamed over `path`, so an interrupted write never
// leaves a half-written file where a good one was.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Writes `bytes` to `path` through a temporary file and a rename (used by every file leuko
// writes that a user would not want half-written: checkpoints, configs, logs).
void write_file_atomic(const std::string& path, const std::string& bytes);
// The same, with the content written by `write` into the open temporary file (true: all written),
// for files too large to hold twice in memory.
void write_file_atomic(const std::string& path, const std::function<bool(std::FILE*)>& write);

}  // namespace leuko
