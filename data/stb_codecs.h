// What data/stb_codecs.cpp adds to stb_image's own interface (<stb_image.h>).
#pragma once

namespace leuko::data {

// stb_image 2.27 keeps its last failure reason (per thread) until the next failure, and some of
// its failures set none. Cleared before each decode, so that an error message never quotes a
// reason that belongs to an earlier file.
void clear_stb_failure_reason();

}  // namespace leuko::data
