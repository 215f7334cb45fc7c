// libFuzzer target: image files (JPEG, PNG, BMP) decoded and resized as the dataset and the
// loader do. Built with -DLEUKO_FUZZ=ON; run by tools/fuzz.sh over corpus/image/.
#include "targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  leuko::fuzz::image_input(data, size);
  return 0;
}
