// The generator's arithmetic, on the host and the device: splitmix64 (seeding), xoshiro256**
// (the stream of numbers) and the seed of a training step. tensor/random.h's Generator draws
// with these on the host; a CUDA graph's dropout (tensor/cuda/graph.h) draws the same numbers
// on the device, where the step of each replay is known only at replay time.
#pragma once

#include <cstdint>

#include "kernels/host_device.h"

namespace leuko::kernels {

// splitmix64: advances x and returns 64 well-mixed bits.
LEUKO_HOST_DEVICE inline uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

LEUKO_HOST_DEVICE inline uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// xoshiro256**'s state s (4 words) for `seed`, filled by splitmix64.
LEUKO_HOST_DEVICE inline void xoshiro_seed(uint64_t* s, uint64_t seed) {
  for (int i = 0; i < 4; i++) s[i] = splitmix64(seed);
}

// The next number of the stream s.
LEUKO_HOST_DEVICE inline uint64_t xoshiro_next(uint64_t* s) {
  const uint64_t result = rotl64(s[1] * 5, 7) * 9;
  const uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl64(s[3], 45);
  return result;
}

// Number `k` (0: the first) of the stream seeded with `seed`: what a Generator(seed) gives at
// its (k + 1)-th next_u64().
LEUKO_HOST_DEVICE inline uint64_t xoshiro_draw(uint64_t seed, int64_t k) {
  uint64_t s[4];
  xoshiro_seed(s, seed);
  uint64_t r = xoshiro_next(s);
  for (int64_t i = 0; i < k; i++) r = xoshiro_next(s);
  return r;
}

// The seed of step `step`'s randomness (dropout) in a run seeded `seed`: a function of the two
// alone, so a resumed run draws exactly what an uninterrupted one would.
LEUKO_HOST_DEVICE inline uint64_t step_seed(uint64_t seed, int64_t step) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ULL + uint64_t(step) + 0x632BE59BD9B4E019ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace leuko::kernels
