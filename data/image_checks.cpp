// Structure checks of JPEG, PNG and BMP files, before stb_image decodes them (image_checks.h).
#include "data/image_checks.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>

#include "tensor/check.h"

namespace leuko::data {

namespace {

uint32_t le32(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24; }
uint16_t le16(const uint8_t* p) { return uint16_t(p[0] | p[1] << 8); }
uint16_t be16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]); }

// The tables a JPEG has defined so far: Huffman tables [class: 0 DC, 1 AC][id 0..3] and
// quantization tables [id 0..3]; and the frame's components (id, quantization table).
struct JpegTables {
  bool huffman[2][4] = {};
  bool quant[4] = {};
  bool progressive = false;
  int components = 0;
  uint8_t component_id[4] = {}, component_quant[4] = {};
};

// DHT: tables of (class << 4 | id, 16 code counts, the codes).
void read_dht(const uint8_t* b, size_t from, size_t end, JpegTables& tables, const std::string& name) {
  for (size_t t = from; t < end;) {
    LEUKO_CHECK(t + 17 <= end, name, ": corrupt JPEG (a Huffman table is cut short)");
    size_t codes = 0;
    for (size_t i = 1; i <= 16; i++) codes += b[t + i];
    LEUKO_CHECK(codes <= 256 && t + 17 + codes <= end, name, ": corrupt JPEG (a Huffman table with ", codes,
                " codes; at most 256, inside its segment)");
    const int cls = b[t] >> 4, id = b[t] & 15;
    if (cls <= 1 && id <= 3) tables.huffman[cls][id] = true;  // others: stb_image says "bad DHT header"
    t += 17 + codes;
  }
}

// DQT: tables of (precision << 4 | id, 64 entries of 1 or 2 bytes).
void read_dqt(const uint8_t* b, size_t from, size_t end, JpegTables& tables) {
  for (size_t t = from; t < end;) {
    const int precision = b[t] >> 4, id = b[t] & 15;
    const size_t size = 1 + 64 * (precision ? 2 : 1);
    if (t + size > end || precision > 1 || id > 3) return;  // stb_image says "bad DQT ..."
    tables.quant[id] = true;
    t += size;
  }
}

// SOF0..SOF2: precision, height, width, then (id, sampling, quantization table) per component.
void read_sof(const uint8_t* b, size_t from, size_t end, uint8_t marker, JpegTables& tables) {
  tables.progressive = marker == 0xC2;
  tables.components = 0;
  if (from + 6 > end) return;  // stb_image checks the frame header's length
  const int count = b[from + 5];
  for (int c = 0; c < count && c < 4 && from + 6 + 3 * size_t(c) + 3 <= end; c++) {
    tables.component_id[c] = b[from + 6 + 3 * c];
    tables.component_quant[c] = b[from + 6 + 3 * c + 2];
    tables.components = c + 1;
  }
}

// SOS: the scan's components (id, DC table << 4 | AC table), then spectral start and end and the
// successive-approximation bits. stb_image does not check that the tables a scan decodes with
// were ever defined: it reads them from uninitialised memory (a fuzzer's 424-byte progressive
// JPEG crashed the optimised build that way). Which tables a scan decodes with (as stb_image
// decodes): a sequential scan, both of each component; a progressive scan, the DC table in a
// first DC scan (start 0, no refinement bits), the AC table in an AC scan (start > 0).
void check_sos(const uint8_t* b, size_t from, size_t end, const JpegTables& tables, const std::string& name) {
  if (from + 1 > end) return;  // stb_image checks the scan header's length and counts
  const size_t count = b[from];
  if (from + 1 + 2 * count + 3 > end) return;
  const int start = b[from + 1 + 2 * count], refine = b[from + 1 + 2 * count + 2] >> 4;
  const bool uses_dc = !tables.progressive || (start == 0 && refine == 0);
  const bool uses_ac = !tables.progressive || start > 0;
  for (size_t i = 0; i < count; i++) {
    const int id = b[from + 1 + 2 * i], dc = b[from + 2 + 2 * i] >> 4, ac = b[from + 2 + 2 * i] & 15;
    if (dc > 3 || ac > 3) continue;  // stb_image says "bad DC huff" / "bad AC huff"
    LEUKO_CHECK(!uses_dc || tables.huffman[0][dc], name, ": corrupt JPEG (a scan decodes component ", id,
                " with DC Huffman table ", dc, ", which no DHT segment before it defines)");
    LEUKO_CHECK(!uses_ac || tables.huffman[1][ac], name, ": corrupt JPEG (a scan decodes component ", id,
                " with AC Huffman table ", ac, ", which no DHT segment before it defines)");
    for (int c = 0; c < tables.components; c++) {
      const int q = tables.component_quant[c];
      if (tables.component_id[c] != id || q > 3) continue;  // stb_image checks both
      LEUKO_CHECK(tables.quant[q], name, ": corrupt JPEG (component ", id, " uses quantization table ", q,
                  ", which no DQT segment before its scan defines)");
    }
  }
}

}  // namespace

// A JPEG is a list of marker segments (FF xx, most with a 2-byte length); each scan (SOS) is
// followed by entropy-coded data, in which an FF byte is always followed by 00 (a stuffed FF)
// or a restart marker, so the next other FF xx is the next marker. The walk checks, whatever
// stb_image makes of the file:
//  - an end-of-image marker (FF D9) after a scan: a cut-off file is reported as truncated;
//  - each Huffman table (DHT) has at most 256 codes, inside its segment: stb_image 2.27
//    (Debian 12's) writes past its tables otherwise (upstream fixed it in 2.28);
//  - each scan decodes with Huffman and quantization tables that were defined (check_sos).
void check_jpeg_structure(const uint8_t* b, size_t n, const std::string& name) {
  size_t pos = 2;
  bool scanned = false;  // past the first SOS
  JpegTables tables;
  while (true) {
    while (pos < n && b[pos] != 0xFF) pos++;  // entropy-coded data, or junk (tolerated, as decoders do)
    while (pos < n && b[pos] == 0xFF) pos++;  // fill bytes
    LEUKO_CHECK(pos < n, name, scanned ? ": truncated JPEG (no end-of-image marker after the image data)"
                                       : ": truncated JPEG (ends inside its headers)");
    const uint8_t marker = b[pos++];
    if (marker == 0xD9) {
      LEUKO_CHECK(scanned, name, ": corrupt JPEG (end-of-image marker before any image data)");
      return;
    }
    if (marker == 0x00 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) continue;  // no length
    LEUKO_CHECK(pos + 2 <= n, name, ": truncated JPEG (ends inside a marker segment)");
    const size_t len = be16(b + pos);  // counts itself
    LEUKO_CHECK(len >= 2 && pos + len <= n, name, ": truncated JPEG (ends inside a marker segment)");
    const size_t from = pos + 2, end = pos + len;  // the segment's contents
    if (marker == 0xC4) read_dht(b, from, end, tables, name);
    if (marker == 0xDB) read_dqt(b, from, end, tables);
    if (marker >= 0xC0 && marker <= 0xC2) read_sof(b, from, end, marker, tables);
    if (marker == 0xDA) {
      check_sos(b, from, end, tables, name);
      scanned = true;
    }
    pos = end;
  }
}

// A PNG is its 8-byte signature, then chunks up to IEND: a 4-byte big-endian length, a 4-byte
// type, the data, a 4-byte CRC. The walk checks:
//  - every chunk lies inside the file: a cut-off file is reported as truncated (stb_image stops
//    before IEND once it has the pixels, so it would accept one), and stb_image 2.27 allocates
//    room for an image-data (IDAT) chunk's claimed length before reading it (242 bytes whose
//    second IDAT claimed 2^30 made it allocate 2 GiB);
//  - every chunk type is four letters, and the critical ones (an upper-case first letter) are
//    those stb_image decodes: it reports others in a static buffer that it overwrites with the
//    type's bytes (binary in an error message; a data race between loader threads).
void check_png_structure(const uint8_t* b, size_t n, const std::string& name) {
  for (size_t pos = 8;;) {
    LEUKO_CHECK(pos + 8 <= n, name, ": truncated PNG (no IEND chunk at the end)");
    const size_t len = be32(b + pos);
    const std::string type(reinterpret_cast<const char*>(b + pos + 4), 4);
    const bool letters =
        std::all_of(type.begin(), type.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; });
    if (!letters) {
      char hex[16];
      std::snprintf(hex, sizeof hex, "%02x %02x %02x %02x", b[pos + 4], b[pos + 5], b[pos + 6], b[pos + 7]);
      LEUKO_FAIL(name, ": corrupt PNG (the chunk at byte ", pos, " has type bytes ", hex, ", not four letters)");
    }
    if (type == "IEND") return;  // what follows (its CRC, trailing bytes) does not matter
    const bool critical = std::isupper(static_cast<unsigned char>(type[0])) != 0;
    LEUKO_CHECK(!critical || type == "IHDR" || type == "PLTE" || type == "IDAT" || type == "CgBI", name,
                ": corrupt PNG (unknown critical chunk ", type, " at byte ", pos, ")");
    LEUKO_CHECK(len + 4 <= n - pos - 8, name, ": truncated PNG (its ", type, " chunk of ", len, " bytes at byte ",
                pos, " ends past the end of the file, ", n, " bytes)");
    pos += 12 + len;
  }
}

// An uncompressed BMP's pixel array must fit inside the file; stb_image reads zeros past the end
// (a fuzzer's 454 bytes claiming 2.5 million rows, with a compression field stb_image took for
// none, took 12 s).
void check_bmp_structure(const uint8_t* b, size_t n, const std::string& name) {
  LEUKO_CHECK(n >= 30, name, ": truncated BMP (ends inside its header)");
  const uint32_t offset = le32(b + 10), header = le32(b + 14);
  if (header < 40) return;  // old OS/2 headers: left to stb_image
  LEUKO_CHECK(n >= 34, name, ": truncated BMP (ends inside its header)");
  const int64_t w = int32_t(le32(b + 18)), h = int32_t(le32(b + 22));
  const int64_t bpp = le16(b + 28), compression = le32(b + 30);
  if (compression == 1 || compression == 2) return;  // run-length coded: stb_image refuses those
  // stb_image 2.27 reads any other value it does not refuse (a negative one) as uncompressed.
  LEUKO_CHECK(compression == 0 || compression == 3, name, ": unsupported BMP (compression ", compression,
              "; leuko reads uncompressed BMPs)");
  const int64_t stride = ((std::abs(w) * bpp + 31) / 32) * 4;  // at most 2^44: no overflow
  // stride * rows can overflow int64 (2^44 * 2^31): compared by division, printed as a double.
  const int64_t rows = std::abs(h), room = int64_t(n) - int64_t(offset);
  LEUKO_CHECK(room >= 0 && (stride == 0 || rows <= room / stride), name, ": truncated BMP (", n,
              " bytes, the pixels need ", double(offset) + double(stride) * double(rows), ")");
}

}  // namespace leuko::data
