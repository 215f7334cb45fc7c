// Reading the committed PyTorch fixtures (tests/fixtures/*.safetensors, made by
// tests/fixtures/make_fixtures.py).
#pragma once

#include <doctest/doctest.h>

#include <string>

#include "tensor/safetensors.h"

namespace leuko::test {

struct Fixture {
  SafetensorsFile file;
  // A fresh copy of the tensor `name` (fails the test if absent), converted to dtype (int64
  // tensors stay int64). Fresh, so a test may mark it as requiring grad.
  Tensor get(const std::string& name, DType dtype = DType::f64) const {
    Tensor t = file.find(name);
    INFO("fixture tensor '" << name << "'");
    REQUIRE(t.defined());
    Tensor copy = t.detach().clone();
    return copy.dtype() == DType::i64 ? copy : copy.to(dtype);
  }
  bool has(const std::string& name) const { return file.find(name).defined(); }
  // A metadata value: fails the test if absent.
  std::string meta(const std::string& key) const {
    auto it = file.metadata.find(key);
    INFO("fixture metadata '" << key << "'");
    REQUIRE(it != file.metadata.end());
    return it->second;
  }
  int64_t meta_int(const std::string& key) const { return std::stoll(meta(key)); }
  double meta_double(const std::string& key) const { return std::stod(meta(key)); }
};

inline Fixture load_fixture(const std::string& name) {
  return Fixture{load_safetensors(std::string(LEUKO_TEST_DATA) + "/" + name + ".safetensors")};
}

}  // namespace leuko::test
