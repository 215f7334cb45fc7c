// CPU fill, conversion and accumulation. Plain loops: the compiler vectorises them.
#include "kernels/memory.h"

#include <cmath>

namespace leuko::kernels::cpu {
namespace {
template <typename T> double to_double(T v) { return double(v); }
template <> double to_double<bf16>(bf16 v) { return double(bf16_to_float(v)); }
template <typename T> T from_double(double v) { return T(v); }
template <> bf16 from_double<bf16>(double v) { return float_to_bf16(float(v)); }
template <> int64_t from_double<int64_t>(double v) { return int64_t(std::llround(v)); }
}  // namespace

template <typename T>
void fill(T* out, int64_t n, double value) {
  const T v = from_double<T>(value);
  for (int64_t i = 0; i < n; i++) out[i] = v;
}

template <typename Dst, typename Src>
void convert(Dst* out, const Src* in, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = from_double<Dst>(to_double(in[i]));
}

template <typename T>
void accumulate(T* acc, const T* x, int64_t n) {
#pragma omp parallel for if (n > (1 << 16))
  for (int64_t i = 0; i < n; i++) acc[i] += x[i];
}

template void fill<float>(float*, int64_t, double);
template void fill<double>(double*, int64_t, double);
template void fill<bf16>(bf16*, int64_t, double);
template void fill<int64_t>(int64_t*, int64_t, double);
#define LEUKO_CONVERT(D, S) template void convert<D, S>(D*, const S*, int64_t);
LEUKO_CONVERT(float, float)
LEUKO_CONVERT(double, double)
LEUKO_CONVERT(bf16, bf16)
LEUKO_CONVERT(int64_t, int64_t)
LEUKO_CONVERT(float, double)
LEUKO_CONVERT(float, bf16)
LEUKO_CONVERT(double, float)
LEUKO_CONVERT(double, bf16)
LEUKO_CONVERT(bf16, float)
LEUKO_CONVERT(bf16, double)
LEUKO_CONVERT(int64_t, float)
LEUKO_CONVERT(int64_t, double)
LEUKO_CONVERT(float, int64_t)
LEUKO_CONVERT(double, int64_t)
#undef LEUKO_CONVERT
template <>
void accumulate<bf16>(bf16* acc, const bf16* x, int64_t n) {
#pragma omp parallel for if (n > (1 << 16))
  for (int64_t i = 0; i < n; i++) acc[i] = float_to_bf16(bf16_to_float(acc[i]) + bf16_to_float(x[i]));
}

template void accumulate<float>(float*, const float*, int64_t);
template void accumulate<double>(double*, const double*, int64_t);

}  // namespace leuko::kernels::cpu
