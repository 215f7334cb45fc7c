#include "tensor/check.h"

namespace leuko::detail {

std::string where(const char* file, int line) {
  // Keep only the path below the project root: "tensor/tensor.cpp", not "/home/.../tensor.cpp".
  std::string path = file;
  size_t best = std::string::npos;
  for (const char* root : {"/tensor/", "/kernels/", "/layers/", "/nets/", "/optim/", "/data/",
                           "/tools/", "/tests/"}) {
    size_t at = path.rfind(root);
    if (at != std::string::npos && (best == std::string::npos || at > best)) best = at;
  }
  if (best != std::string::npos) path = path.substr(best + 1);
  return path + ":" + std::to_string(line);
}

[[noreturn]] void throw_error(const std::string& message, const char* file, int line) {
  throw Error(message + " (" + where(file, line) + ")");
}

[[noreturn]] void no_cuda_build() {
  throw Error("this is a CPU-only build of leuko (no CUDA toolkit was found when it was built)");
}

}  // namespace leuko::detail
