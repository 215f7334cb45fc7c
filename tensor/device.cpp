#include "tensor/device.h"

#include <atomic>
#include <cstdlib>

#include "tensor/check.h"

namespace leuko {

#if LEUKO_WITH_CUDA
namespace cuda {
bool probe(std::string* status);
void synchronize();
}  // namespace cuda
#endif

bool cuda_available() {
#if LEUKO_WITH_CUDA
  return cuda::probe(nullptr);
#else
  return false;
#endif
}

std::string cuda_status() {
#if LEUKO_WITH_CUDA
  std::string s;
  cuda::probe(&s);
  return s;
#else
  return "no GPU support: this is a CPU-only build of leuko (no CUDA toolkit was found when it was built)";
#endif
}

void require_cuda(const char* what) {
  LEUKO_CHECK(cuda_available(), what, " needs a CUDA GPU: ", cuda_status());
}

void cuda_synchronize() {
#if LEUKO_WITH_CUDA
  if (cuda_available()) cuda::synchronize();
#endif
}

namespace {
std::atomic<Precision> g_precision{Precision::fp32};
std::atomic<bool> g_deterministic{false};
}  // namespace

void set_precision(Precision p) { g_precision = p; }
Precision precision() { return g_precision; }

bool bf16_activations() {
  static const bool allowed = [] {
    const char* env = std::getenv("LEUKO_BF16_ACTIVATIONS");
    return env == nullptr || std::string(env) != "0";
  }();
  return allowed && g_precision == Precision::bf16;
}

bool channels_last_activations() {
  static const bool allowed = [] {
    const char* env = std::getenv("LEUKO_CHANNELS_LAST");
    return env == nullptr || std::string(env) != "0";
  }();
  return allowed && bf16_activations();
}

void set_deterministic(bool on) { g_deterministic = on; }
bool deterministic() { return g_deterministic; }

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::fp32: return "fp32";
    case Precision::tf32: return "tf32";
    case Precision::bf16: return "bf16";
  }
  return "?";
}

Precision parse_precision(const std::string& text) {
  if (text == "fp32") return Precision::fp32;
  if (text == "tf32") return Precision::tf32;
  if (text == "bf16") return Precision::bf16;
  throw Error("--precision: '" + text + "' is not one of fp32, tf32, bf16");
}

}  // namespace leuko
