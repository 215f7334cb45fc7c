// A parallel loop over independent items (decoding files, writing synthetic images) on plain
// std::threads, with errors reported deterministically.
//
// Threads claim items in increasing order from a shared counter. When an item fails, no new
// items are claimed, the items already claimed finish, and the error of the lowest failing
// index is rethrown: every item below it was claimed earlier and ran, so that is the same
// error whatever the number of threads (a user sees the first bad file, not a random one).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace leuko::data {

// min(8, hardware threads), at least 1: decoding and augmentation scale to about that, and
// more threads only compete with the training loop.
inline int default_threads() {
  const unsigned hw = std::thread::hardware_concurrency();
  return int(std::clamp(hw == 0 ? 1u : hw, 1u, 8u));
}

// Calls f(i) for i in [0, n) on `threads` threads (0: default_threads()).
template <typename F>
void parallel_for(int64_t n, int threads, F&& f) {
  if (threads <= 0) threads = default_threads();
  threads = int(std::min<int64_t>(threads, std::max<int64_t>(n, 1)));
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  int64_t first_bad = n;
  std::exception_ptr error;
  auto work = [&] {
    while (!failed.load()) {
      const int64_t i = next.fetch_add(1);
      if (i >= n) return;
      try {
        f(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (i < first_bad) {
          first_bad = i;
          error = std::current_exception();
        }
        failed = true;
      }
    }
  };
  if (threads == 1) {
    work();
  } else {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; t++) pool.emplace_back(work);
    for (auto& t : pool) t.join();
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace leuko::data
