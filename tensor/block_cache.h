// The policy of the caching CUDA allocator, apart from CUDA: which block serves an allocation,
// when memory is asked of the driver and when it goes back. tensor/cuda/allocator.cpp wraps it
// around cudaMalloc and cudaFree; tests/tensor/test_block_cache.cpp drives it with a fake
// driver on the CPU, and tools/alloc_replay.cpp replays a recorded run through it.
//
// Memory comes from the driver in segments and is handed out in blocks carved from them:
//   - sizes round up to 512 bytes (so that a step's sizes recur exactly in the next);
//   - a block of 1 MiB or less comes from a 2 MiB segment shared with other small blocks, a
//     larger one from a segment of at least 256 MiB shared with other large blocks (or of its
//     own size, rounded up to 2 MiB, when larger, or when 256 MiB cannot be had); small and
//     large blocks never share a segment, so small tensors that live long do not pin a large
//     segment. Large segments are large so that blocks freed side by side merge: with a
//     segment per block, the first step's backward (which asks for sizes in the opposite
//     order from the forward) could reuse few of the forward's freed blocks (docs/PERFORMANCE.md,
//     version 20, measured the choice on recorded runs);
//   - an allocation takes the smallest free block that is big enough (best fit) and splits off
//     what it does not need, so the block counted as in use is the size asked for, rounded to
//     512 bytes, and the rest of a cached block stays free for the next allocation;
//   - a freed block merges with free neighbours in its segment, so a segment whose blocks are
//     all free is one block again, of the segment's size, and can be handed back.
// PyTorch's CUDA caching allocator works this way too (with 20 MiB segments for blocks of 1-10 MiB).
//
// Private pools, for CUDA graphs (tensor/cuda/graph.h): a graph replays on the addresses it
// recorded, so no one else may be given them while it lives. While a pool is in use, an
// allocation takes a free block of the pool, else a free block of the shared cache (pool 0),
// which from then on belongs to the pool (the part it does not need stays shared), else a new
// segment; the pool's blocks, freed, stay in the pool (and so does a shared block freed while
// the pool is in use: the graph may have used it), and free neighbours merge only when they
// belong to the same pool. So a graph recorded after eager steps uses the free room those steps
// left in segments that long-lived tensors (weights, optimizer state) keep from going back to
// the driver. Releasing a pool hands its blocks to the shared cache.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>

#include "tensor/allocator.h"

namespace leuko {

class BlockCache {
 public:
  static constexpr size_t kRound = 512;                  // every block is a multiple of this
  static constexpr size_t kSmall = size_t(1) << 20;      // up to here a block is small
  static constexpr size_t kSegmentRound = size_t(2) << 20;  // segments: multiples of 2 MiB
  static constexpr size_t kLargeSegment = size_t(256) << 20;  // the least a large block's segment is

  // Where segments come from: cudaMalloc and cudaFree, or a test's fake.
  struct Source {
    virtual ~Source() = default;
    virtual void* obtain(size_t bytes) = 0;  // nullptr: no memory for it
    virtual void give_back(void* ptr, size_t bytes) = 0;
    // Called once before one or more give_back calls (CUDA: queued kernels may still use the
    // blocks, so the stream is synchronised first).
    virtual void before_give_back() {}
  };

  enum class Failure { none, limit, source };
  struct Allocation {
    void* ptr = nullptr;
    size_t size = 0;  // the block's bytes; on failure, the segment that could not be had
    Failure failure = Failure::none;
  };

  explicit BlockCache(Source& source) : source_(source) {}
  ~BlockCache();  // gives nothing back: the process is ending, and the driver frees it all
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;

  // A block of at least `bytes` (0 counts as 1). When no cached block fits, a new segment is
  // obtained (a large block first tries for kLargeSegment, then its own size); if the segment
  // of its own size fails or would pass the limit, the shared cache's free segments are given
  // back and it is tried once more (never while a private pool is in use: that would
  // synchronise a stream that is being recorded). Failure leaves every live block as it was
  // (idle segments may have gone back).
  Allocation allocate(size_t bytes);
  // A pointer allocate returned; anything else is ignored. A shared block freed while a pool
  // is in use joins that pool (a graph being recorded may have used it).
  void free(void* ptr);
  size_t block_size(const void* ptr) const;  // 0 when not a live block

  // Give every segment of the shared cache that holds no live block back to the source.
  // Returns the bytes given back.
  size_t release_free_segments();

  int new_pool();
  void use_pool(int pool);  // 0: the shared cache; throws for an unknown pool
  int pool() const { return pool_; }
  void release_pool(int pool);

  // Exact blocks (for compute-sanitizer, LEUKO_CUDA_EXACT_BLOCKS=1): every block is a segment
  // of its own, of its size rounded to 512 bytes, reused only for that same size; so an access
  // past a block's end leaves the driver's allocation, where memcheck sees it. Set it before
  // the first allocation.
  void set_exact_blocks(bool on) { exact_ = on; }
  bool exact_blocks() const { return exact_; }

  // A bound on `reserved` (0: none): a new segment that would pass it fails as if the source
  // had no memory.
  void set_limit(size_t bytes) { limit_ = bytes; }
  size_t limit() const { return limit_; }

  // current: bytes of live blocks; reserved: bytes of segments; cache_hits: allocations served
  // without a new segment.
  const MemoryStats& stats() const { return stats_; }
  void reset_peak();
  size_t segments() const { return segments_.size(); }

  static size_t round_size(size_t bytes);
  // The smallest segment that holds a block of `rounded` bytes: 2 MiB for a small block, its
  // size rounded up to 2 MiB for a large one (which asks for kLargeSegment first).
  static size_t segment_size(size_t rounded);

 private:
  struct Segment;
  struct Block {
    char* ptr = nullptr;
    size_t size = 0;
    bool used = false;
    int pool = 0;  // whose it is: 0, the shared cache, or a private pool
    Block* prev = nullptr;  // the neighbours in the segment, by address
    Block* next = nullptr;
    Segment* segment = nullptr;
  };
  struct Segment {
    char* base = nullptr;
    size_t size = 0;
    bool small = false;
  };
  struct BySizeThenAddress {
    bool operator()(const Block* a, const Block* b) const {
      return a->size != b->size ? a->size < b->size : a->ptr < b->ptr;
    }
  };
  using FreeSet = std::set<Block*, BySizeThenAddress>;
  struct PoolFree {
    FreeSet small, large;
  };

  FreeSet& free_set(int pool, bool small) {
    PoolFree& p = free_[pool];
    return small ? p.small : p.large;
  }
  FreeSet& free_set(const Block* b) { return free_set(b->pool, b->segment->small); }
  // nullptr: the limit or the source said no (`release`: after giving idle segments back)
  void* obtain_segment(size_t size, bool release);
  Block* new_segment(size_t rounded, bool small);  // a free block of a new segment, or nullptr
  Block* find_free(int pool, size_t size, bool small);  // taken out of the free set, or nullptr
  void split(Block* b, size_t size);
  void absorb_next(Block* b, FreeSet& set);
  void put_free(Block* b);  // into its free set, merged with free neighbours of its pool

  Source& source_;
  std::map<int, PoolFree> free_;                            // pool -> its free blocks
  std::unordered_map<const void*, Block*> blocks_;          // every block, by its address
  std::map<char*, std::unique_ptr<Segment>> segments_;      // every segment, by its base
  int pool_ = 0;
  int next_pool_ = 1;
  size_t limit_ = 0;
  bool exact_ = false;
  MemoryStats stats_;
};

}  // namespace leuko
