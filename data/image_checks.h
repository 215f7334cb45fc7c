// What decode_image checks before stb_image sees a file: the structure of a JPEG, a PNG or a
// BMP, walked from its bytes, without decoding a pixel.
//
// Two reasons. stb_image is lenient: it decodes a truncated BMP with the missing rows zeroed, and
// stops reading a PNG once it has the pixels; a cut-off file is a broken file, not a partly black
// one. And Debian 12's stb_image 2.27 mishandles some corrupt files that the fuzzers found
// (tests/fuzz/regressions/image/, docs/RELIABILITY.md): it writes past a Huffman table given
// more than 256 codes, decodes with a Huffman table that no segment defined (uninitialised
// memory: a crash in an optimised build), and allocates whatever an IDAT chunk's length claims.
// Each check throws leuko::Error with one line that starts with `name` and says what is wrong.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace leuko::data {

void check_jpeg_structure(const uint8_t* bytes, size_t size, const std::string& name);
void check_png_structure(const uint8_t* bytes, size_t size, const std::string& name);
void check_bmp_structure(const uint8_t* bytes, size_t size, const std::string& name);

}  // namespace leuko::data
