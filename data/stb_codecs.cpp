// The code of stb_image and stb_image_write (Debian's libstb-dev), compiled once, here: both are
// header-only libraries, and the *_IMPLEMENTATION defines below turn the headers into their
// code. A file of its own so that the sanitizer exemptions for this third-party code (set in
// CMakeLists.txt, see docs/RELIABILITY.md) cover stb and nothing of leuko's. data/image.cpp
// checks each file's structure before stb_image decodes it.
#if LEUKO_HAVE_STB
// stb is third-party C-style code; its warnings are not ours to fix.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wcast-align"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wconversion"
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG  // the three formats leuko reads; the rest of stb_image is left out
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_NO_STDIO  // leuko reads files itself (data/image.cpp), so that it can name what went wrong
#include <stb_image.h>
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
#pragma GCC diagnostic pop

#include "data/stb_codecs.h"

namespace leuko::data {

void clear_stb_failure_reason() { stbi__g_failure_reason = nullptr; }  // a static of this file

}  // namespace leuko::data
#endif
