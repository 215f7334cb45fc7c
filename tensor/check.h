// Errors and the check macros used for every CUDA, cuDNN, cuBLAS and file call.
//
// A failed check throws leuko::Error whose message names the failing call (or condition), the
// file and the line, so a user sees what went wrong and where without a debugger:
//   leuko: cudaMalloc(&p, bytes) failed: out of memory (tensor/cuda/allocator.cpp:42)
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace leuko {

// Every error leuko reports is an Error; the command line prints what() on one line.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Thrown when the GPU runs out of memory, so callers (the trainer's batch-size search) can
// catch this case alone.
class OutOfMemory : public Error {
 public:
  OutOfMemory(const std::string& what, size_t bytes) : Error(what), bytes_(bytes) {}
  size_t bytes() const { return bytes_; }

 private:
  size_t bytes_;
};

namespace detail {
[[noreturn]] void throw_error(const std::string& message, const char* file, int line);

// "tensor/tensor.cpp:42": the source location with the path below the project root.
std::string where(const char* file, int line);

// Thrown by code paths that need CUDA in a CPU-only build.
[[noreturn]] void no_cuda_build();

// Builds a message from any streamable pieces: LEUKO_CHECK(x > 0, "x is ", x).
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace leuko

// LEUKO_CHECK(cond, pieces...): a user-facing precondition. Throws Error with the pieces.
#define LEUKO_CHECK(cond, ...)                                                        \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      ::leuko::detail::throw_error(::leuko::detail::concat(__VA_ARGS__), __FILE__, __LINE__); \
    }                                                                                 \
  } while (0)

// LEUKO_FAIL(pieces...): throw unconditionally.
#define LEUKO_FAIL(...) ::leuko::detail::throw_error(::leuko::detail::concat(__VA_ARGS__), __FILE__, __LINE__)

// LEUKO_FILE_CHECK(call_ok, path, what): a file operation (open, read, write, rename).
#define LEUKO_FILE_CHECK(ok, path, what)                                              \
  do {                                                                                \
    if (!(ok)) {                                                                      \
      ::leuko::detail::throw_error(::leuko::detail::concat(path, ": ", what),         \
                                   __FILE__, __LINE__);                               \
    }                                                                                 \
  } while (0)
