// Element types and devices.
//
// float32 is the working type on both backends; float64 exists on the CPU so the gradient
// checker can take finite differences without rounding noise; bf16 is a storage type (16-bit
// brain float: float32's exponent, 7 mantissa bits) for the mixed-precision work.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

namespace leuko {

enum class DType : uint8_t { f32, f64, bf16, i64 };
enum class Device : uint8_t { CPU, CUDA };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::bf16: return 2;
    case DType::i64: return 8;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::bf16: return "bfloat16";
    case DType::i64: return "int64";
  }
  return "?";
}

inline const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

// bf16 on the host: the upper half of a float32, rounded to nearest even.
struct bf16 {
  uint16_t bits = 0;
};

inline bf16 float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{uint16_t((u >> 16) | 0x40)};  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
  return bf16{uint16_t(u >> 16)};
}

inline float bf16_to_float(bf16 h) {
  uint32_t u = uint32_t(h.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// The DType of a C++ element type, for the typed accessors.
template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<bf16> { static constexpr DType value = DType::bf16; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::i64; };

}  // namespace leuko
