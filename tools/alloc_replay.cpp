// leuko_alloc_replay: what the caching CUDA allocator (tensor/block_cache.h) would hold for a
// recorded run. Record with LEUKO_ALLOC_TRACE, then replay one device's events:
//
//   LEUKO_ALLOC_TRACE=/tmp/r50.trace leuko bench --model resnet50 --device cpu --warmup 2 --steps 1 --windows 1
//   leuko_alloc_replay /tmp/r50.trace cpu
//
// A CPU run makes the same tensors as a GPU run in float32 (less the GPU's convolution
// workspaces), so the GPU allocator's policy can be judged on a machine without one. Prints the
// live bytes at their peak counted exactly (each size rounded to 512 bytes: what no allocator
// can go below), then the policy's peak of live blocks, its peak of segments obtained from the
// driver, and how many segments and cache hits it had.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <unordered_map>

#include "tensor/block_cache.h"

namespace {

// Addresses that are never reused, and memory that never runs out: the replay measures the
// policy, not a card.
struct CountingSource : leuko::BlockCache::Source {
  size_t next = size_t(1) << 40;
  void* obtain(size_t bytes) override {
    void* p = reinterpret_cast<void*>(next);
    next += bytes + (size_t(1) << 30);
    return p;
  }
  void give_back(void*, size_t) override {}
};

double mib(size_t bytes) { return double(bytes) / double(1 << 20); }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || (std::strcmp(argv[2], "cpu") != 0 && std::strcmp(argv[2], "cuda") != 0)) {
    std::fprintf(stderr, "usage: %s TRACE cpu|cuda  (TRACE: a file written with LEUKO_ALLOC_TRACE)\n", argv[0]);
    return 2;
  }
  std::ifstream in(argv[1]);
  if (!in) {
    std::fprintf(stderr, "leuko_alloc_replay: cannot read '%s'\n", argv[1]);
    return 1;
  }
  const std::string device = argv[2];

  CountingSource source;
  leuko::BlockCache cache(source);
  std::unordered_map<std::string, void*> block_of;  // the trace's address -> the replay's block
  std::unordered_map<std::string, size_t> exact_of;  // the trace's address -> its size, rounded
  size_t exact = 0, exact_peak = 0, events = 0, line_no = 0;
  std::string line;
  while (std::getline(in, line)) {
    line_no++;
    std::istringstream words(line);
    std::string op, dev, addr;
    size_t bytes = 0;
    words >> op >> dev;
    const bool ok = op == "a" ? bool(words >> bytes >> addr) : op == "f" ? bool(words >> addr) : false;
    if (!ok) {
      std::fprintf(stderr, "leuko_alloc_replay: %s:%zu: not a trace line: '%s'\n", argv[1], line_no, line.c_str());
      return 1;
    }
    if (dev != device) continue;
    events++;
    if (op == "a") {
      block_of[addr] = cache.allocate(bytes).ptr;
      exact_of[addr] = leuko::BlockCache::round_size(bytes);
      exact += exact_of[addr];
      exact_peak = std::max(exact_peak, exact);
    } else if (auto it = block_of.find(addr); it != block_of.end()) {
      cache.free(it->second);
      block_of.erase(it);
      exact -= exact_of[addr];
      exact_of.erase(addr);
    }  // a free of a block allocated before the trace began: not replayed
  }
  const leuko::MemoryStats& s = cache.stats();
  std::printf("%s: %zu %s events\n", argv[1], events, device.c_str());
  std::printf("  live bytes at the peak, exactly:   %10.1f MiB\n", mib(exact_peak));
  std::printf("  caching allocator, live blocks:    %10.1f MiB (peak)\n", mib(s.peak));
  std::printf("  caching allocator, segments held:  %10.1f MiB (peak), %zu segments at the end\n",
              mib(s.peak_reserved), cache.segments());
  std::printf("  allocations %zu, from the cache %zu\n", s.allocations, s.cache_hits);
  return 0;
}
