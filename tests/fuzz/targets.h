// The fuzz entry points: each feeds one input to a reader of files that come from strangers,
// the way leuko reads them. A leuko::Error is the reader's answer to bad input and is expected;
// anything else (another exception, a crash, a sanitizer report) is a bug.
//
// The libFuzzer mains (fuzz_*.cpp, built with -DLEUKO_FUZZ=ON by tools/fuzz.sh) call these, and
// so does the regression test (test_fuzz_regressions.cpp), which replays every file of
// corpus/<target>/ and regressions/<target>/ in the ordinary test suite.
#pragma once

#include <cstddef>
#include <cstdint>

namespace leuko::fuzz {

// A safetensors file (parse_safetensors), then every tensor read back as doubles and the
// checkpoint's run configuration ("leuko.config" in the metadata), when present.
void safetensors_input(const uint8_t* data, size_t size);

// An image file (data::decode_image_bytes), then resized and cropped to small sizes, as the
// loader does.
void image_input(const uint8_t* data, size_t size);

// The text files of a run folder: the same bytes as split.json (data::split_from_json), as
// config.json (cli::RunConfig::from_json) and as log.csv (cli::read_log_csv).
void text_input(const uint8_t* data, size_t size);

}  // namespace leuko::fuzz
