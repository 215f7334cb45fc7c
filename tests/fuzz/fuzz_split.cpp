// libFuzzer target: the text files of a run folder (split.json, config.json, log.csv), each
// input given to all three readers. Built with -DLEUKO_FUZZ=ON; run by tools/fuzz.sh over
// corpus/split/.
#include "targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  leuko::fuzz::text_input(data, size);
  return 0;
}
