// The test runner: doctest's, plus one flag of ours.
//   leuko_tests [doctest flags]          run the CPU tests
//   leuko_tests --gpu [doctest flags]    GPU tests: exit 77 ("skipped" to ctest) without a GPU
// GPU runs poison every new allocation with NaN so that an output element a kernel forgets to
// write shows up in the comparison.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "tensor/allocator.h"
#include "tensor/device.h"

int main(int argc, char** argv) {
  std::vector<char*> args;
  bool gpu = false;
  for (int i = 0; i < argc; i++) {
    if (std::strcmp(argv[i], "--gpu") == 0) gpu = true;
    else args.push_back(argv[i]);
  }
  if (gpu) {
    if (!leuko::cuda_available()) {
      std::printf("SKIPPED: GPU tests need a CUDA GPU: %s\n", leuko::cuda_status().c_str());
      return 77;
    }
    std::printf("GPU: %s\n", leuko::cuda_status().c_str());
  }
  // Without --gpu, the GPU test files are left out (they would fail, not skip, without a GPU).
  static char exclude_gpu[] = "--source-file-exclude=*tests/gpu/*";
  if (!gpu) args.push_back(exclude_gpu);
  leuko::set_poison_allocations(true);
  doctest::Context context(int(args.size()), args.data());
  return context.run();
}
