// libFuzzer target: safetensors files (weights and checkpoints from strangers).
// Built with -DLEUKO_FUZZ=ON; run by tools/fuzz.sh over corpus/safetensors/.
#include "targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  leuko::fuzz::safetensors_input(data, size);
  return 0;
}
