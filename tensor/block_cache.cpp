// The caching allocator's policy: segments, best-fit blocks, splitting and merging
// (tensor/block_cache.h says why each).
#include "tensor/block_cache.h"

#include <algorithm>
#include <vector>

#include "tensor/check.h"

namespace leuko {

size_t BlockCache::round_size(size_t bytes) {
  if (bytes == 0) bytes = 1;
  return (bytes + kRound - 1) / kRound * kRound;
}

size_t BlockCache::segment_size(size_t rounded) {
  if (rounded <= kSmall) return kSegmentRound;
  return (rounded + kSegmentRound - 1) / kSegmentRound * kSegmentRound;
}

BlockCache::~BlockCache() {
  for (auto& [ptr, block] : blocks_) delete block;
}

BlockCache::Block* BlockCache::find_free(int pool, size_t size, bool small) {
  FreeSet& set = free_set(pool, small);
  Block probe;
  probe.size = size;  // ptr nullptr: before every block of this size
  auto it = set.lower_bound(&probe);
  if (it == set.end() || (exact_ && (*it)->size != size)) return nullptr;
  Block* b = *it;
  set.erase(it);
  return b;
}

void* BlockCache::obtain_segment(size_t size, bool release) {
  const bool may_release = release && pool_ == 0;
  const auto over_limit = [&] { return limit_ > 0 && stats_.reserved + size > limit_; };
  if (over_limit() && may_release) release_free_segments();
  if (over_limit()) return nullptr;
  void* p = source_.obtain(size);
  if (p == nullptr && may_release && release_free_segments() > 0) p = source_.obtain(size);
  return p;
}

BlockCache::Block* BlockCache::new_segment(size_t rounded, bool small) {
  // A large block gets a segment of at least kLargeSegment, which later large blocks share, so
  // that blocks freed side by side merge into larger ones; when that much cannot be had, a
  // segment of the block's own size.
  const size_t exact = exact_ ? rounded : segment_size(rounded);
  size_t size = small || exact_ ? exact : std::max(exact, kLargeSegment);
  // The large segment is a wish: asking for it never empties the cache (a synchronisation, and
  // segments the next allocations would reuse); only the size the block needs may.
  void* p = obtain_segment(size, size == exact);
  if (p == nullptr && size != exact) p = obtain_segment(size = exact, true);
  if (p == nullptr) return nullptr;

  auto seg = std::make_unique<Segment>();
  seg->base = static_cast<char*>(p);
  seg->size = size;
  seg->small = small;
  Block* b = new Block;
  b->ptr = seg->base;
  b->size = size;
  b->pool = pool_;
  b->segment = seg.get();
  blocks_[b->ptr] = b;
  segments_[seg->base] = std::move(seg);
  stats_.reserved += size;
  stats_.peak_reserved = std::max(stats_.peak_reserved, stats_.reserved);
  return b;
}

// Keep the first `size` bytes of the free block `b`; the rest becomes a free block after it, of
// the same pool. Every size is a multiple of kRound, so a rest is either nothing or a block that
// can serve one.
void BlockCache::split(Block* b, size_t size) {
  if (b->size == size) return;
  Block* rest = new Block;
  rest->ptr = b->ptr + size;
  rest->size = b->size - size;
  rest->pool = b->pool;
  rest->segment = b->segment;
  rest->prev = b;
  rest->next = b->next;
  if (b->next != nullptr) b->next->prev = rest;
  b->next = rest;
  b->size = size;
  blocks_[rest->ptr] = rest;
  free_set(rest).insert(rest);
}

BlockCache::Allocation BlockCache::allocate(size_t bytes) {
  const size_t size = round_size(bytes);
  const bool small = size <= kSmall;
  stats_.allocations++;
  Block* b = find_free(pool_, size, small);
  // A private pool adopts a free block of the shared cache rather than ask for a new segment.
  if (b == nullptr && pool_ != 0) b = find_free(0, size, small);
  if (b != nullptr) {
    stats_.cache_hits++;
  } else {
    const size_t seg = exact_ ? size : segment_size(size);
    b = new_segment(size, small);
    if (b == nullptr) {
      const bool limit = limit_ > 0 && stats_.reserved + seg > limit_;
      return Allocation{nullptr, seg, limit ? Failure::limit : Failure::source};
    }
  }
  split(b, size);  // the rest stays where the block came from
  b->pool = pool_;
  b->used = true;
  stats_.current += b->size;
  stats_.peak = std::max(stats_.peak, stats_.current);
  return Allocation{b->ptr, b->size, Failure::none};
}

// `b` takes in the block after it (free, and out of `set` after this), which is deleted.
void BlockCache::absorb_next(Block* b, FreeSet& set) {
  Block* n = b->next;
  set.erase(n);  // by size and address: nothing, when `n` is the block being freed
  b->size += n->size;
  b->next = n->next;
  if (n->next != nullptr) n->next->prev = b;
  blocks_.erase(n->ptr);
  delete n;
}

void BlockCache::free(void* ptr) {
  auto it = blocks_.find(ptr);
  if (it == blocks_.end() || !it->second->used) return;  // not ours: never, unless memory is corrupted
  Block* b = it->second;
  b->used = false;
  stats_.current -= b->size;
  // A shared block freed while a pool records may have been read or written by the graph's
  // nodes; given to an eager allocation later, it would be raced by every replay. So it is the
  // pool's from now on, as what the pool allocated (its users finished before the capture began,
  // at the stream synchronisation that starts it).
  if (pool_ != 0 && b->pool == 0) b->pool = pool_;
  put_free(b);
}

void BlockCache::put_free(Block* b) {
  FreeSet& set = free_set(b);
  // Merge with a free neighbour of the same pool on either side: `b` absorbs the next block, the
  // previous block absorbs `b`. The free set orders by size, so a block leaves it before its
  // size changes.
  const auto mergeable = [&](const Block* n) { return n != nullptr && !n->used && n->pool == b->pool; };
  if (mergeable(b->next)) absorb_next(b, set);
  if (Block* p = b->prev; mergeable(p)) {
    set.erase(p);
    absorb_next(p, set);
    b = p;
  }
  set.insert(b);
}

size_t BlockCache::block_size(const void* ptr) const {
  auto it = blocks_.find(ptr);
  return it == blocks_.end() || !it->second->used ? 0 : it->second->size;
}

size_t BlockCache::release_free_segments() {
  // A segment with no live block is a single free block (free neighbours merge).
  std::vector<Segment*> idle;
  for (auto& [base, seg] : segments_) {
    Block* b = blocks_.at(base);
    if (!b->used && b->pool == 0 && b->size == seg->size) idle.push_back(seg.get());
  }
  if (idle.empty()) return 0;
  source_.before_give_back();
  size_t released = 0;
  for (Segment* seg : idle) {
    // Given back first: if the driver throws (after a kernel's fault), the segment is still
    // listed with its free block, as before.
    source_.give_back(seg->base, seg->size);
    Block* b = blocks_.at(seg->base);
    free_set(b).erase(b);
    blocks_.erase(b->ptr);
    delete b;
    stats_.reserved -= seg->size;
    released += seg->size;
    segments_.erase(seg->base);
  }
  return released;
}

int BlockCache::new_pool() {
  const int p = next_pool_++;
  free_[p];  // empty, but known: use_pool checks it exists
  return p;
}

void BlockCache::use_pool(int pool) {
  LEUKO_CHECK(pool == 0 || free_.count(pool), "caching allocator: no private pool ", pool);
  pool_ = pool;
}

void BlockCache::release_pool(int pool) {
  if (pool == 0) return;
  auto it = free_.find(pool);
  if (it == free_.end()) return;
  // Every block of the pool becomes shared: a live one is freed into the shared cache later; a
  // free one goes into it now, merged with free shared neighbours (and with other blocks of the
  // pool, which are shared by then too).
  std::vector<char*> freed;  // addresses: a block may be merged into another (and deleted) below
  for (Block* b : it->second.small) freed.push_back(b->ptr);
  for (Block* b : it->second.large) freed.push_back(b->ptr);
  free_.erase(it);
  for (auto& [ptr, b] : blocks_) {
    if (b->pool == pool) b->pool = 0;
  }
  for (char* ptr : freed) {
    auto found = blocks_.find(ptr);
    if (found == blocks_.end()) continue;  // merged into a block before it, already in the set
    Block* b = found->second;
    if (free_set(b).count(b) == 0) put_free(b);
  }
  if (pool_ == pool) pool_ = 0;
}

void BlockCache::reset_peak() {
  stats_.peak = stats_.current;
  stats_.peak_reserved = stats_.reserved;
}

}  // namespace leuko
