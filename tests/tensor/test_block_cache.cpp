// The caching CUDA allocator's policy (tensor/block_cache.h), on the CPU with a fake driver:
// rounding, best fit, splitting, merging, giving segments back, the limit, private pools, and
// against a brute-force model over random allocation sequences.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include "tensor/block_cache.h"

using namespace leuko;

namespace {

constexpr size_t KiB = 1024, MiB = size_t(1) << 20;

// A driver that hands out addresses far apart (so no two segments touch) and records what it
// gave and got back; `capacity` bytes at most outstanding (0: unlimited).
struct FakeSource : BlockCache::Source {
  size_t next = size_t(1) << 40;
  size_t capacity = 0;
  size_t outstanding = 0;
  int obtained = 0, given_back = 0, syncs = 0;
  std::map<uintptr_t, size_t> live;  // segment base -> bytes
  void* obtain(size_t bytes) override {
    if (capacity > 0 && outstanding + bytes > capacity) return nullptr;
    void* p = reinterpret_cast<void*>(next);
    live[next] = bytes;
    next += bytes + (size_t(1) << 32);
    outstanding += bytes;
    obtained++;
    return p;
  }
  void give_back(void* ptr, size_t bytes) override {
    auto it = live.find(reinterpret_cast<uintptr_t>(ptr));
    REQUIRE(it != live.end());  // only what was obtained, and only once
    REQUIRE(it->second == bytes);
    live.erase(it);
    outstanding -= bytes;
    given_back++;
  }
  void before_give_back() override { syncs++; }
};

uintptr_t addr(const void* p) { return reinterpret_cast<uintptr_t>(p); }

}  // namespace

TEST_CASE("block cache: sizes round to 512 bytes; small blocks share 2 MiB segments, large ones 256 MiB ones") {
  CHECK(BlockCache::round_size(0) == 512);
  CHECK(BlockCache::round_size(1) == 512);
  CHECK(BlockCache::round_size(512) == 512);
  CHECK(BlockCache::round_size(513) == 1024);
  CHECK(BlockCache::segment_size(512) == 2 * MiB);
  CHECK(BlockCache::segment_size(MiB) == 2 * MiB);
  CHECK(BlockCache::segment_size(MiB + 512) == 2 * MiB);
  CHECK(BlockCache::segment_size(3 * MiB) == 4 * MiB);
  CHECK(BlockCache::segment_size(4 * MiB) == 4 * MiB);
  CHECK(BlockCache::kLargeSegment == 256 * MiB);

  FakeSource src;
  BlockCache c(src);
  const auto a = c.allocate(4000);  // 4096 bytes, from a new 2 MiB segment
  REQUIRE(a.ptr != nullptr);
  CHECK(a.size == 4096);
  CHECK(c.stats().current == 4096);
  CHECK(c.stats().reserved == 2 * MiB);
  CHECK(c.stats().cache_hits == 0);
  const auto b = c.allocate(100 * KiB);  // the same segment, right after a
  CHECK(addr(b.ptr) == addr(a.ptr) + 4096);
  CHECK(src.obtained == 1);
  CHECK(c.stats().cache_hits == 1);
  CHECK(c.stats().current == 4096 + 100 * KiB);

  const auto big = c.allocate(3 * MiB);  // large: a 256 MiB segment, 3 MiB of it counted live
  CHECK(big.size == 3 * MiB);
  CHECK(src.obtained == 2);
  CHECK(c.stats().reserved == 258 * MiB);
  CHECK(c.stats().current == 4096 + 100 * KiB + 3 * MiB);
  // The large segment's free 253 MiB serve no small block: a small one takes the small segment.
  const auto s = c.allocate(512 * KiB);
  CHECK(addr(s.ptr) == addr(b.ptr) + 100 * KiB);
  CHECK(src.obtained == 2);
  // The next large blocks share the large segment, right after `big`, ...
  const auto next = c.allocate(MiB + 1);
  CHECK(addr(next.ptr) == addr(big.ptr) + 3 * MiB);
  CHECK(src.obtained == 2);
  // ... and one larger than 256 MiB gets a segment of its own size, rounded to 2 MiB.
  const auto huge = c.allocate(300 * MiB + 1);
  CHECK(src.obtained == 3);
  CHECK(c.stats().reserved == 258 * MiB + 302 * MiB);
  c.free(huge.ptr);
  c.free(next.ptr);
  c.free(s.ptr);
  c.free(big.ptr);
  c.free(b.ptr);
  c.free(a.ptr);
  CHECK(c.stats().current == 0);
  CHECK(c.stats().reserved == 560 * MiB);  // all cached
  CHECK(c.stats().peak == 4096 + 100 * KiB + 3 * MiB + 512 * KiB + MiB + 512 + 300 * MiB + 512);
}

TEST_CASE("block cache: best fit, and the rest of a block stays free for the next") {
  FakeSource src;
  BlockCache c(src);
  // Free blocks of 8, 4 and 6 MiB in one segment, kept apart by live 2 MiB blocks (free
  // neighbours would merge), and the segment's free rest (230 MiB) after them.
  void* p8 = c.allocate(8 * MiB).ptr;
  void* x1 = c.allocate(2 * MiB).ptr;
  void* p4 = c.allocate(4 * MiB).ptr;
  void* x2 = c.allocate(2 * MiB).ptr;
  void* p6 = c.allocate(6 * MiB).ptr;
  void* x3 = c.allocate(2 * MiB).ptr;
  CHECK(addr(p6) == addr(p8) + 16 * MiB);
  c.free(p8);
  c.free(p4);
  c.free(p6);
  // 5 MiB: the 6 MiB block is the smallest that fits (not the first, not the largest).
  const auto five = c.allocate(5 * MiB);
  CHECK(five.ptr == p6);
  CHECK(five.size == 5 * MiB);
  CHECK(c.stats().current == 11 * MiB);  // counted at its size, not the block's 6 (and x1-x3)
  // The 1 MiB left of it is a free block of its own: 1 MiB + 512 bytes does not fit it, so the
  // 4 MiB block is the best fit, and its rest (3 MiB - 512) is free after it.
  const auto over = c.allocate(MiB + 1);
  CHECK(over.ptr == p4);
  const auto rest = c.allocate(3 * MiB - 512);
  CHECK(addr(rest.ptr) == addr(p4) + MiB + 512);
  CHECK(src.obtained == 1);  // nothing new from the driver
  c.free(five.ptr);
  c.free(over.ptr);
  c.free(rest.ptr);
  CHECK(c.stats().current == 6 * MiB);
  // Freed, each run of free blocks is one block again: 8, 4 and 6 MiB, each where it was.
  CHECK(c.allocate(8 * MiB).ptr == p8);
  CHECK(c.allocate(6 * MiB).ptr == p6);
  CHECK(c.allocate(4 * MiB).ptr == p4);
  CHECK(src.obtained == 1);
  c.free(x1);
  c.free(x2);
  c.free(x3);
}

TEST_CASE("block cache: freed neighbours merge, in either order, and a free segment goes back whole") {
  FakeSource src;
  BlockCache c(src);
  void* a = c.allocate(512).ptr;
  void* b = c.allocate(512).ptr;
  void* d = c.allocate(512).ptr;
  REQUIRE(addr(b) == addr(a) + 512);
  REQUIRE(addr(d) == addr(b) + 512);
  // Free the middle, then the first (merges forward), then the last (merges backward): the
  // segment is one free block, so 2 MiB fits at its start.
  c.free(b);
  c.free(a);
  CHECK(c.allocate(1024).ptr == a);  // a and b, merged
  c.free(a);
  c.free(d);
  const auto whole = c.allocate(MiB);  // small: the segment's first MiB
  CHECK(whole.ptr == a);
  c.free(whole.ptr);
  CHECK(c.release_free_segments() == 2 * MiB);  // one block, the whole segment: it goes back
  CHECK(src.given_back == 1);
  CHECK(c.stats().reserved == 0);
}

TEST_CASE("block cache: only segments with no live block go back, after one synchronisation") {
  FakeSource src;
  BlockCache c(src);
  void* a = c.allocate(200 * MiB).ptr;  // a 256 MiB segment
  void* b = c.allocate(200 * MiB).ptr;  // does not fit the first one's 56 MiB: a second
  void* s1 = c.allocate(KiB).ptr;
  void* s2 = c.allocate(KiB).ptr;  // the same small segment as s1
  REQUIRE(c.segments() == 3);
  CHECK(c.release_free_segments() == 0);  // everything is live
  CHECK(src.syncs == 0);                  // nothing to give back: no synchronisation either
  c.free(a);
  c.free(s1);  // s2 still holds the small segment
  CHECK(c.release_free_segments() == 256 * MiB);
  CHECK(src.syncs == 1);
  CHECK(src.given_back == 1);
  CHECK(c.stats().reserved == 256 * MiB + 2 * MiB);
  CHECK(c.segments() == 2);
  c.free(s2);
  c.free(b);
  CHECK(c.release_free_segments() == 258 * MiB);
  CHECK(src.syncs == 2);
  CHECK(c.stats().reserved == 0);
  CHECK(src.outstanding == 0);
  CHECK(c.segments() == 0);
  c.free(b);  // freed twice, or never ours: ignored
  c.free(reinterpret_cast<void*>(uintptr_t(12345)));
  CHECK(c.stats().current == 0);
}

TEST_CASE("block cache: when the driver says no, free segments go back and it is asked once more") {
  FakeSource src;
  src.capacity = 16 * MiB;
  BlockCache c(src);
  void* a = c.allocate(10 * MiB).ptr;  // 256 MiB is refused: a segment of its own size instead
  REQUIRE(a != nullptr);
  CHECK(c.stats().reserved == 10 * MiB);
  c.free(a);  // cached: 10 of the 16 MiB are held
  const auto b = c.allocate(12 * MiB);  // does not fit beside the cached 10: they go back first
  REQUIRE(b.ptr != nullptr);
  CHECK(src.given_back == 1);
  CHECK(c.stats().reserved == 12 * MiB);
  const auto no = c.allocate(6 * MiB);  // 12 live + 6 > 16, and nothing cached to give back
  CHECK(no.ptr == nullptr);
  CHECK(no.failure == BlockCache::Failure::source);
  CHECK(no.size == 6 * MiB);
  CHECK(c.stats().current == 12 * MiB);  // the failure left nothing behind
  CHECK(c.stats().reserved == 12 * MiB);
  CHECK(c.allocate(4 * MiB).ptr != nullptr);  // what fits still works
}

TEST_CASE("block cache: a refused large segment empties nothing when the block's own size fits") {
  // Near capacity, the 256 MiB try fails; the cache must not give back the idle segments that
  // the next allocations would reuse (a synchronisation, then driver calls) when a segment of
  // the block's own size fits beside them.
  FakeSource src;
  BlockCache c(src);
  c.set_limit(300 * MiB);
  void* small = c.allocate(KiB).ptr;  // a 2 MiB segment, then idle
  c.free(small);
  void* a = c.allocate(250 * MiB).ptr;  // 2 + 256 fits the limit: a 256 MiB segment, 6 MiB left
  REQUIRE(a != nullptr);
  CHECK(c.stats().reserved == 258 * MiB);
  void* d = c.allocate(30 * MiB).ptr;  // 258 + 256 > 300, but 258 + 30 fits: nothing emptied
  REQUIRE(d != nullptr);
  CHECK(src.syncs == 0);
  CHECK(src.given_back == 0);
  CHECK(c.stats().reserved == 288 * MiB);
  CHECK(c.allocate(KiB).ptr == small);  // the idle segment served the next small block
  c.free(small);
  void* e = c.allocate(14 * MiB).ptr;  // 288 + 14 > 300: the idle 2 MiB go back, 286 + 14 fits
  REQUIRE(e != nullptr);
  CHECK(src.syncs == 1);
  CHECK(src.given_back == 1);
  CHECK(c.stats().reserved == 300 * MiB);

  FakeSource drv;  // the same when the driver, not the limit, refuses
  BlockCache c2(drv);
  drv.capacity = 100 * MiB;
  void* s2 = c2.allocate(KiB).ptr;
  c2.free(s2);
  CHECK(c2.allocate(40 * MiB).ptr != nullptr);  // 256 refused, 2 + 40 fits
  CHECK(drv.syncs == 0);
  CHECK(c2.stats().reserved == 42 * MiB);
  for (void* p : {a, d, e}) c.free(p);
}

TEST_CASE("block cache: a shared block freed while a pool is in use joins the pool") {
  // A tensor made before a graph's capture and dropped during it (a gradient of the step
  // before) may be read by the graph's nodes; handed to an eager allocation after the capture,
  // every replay would race its new user.
  FakeSource src;
  BlockCache c(src);
  void* before = c.allocate(4 * MiB).ptr;  // shared, live when the capture begins
  const int pool = c.new_pool();
  c.use_pool(pool);
  c.free(before);
  c.use_pool(0);
  const auto eager = c.allocate(4 * MiB);
  CHECK(eager.ptr != before);  // the rest of the shared segment, or a new one: never `before`
  CHECK(addr(eager.ptr) >= addr(before) + 4 * MiB);
  c.use_pool(pool);
  CHECK(c.allocate(4 * MiB).ptr == before);  // the pool's, to reuse while recording
  c.use_pool(0);
  c.release_pool(pool);
  c.free(before);  // a live block of a released pool: shared when freed
  CHECK(c.allocate(4 * MiB).ptr == before);
}

TEST_CASE("block cache: the limit bounds the segments held, live and cached") {
  FakeSource src;
  BlockCache c(src);
  c.set_limit(20 * MiB);
  void* a = c.allocate(8 * MiB).ptr;
  CHECK(c.stats().reserved == 8 * MiB);  // 256 MiB would pass the limit: a segment of its own size
  void* b = c.allocate(8 * MiB).ptr;
  c.free(b);  // 16 MiB held, 8 of them cached
  const auto d = c.allocate(10 * MiB);  // 16 + 10 > 20: the cached 8 go back, then 8 + 10 fits
  REQUIRE(d.ptr != nullptr);
  CHECK(c.stats().reserved == 18 * MiB);
  const auto e = c.allocate(4 * MiB);  // 18 + 4 > 20, nothing to give back
  CHECK(e.ptr == nullptr);
  CHECK(e.failure == BlockCache::Failure::limit);
  c.set_limit(0);
  CHECK(c.allocate(4 * MiB).ptr != nullptr);
  c.free(a);
  c.free(d.ptr);
}

TEST_CASE("block cache: a private pool adopts free shared blocks; what it has is its own until released") {
  FakeSource src;
  BlockCache c(src);
  void* shared = c.allocate(4 * MiB).ptr;  // a 256 MiB segment, then all of it free, shared
  c.free(shared);

  const int pool = c.new_pool();
  CHECK(pool != 0);
  c.use_pool(pool);
  // The pool has nothing of its own: it adopts the shared free block (its first 4 MiB; the rest
  // stays shared) rather than ask the driver for a segment.
  const auto g1 = c.allocate(4 * MiB);
  CHECK(g1.ptr == shared);
  CHECK(src.obtained == 1);
  void* g2 = c.allocate(KiB).ptr;  // no small block anywhere: a small segment, the pool's
  CHECK(src.obtained == 2);
  c.free(g2);
  CHECK(c.allocate(KiB).ptr == g2);  // the pool reuses its own freed blocks
  // While a pool is in use nothing goes back to the driver (that would synchronise a stream
  // that is being recorded), even when the driver says no (to more than the 252 MiB left).
  src.capacity = src.outstanding;
  CHECK(c.allocate(300 * MiB).failure == BlockCache::Failure::source);
  CHECK(src.given_back == 0);
  src.capacity = 0;

  c.use_pool(0);
  const auto s1 = c.allocate(4 * MiB);  // the shared rest, after the pool's block
  CHECK(addr(s1.ptr) == addr(shared) + 4 * MiB);
  c.free(s1.ptr);
  c.free(g1.ptr);  // into the pool: it does not merge with the free shared block beside it
  CHECK(c.allocate(4 * MiB).ptr == s1.ptr);  // so the shared cache cannot be given g1
  c.free(s1.ptr);
  CHECK(c.release_free_segments() == 0);  // the segment holds a block of the pool's

  c.release_pool(pool);  // g1 joins the shared cache and merges: the segment is one block again
  CHECK(c.allocate(8 * MiB).ptr == shared);
  c.free(shared);
  CHECK(c.release_free_segments() == 256 * MiB);  // g2 (live) keeps the small segment
  CHECK_THROWS(c.use_pool(pool));  // gone
  CHECK_THROWS(c.use_pool(99));
  CHECK(c.pool() == 0);
  c.free(g2);
  CHECK(c.release_free_segments() == 2 * MiB);
  CHECK(c.stats().reserved == 0);
}

TEST_CASE("block cache: a live block of a released pool goes to the shared cache when freed") {
  FakeSource src;
  BlockCache c(src);
  const int pool = c.new_pool();
  c.use_pool(pool);
  void* live = c.allocate(6 * MiB).ptr;
  c.use_pool(0);
  c.release_pool(pool);
  c.free(live);
  CHECK(c.allocate(6 * MiB).ptr == live);  // from the shared cache now
  CHECK(src.obtained == 1);
}

TEST_CASE("block cache: random allocations in and out of pools never hand a live pool's memory to anyone else") {
  // What a CUDA graph needs: every byte a pool was ever given stays out of every other
  // allocation until the pool is released. Random sizes, frees, pools begun, left and released.
  std::mt19937_64 rng(11);
  FakeSource src;
  BlockCache c(src);
  struct Range {
    uintptr_t at;
    size_t size;
  };
  std::map<int, std::vector<Range>> given;  // live pool -> everything it was given
  std::vector<std::pair<uintptr_t, int>> live;  // block -> the pool that allocated it (0: shared)
  std::vector<int> pools;
  for (int step = 0; step < 4000; ++step) {
    const uint64_t r = rng() % 100;
    if (r < 3 && pools.size() < 3) {
      pools.push_back(c.new_pool());
      given[pools.back()];
      c.use_pool(pools.back());
    } else if (r < 6 && !pools.empty()) {
      c.use_pool(rng() % 2 ? 0 : pools[rng() % pools.size()]);
    } else if (r < 8 && !pools.empty()) {
      const size_t k = rng() % pools.size();
      c.release_pool(pools[k]);
      given.erase(pools[k]);
      pools.erase(pools.begin() + long(k));
    } else if (r < 55 || live.empty()) {
      const size_t bytes = rng() % 2 ? 1 + rng() % MiB : 1 + rng() % (40 * MiB);
      const auto got = c.allocate(bytes);
      REQUIRE(got.ptr != nullptr);
      const uintptr_t at = addr(got.ptr);
      for (const auto& [p, ranges] : given) {
        if (p == c.pool()) continue;
        for (const Range& g : ranges) {
          INFO("pool " << c.pool() << " was given memory of live pool " << p);
          REQUIRE((at + got.size <= g.at || g.at + g.size <= at));
        }
      }
      if (c.pool() != 0) given[c.pool()].push_back({at, got.size});
      live.push_back({at, c.pool()});
    } else {
      const size_t k = rng() % live.size();
      c.free(reinterpret_cast<void*>(live[k].first));
      live[k] = live.back();
      live.pop_back();
    }
  }
  for (const auto& l : live) c.free(reinterpret_cast<void*>(l.first));
  c.use_pool(0);
  for (int p : pools) c.release_pool(p);
  CHECK(c.stats().current == 0);
  c.release_free_segments();  // with every pool released and every block free: everything
  CHECK(c.stats().reserved == 0);
  CHECK(src.live.empty());
}

TEST_CASE("block cache: exact blocks (for compute-sanitizer): a segment per block, of its size, reused only for that size") {
  FakeSource src;
  BlockCache c(src);
  c.set_exact_blocks(true);
  const auto a = c.allocate(4000);  // 4096 bytes: a 4096-byte segment, no 2 MiB one
  CHECK(c.stats().reserved == 4096);
  const auto big = c.allocate(3 * MiB + 1);  // 3 MiB + 512, not 256 MiB
  CHECK(c.stats().reserved == 4096 + 3 * MiB + 512);
  CHECK(src.obtained == 2);
  CHECK(src.live.at(addr(big.ptr)) == 3 * MiB + 512);  // the driver's allocation ends where the block does
  c.free(a.ptr);
  const auto smaller = c.allocate(3000);  // 3072: not the free 4096 block, whose end lies past its own
  CHECK(smaller.ptr != a.ptr);
  CHECK(src.obtained == 3);
  const auto same = c.allocate(4096);  // the same size: the cached block
  CHECK(same.ptr == a.ptr);
  CHECK(src.obtained == 3);
  c.free(same.ptr);
  c.free(smaller.ptr);
  c.free(big.ptr);
  CHECK(c.release_free_segments() == 4096 + 3072 + 3 * MiB + 512);
  CHECK(src.live.empty());
}

TEST_CASE("block cache: random allocations against a brute-force model of the blocks") {
  // Over thousands of random allocations and frees of sizes from 1 byte to 24 MiB:
  //  - live blocks never overlap, and each lies inside a segment obtained from the source;
  //  - `current` is the sum of the live blocks, each exactly its size rounded to 512 bytes
  //    (blocks and segments are multiples of 512 bytes, so every rest can be split off);
  //  - `reserved` is the sum of the segments outstanding at the source;
  //  - with everything freed, every segment is one block again, and all of them go back.
  std::mt19937_64 rng(7);
  FakeSource src;
  BlockCache c(src);
  struct Live {
    uintptr_t at;
    size_t size;
  };
  std::vector<Live> live;
  size_t peak_model = 0;
  for (int step = 0; step < 6000; ++step) {
    const bool alloc = live.empty() || rng() % 100 < 55;
    if (alloc) {
      size_t bytes = 0;
      switch (rng() % 4) {
        case 0: bytes = 1 + rng() % 4096; break;
        case 1: bytes = 1 + rng() % MiB; break;
        case 2: bytes = MiB + rng() % (3 * MiB); break;
        default: bytes = 1 + rng() % (24 * MiB); break;
      }
      const auto got = c.allocate(bytes);
      REQUIRE(got.ptr != nullptr);
      const size_t rounded = BlockCache::round_size(bytes);
      REQUIRE(got.size == rounded);
      REQUIRE(c.block_size(got.ptr) == got.size);
      live.push_back({addr(got.ptr), got.size});
    } else {
      const size_t k = rng() % live.size();
      c.free(reinterpret_cast<void*>(live[k].at));
      live[k] = live.back();
      live.pop_back();
    }
    // Every step the sum of live blocks; every 50 steps the placement (it sorts the blocks).
    size_t sum = 0;
    for (const Live& l : live) sum += l.size;
    REQUIRE(c.stats().current == sum);
    peak_model = std::max(peak_model, sum);
    if (step % 50 == 0) {
      std::vector<Live> sorted = live;
      std::sort(sorted.begin(), sorted.end(), [](const Live& x, const Live& y) { return x.at < y.at; });
      for (size_t i = 1; i < sorted.size(); ++i) REQUIRE(sorted[i - 1].at + sorted[i - 1].size <= sorted[i].at);
      for (const Live& l : sorted) {
        auto seg = src.live.upper_bound(l.at);
        REQUIRE(seg != src.live.begin());
        --seg;
        REQUIRE(l.at + l.size <= seg->first + seg->second);
      }
      size_t held = 0;
      for (const auto& [base, bytes] : src.live) held += bytes;
      REQUIRE(c.stats().reserved == held);
    }
  }
  CHECK(c.stats().peak == peak_model);
  for (const Live& l : live) c.free(reinterpret_cast<void*>(l.at));
  CHECK(c.stats().current == 0);
  c.release_free_segments();
  CHECK(c.stats().reserved == 0);
  CHECK(src.live.empty());
  CHECK(c.segments() == 0);
}
